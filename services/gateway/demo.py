"""Demo data for local runs (DEMO_DATA=1), never production: the org tree of SPEC §1 and its
users, all with password demo1234. Loading twice adds nothing."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select

from servicekit.db import Database
from servicekit.demo import DEMO_PASSWORD, demo_data
from services.gateway.orm import org_units, users
from services.gateway.security import hash_password

# Demo user ids are derived from usernames so they stay the same on every machine and restart.
_USER_IDS = uuid.UUID("6f1c2a4e-8d0b-4c3a-9e7f-5a1b2c3d4e5f")


def org_units_of_demo() -> list[tuple[str, str, str | None, str, bool]]:
    """(id, kind, parent, name, franchised) of the demo org tree, parents first; the codes are
    the ones every service's demo data uses."""
    org = demo_data()["org"]
    units: list[tuple[str, str, str | None, str, bool]] = [
        (org["hq"]["id"], "hq", None, org["hq"]["name"], False)
    ]
    units += [(b["id"], "branch", org["hq"]["id"], b["name"], False) for b in org["branches"]]
    units += [(s["id"], "store", s["branch_id"], s["name"], s["franchised"]) for s in org["stores"]]
    return units


ORG_UNITS = org_units_of_demo()

# username suffix, role, title: the three users of every store
_STORE_ROLES = [
    ("clerk", "clerk", "受理员"),
    ("tech", "technician", "维修工程师"),
    ("keeper", "warehouse_keeper", "库管员"),
]


def demo_users() -> list[tuple[str, str, str, str]]:
    """(username, display name, role, org unit) of every demo user."""
    found = [
        ("hq.admin", "总部管理员", "hq_admin", "HQ"),
        ("hq.analyst", "总部分析员", "hq_analyst", "HQ"),
        ("sh.manager", "上海分公司经理", "branch_manager", "SH"),
        ("zj.manager", "浙江分公司经理", "branch_manager", "ZJ"),
        ("sh.followup", "上海分公司回访专员", "followup_agent", "SH"),
        ("zj.followup", "浙江分公司回访专员", "followup_agent", "ZJ"),
    ]
    for store, kind, _parent, _name, _franchised in ORG_UNITS:
        if kind != "store":
            continue
        code = store.lower().replace("-", "")
        for suffix, role, title in _STORE_ROLES:
            found.append((f"{code}.{suffix}", f"{store} {title}", role, store))
    return found


def demo_user_id(username: str) -> str:
    return str(uuid.uuid5(_USER_IDS, username))


async def load_demo_data(db: Database) -> None:
    async with db.begin() as conn:
        have_units = set((await conn.execute(select(org_units.c.id))).scalars())
        new_units = [u for u in ORG_UNITS if u[0] not in have_units]
        # Listed parents first, so each insert finds its parent.
        for unit_id, kind, parent_id, name, franchised in new_units:
            await conn.execute(
                insert(org_units).values(
                    id=unit_id, kind=kind, parent_id=parent_id, name=name, franchised=franchised
                )
            )
        have_users = set((await conn.execute(select(users.c.username))).scalars())
        new_users = [u for u in demo_users() if u[0] not in have_users]
        if not new_users:
            return
        # One argon2 hash shared by all demo users keeps start-up fast.
        password_hash = hash_password(DEMO_PASSWORD)
        await conn.execute(
            insert(users),
            [
                {
                    "id": demo_user_id(username),
                    "username": username,
                    "display_name": display_name,
                    "role": role,
                    "org_unit_id": unit,
                    "password_hash": password_hash,
                    "active": True,
                }
                for username, display_name, role, unit in new_users
            ],
        )
