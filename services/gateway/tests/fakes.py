"""In-process stand-ins for the four services, served by a real grpc.aio server with
servicekit's server interceptor, so auth context and trace context really travel in metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc

from aftersales.customers.v1 import customers_pb2, customers_pb2_grpc
from aftersales.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from aftersales.reporting.v1 import reporting_pb2, reporting_pb2_grpc
from servicekit.auth import AuthContext, current_auth
from servicekit.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from servicekit.grpc_server import SERVING, new_server
from servicekit.timeutil import to_timestamp

RECEIVED_AT = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
# A two-step lifecycle, enough to test what the gateway adds: scope, If-Match, ETag.
FAKE_STEPS = {"diagnosis": ("received", "diagnosed"), "cancel": ("received", "cancelled")}


@dataclass
class Seen:
    """What the fakes were called with: the auth context and metadata of each call."""

    auth: list[AuthContext] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)

    def note(self, request: Any, context: grpc.aio.ServicerContext) -> AuthContext:
        auth = current_auth()
        self.auth.append(auth)
        self.metadata.append(dict(context.invocation_metadata() or ()))
        self.requests.append(request)
        return auth


class FakeOrders(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        self.orders: dict[str, orders_pb2.RepairOrder] = {}
        self.by_request_id: dict[str, str] = {}
        self.fail_next: DomainError | None = None

    async def CreateRepairOrder(self, request: Any, context: Any) -> orders_pb2.RepairOrder:
        auth = self.seen.note(request, context)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if request.device.imei == "123":
            raise InvalidInput("invalid intake", [FieldError("device.imei", "must be 15 digits")])
        if request.request_id in self.by_request_id:
            return self.orders[self.by_request_id[request.request_id]]
        order_id = f"ro-{len(self.orders) + 1}"
        order = orders_pb2.RepairOrder(
            id=order_id,
            number=f"{request.store_id}-{len(self.orders) + 1:06d}",
            status="received",
            service_type=request.service_type,
            branch_id=request.branch_id,
            store_id=request.store_id,
            customer=request.customer,
            device=request.device,
            fault=request.fault,
            warranty=orders_pb2.WarrantyDecision(
                status="in_warranty",
                entitlements=["swap", "repair"],
                reason="within 15 days of sale",
                expires_on="2027-02-20",
            ),
            brand_authorised=True,
            accessories=request.accessories,
            appearance=request.appearance,
            promised_date=request.promised_date,
            received_at=to_timestamp(RECEIVED_AT),
            created_by=auth.user_id,
            version=1,
            timeline=[
                orders_pb2.TimelineEntry(
                    status="received",
                    at=to_timestamp(RECEIVED_AT),
                    user_id=auth.user_id,
                    store_id=request.store_id,
                )
            ],
        )
        self.orders[order_id] = order
        if request.request_id:
            self.by_request_id[request.request_id] = order_id
        return order

    async def GetRepairOrder(self, request: Any, context: Any) -> orders_pb2.RepairOrder:
        auth = self.seen.note(request, context)
        order = self.orders.get(request.id)
        if order is None or not auth.covers(order.branch_id, order.store_id):
            raise NotFound(f"no repair order {request.id}")
        return order

    async def ListRepairOrders(
        self, request: Any, context: Any
    ) -> orders_pb2.ListRepairOrdersResponse:
        auth = self.seen.note(request, context)
        found = [o for o in self.orders.values() if auth.covers(o.branch_id, o.store_id)]
        return orders_pb2.ListRepairOrdersResponse(
            orders=found[: request.page_size], next_page_token="page-2"
        )

    async def TakeStep(self, request: Any, context: Any) -> orders_pb2.RepairOrder:
        auth = self.seen.note(request, context)
        order = self.orders.get(request.order_id)
        if order is None or not auth.covers(order.branch_id, order.store_id):
            raise NotFound(f"no repair order {request.order_id}")
        if request.step == "diagnosis" and auth.role != "technician":
            raise Forbidden(f"role {auth.role} may not take the step diagnosis")
        if request.expected_version != order.version:
            raise PreconditionFailed(f"the order is at version {order.version}")
        from_status, to_status = FAKE_STEPS.get(request.step, ("", ""))
        if order.status != from_status:
            raise Conflict(f"the order is {order.status}")
        order.status = to_status
        order.version += 1
        order.timeline.append(
            orders_pb2.TimelineEntry(
                status=to_status,
                at=to_timestamp(RECEIVED_AT),
                user_id=auth.user_id,
                store_id=order.store_id,
                step=request.step,
            )
        )
        return order

    async def ListBrands(self, request: Any, context: Any) -> orders_pb2.ListBrandsResponse:
        self.seen.note(request, context)
        return orders_pb2.ListBrandsResponse(
            brands=[
                orders_pb2.Brand(
                    code="huawei",
                    name="华为",
                    models=[orders_pb2.Model(code="mate60", name="Mate 60")],
                )
            ]
        )

    async def Ping(self, request: Any, context: Any) -> orders_pb2.PingResponse:
        self.seen.note(request, context)
        return orders_pb2.PingResponse()


WAREHOUSES = [
    inventory_pb2.Warehouse(id="W-SH", name="上海中心库", kind="branch_central", branch_id="SH"),
    inventory_pb2.Warehouse(
        id="W-SH-001", name="SH-001 库", kind="store", branch_id="SH", store_id="SH-001"
    ),
    inventory_pb2.Warehouse(
        id="W-SH-002", name="SH-002 库", kind="store", branch_id="SH", store_id="SH-002"
    ),
    inventory_pb2.Warehouse(id="W-ZJ", name="浙江中心库", kind="branch_central", branch_id="ZJ"),
    inventory_pb2.Warehouse(
        id="W-ZJ-001", name="ZJ-001 库", kind="store", branch_id="ZJ", store_id="ZJ-001"
    ),
]


class FakeInventory(inventory_pb2_grpc.InventoryServiceServicer):
    """Answers for any warehouse, unscoped: the gateway's own scope check is what is tested."""

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def ListParts(self, request: Any, context: Any) -> inventory_pb2.ListPartsResponse:
        self.seen.note(request, context)
        part = inventory_pb2.Part(
            part_number="HW-SCR-001",
            brand="huawei",
            description="Mate 60 screen",
            category="screen",
            compatible_models=["mate60"],
            standard_cost_fen=45000,
            retail_price_fen=89900,
        )
        return inventory_pb2.ListPartsResponse(parts=[part], next_page_token="")

    async def ListWarehouses(
        self, request: Any, context: Any
    ) -> inventory_pb2.ListWarehousesResponse:
        self.seen.note(request, context)
        return inventory_pb2.ListWarehousesResponse(warehouses=WAREHOUSES)

    async def GetStock(self, request: Any, context: Any) -> inventory_pb2.GetStockResponse:
        self.seen.note(request, context)
        warehouse = next((w for w in WAREHOUSES if w.id == request.warehouse_id), None)
        if warehouse is None:
            raise NotFound(f"no warehouse {request.warehouse_id}")
        level = inventory_pb2.StockLevel(
            part_number="HW-SCR-001",
            description="Mate 60 screen",
            on_hand=5,
            reserved=2,
            available=3,
            average_cost_fen=44850,
            value_fen=224251,
        )
        return inventory_pb2.GetStockResponse(warehouse=warehouse, levels=[level])


