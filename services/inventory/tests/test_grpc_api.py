"""The inventory gRPC service in-process, as the gateway calls it: the auth context travels in
metadata, and failures come back as the domain errors the service raised."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from aftersales.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from servicekit.auth import AuthContext
from servicekit.errors import InvalidInput, NotFound, Unauthenticated
from servicekit.grpc_client import call
from servicekit.idempotency import passing_request_id
from servicekit.runtime import close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, acting_as, service_settings, serving
from services.inventory.domain.stock import StockLevel
from services.inventory.grpc_api import StockRow, level_message
from services.inventory.service import SPEC

KEEPER = AuthContext("u-k1", "warehouse_keeper", "SH", "SH-001")


@pytest.fixture
async def stub(
    db_target: DatabaseTarget, nats_server: NatsServer
) -> AsyncIterator[inventory_pb2_grpc.InventoryServiceStub]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    async with serving(SPEC, runtime) as channel:
        yield inventory_pb2_grpc.InventoryServiceStub(channel)
    await close_runtime(runtime)


@pytest.fixture
def as_keeper() -> Iterator[None]:
    with acting_as(KEEPER):
        yield


@pytest.mark.service("inventory")
async def test_calls_without_an_auth_context_are_refused(
    stub: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    with pytest.raises(Unauthenticated):
        await call(stub.ListParts, inventory_pb2.ListPartsRequest())


@pytest.mark.service("inventory")
@pytest.mark.usefixtures("as_keeper")
async def test_a_store_keeper_reads_their_own_warehouse(
    stub: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    reply = await call(stub.ListWarehouses, inventory_pb2.ListWarehousesRequest())
    assert [(w.id, w.kind, w.branch_id, w.store_id) for w in reply.warehouses] == [
        ("WH-SH-001", "store", "SH", "SH-001")
    ]
    stock = await call(stub.GetStock, inventory_pb2.GetStockRequest(warehouse_id="WH-SH-001"))
    assert stock.warehouse.id == "WH-SH-001"
    assert stock.levels
    for level in stock.levels:
        assert level.available == level.on_hand - level.reserved
        assert level.average_cost_fen > 0 and level.description
        # The exact value beside the average derived from it.
        assert level.on_hand and level.average_cost_fen == level.value_fen // level.on_hand
    one = await call(
        stub.GetStock,
        inventory_pb2.GetStockRequest(warehouse_id="WH-SH-001", part_number="HW-BAT-P60"),
    )
    assert [level.part_number for level in one.levels] == ["HW-BAT-P60"]


@pytest.mark.service("inventory")
@pytest.mark.usefixtures("as_keeper")
async def test_errors_come_back_as_domain_errors(
    stub: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    for warehouse_id in ("WH-SH-002", "WH-SH", "WH-NOWHERE"):
        with pytest.raises(NotFound):
            await call(stub.GetStock, inventory_pb2.GetStockRequest(warehouse_id=warehouse_id))
    with pytest.raises(InvalidInput) as caught:
        await call(stub.ListParts, inventory_pb2.ListPartsRequest(category="toaster"))
    assert [e.field for e in caught.value.errors] == ["category"]
    with pytest.raises(InvalidInput) as caught:
        await call(stub.GetStock, inventory_pb2.GetStockRequest())
    assert [e.field for e in caught.value.errors] == ["warehouse_id"]


@pytest.mark.service("inventory")
@pytest.mark.usefixtures("as_keeper")
async def test_parts_page_through_the_catalog(
    stub: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    seen: list[str] = []
    token = ""
    while True:
        reply = await call(
            stub.ListParts,
            inventory_pb2.ListPartsRequest(brand="huawei", page_size=6, page_token=token),
        )
        seen += [p.part_number for p in reply.parts]
        token = reply.next_page_token
        if not token:
            break
    assert seen == sorted(set(seen)) and all(p.startswith("HW-") for p in seen)
    assert len(seen) > 6
    first = await call(stub.ListParts, inventory_pb2.ListPartsRequest(model="p60", page_size=1))
    part = first.parts[0]
    assert list(part.compatible_models) == ["p60"]
    assert part.standard_cost_fen > 0 and part.retail_price_fen > part.standard_cost_fen


@pytest.mark.service("inventory")
@pytest.mark.usefixtures("as_keeper")
async def test_an_order_line_is_reserved_issued_and_returned_over_grpc(
    stub: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    line = inventory_pb2.PartLine(line_id="l-1", part_id="HW-BAT-P60", quantity=1, warranty=True)
    reserve = inventory_pb2.ReservePartsRequest(
        order_id="o-1", warehouse_id="WH-SH-001", lines=[line]
    )
    held = await call(stub.ReserveParts, reserve)
    assert (held.order_id, held.warehouse_id) == ("o-1", "WH-SH-001")
    assert [(x.line_id, x.reserved, x.short, x.status, x.warranty) for x in held.lines] == [
        ("l-1", 1, 0, "reserved", True)
    ]
    issued = await call(stub.IssueParts, inventory_pb2.OrderPartsRequest(order_id="o-1"))
    assert issued.lines[0].status == "issued" and issued.lines[0].unit_cost_fen > 0
    back = await call(
        stub.ReturnParts,
        inventory_pb2.ReturnPartsRequest(order_id="o-1", line_id="l-1", quantity=1),
    )
    assert back.lines[0].status == "returned"
    assert (
        await call(stub.GetOrderParts, inventory_pb2.GetOrderPartsRequest(order_id="o-1")) == back
    )
    movements = await call(
        stub.ListMovements,
        inventory_pb2.ListMovementsRequest(warehouse_id="WH-SH-001", part_number="HW-BAT-P60"),
    )
    assert [(m.kind, m.quantity, m.document_id) for m in movements.movements[:2]] == [
        ("return", 1, "o-1"),
        ("issue", -1, "o-1"),
    ]
    assert movements.movements[0].user_id == KEEPER.user_id
    assert movements.movements[0].occurred_at.endswith("Z")
    with pytest.raises(InvalidInput) as caught:
        await call(
            stub.ReserveParts,
            inventory_pb2.ReservePartsRequest(
                order_id="o-2",
                warehouse_id="WH-SH-001",
                lines=[inventory_pb2.PartLine(line_id="l-1", part_id="HW-BAT-P60", quantity=-1)],
            ),
        )
    assert [e.field for e in caught.value.errors] == ["lines[0].quantity"]


@pytest.mark.service("inventory")
@pytest.mark.usefixtures("as_keeper")
async def test_a_retried_keyed_document_is_booked_once(
    stub: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    """The gateway's request id on the call: a retry whose first reply was lost (a 503 at the
    gateway) is answered with what the first try booked, not booked again."""

    async def ledger() -> list[int]:
        page = await call(
            stub.ListMovements,
            inventory_pb2.ListMovementsRequest(warehouse_id="WH-SH-001", part_number="HW-BAT-P60"),
        )
        return [m.id for m in page.movements]

    before = await ledger()
    receipt = inventory_pb2.RecordReceiptRequest(
        warehouse_id="WH-SH-001", part_number="HW-BAT-P60", quantity=3, unit_cost_fen=9000
    )
    with passing_request_id("u-k1:receipt-1"):
        first = await call(stub.RecordReceipt, receipt)
        again = await call(stub.RecordReceipt, receipt)
        assert again == first
        with pytest.raises(InvalidInput) as reused:
            other = inventory_pb2.RecordReceiptRequest()
            other.CopyFrom(receipt)
            other.quantity = 4
            await call(stub.RecordReceipt, other)
        assert [e.field for e in reused.value.errors] == ["Idempotency-Key"]
    assert await ledger() == [first.id, *before]

    transfer = inventory_pb2.RequestTransferRequest(
        from_warehouse_id="WH-SH",
        to_warehouse_id="WH-SH-001",
        lines=[inventory_pb2.TransferPartLine(part_number="HW-BAT-P60", quantity=1)],
    )
    with passing_request_id("u-k1:transfer-1"):
        asked = await call(stub.RequestTransfer, transfer)
        assert (await call(stub.RequestTransfer, transfer)).id == asked.id
    with passing_request_id("u-k1:transfer-2"):
        assert (await call(stub.RequestTransfer, transfer)).id != asked.id
    # Without a key every call is its own request.
    second = await call(stub.RecordReceipt, receipt)
    assert second.id not in (first.id, *before)


@pytest.mark.service("inventory")
async def test_serials_over_grpc_as_a_keeper_and_orders_use_them(
    stub: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    """A receipt of two serials retried under one request id answers the same and books
    once; an order line (as orders calls it, for the swap unit say) holds a named serial,
    issues it, and returns it; the serial's trace follows."""
    part, serials = "HW-MAI-P60", ["MB-GRPC-1", "MB-GRPC-2"]
    receipt = inventory_pb2.RecordReceiptRequest(
        warehouse_id="WH-SH-001",
        part_number=part,
        quantity=2,
        unit_cost_fen=120_000,
        serials=serials,
    )
    with acting_as(KEEPER), passing_request_id("u-k1:serial-receipt"):
        first = await call(stub.RecordReceipt, receipt)
        again = await call(stub.RecordReceipt, receipt)
    assert again == first
    assert (first.quantity, list(first.serials)) == (2, serials)
    # Many serials are remembered by their first and last row: the retry finds all of them.
    many = [f"MB-GRPC-X{i:02}" for i in range(12)]
    bulk = inventory_pb2.RecordReceiptRequest()
    bulk.CopyFrom(receipt)
    bulk.quantity, bulk.serials[:] = len(many), many
    with acting_as(KEEPER), passing_request_id("u-k1:serial-bulk"):
        booked = await call(stub.RecordReceipt, bulk)
        assert await call(stub.RecordReceipt, bulk) == booked
    assert (booked.quantity, list(booked.serials)) == (12, many)

    tech = AuthContext("u-t1", "technician", "SH", "SH-001")
    with acting_as(tech):
        line = inventory_pb2.PartLine(
            line_id="SWAP", part_id=part, quantity=1, serials=[serials[1]]
        )
        held = await call(
            stub.ReserveParts,
            inventory_pb2.ReservePartsRequest(
                order_id="o-grpc", warehouse_id="WH-SH-001", lines=[line]
            ),
        )
        assert list(held.lines[0].serials) == [serials[1]]
        issued = await call(stub.IssueParts, inventory_pb2.OrderPartsRequest(order_id="o-grpc"))
        assert (issued.lines[0].status, list(issued.lines[0].serials)) == ("issued", [serials[1]])
        # Orders retrying the step asks again for the line: answered as it is.
        retried = await call(
            stub.ReserveParts,
            inventory_pb2.ReservePartsRequest(
                order_id="o-grpc", warehouse_id="WH-SH-001", lines=[line]
            ),
        )
        assert retried.lines == issued.lines
        trace = await call(stub.GetSerial, inventory_pb2.GetSerialRequest(serial_number=serials[1]))
        assert (trace.item.state, trace.item.order_id, trace.item.line_id) == (
            "consumed",
            "o-grpc",
            "SWAP",
        )
        assert [(m.kind, list(m.serials)) for m in trace.history] == [
            ("receipt", [serials[1]]),
            ("issue", [serials[1]]),
        ]
        back = await call(
            stub.ReturnParts,
            inventory_pb2.ReturnPartsRequest(
                order_id="o-grpc", line_id="SWAP", quantity=1, serials=[serials[1]]
            ),
        )
        assert back.lines[0].status == "returned"
    with acting_as(KEEPER):
        listed = await call(
            stub.ListSerials,
            inventory_pb2.ListSerialsRequest(warehouse_id="WH-SH-001", part_number=part),
        )
    assert {x.serial_number for x in listed.serials} == {*serials, *many}


def test_a_stock_level_shows_its_exact_value_beside_the_average_cost() -> None:
    """Three units received for 100 fen: worth 100, at an average of 33 (rounded down)."""
    level = StockLevel("WH-SH-001", "HW-BAT-P60", on_hand=3, average_cost_fen=33, value_fen=100)
    shown = level_message(StockRow(level, "P60 battery"))
    assert (shown.on_hand, shown.average_cost_fen, shown.value_fen) == (3, 33, 100)
