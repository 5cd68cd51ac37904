"""Personal data shown outside the store that holds it is masked (PIPL)."""

from __future__ import annotations

from collections.abc import Sequence

from servicekit.auth import AuthContext
from servicekit.identifiers import mask_phone


def phone_for(auth: AuthContext, holding_store_id: str, phone: str) -> str:
    """The phone in clear only for a user of the store that holds the order."""
    if auth.store_id and auth.store_id == holding_store_id:
        return phone
    return mask_phone(phone)


def customer_phone(auth: AuthContext, open_store_ids: Sequence[str], phone: str) -> str | None:
    """A customer's phone in clear only for a store holding an open order of theirs (it has
    their device and must reach them); none at all once their data is erased."""
    if not phone:
        return None
    if auth.store_id and auth.store_id in open_store_ids:
        return phone
    return mask_phone(phone)


def phone_for_caller(auth: AuthContext, responsible_user_id: str, phone: str) -> str | None:
    """In clear for whoever must call the customer (the agent who took a follow-up, a
    complaint's owner); masked for everyone else."""
    if not phone:
        return None
    if responsible_user_id and auth.user_id == responsible_user_id:
        return phone
    return mask_phone(phone)
