"""The org tree (HQ -> branch -> store), held in memory, and what a caller may see in it.

A user acts on their own unit and the units below it; naming any other unit is NotFound, so
the answer never tells whether another unit's data exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from servicekit.auth import AuthContext
from servicekit.db import Database
from servicekit.errors import NotFound
from services.gateway.orm import org_units


@dataclass(frozen=True)
class OrgUnit:
    id: str
    kind: str  # hq | branch | store
    parent_id: str | None
    name: str
    franchised: bool = False


class OrgTree:
    def __init__(self, units: Iterable[OrgUnit]) -> None:
        self.units = {unit.id: unit for unit in units}
        self.children: dict[str, list[str]] = {}
        for unit in sorted(self.units.values(), key=lambda u: u.id):
            if unit.parent_id:
                self.children.setdefault(unit.parent_id, []).append(unit.id)

    @classmethod
    async def load(cls, db: Database) -> OrgTree:
        async with db.session() as session:
            rows = (await session.execute(select(org_units))).all()
        return cls(OrgUnit(r.id, r.kind, r.parent_id, r.name, bool(r.franchised)) for r in rows)

    def get(self, unit_id: str) -> OrgUnit | None:
        return self.units.get(unit_id)

    def path(self, unit_id: str) -> tuple[str | None, str | None]:
        """(branch_id, store_id) of a unit: what the auth context of its users carries."""
        unit = self.units[unit_id]
        if unit.kind == "store":
            return unit.parent_id, unit.id
        if unit.kind == "branch":
            return unit.id, None
        return None, None

    def scope_root(self, auth: AuthContext) -> OrgUnit | None:
        """The unit the caller acts for: their store, else their branch, else the HQ."""
        if auth.store_id or auth.branch_id:
            return self.units.get(auth.store_id or auth.branch_id or "")
        return next((u for u in self.units.values() if u.kind == "hq"), None)

    def units_in_scope(self, auth: AuthContext) -> list[OrgUnit]:
        """The caller's unit and every unit below it, parents before their children."""
        root = self.scope_root(auth)
        found: list[OrgUnit] = []
        stack = [root.id] if root else []
        while stack:
            unit_id = stack.pop()
            found.append(self.units[unit_id])
            stack.extend(reversed(self.children.get(unit_id, [])))
        return found

    def store_in_scope(self, auth: AuthContext, store_id: str) -> tuple[str, str]:
        """(branch_id, store_id) of a store the caller may act on, else NotFound."""
        unit = self.units.get(store_id)
        if unit is None or unit.kind != "store" or unit.parent_id is None:
            raise NotFound(f"no store {store_id} in your scope")
        if not auth.covers(unit.parent_id, unit.id):
            raise NotFound(f"no store {store_id} in your scope")
        return unit.parent_id, unit.id

    def branch_in_scope(self, auth: AuthContext, branch_id: str) -> str:
        """A branch the caller may filter by: any for HQ, their own for branch and store users
        (a store user's view stays narrowed to their store by the services)."""
        unit = self.units.get(branch_id)
        if unit is None or unit.kind != "branch":
            raise NotFound(f"no branch {branch_id} in your scope")
        if auth.branch_id and auth.branch_id != branch_id:
            raise NotFound(f"no branch {branch_id} in your scope")
        return branch_id

    def check_filter(
        self, auth: AuthContext, branch_id: str | None, store_id: str | None
    ) -> tuple[str, str]:
        """Validate the optional branch/store filters of a list or report; "" for absent."""
        branch = self.branch_in_scope(auth, branch_id) if branch_id else ""
        if not store_id:
            return branch, ""
        store_branch, store = self.store_in_scope(auth, store_id)
        if branch and store_branch != branch:
            raise NotFound(f"no store {store_id} in branch {branch}")
        return branch, store
