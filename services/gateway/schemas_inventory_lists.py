"""The REST shapes of the console's inventory lists: pages of transfers, stocktakes and
purchase orders, and the statuses each list filters by."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from services.gateway.schemas_inventory import PurchaseOrder, Stocktake, Transfer

TransferStatus = Literal["requested", "approved", "shipped", "received", "cancelled"]
StocktakeStatus = Literal["pending_approval", "posted", "rejected"]
PurchaseOrderStatus = Literal["open", "received", "cancelled"]


class TransferPage(BaseModel):
    items: list[Transfer]
    next_cursor: str | None


class StocktakePage(BaseModel):
    items: list[Stocktake]
    next_cursor: str | None


class PurchaseOrderPage(BaseModel):
    items: list[PurchaseOrder]
    next_cursor: str | None
