"""Text that no database of ours stores: the NUL character (PostgreSQL refuses it in text) and
unpaired surrogates (not Unicode, so not encodable as UTF-8). Refused where text enters, as
invalid input naming the field, rather than failing later as a server error.

One checker for both doors: the gateway checks JSON and form bodies, query and path
parameters; the services check every string of a protobuf request.
"""

from __future__ import annotations

import re

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from servicekit.errors import invalid

# A Python str holds a surrogate only when it is unpaired: a pair decodes to one code point.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(text: str) -> str | None:
    """Why this text cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain the NUL character"
    return "must be valid Unicode text (it holds an unpaired surrogate)"


def refuse_unstorable(field_path: str, text: str) -> None:
    reason = unstorable_reason(text)
    if reason is not None:
        raise invalid(field_path, reason)


def refuse_unstorable_text(message: Message, prefix: str = "") -> None:
    """Raise InvalidInput naming the first string field, at any depth, that cannot be stored
    (`customer.name`, `items.2.note`, `labels.colour`)."""
    # Protobuf itself refuses unpaired surrogates in strings, so only NUL can be here, and a
    # NUL in a string is a zero byte in the encoding: without one, there is nothing to find.
    # The encoding costs a few times less than the walk.
    if not prefix and b"\x00" not in message.SerializeToString():
        return
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                for index, text in enumerate(value):
                    refuse_unstorable(f"{path}.{index}", text)
            else:
                refuse_unstorable(path, value)
        elif field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                _refuse_in_map(field.message_type, value, path)
            elif field.is_repeated:
                for index, item in enumerate(value):
                    refuse_unstorable_text(item, f"{path}.{index}.")
            else:
                refuse_unstorable_text(value, path + ".")


def _refuse_in_map(entry: Descriptor, entries: object, path: str) -> None:
    key_field = entry.fields_by_name["key"]
    value_field = entry.fields_by_name["value"]
    for key, value in entries.items():  # type: ignore[attr-defined]
        if key_field.type == FieldDescriptor.TYPE_STRING:
            refuse_unstorable(path, key)
        entry_path = f"{path}.{key}"
        if value_field.type == FieldDescriptor.TYPE_STRING:
            refuse_unstorable(entry_path, value)
        elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
            refuse_unstorable_text(value, entry_path + ".")
