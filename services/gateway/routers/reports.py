"""KPIs for the caller's level (store, branch or chain), from the reporting service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from aftersales.reporting.v1 import reporting_pb2
from servicekit.grpc_client import call
from services.gateway import schemas
from services.gateway.deps import Auth, Gw
from services.gateway.render import json_response, or_none

router = APIRouter(prefix="/api/v1", tags=["reports"])

Unit = Annotated[str | None, Query(max_length=50)]
Day = Annotated[str | None, Query(description="YYYY-MM-DD, Asia/Shanghai day, inclusive")]


@router.get(
    "/reports/kpis",
    response_model=schemas.Kpis,
    responses={404: {"model": schemas.Problem}, 422: {"model": schemas.Problem}},
)
async def get_kpis(
    auth: Auth,
    gw: Gw,
    branch_id: Unit = None,
    store_id: Unit = None,
    date_from: Day = None,
    date_to: Day = None,
) -> Response:
    branch, store = gw.tree.check_filter(auth, branch_id, store_id)
    request = reporting_pb2.GetKpisRequest(
        branch_id=branch,
        store_id=store,
        date_from=schemas.check_day("date_from", date_from),
        date_to=schemas.check_day("date_to", date_to),
    )
    kpis = await call(gw.clients.reporting.GetKpis, request)
    return json_response(
        {
            "branch_id": or_none(kpis.branch_id),
            "store_id": or_none(kpis.store_id),
            "date_from": kpis.date_from,
            "date_to": kpis.date_to,
            "orders_received": kpis.orders_received,
            "by_store": [
                {
                    "branch_id": s.branch_id,
                    "store_id": s.store_id,
                    "orders_received": s.orders_received,
                }
                for s in kpis.by_store
            ],
            "by_service_type": [
                {"service_type": t.service_type, "orders_received": t.orders_received}
                for t in kpis.by_service_type
            ],
        }
    )
