"""A transfer is received once: the same receipt again answers it as it was, another receipt
(other discrepancies) is refused with 409 naming what differs, and nothing moves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from servicekit.errors import Conflict
from servicekit.runtime import Runtime
from services.inventory.domain.transfer import Transfer, TransferLine
from services.inventory.handlers import transfers
from services.inventory.handlers.transfers import receipt_differences
from services.inventory.tests.test_transfer_integration import (
    PART,
    SH002_KEEPER,
    SH_MANAGER,
    balanced,
    level,
    runtime,
)

__all__ = ["runtime"]  # the fixture, shared

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@pytest.mark.service("inventory")
async def test_a_repeated_receipt_with_other_discrepancies_is_refused(runtime: Runtime) -> None:
    uow = runtime.uow
    doc = await transfers.request_transfer(uow, SH002_KEEPER, "WH-SH", "WH-SH-002", [(PART, 3)], "")
    await transfers.approve_transfer(uow, SH_MANAGER, doc.id)
    await transfers.ship_transfer(uow, SH_MANAGER, doc.id)
    received = await transfers.receive_transfer(uow, SH002_KEEPER, doc.id, {PART: (1, 0)})
    store = await level(runtime, "WH-SH-002")

    # The same receipt again: the transfer as it was.
    assert await transfers.receive_transfer(uow, SH002_KEEPER, doc.id, {PART: (1, 0)}) == received
    for other in ({PART: (2, 0)}, {PART: (0, 1)}, {}):
        with pytest.raises(Conflict) as refused:
            await transfers.receive_transfer(uow, SH002_KEEPER, doc.id, other)
        assert "received already with other discrepancies" in refused.value.message
        [error] = refused.value.errors
        assert error.field == "discrepancies" and f"part {PART}" in error.reason
        assert "1 short and 0 damaged" in error.reason
    assert await transfers.get_transfer(uow, SH002_KEEPER, doc.id) == received
    assert await level(runtime, "WH-SH-002") == store
    assert await balanced(runtime) == (True, 0)


def test_a_serialised_part_s_receipt_differs_by_its_serials_too() -> None:
    line = TransferLine(
        "SWAP-1",
        2,
        serials=("S-1", "S-2"),
        received=1,
        short=1,
        short_serials=("S-1",),
    )
    done = Transfer("T-1", "WH-A", "SH", "WH-B", "SH", (line,), "u-1", NOW, status="received")
    assert receipt_differences(done, {"SWAP-1": (1, 0)}, {"SWAP-1": (["S-1"], [])}) == []
    [error] = receipt_differences(done, {"SWAP-1": (1, 0)}, {"SWAP-1": (["S-2"], [])})
    assert "short serials S-1" in error.reason
    [error] = receipt_differences(
        done, {"OTHER": (1, 0), "SWAP-1": (1, 0)}, {"SWAP-1": (["S-1"], [])}
    )
    assert "OTHER is not on the transfer" in error.reason
