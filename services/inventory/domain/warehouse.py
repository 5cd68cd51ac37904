"""Warehouses (库房): one per store, one central per branch, and who may see which."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.auth import AuthContext

WAREHOUSE_KINDS = ("store", "branch_central")


@dataclass(frozen=True)
class Warehouse:
    id: str
    name: str
    kind: str
    branch_id: str
    store_id: str | None  # None for a branch's central warehouse
    franchised: bool = False  # a franchised store (加盟网点), held to a quota

    def visible_to(self, auth: AuthContext) -> bool:
        """HQ sees every warehouse, a branch its central and its stores', a store its own."""
        return auth.covers(self.branch_id, self.store_id)


def store_warehouse_id(store_id: str) -> str:
    return f"WH-{store_id}"


def central_warehouse_id(branch_id: str) -> str:
    return f"WH-{branch_id}"
