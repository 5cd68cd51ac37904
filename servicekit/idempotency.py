"""One lifetime for an idempotency key from the gateway down to the services, and the hash of a
request that tells a retry (same request) from a reused key (another request)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from google.protobuf.message import Message

KEY_LIFETIME = timedelta(hours=24)
"""How long a key is honoured: a retry within it gets the first answer; after it the key is
free again."""

# The key and the hash themselves are not part of what is hashed.
_NOT_HASHED = ("request_id", "request_hash")


def request_hash(message: Message) -> str:
    """sha256 (hex) of the request's deterministic protobuf encoding, without its request id."""
    canonical = type(message)()
    canonical.CopyFrom(message)
    for name in _NOT_HASHED:
        if name in canonical.DESCRIPTOR.fields_by_name:
            canonical.ClearField(name)
    return hashlib.sha256(canonical.SerializeToString(deterministic=True)).hexdigest()
