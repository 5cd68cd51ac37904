"""Cursor pagination shared by every list RPC: an opaque page token that resumes after the
last row of the previous page (keyset paging, so deep pages stay cheap), and page-size limits."""

from __future__ import annotations

import base64
import binascii
import json

from servicekit.errors import invalid

_NOT_OURS = "is not a cursor this service issued"


def page_size(requested: int, default: int, maximum: int) -> int:
    """The rows a page holds: the default when none is asked for, at most `maximum`."""
    if requested < 0:
        raise invalid("page_size", "must not be negative")
    return min(requested or default, maximum)


def encode_page_token(*last_row_key: str) -> str:
    """A token for the page after the row with this key (its sort columns, in order)."""
    return base64.urlsafe_b64encode(json.dumps(list(last_row_key)).encode()).decode()


def decode_page_token(token: str, key_length: int) -> list[str]:
    """The key a page starts after; anything this service did not issue is refused by field
    `cursor`, the name the gateway gives the token."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, UnicodeError, ValueError) as error:
        raise invalid("cursor", _NOT_OURS) from error
    if (
        not isinstance(key, list)
        or len(key) != key_length
        or not all(isinstance(part, str) and part for part in key)
    ):
        raise invalid("cursor", _NOT_OURS)
    return key
