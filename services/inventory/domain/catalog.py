"""The parts catalog (料号), kept by HQ: what a part is and the categories it may belong to."""

from __future__ import annotations

from dataclasses import dataclass

PART_CATEGORIES = (
    "screen",
    "battery",
    "mainboard",
    "camera",
    "charging-port",
    "back-cover",
    "speaker",
    "swap-unit",
)
"""The category vocabulary (屏幕, 电池, 主板, 摄像头, 尾插, 后盖, 扬声器, 整机备件). Kept in code,
not in a CHECK constraint, so a new category needs no migration."""


@dataclass(frozen=True)
class Part:
    part_number: str
    brand: str
    description: str
    category: str
    serialised: bool  # tracked one by one (mainboards, swap units)
    standard_cost_fen: int
    retail_price_fen: int
    compatible_models: tuple[str, ...] = ()
    superseded_by: str | None = None  # the part number that replaces this one
