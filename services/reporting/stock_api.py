"""StockReportsService over gRPC: translates between protobuf and the parts side's use cases."""

from __future__ import annotations

import grpc

from aftersales.reporting.v1 import stock_reports_pb2, stock_reports_pb2_grpc
from servicekit.auth import current_auth
from services.reporting import stock


def totals_message(totals: stock.StockTotals) -> stock_reports_pb2.StockTotals:
    message = stock_reports_pb2.StockTotals(
        branch_id=totals.branch_id or "",
        store_id=totals.store_id or "",
        inventory_value_fen=totals.inventory_value_fen,
        average_inventory_value_fen=totals.average_inventory_value_fen,
        issued_cost_fen=totals.issued_cost_fen,
        slow_moving_value_fen=totals.slow_moving_value_fen,
        parts_cost_fen=totals.parts_cost_fen,
        orders_with_issues=totals.orders_with_issues,
    )
    if totals.turnover_days is not None:
        message.turnover_days = totals.turnover_days
    if totals.parts_cost_per_order_fen is not None:
        message.parts_cost_per_order_fen = totals.parts_cost_per_order_fen
    return message


def figures_message(figures: stock.StockFigures) -> stock_reports_pb2.StockFigures:
    return stock_reports_pb2.StockFigures(
        branch_id=figures.branch_id or "",
        store_id=figures.store_id or "",
        date_from=figures.period.first.isoformat(),
        date_to=figures.period.last.isoformat(),
        total=totals_message(figures.total),
        by_store=[totals_message(unit) for unit in figures.by_store],
        waiting_parts=[
            stock_reports_pb2.WaitingPart(
                part_number=w.part_number, orders=w.orders, quantity=w.quantity
            )
            for w in figures.waiting_parts
        ],
    )


class StockReportsService(stock_reports_pb2_grpc.StockReportsServiceServicer):
    def __init__(self, new_uow: stock.NewUow) -> None:
        self.new_uow = new_uow

    async def GetStockFigures(
        self, request: stock_reports_pb2.GetStockFiguresRequest, context: grpc.aio.ServicerContext
    ) -> stock_reports_pb2.StockFigures:
        figures = await stock.get_stock_figures(
            self.new_uow,
            current_auth(),
            branch_id=request.branch_id,
            store_id=request.store_id,
            date_from=request.date_from,
            date_to=request.date_to,
        )
        return figures_message(figures)

    async def ListRecordMismatches(
        self,
        request: stock_reports_pb2.ListRecordMismatchesRequest,
        context: grpc.aio.ServicerContext,
    ) -> stock_reports_pb2.RecordMismatches:
        found, next_token = await stock.list_record_mismatches(
            self.new_uow,
            current_auth(),
            branch_id=request.branch_id,
            store_id=request.store_id,
            requested_page_size=request.page_size,
            page_token=request.page_token,
        )
        return stock_reports_pb2.RecordMismatches(
            mismatches=[
                stock_reports_pb2.RecordMismatch(
                    order_id=m.row.order_id,
                    order_number=m.row.order_number,
                    part_number=m.row.part_number,
                    branch_id=m.row.branch_id,
                    store_id=m.row.store_id,
                    kind=m.kind,
                    record_quantity=m.row.record_quantity,
                    issued_quantity=m.row.issued_quantity,
                )
                for m in found
            ],
            next_page_token=next_token,
        )


def register(server: grpc.aio.Server, new_uow: stock.NewUow) -> None:
    stock_reports_pb2_grpc.add_StockReportsServiceServicer_to_server(
        StockReportsService(new_uow), server
    )
