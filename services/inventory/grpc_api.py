"""The inventory gRPC service: translates between protobuf and the use cases."""

from __future__ import annotations

from datetime import datetime

import grpc

from aftersales.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from servicekit.auth import current_auth
from servicekit.errors import invalid
from servicekit.timeutil import utc_now
from services.inventory.adapters.repository.stock import StockRow
from services.inventory.domain import old_parts, purchasing
from services.inventory.domain.catalog import Part
from services.inventory.domain.conservation import PartConservation
from services.inventory.domain.holds import Attempt
from services.inventory.domain.old_parts import OldPartLine
from services.inventory.domain.quota import QuotaUse
from services.inventory.domain.serials import SerialItem
from services.inventory.domain.stock import Movement
from services.inventory.domain.stocktake import Stocktake
from services.inventory.domain.transfer import Transfer
from services.inventory.domain.warehouse import Warehouse
from services.inventory.handlers import (
    catalog,
    common,
    conservation,
    documents,
    lists,
    old_part_returns,
    procurement,
    quotas,
    serial_trace,
    slow_moving,
    stock,
    stocktakes,
    transfers,
    work_order_parts,
)


def part_message(part: Part, chain: tuple[str, ...] = ()) -> inventory_pb2.Part:
    return inventory_pb2.Part(
        part_number=part.part_number,
        brand=part.brand,
        description=part.description,
        category=part.category,
        compatible_models=list(part.compatible_models),
        serialised=part.serialised,
        standard_cost_fen=part.standard_cost_fen,
        retail_price_fen=part.retail_price_fen,
        superseded_by=part.superseded_by or "",
        superseded_chain=list(chain),
    )


def warehouse_message(warehouse: Warehouse) -> inventory_pb2.Warehouse:
    return inventory_pb2.Warehouse(
        id=warehouse.id,
        name=warehouse.name,
        kind=warehouse.kind,
        branch_id=warehouse.branch_id,
        store_id=warehouse.store_id or "",
    )


def level_message(row: StockRow) -> inventory_pb2.StockLevel:
    level = row.level
    return inventory_pb2.StockLevel(
        part_number=level.part_number,
        description=row.description,
        on_hand=level.on_hand,
        reserved=level.reserved,
        available=level.available,
        average_cost_fen=level.average_cost_fen,
        value_fen=level.value_fen,
    )


def order_parts_message(parts: work_order_parts.OrderParts) -> inventory_pb2.OrderParts:
    none = work_order_parts.SuccessorOffer("", 0)
    return inventory_pb2.OrderParts(
        order_id=parts.order_id,
        warehouse_id=parts.warehouse_id,
        lines=[
            inventory_pb2.OrderPartLine(
                line_id=x.line_id,
                part_id=x.part_number,
                quantity=x.quantity,
                reserved=x.reserved,
                short=x.short,
                issued=x.issued,
                returned=x.returned,
                status=x.status,
                unit_cost_fen=x.unit_cost_fen,
                retail_price_fen=x.retail_price_fen,
                warranty=x.warranty,
                serials=list(parts.serials.get(x.line_id, ())),
                successor_part_id=parts.offers.get(x.line_id, none).part_number,
                successor_available=parts.offers.get(x.line_id, none).available,
            )
            for x in parts.lines
        ],
    )


def movement_message(movement_id: int, movement: Movement) -> inventory_pb2.Movement:
    return inventory_pb2.Movement(
        serials=[movement.serial_number] if movement.serial_number else [],
        id=movement_id,
        warehouse_id=movement.warehouse_id,
        part_number=movement.part_number,
        kind=movement.kind,
        quantity=movement.quantity,
        unit_cost_fen=movement.unit_cost_fen,
        document_type=movement.document_type,
        document_id=movement.document_id,
        user_id=movement.user_id,
        occurred_at=_iso(movement.occurred_at),
    )


