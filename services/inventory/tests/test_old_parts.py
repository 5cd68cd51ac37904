"""Old-part returns (旧件返还): a warranty issue owes its old part, batches settle owed lines
one by one, and what is left is listed, overdue after OLD_PART_DUE_DAYS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from servicekit.auth import AuthContext
from servicekit.errors import Forbidden, InvalidInput, NotFound
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory.domain import old_parts
from services.inventory.domain.old_parts import OLD_PART_DUE_DAYS, OldPartLine
from services.inventory.domain.order_parts import OrderPartLine, give_back
from services.inventory.domain.stock import Posting, StockLevel
from services.inventory.handlers import old_part_returns, work_order_parts
from services.inventory.handlers.work_order_parts import PartRequest
from services.inventory.service import SPEC

ISSUED = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
LINE = OrderPartLine(
    order_id="o-1",
    line_id="l-1",
    warehouse_id="WH-SH-001",
    part_number="HW-SCR-P60",
    quantity=2,
    warranty=True,
    retail_price_fen=1,
    issued=2,
    status="issued",
    unit_cost_fen=40000,
    issued_at=ISSUED,
)


def test_a_warranty_line_owes_an_old_part_per_unit_consumed() -> None:
    assert LINE.old_parts_owed == 2
    assert replace(LINE, returned=1).old_parts_owed == 1
    assert replace(LINE, warranty=False).old_parts_owed == 0


def test_owed_old_parts_fall_overdue_after_the_due_days() -> None:
    # Issued on Mar 1 (17:30 in Shanghai): due from the start of the 30th day after.
    due = datetime(2025, 3, 1, tzinfo=SHANGHAI) + timedelta(days=OLD_PART_DUE_DAYS)
    assert old_parts.due_at(LINE) == due
    assert not old_parts.overdue(LINE, due + timedelta(days=1, seconds=-1))
    assert old_parts.overdue(LINE, due + timedelta(days=1))
    assert not old_parts.overdue(replace(LINE, old_returned=2), due + timedelta(days=2))


@pytest.mark.parametrize(
    ("issued_at", "due"),
    [
        (datetime(2025, 3, 1, 23, 30, tzinfo=SHANGHAI), datetime(2025, 3, 31, tzinfo=SHANGHAI)),
        (datetime(2025, 3, 2, 0, 30, tzinfo=SHANGHAI), datetime(2025, 4, 1, tzinfo=SHANGHAI)),
    ],
)
def test_old_parts_are_due_by_shanghai_days(issued_at: datetime, due: datetime) -> None:
    """Issued at 23:30 or 00:30 in Shanghai (one UTC day): due OLD_PART_DUE_DAYS Shanghai days
    on, overdue once that day is over."""
    line = replace(LINE, issued_at=issued_at)
    assert old_parts.due_at(line) == due
    assert not old_parts.overdue(line, due + timedelta(days=1, minutes=-1))
    assert old_parts.overdue(line, due + timedelta(days=1))


def test_a_batch_is_matched_line_by_line() -> None:
    owed = {("o-1", "l-1"): LINE}
    [settled] = old_parts.match([OldPartLine("o-1", "l-1", 1)], owed)
    assert (settled.old_returned, settled.old_parts_owed) == (1, 1)
    cases = [
        ([], "lines"),
        ([OldPartLine("o-1", "l-9", 1)], "lines[0]"),
        ([OldPartLine("o-1", "l-1", 3)], "lines[0].quantity"),
        ([OldPartLine("o-1", "l-1", 1), OldPartLine("o-1", "l-1", 1)], "lines"),
    ]
    for batch, field in cases:
        with pytest.raises(InvalidInput) as caught:
            old_parts.match(batch, owed)
        assert caught.value.errors[0].field == field


def test_a_consumed_unit_whose_old_part_went_back_cannot_be_returned_unused() -> None:
    level = StockLevel("WH-SH-001", "HW-SCR-P60", 1, 0, 40000)
    posting = Posting("order", "o-1", ISSUED, "u")
    with pytest.raises(InvalidInput):
        give_back(level, replace(LINE, old_returned=2), 1, posting)


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


@pytest.mark.service("inventory")
async def test_old_parts_owed_are_listed_and_settled_by_a_batch(runtime: Runtime) -> None:
    uow = runtime.uow
    tech = AuthContext("u-t1", "technician", "SH", "SH-001")
    keeper = AuthContext("u-k1", "warehouse_keeper", "SH", "SH-001")
    lines = [
        PartRequest("l-1", "HW-BAT-P60", 2, True),
        PartRequest("l-2", "HW-SCR-P60", 1, False),
    ]
    await work_order_parts.reserve_parts(uow, tech, "o-w", "WH-SH-001", lines)
    await work_order_parts.issue_parts(uow, tech, "o-w", [])

    [owed] = await old_part_returns.list_old_parts_owed(uow, keeper, "WH-SH-001", False)
    assert (owed.order_id, owed.line_id, owed.old_parts_owed) == ("o-w", "l-1", 2)
    assert await old_part_returns.list_old_parts_owed(uow, keeper, "WH-SH-001", True) == []

    batch = await old_part_returns.return_old_parts(
        uow, keeper, "WH-SH-001", [OldPartLine("o-w", "l-1", 1)], "RMA-1"
    )
    assert batch.id.startswith("OPR-") and batch.lines == [OldPartLine("o-w", "l-1", 1)]
    [owed] = await old_part_returns.list_old_parts_owed(uow, keeper, "WH-SH-001", False)
    assert owed.old_parts_owed == 1
    with pytest.raises(InvalidInput):
        await old_part_returns.return_old_parts(
            uow, keeper, "WH-SH-001", [OldPartLine("o-w", "l-1", 2)], ""
        )
    with pytest.raises(InvalidInput):  # a line that owes nothing
        await old_part_returns.return_old_parts(
            uow, keeper, "WH-SH-001", [OldPartLine("o-w", "l-2", 1)], ""
        )
    # Only one unit of the line is still unused-returnable: the other's old part is gone.
    with pytest.raises(InvalidInput):
        await work_order_parts.return_parts(uow, tech, "o-w", "l-1", 2)
    with pytest.raises(Forbidden):
        await old_part_returns.return_old_parts(
            uow, tech, "WH-SH-001", [OldPartLine("o-w", "l-1", 1)], ""
        )
    with pytest.raises(NotFound):
        await old_part_returns.list_old_parts_owed(
            uow, AuthContext("u-k2", "warehouse_keeper", "SH", "SH-002"), "WH-SH-001", False
        )
