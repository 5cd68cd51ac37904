"""The console's lists over gRPC, on the real service and database: transfers, stocktakes and
purchase orders paged newest first within the caller's scope, and one purchase order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from aftersales.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from servicekit.auth import AuthContext
from servicekit.errors import InvalidInput, NotFound
from servicekit.grpc_client import call
from servicekit.runtime import close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, acting_as, service_settings, serving
from services.inventory.service import SPEC

SH_KEEPER = AuthContext("u-k1", "warehouse_keeper", "SH", "SH-001")
SH2_KEEPER = AuthContext("u-k2", "warehouse_keeper", "SH", "SH-002")
ZJ_KEEPER = AuthContext("u-k3", "warehouse_keeper", "ZJ", "ZJ-001")
SH_MANAGER = AuthContext("u-m1", "branch_manager", "SH", None)
ZJ_MANAGER = AuthContext("u-m2", "branch_manager", "ZJ", None)
HQ = AuthContext("u-hq", "hq_admin", None, None)
PART = "HW-BAT-P60"

Stub = inventory_pb2_grpc.InventoryServiceStub


@pytest.fixture
async def stub(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Stub]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    async with serving(SPEC, runtime) as channel:
        yield inventory_pb2_grpc.InventoryServiceStub(channel)
    await close_runtime(runtime)


async def request_transfer(stub: Stub, source: str, target: str) -> str:
    message = inventory_pb2.RequestTransferRequest(
        from_warehouse_id=source,
        to_warehouse_id=target,
        lines=[inventory_pb2.TransferPartLine(part_number=PART, quantity=1)],
    )
    return str((await call(stub.RequestTransfer, message)).id)


async def all_pages(
    fetch: Callable[[str], Awaitable[tuple[list[Any], str]]],
) -> tuple[list[Any], int]:
    """Every item over every page, and how many pages it took."""
    items: list[Any] = []
    token, pages = "", 0
    while True:
        found, token = await fetch(token)
        items += found
        pages += 1
        if not token:
            return items, pages


@pytest.mark.service("inventory")
async def test_transfers_page_newest_first_within_scope(stub: Stub) -> None:
    with acting_as(SH_KEEPER):
        local = [await request_transfer(stub, "WH-SH-001", "WH-SH-002") for _ in range(4)]
        crossing = await request_transfer(stub, "WH-SH-001", "WH-ZJ-001")
    with acting_as(SH2_KEEPER):
        elsewhere = await request_transfer(stub, "WH-SH-002", "WH-SH")

    async def fetch(token: str) -> tuple[list[Any], str]:
        request = inventory_pb2.ListTransfersRequest(
            warehouse_id="WH-SH-001", page_size=2, page_token=token
        )
        reply = await call(stub.ListTransfers, request)
        return list(reply.transfers), reply.next_page_token

    with acting_as(SH_KEEPER):
        found, pages = await all_pages(fetch)
        assert [x.id for x in found] == [crossing, *reversed(local)]
        assert pages == 3
        moments = [x.requested_at for x in found]
        assert moments == sorted(moments, reverse=True)
        # Without a warehouse: every transfer touching the caller's own warehouse.
        mine = await call(stub.ListTransfers, inventory_pb2.ListTransfersRequest())
        assert elsewhere not in {x.id for x in mine.transfers}
        assert len(mine.transfers) == 5
        # Another store's warehouse is unknown, not empty.
        with pytest.raises(NotFound):
            await call(
                stub.ListTransfers, inventory_pb2.ListTransfersRequest(warehouse_id="WH-SH-002")
            )
    with acting_as(ZJ_KEEPER):
        seen = await call(stub.ListTransfers, inventory_pb2.ListTransfersRequest())
        assert [x.id for x in seen.transfers] == [crossing]
    with acting_as(HQ):
        everything = await call(stub.ListTransfers, inventory_pb2.ListTransfersRequest())
        assert {x.id for x in everything.transfers} == {*local, crossing, elsewhere}


@pytest.mark.service("inventory")
async def test_a_branch_queue_holds_what_awaits_its_approval(stub: Stub) -> None:
    with acting_as(SH_KEEPER):
        local = await request_transfer(stub, "WH-SH-001", "WH-SH-002")
        crossing = await request_transfer(stub, "WH-SH-001", "WH-ZJ-001")

    def queue(branch: str) -> inventory_pb2.ListTransfersRequest:
        return inventory_pb2.ListTransfersRequest(pending_branch=branch)

    with acting_as(SH_MANAGER):
        assert [x.id for x in (await call(stub.ListTransfers, queue("SH"))).transfers] == [
            crossing,
            local,
        ]
        await call(stub.ApproveTransfer, inventory_pb2.TransferRequest(transfer_id=crossing))
        # Approved by SH, still waiting for ZJ: out of SH's queue, into nobody else's view.
        assert [x.id for x in (await call(stub.ListTransfers, queue("SH"))).transfers] == [local]
        with pytest.raises(NotFound):
            await call(stub.ListTransfers, queue("ZJ"))
    with acting_as(ZJ_MANAGER):
        assert [x.id for x in (await call(stub.ListTransfers, queue("ZJ"))).transfers] == [crossing]
        approved = inventory_pb2.ListTransfersRequest(status="approved")
        assert not (await call(stub.ListTransfers, approved)).transfers
        await call(stub.ApproveTransfer, inventory_pb2.TransferRequest(transfer_id=crossing))
        assert not (await call(stub.ListTransfers, queue("ZJ"))).transfers
        assert [x.id for x in (await call(stub.ListTransfers, approved)).transfers] == [crossing]


@pytest.mark.service("inventory")
async def test_stocktakes_page_by_status(stub: Stub) -> None:
    with acting_as(SH_KEEPER):
        stock = await call(
            stub.GetStock, inventory_pb2.GetStockRequest(warehouse_id="WH-SH-001", part_number=PART)
        )
        book = stock.levels[0].on_hand
        waiting = []
        for _ in range(3):
            # Far more than the approval threshold over the book: waits for a manager.
            count = inventory_pb2.CountedLine(part_number=PART, counted=book + 500)
            doc = await call(
                stub.RecordStocktake,
                inventory_pb2.RecordStocktakeRequest(warehouse_id="WH-SH-001", lines=[count]),
            )
            assert doc.status == "pending_approval"
            waiting.append(doc.id)
        same = inventory_pb2.CountedLine(part_number=PART, counted=book)
        posted = await call(
            stub.RecordStocktake,
            inventory_pb2.RecordStocktakeRequest(warehouse_id="WH-SH-001", lines=[same]),
        )
        assert posted.status == "posted"

    async def fetch(token: str) -> tuple[list[Any], str]:
        request = inventory_pb2.ListStocktakesRequest(
            warehouse_id="WH-SH-001", status="pending_approval", page_size=2, page_token=token
        )
        reply = await call(stub.ListStocktakes, request)
        return list(reply.stocktakes), reply.next_page_token

    with acting_as(SH_MANAGER):
        found, pages = await all_pages(fetch)
        assert ([x.id for x in found], pages) == (list(reversed(waiting)), 2)
        assert found[0].lines[0].difference == 500
        every = await call(
            stub.ListStocktakes, inventory_pb2.ListStocktakesRequest(warehouse_id="WH-SH-001")
        )
        assert [x.id for x in every.stocktakes] == [posted.id, *reversed(waiting)]
    with acting_as(ZJ_MANAGER), pytest.raises(NotFound):
        await call(
            stub.ListStocktakes, inventory_pb2.ListStocktakesRequest(warehouse_id="WH-SH-001")
        )


@pytest.mark.service("inventory")
async def test_purchase_orders_page_and_read_one(stub: Stub) -> None:
    with acting_as(SH_KEEPER):
        made = []
        for i in range(3):
            line = inventory_pb2.PurchaseLine(part_number=PART, quantity=2, unit_cost_fen=9000)
            order = await call(
                stub.CreatePurchaseOrder,
                inventory_pb2.CreatePurchaseOrderRequest(
                    warehouse_id="WH-SH-001", supplier=f"supplier {i}", lines=[line]
                ),
            )
            made.append(order.id)
        received = await call(
            stub.ReceivePurchaseOrder,
            inventory_pb2.ReceivePurchaseOrderRequest(purchase_order_id=made[0]),
        )
        assert received.status == "received"

        async def fetch(token: str) -> tuple[list[Any], str]:
            request = inventory_pb2.ListPurchaseOrdersRequest(
                warehouse_id="WH-SH-001", page_size=1, page_token=token
            )
            reply = await call(stub.ListPurchaseOrders, request)
            return list(reply.purchase_orders), reply.next_page_token

        found, pages = await all_pages(fetch)
        assert ([x.id for x in found], pages) == (list(reversed(made)), 3)
        still_open = await call(
            stub.ListPurchaseOrders,
            inventory_pb2.ListPurchaseOrdersRequest(warehouse_id="WH-SH-001", status="open"),
        )
        assert [x.id for x in still_open.purchase_orders] == [made[2], made[1]]
        one = await call(
            stub.GetPurchaseOrder, inventory_pb2.GetPurchaseOrderRequest(purchase_order_id=made[0])
        )
        assert one == received
    for outsider in (ZJ_KEEPER, SH2_KEEPER):
        with acting_as(outsider), pytest.raises(NotFound):
            await call(
                stub.GetPurchaseOrder,
                inventory_pb2.GetPurchaseOrderRequest(purchase_order_id=made[0]),
            )
    with acting_as(HQ), pytest.raises(NotFound):
        await call(
            stub.GetPurchaseOrder,
            inventory_pb2.GetPurchaseOrderRequest(purchase_order_id="PO-NONE"),
        )


@pytest.mark.service("inventory")
async def test_bad_filters_and_cursors_are_refused_by_field(stub: Stub) -> None:
    asks: list[tuple[Callable[..., Any], Any, str]] = [
        (stub.ListTransfers, inventory_pb2.ListTransfersRequest(status="lost"), "status"),
        (
            stub.ListStocktakes,
            inventory_pb2.ListStocktakesRequest(warehouse_id="WH-SH-001", status="open"),
            "status",
        ),
        (
            stub.ListPurchaseOrders,
            inventory_pb2.ListPurchaseOrdersRequest(warehouse_id="WH-SH-001", status="posted"),
            "status",
        ),
        (
            stub.ListPurchaseOrders,
            inventory_pb2.ListPurchaseOrdersRequest(warehouse_id="WH-SH-001", page_token="x"),
            "cursor",
        ),
        (stub.ListStocktakes, inventory_pb2.ListStocktakesRequest(), "warehouse_id"),
        (stub.GetPurchaseOrder, inventory_pb2.GetPurchaseOrderRequest(), "purchase_order_id"),
    ]
    with acting_as(SH_KEEPER):
        for method, request, field in asks:
            with pytest.raises(InvalidInput) as caught:
                await call(method, request)
            assert [e.field for e in caught.value.errors] == [field]