def posted_message(booked: common.Posted) -> inventory_pb2.Movement:
    """A document's reply: its one ledger row, or its rows of one serial each as one movement
    (the first row's id, all the units and their serials)."""
    first_id, first = booked[0]
    reply = movement_message(first_id, first)
    if len(booked) > 1:
        reply.quantity = sum(m.quantity for _, m in booked)
        reply.ClearField("serials")
        reply.serials.extend(m.serial_number or "" for _, m in booked)
    return reply


def serial_message(item: SerialItem) -> inventory_pb2.SerialItem:
    return inventory_pb2.SerialItem(
        serial_number=item.serial_number,
        part_number=item.part_number,
        state=item.state,
        warehouse_id=item.warehouse_id or "",
        transfer_id=item.transfer_id or "",
        order_id=item.order_id or "",
        line_id=item.line_id or "",
        unit_cost_fen=item.unit_cost_fen,
    )


def conservation_message(part: PartConservation) -> inventory_pb2.PartConservation:
    return inventory_pb2.PartConservation(
        part_number=part.part_number,
        receipts=part.receipts,
        scrapped=part.scrapped,
        consumed=part.consumed,
        returned_to_manufacturer=part.returned_to_manufacturer,
        adjustments=part.adjustments,
        transfers=part.transfers,
        expected=part.expected,
        on_hand=part.on_hand,
        in_transit=part.in_transit,
        balanced=part.balanced,
        warehouses_off=list(part.warehouses_off),
        serials_off=list(part.serials_off),
        value_in_fen=part.value_in,
        value_out_fen=part.value_out,
        value_held_fen=part.value_held,
        value_in_transit_fen=part.value_in_transit,
    )


def _iso(moment: datetime | None) -> str:
    return moment.isoformat().replace("+00:00", "Z") if moment else ""


def transfer_message(doc: Transfer) -> inventory_pb2.Transfer:
    return inventory_pb2.Transfer(
        id=doc.id,
        from_warehouse_id=doc.from_warehouse_id,
        to_warehouse_id=doc.to_warehouse_id,
        status=doc.status,
        approved_branches=list(doc.approved_branches),
        pending_branches=list(doc.pending_branches),
        lines=[
            inventory_pb2.TransferLine(
                part_number=x.part_number,
                quantity=x.quantity,
                unit_cost_fen=x.unit_cost_fen,
                received=x.received,
                short=x.short,
                damaged=x.damaged,
                serials=list(x.serials),
                short_serials=list(x.short_serials),
                damaged_serials=list(x.damaged_serials),
            )
            for x in doc.lines
        ],
        requested_by=doc.requested_by,
        note=doc.note,
        requested_at=_iso(doc.requested_at),
        shipped_at=_iso(doc.shipped_at),
        received_at=_iso(doc.received_at),
        cancelled_at=_iso(doc.cancelled_at),
    )


def quota_message(use: QuotaUse) -> inventory_pb2.QuotaUse:
    return inventory_pb2.QuotaUse(
        warehouse_id=use.warehouse_id,
        quota_fen=use.quota_fen,
        held_fen=use.held_fen,
        in_transit_fen=use.in_transit_fen,
        old_parts_owed_fen=use.owed_fen,
        used_fen=use.used_fen,
        headroom_fen=use.headroom_fen,
    )


def stocktake_message(doc: Stocktake) -> inventory_pb2.Stocktake:
    return inventory_pb2.Stocktake(
        id=doc.id,
        warehouse_id=doc.warehouse_id,
        status=doc.status,
        lines=[
            inventory_pb2.StocktakeLine(
                part_number=x.part_number,
                book=x.book,
                counted=x.counted,
                difference=x.difference,
                unit_cost_fen=x.unit_cost_fen,
                missing_serials=list(x.missing_serials),
                found_serials=list(x.found_serials),
            )
            for x in doc.lines
        ],
        difference_value_fen=doc.difference_value_fen,
        counted_by=doc.counted_by,
        counted_at=_iso(doc.counted_at),
        decided_by=doc.decided_by or "",
        decided_at=_iso(doc.decided_at),
    )


