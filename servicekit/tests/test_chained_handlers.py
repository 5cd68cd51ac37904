"""One consumer's handlers from several read models' tables."""

from __future__ import annotations

from typing import Any

from google.protobuf.wrappers_pb2 import Int32Value, StringValue

from servicekit.inbox import Handler, Handlers, chained_handlers


def noting(seen: list[str], name: str) -> Handler:
    async def handle(uow: Any, event: Any) -> None:
        seen.append(f"{name}:{event.value}")

    return handle


async def test_an_event_named_in_two_tables_runs_both_handlers_in_turn() -> None:
    seen: list[str] = []
    facts: Handlers = {
        "text": (StringValue, noting(seen, "facts")),
        "number": (Int32Value, noting(seen, "facts")),
    }
    stock: Handlers = {"text": (StringValue, noting(seen, "stock"))}
    chained = chained_handlers(facts, stock)
    no_unit: Any = None
    assert set(chained) == {"text", "number"}
    assert chained["text"][0] is StringValue
    await chained["text"][1](no_unit, StringValue(value="a"))
    await chained["number"][1](no_unit, Int32Value(value=1))
    assert seen == ["facts:a", "stock:a", "facts:1"]


def test_a_handler_alone_is_kept_as_it_is() -> None:
    only = noting([], "facts")
    assert chained_handlers({"text": (StringValue, only)})["text"][1] is only
