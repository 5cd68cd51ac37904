"""The parts catalog (料号), kept by HQ: what a part is and the categories it may belong to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from servicekit.errors import Conflict, invalid

MAX_PRICE_FEN = 100_000_000
MAX_MODELS = 100

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


def check_part(part: Part, successors: Mapping[str, str | None]) -> None:
    """A part as HQ keeps it. `successors` maps every known part number to what supersedes
    it; a successor must exist, and following successors must never lead back to the part."""
    if not part.part_number or len(part.part_number) > 40:
        raise invalid("part_number", "is required, at most 40 characters")
    if not part.brand or len(part.brand) > 30:
        raise invalid("brand", "is required, at most 30 characters")
    if not part.description or len(part.description) > 200:
        raise invalid("description", "is required, at most 200 characters")
    if part.category not in PART_CATEGORIES:
        raise invalid("category", f"must be one of {', '.join(PART_CATEGORIES)}")
    for field_name, fen in (
        ("standard_cost_fen", part.standard_cost_fen),
        ("retail_price_fen", part.retail_price_fen),
    ):
        if not 0 <= fen <= MAX_PRICE_FEN:
            raise invalid(field_name, f"must be 0 to {MAX_PRICE_FEN}")
    if len(part.compatible_models) > MAX_MODELS or len(set(part.compatible_models)) != len(
        part.compatible_models
    ):
        raise invalid("compatible_models", f"at most {MAX_MODELS}, each once")
    if any(not m or len(m) > 60 for m in part.compatible_models):
        raise invalid("compatible_models", "each 1 to 60 characters")
    successor = part.superseded_by
    seen = {part.part_number}
    while successor:
        if successor not in successors:
            raise invalid("superseded_by", f"no part {successor}")
        if successor in seen:
            raise Conflict(f"{part.part_number} would supersede itself through {successor}")
        seen.add(successor)
        successor = successors[successor]


def successor_chain(part_number: str, successors: Mapping[str, str | None]) -> tuple[str, ...]:
    """替代料: the parts that supersede this one in turn (A→B→C gives (B, C) for A), the last
    being the one to use now. Empty for a current part. Stops before a part seen already, so
    a loop the catalog refuses can never hang a reader."""
    chain: list[str] = []
    seen = {part_number}
    successor = successors.get(part_number)
    while successor and successor not in seen:
        chain.append(successor)
        seen.add(successor)
        successor = successors.get(successor)
    return tuple(chain)


def current_successor(part_number: str, successors: Mapping[str, str | None]) -> str | None:
    """The last part of the chain: what a superseded part is replaced by now."""
    chain = successor_chain(part_number, successors)
    return chain[-1] if chain else None