def purchase_order_message(order: purchasing.PurchaseOrder) -> inventory_pb2.PurchaseOrder:
    return inventory_pb2.PurchaseOrder(
        id=order.id,
        warehouse_id=order.warehouse_id,
        supplier=order.supplier,
        status=order.status,
        lines=[
            inventory_pb2.PurchaseLine(
                part_number=x.part_number,
                quantity=x.quantity,
                unit_cost_fen=x.unit_cost_fen,
                received=x.received,
            )
            for x in order.lines
        ],
        created_by=order.created_by,
        created_at=_iso(order.created_at),
    )


def _attempt(
    request: inventory_pb2.ReservePartsRequest | inventory_pb2.OrderPartsRequest,
) -> Attempt | None:
    """The step attempt a request is part of; none: the order's own."""
    if not request.HasField("attempt") or not request.attempt.id:
        return None
    return Attempt(request.attempt.id, request.attempt.order_version)


class InventoryService(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, new_uow: common.NewUow) -> None:
        self.new_uow = new_uow

    async def ListParts(
        self, request: inventory_pb2.ListPartsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListPartsResponse:
        current_auth()  # the catalog is chain-wide, but only for callers who say who they are
        where = catalog.part_filter(request.brand, request.category, request.model)
        parts, token = await catalog.list_parts(
            self.new_uow, where, request.page_size, request.page_token
        )
        chains = await catalog.successor_chains(self.new_uow)
        return inventory_pb2.ListPartsResponse(
            parts=[part_message(p, chains.get(p.part_number, ())) for p in parts],
            next_page_token=token,
        )

    async def GetPart(
        self, request: inventory_pb2.GetPartRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Part:
        current_auth()
        part, chain = await catalog.get_part(self.new_uow, request.part_number)
        return part_message(part, chain)

    async def PutPart(
        self, request: inventory_pb2.Part, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Part:
        part = Part(
            part_number=request.part_number,
            brand=request.brand,
            description=request.description,
            category=request.category,
            serialised=request.serialised,
            standard_cost_fen=request.standard_cost_fen,
            retail_price_fen=request.retail_price_fen,
            compatible_models=tuple(request.compatible_models),
            superseded_by=request.superseded_by or None,
        )
        saved = await catalog.put_part(self.new_uow, current_auth(), part)
        chains = await catalog.successor_chains(self.new_uow)
        return part_message(saved, chains.get(saved.part_number, ()))

    async def ListWarehouses(
        self, request: inventory_pb2.ListWarehousesRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListWarehousesResponse:
        found = await stock.list_warehouses(self.new_uow, current_auth())
        return inventory_pb2.ListWarehousesResponse(
            warehouses=[warehouse_message(w) for w in found]
        )

    async def GetStock(
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.GetStockResponse:
        warehouse, rows = await stock.get_stock(
            self.new_uow, current_auth(), request.warehouse_id, request.part_number
        )
        return inventory_pb2.GetStockResponse(
            warehouse=warehouse_message(warehouse), levels=[level_message(r) for r in rows]
        )

    async def ReserveParts(
        self, request: inventory_pb2.ReservePartsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.OrderParts:
        lines = [
            work_order_parts.PartRequest(
                x.line_id, x.part_id, x.quantity, x.warranty, tuple(x.serials)
            )
            for x in request.lines
        ]
        found = await work_order_parts.reserve_parts(
            self.new_uow,
            current_auth(),
            request.order_id,
            request.warehouse_id,
            lines,
            _attempt(request),
        )
        return order_parts_message(found)

    async def IssueParts(
        self, request: inventory_pb2.OrderPartsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.OrderParts:
        found = await work_order_parts.issue_parts(
            self.new_uow,
            current_auth(),
            request.order_id,
            list(request.line_ids),
            _attempt(request),
        )
        return order_parts_message(found)

    async def ReleaseParts(
        self, request: inventory_pb2.OrderPartsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.OrderParts:
        found = await work_order_parts.release_parts(
            self.new_uow,
            current_auth(),
            request.order_id,
            list(request.line_ids),
            _attempt(request),
        )
        return order_parts_message(found)

    async def ReturnParts(
        self, request: inventory_pb2.ReturnPartsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.OrderParts:
        found = await work_order_parts.return_parts(
            self.new_uow,
            current_auth(),
            request.order_id,
            request.line_id,
            request.quantity,
            tuple(request.serials),
        )
        return order_parts_message(found)

    async def GetOrderParts(
        self, request: inventory_pb2.GetOrderPartsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.OrderParts:
        found = await work_order_parts.get_order_parts(
            self.new_uow, current_auth(), request.order_id
        )
        return order_parts_message(found)

    async def RecordReceipt(
        self, request: inventory_pb2.RecordReceiptRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Movement:
        booked = await documents.record_receipt(
            self.new_uow,
            current_auth(),
            request.warehouse_id,
            request.part_number,
            request.quantity,
            request.unit_cost_fen,
            request.document_id,
            tuple(request.serials),
        )
        return posted_message(booked)

    async def RecordAdjustment(
        self, request: inventory_pb2.RecordAdjustmentRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Movement:
        booked = await documents.record_adjustment(
            self.new_uow,
            current_auth(),
            request.warehouse_id,
            request.part_number,
            request.quantity,
            request.reason,
            request.document_id,
            tuple(request.serials),
        )
        return posted_message(booked)

    async def RecordWriteOff(
        self, request: inventory_pb2.RecordWriteOffRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Movement:
        booked = await documents.record_write_off(
            self.new_uow,
            current_auth(),
            request.warehouse_id,
            request.part_number,
            request.quantity,
            request.kind,
            request.reason,
            request.document_id,
            tuple(request.serials),
        )
        return posted_message(booked)

    async def ListMovements(
        self, request: inventory_pb2.ListMovementsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListMovementsResponse:
        rows, token = await documents.list_movements(
            self.new_uow,
            current_auth(),
            request.warehouse_id,
            request.part_number,
            request.page_size,
            request.page_token,
        )
        return inventory_pb2.ListMovementsResponse(
            movements=[movement_message(r.id, r.movement) for r in rows], next_page_token=token
        )

    async def CheckConservation(
        self, request: inventory_pb2.CheckConservationRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ConservationReport:
        parts = await conservation.check_conservation(
            self.new_uow, current_auth(), request.part_number
        )
        return inventory_pb2.ConservationReport(
            balanced=all(p.balanced for p in parts),
            parts=[conservation_message(p) for p in parts],
        )

    async def RequestTransfer(
        self, request: inventory_pb2.RequestTransferRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Transfer:
        doc = await transfers.request_transfer(
            self.new_uow,
            current_auth(),
            request.from_warehouse_id,
            request.to_warehouse_id,
            [(x.part_number, x.quantity) for x in request.lines],
            request.note,
            {x.part_number: tuple(x.serials) for x in request.lines if x.serials},
        )
        return transfer_message(doc)

    async def ApproveTransfer(
        self, request: inventory_pb2.TransferRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Transfer:
        doc = await transfers.approve_transfer(self.new_uow, current_auth(), request.transfer_id)
        return transfer_message(doc)

    async def ShipTransfer(
        self, request: inventory_pb2.TransferRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Transfer:
        doc = await transfers.ship_transfer(self.new_uow, current_auth(), request.transfer_id)
        return transfer_message(doc)

    async def ReceiveTransfer(
        self, request: inventory_pb2.ReceiveTransferRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Transfer:
        discrepancies: dict[str, tuple[int, int]] = {}
        named: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for i, x in enumerate(request.discrepancies):
            if x.part_number in discrepancies:
                raise invalid(f"discrepancies[{i}].part_number", "each part once")
            discrepancies[x.part_number] = (x.short, x.damaged)
            # Every part, named or not, so an error's index is the request's.
            named[x.part_number] = (tuple(x.short_serials), tuple(x.damaged_serials))
        doc = await transfers.receive_transfer(
            self.new_uow, current_auth(), request.transfer_id, discrepancies, named
        )
        return transfer_message(doc)

    async def CancelTransfer(
        self, request: inventory_pb2.TransferRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Transfer:
        doc = await transfers.cancel_transfer(self.new_uow, current_auth(), request.transfer_id)
        return transfer_message(doc)

    async def GetTransfer(
        self, request: inventory_pb2.TransferRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Transfer:
        doc = await transfers.get_transfer(self.new_uow, current_auth(), request.transfer_id)
        return transfer_message(doc)

    async def SetQuota(
        self, request: inventory_pb2.SetQuotaRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.QuotaUse:
        use = await quotas.set_quota(
            self.new_uow, current_auth(), request.warehouse_id, request.quota_fen
        )
        return quota_message(use)

    async def GetQuota(
        self, request: inventory_pb2.GetQuotaRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.QuotaUse:
        use = await quotas.get_quota(self.new_uow, current_auth(), request.warehouse_id)
        return quota_message(use)

    async def ListOldPartsOwed(
        self, request: inventory_pb2.ListOldPartsOwedRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListOldPartsOwedResponse:
        lines = await old_part_returns.list_old_parts_owed(
            self.new_uow, current_auth(), request.warehouse_id, request.overdue_only
        )
        now = utc_now()
        return inventory_pb2.ListOldPartsOwedResponse(
            parts=[
                inventory_pb2.OwedOldPart(
                    order_id=x.order_id,
                    line_id=x.line_id,
                    part_number=x.part_number,
                    owed=x.old_parts_owed,
                    unit_cost_fen=x.unit_cost_fen,
                    issued_at=_iso(x.issued_at),
                    due_at=_iso(old_parts.due_at(x)),
                    overdue=old_parts.overdue(x, now),
                )
                for x in lines
            ]
        )

    async def ReturnOldParts(
        self, request: inventory_pb2.ReturnOldPartsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.OldPartBatch:
        batch = await old_part_returns.return_old_parts(
            self.new_uow,
            current_auth(),
            request.warehouse_id,
            [OldPartLine(x.order_id, x.line_id, x.quantity) for x in request.lines],
            request.document_id,
        )
        return inventory_pb2.OldPartBatch(
            id=batch.id,
            warehouse_id=batch.warehouse_id,
            lines=[
                inventory_pb2.OldPartLine(
                    order_id=x.order_id, line_id=x.line_id, quantity=x.quantity
                )
                for x in batch.lines
            ],
            created_by=batch.created_by,
            created_at=_iso(batch.created_at),
        )

    async def ListSlowMoving(
        self, request: inventory_pb2.ListSlowMovingRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListSlowMovingResponse:
        found = await slow_moving.list_slow_moving(
            self.new_uow, current_auth(), request.days, request.warehouse_id
        )
        return inventory_pb2.ListSlowMovingResponse(
            items=[
                inventory_pb2.SlowMovingItem(
                    warehouse_id=x.warehouse_id,
                    part_number=x.part_number,
                    description=x.description,
                    on_hand=x.on_hand,
                    value_fen=x.value_fen,
                    last_outbound_at=_iso(x.last_outbound_at),
                )
                for x in found
            ],
            total_value_fen=sum(x.value_fen for x in found),
        )

    async def RecordStocktake(
        self, request: inventory_pb2.RecordStocktakeRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Stocktake:
        doc = await stocktakes.record_stocktake(
            self.new_uow,
            current_auth(),
            request.warehouse_id,
            [(x.part_number, x.counted) for x in request.lines],
            {x.part_number: tuple(x.serials) for x in request.lines if x.serials},
        )
        return stocktake_message(doc)

    async def DecideStocktake(
        self, request: inventory_pb2.DecideStocktakeRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Stocktake:
        doc = await stocktakes.decide_stocktake(
            self.new_uow, current_auth(), request.stocktake_id, request.approve
        )
        return stocktake_message(doc)

    async def GetStocktake(
        self, request: inventory_pb2.GetStocktakeRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.Stocktake:
        doc = await stocktakes.get_stocktake(self.new_uow, current_auth(), request.stocktake_id)
        return stocktake_message(doc)

    async def SetReorderLevel(
        self, request: inventory_pb2.SetReorderLevelRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ReorderLevel:
        x = request.level
        level = purchasing.ReorderLevel(x.part_number, x.min_level, x.max_level, x.lead_time_days)
        await procurement.set_reorder_level(self.new_uow, current_auth(), x.warehouse_id, level)
        return x

    async def SuggestReorders(
        self, request: inventory_pb2.SuggestReordersRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.SuggestReordersResponse:
        found = await procurement.suggest_reorders(
            self.new_uow, current_auth(), request.warehouse_id, request.window_days
        )
        return inventory_pb2.SuggestReordersResponse(
            suggestions=[
                inventory_pb2.ReorderSuggestion(
                    part_number=x.part_number,
                    available=x.available,
                    in_transit=x.in_transit,
                    on_order=x.on_order,
                    daily_consumption=x.daily_consumption,
                    reorder_point=x.reorder_point,
                    quantity=x.quantity,
                )
                for x in found
            ]
        )

    async def CreatePurchaseOrder(
        self, request: inventory_pb2.CreatePurchaseOrderRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.PurchaseOrder:
        lines = [
            purchasing.PurchaseLine(x.part_number, x.quantity, x.unit_cost_fen)
            for x in request.lines
        ]
        order = await procurement.create_purchase_order(
            self.new_uow, current_auth(), request.warehouse_id, request.supplier, lines
        )
        return purchase_order_message(order)

    async def ReceivePurchaseOrder(
        self, request: inventory_pb2.ReceivePurchaseOrderRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.PurchaseOrder:
        quantities: dict[str, int] = {}
        for i, x in enumerate(request.lines):
            if x.part_number in quantities:
                raise invalid(f"lines[{i}].part_number", "each part once")
            quantities[x.part_number] = x.quantity
        order = await procurement.receive_purchase_order(
            self.new_uow, current_auth(), request.purchase_order_id, quantities
        )
        return purchase_order_message(order)

    async def GetSerial(
        self, request: inventory_pb2.GetSerialRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.SerialTrace:
        trace = await serial_trace.get_serial(self.new_uow, current_auth(), request.serial_number)
        return inventory_pb2.SerialTrace(
            item=serial_message(trace.item),
            history=[movement_message(r.id, r.movement) for r in trace.history],
        )

    async def ListSerials(
        self, request: inventory_pb2.ListSerialsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListSerialsResponse:
        found = await serial_trace.list_serials(
            self.new_uow, current_auth(), request.warehouse_id, request.part_number
        )
        return inventory_pb2.ListSerialsResponse(serials=[serial_message(x) for x in found])

    async def ListTransfers(
        self, request: inventory_pb2.ListTransfersRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListTransfersResponse:
        found, token = await lists.list_transfers(
            self.new_uow,
            current_auth(),
            request.warehouse_id,
            request.status,
            request.pending_branch,
            request.page_size,
            request.page_token,
        )
        return inventory_pb2.ListTransfersResponse(
            transfers=[transfer_message(x) for x in found], next_page_token=token
        )

    async def ListStocktakes(
        self, request: inventory_pb2.ListStocktakesRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListStocktakesResponse:
        found, token = await lists.list_stocktakes(
            self.new_uow,
            current_auth(),
            request.warehouse_id,
            request.status,
            request.page_size,
            request.page_token,
        )
        return inventory_pb2.ListStocktakesResponse(
            stocktakes=[stocktake_message(x) for x in found], next_page_token=token
        )

    async def ListPurchaseOrders(
        self, request: inventory_pb2.ListPurchaseOrdersRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListPurchaseOrdersResponse:
        found, token = await lists.list_purchase_orders(
            self.new_uow,
            current_auth(),
            request.warehouse_id,
            request.status,
            request.page_size,
            request.page_token,
        )
        return inventory_pb2.ListPurchaseOrdersResponse(
            purchase_orders=[purchase_order_message(x) for x in found], next_page_token=token
        )

    async def GetPurchaseOrder(
        self, request: inventory_pb2.GetPurchaseOrderRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.PurchaseOrder:
        order = await lists.get_purchase_order(
            self.new_uow, current_auth(), request.purchase_order_id
        )
        return purchase_order_message(order)


def register(server: grpc.aio.Server, new_uow: common.NewUow) -> None:
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryService(new_uow), server)
