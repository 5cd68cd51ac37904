"""Whose a hold is (domain/holds.py), as pure rules: a line is let go only when its last claim
goes, an order's event decides the attempts at its version, and a loose hold is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.inventory.domain.holds import (
    EVENT_SETTLE,
    STANDING,
    Attempt,
    Claim,
    HeardUntil,
    claims_for,
    decided,
    let_go,
    loose_holds,
    order_root,
)
from services.inventory.domain.order_parts import OrderPartLine

AT = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
GRACE = timedelta(minutes=10)


def line(line_id: str = "L1", status: str = "reserved", order_id: str = "o-1") -> OrderPartLine:
    return OrderPartLine(order_id, line_id, "WH-SH-001", "P-1", 1, False, 100, 1, 0, 0, 0, status)


def claim(attempt: str, version: int = 5, committed: bool = False, line_id: str = "L1") -> Claim:
    return Claim("o-1", line_id, attempt, version, AT, committed)


def test_a_line_goes_only_with_its_last_claim() -> None:
    a, b = claim("a"), claim("b")
    assert let_go([a, b], [a]) == set()
    assert let_go([a, b], [a, b]) == {"L1"}
    assert let_go([a], [a]) == {"L1"}


def test_the_first_attempt_on_a_line_held_before_keeps_the_orders_standing_claim() -> None:
    before = {"L1": line()}
    found = claims_for(Attempt("c", 6), "o-1", [line()], before, [], AT)
    assert [(x.attempt_id, x.committed) for x in found] == [("c", False), (STANDING, True)]
    # A line this attempt made itself is its alone.
    new = claims_for(Attempt("c", 6), "o-1", [line()], {}, [], AT)
    assert [x.attempt_id for x in new] == ["c"]
    # Claimed again by the same attempt (a retry): nothing new.
    assert claims_for(Attempt("c", 6), "o-1", [line()], {}, new, AT) == []
    # A released line is claimed by no one.
    assert claims_for(Attempt("c", 6), "o-1", [line(status="released")], {}, [], AT) == []


def test_the_orders_event_commits_its_attempt_and_drops_the_others_at_that_version() -> None:
    won, lost, earlier = claim("w"), claim("l"), claim("e", version=4)
    committed, dropped = decided([won, lost, earlier], 5, "w")
    assert [x.attempt_id for x in committed] == ["w"] and committed[0].committed
    assert dropped == [lost]
    # A step that moved no parts wins the version: every attempt at it lost.
    assert decided([won, lost], 5, "")[1] == [won, lost]


def test_a_hold_is_loose_once_orders_events_flowed_past_its_attempts_by_the_grace() -> None:
    pending = [claim("a")]
    # No orders event heard yet (a stalled or quiet stream): however long ago the claim was.
    assert loose_holds([line()], pending, None, None, GRACE) == []
    assert loose_holds([line()], pending, None, AT + GRACE - timedelta(seconds=1), GRACE) == []
    [loose] = loose_holds([line()], pending, None, AT + GRACE, GRACE)
    assert loose.reason == "attempt never written: a@v5"
    written = [claim("a", committed=True)]
    assert loose_holds([line()], written, None, AT + GRACE * 10, GRACE) == []


def test_an_ended_orders_open_holds_are_loose_and_its_issued_parts_are_not() -> None:
    lines = [line("L1"), line("L2", status="issued")]
    found = loose_holds(lines, [], "cancelled", AT, GRACE)
    assert [(x.line.line_id, x.reason) for x in found] == [("L1", "order cancelled")]


def test_a_partner_stores_parts_belong_to_the_order() -> None:
    assert order_root("o-1/SH-002") == "o-1" == order_root("o-1")


def test_how_far_orders_events_flowed_is_trusted_once_it_has_settled() -> None:
    newest, earlier = AT + GRACE, AT
    heard = HeardUntil(newest, noted_at=AT, settled=None)
    # Just heard: an earlier event may still be in flight elsewhere, so nothing is known yet.
    assert heard.trusted(AT + EVENT_SETTLE - timedelta(seconds=1)) is None
    assert heard.trusted(AT + EVENT_SETTLE) == newest
    # Moved on since: the mark that had settled stands in the meantime.
    moved_on = HeardUntil(newest, noted_at=AT, settled=earlier)
    assert moved_on.trusted(AT) == earlier
