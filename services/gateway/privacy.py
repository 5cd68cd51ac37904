"""Personal data shown outside the store that holds it is masked (PIPL)."""

from __future__ import annotations

from servicekit.auth import AuthContext
from servicekit.identifiers import mask_phone


def phone_for(auth: AuthContext, holding_store_id: str, phone: str) -> str:
    """The phone in clear only for a user of the store that holds the order."""
    if auth.store_id and auth.store_id == holding_store_id:
        return phone
    return mask_phone(phone)