class FakeCustomers(customers_pb2_grpc.CustomersServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def FindCustomer(self, request: Any, context: Any) -> customers_pb2.Customer:
        self.seen.note(request, context)
        if request.phone not in ("", "13812345678") or request.imei not in ("", "490154203237518"):
            raise NotFound("no such customer")
        return customers_pb2.Customer(
            id="c-1",
            name="张三",
            phone="13812345678",
            devices=[
                customers_pb2.Device(
                    imei="490154203237518",
                    brand="huawei",
                    model="mate60",
                    first_seen_at=to_timestamp(RECEIVED_AT),
                )
            ],
            order_count=2,
            last_seen_at=to_timestamp(RECEIVED_AT),
            last_store_id="SH-001",
        )


class FakeReporting(reporting_pb2_grpc.ReportingServiceServicer):
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def GetKpis(self, request: Any, context: Any) -> reporting_pb2.Kpis:
        auth = self.seen.note(request, context)
        branch, store = auth.narrow(request.branch_id or None, request.store_id or None)
        return reporting_pb2.Kpis(
            branch_id=branch or "",
            store_id=store or "",
            date_from=request.date_from,
            date_to=request.date_to,
            orders_received=3,
            by_store=[
                reporting_pb2.StoreKpis(branch_id="SH", store_id="SH-001", orders_received=3)
            ],
            by_service_type=[
                reporting_pb2.ServiceTypeKpis(service_type="repair", orders_received=2),
                reporting_pb2.ServiceTypeKpis(service_type="swap", orders_received=1),
            ],
            figures=reporting_pb2.Figures(
                received=3, closed=2, turnaround_median_hours=26.25, revenue_fen=12345
            ),
            by_unit=[
                reporting_pb2.UnitFigures(
                    branch_id="SH",
                    store_id="SH-001",
                    figures=reporting_pb2.Figures(
                        received=3, promised=2, on_time=1, on_time_rate=0.5
                    ),
                )
            ],
            by_split=[
                reporting_pb2.SplitFigures(
                    service_type="repair",
                    brand="华为",
                    figures=reporting_pb2.Figures(received=2),
                )
            ],
        )


@dataclass
class FakeServices:
    address: str
    seen: Seen
    orders: FakeOrders
    server: grpc.aio.Server


async def start_fake_services() -> FakeServices:
    seen = Seen()
    server, health = new_server("fakes")
    orders = FakeOrders(seen)
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(orders, server)
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(FakeInventory(seen), server)
    customers_pb2_grpc.add_CustomersServiceServicer_to_server(FakeCustomers(seen), server)
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(FakeReporting(seen), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", SERVING)
    return FakeServices(f"127.0.0.1:{port}", seen, orders, server)
