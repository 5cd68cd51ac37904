"""Cursor pagination: `limit` and an opaque `cursor` in, `{"items", "next_cursor"}` out. The
cursor is the owning service's page token, passed through untouched."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

Limit = Annotated[int, Query(ge=1, le=100, description="page size, 1 to 100")]
Cursor = Annotated[
    str | None, Query(max_length=1000, description="next_cursor of the previous page")
]


def page(items: list[Any], next_token: str) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_token or None}
