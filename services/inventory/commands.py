"""Operator commands of the inventory service, run like the service itself (same settings):

    python -m services.inventory conservation [<part number>]

prints the conservation check (守恒) per part, the figures and `ok` or `UNBALANCED`, and exits
1 when any part does not balance, so a cron job or a test can act on it.

    python -m services.inventory reconcile-holds [--release]

lists the orders' holds no live step stands behind (the order ended, or only attempts never
written claim them, though orders' events created HOLD_GRACE_SECONDS after the claim were
heard, the hold keeper's rule) and exits 1 when there are any; with --release lets them go
first, and lists what is left.
"""

from __future__ import annotations

import sys

from servicekit.db import Database
from servicekit.settings import Settings
from servicekit.uow import UnitOfWork
from services.inventory.adapters.orm import outbox
from services.inventory.handlers import conservation, holds
from services.inventory.settings import HoldSettings

HEADER = (
    "part\treceipts\tscrapped\tconsumed\treturned_to_manufacturer\tadjustments\ttransfers"
    "\texpected\ton_hand\tin_transit\tvalue_in_fen\tvalue_out_fen\tvalue_held_fen"
    "\tvalue_in_transit_fen\tstate"
)


async def conservation_command(args: list[str]) -> int:
    if len(args) > 1:
        print("usage: python -m services.inventory conservation [<part number>]", file=sys.stderr)
        return 2
    settings = Settings.from_env("inventory")
    db = Database(settings.database_url, settings.db_schema)
    try:
        # Read only: nothing is emitted, so no relay needs waking.
        parts = await conservation.conservation(
            lambda: UnitOfWork(db, outbox, lambda: None), args[0] if args else ""
        )
    finally:
        await db.dispose()
    print(HEADER)
    for p in parts:
        state = "ok" if p.balanced else " ".join(["UNBALANCED", *p.warehouses_off])
        print(
            f"{p.part_number}\t{p.receipts}\t{p.scrapped}\t{p.consumed}"
            f"\t{p.returned_to_manufacturer}\t{p.adjustments}\t{p.transfers}"
            f"\t{p.expected}\t{p.on_hand}\t{p.in_transit}\t{p.value_in}\t{p.value_out}"
            f"\t{p.value_held}\t{p.value_in_transit}\t{state}"
        )
    unbalanced = sum(not p.balanced for p in parts)
    print(f"{len(parts)} parts, {unbalanced} unbalanced")
    return 1 if unbalanced else 0


async def reconcile_holds_command(args: list[str]) -> int:
    if args not in ([], ["--release"]):
        print("usage: python -m services.inventory reconcile-holds [--release]", file=sys.stderr)
        return 2
    settings = Settings.from_env("inventory")
    grace = HoldSettings.from_env().grace
    db = Database(settings.database_url, settings.db_schema)
    try:
        # Events are emitted only when holds are let go: the service's own relay sends them.
        def new_uow() -> UnitOfWork:
            return UnitOfWork(db, outbox, lambda: None)

        if args:
            print(f"let go: {await holds.let_go_loose(new_uow, grace)} orders' parts")
        loose = await holds.loose_holds(new_uow, grace)
    finally:
        await db.dispose()
    print("order\tline\tpart\treserved\tstatus\treason")
    for hold in loose:
        x = hold.line
        print(
            f"{x.order_id}\t{x.line_id}\t{x.part_number}\t{x.reserved}\t{x.status}\t{hold.reason}"
        )
    print(f"{len(loose)} loose holds")
    return 1 if loose else 0
