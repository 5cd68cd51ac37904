"""The events customer care's records raise as they change, and what they go out as."""

from __future__ import annotations

from dataclasses import replace

from aftersales.events.v1 import customer_events_pb2
from servicekit.auth import AuthContext
from services.customers import events
from services.customers.domain import complaint, follow_up, privacy
from services.customers.domain.events import (
    ComplaintClosed,
    ComplaintOpened,
    CustomerErased,
    FollowUpRecorded,
)
from services.customers.tests.test_care_rules import DAY, PICKUP, customer, task

MANAGER = AuthContext("u-mgr", "branch_manager", "SH", None)


def test_a_recorded_call_raises_one_event_naming_when_that_call_was_due() -> None:
    before = task()
    missed, _ = follow_up.after_attempt(before, "agent-1", False, None, None, PICKUP)
    assert missed.pending_events == (FollowUpRecorded(1, False, None, before.due_at),)
    done, _ = follow_up.after_attempt(missed, "agent-1", True, 5, None, PICKUP + DAY)
    assert done.pending_events[-1] == FollowUpRecorded(2, True, 5, missed.due_at)
    subject, message = events.of_follow_up(done, done.pending_events[-1])
    assert subject == "customers.v1.SH.SH-001.follow_up_recorded"
    assert isinstance(message, customer_events_pb2.FollowUpRecorded)
    assert (message.attempt, message.reached, message.score, message.state) == (2, True, 5, "done")


def test_taking_a_task_raises_nothing() -> None:
    assert follow_up.taken(task(), "agent-1").pending_events == ()


def test_a_complaint_records_its_opening_and_its_closing() -> None:
    made = complaint.new_complaint("c-1", "f-1", "o-1", "SH", "SH-001", 1, "agent-1", PICKUP)
    assert made.pending_events == (ComplaintOpened(),)
    assert complaint.handed_to(made, "u-other").pending_events == made.pending_events
    read_back = replace(made, pending_events=())  # as the database gives it: nothing pending
    done = complaint.closed(read_back, "screen replaced free", "u-sh", PICKUP)
    assert done.pending_events == (ComplaintClosed(),)
    subject, message = events.of_complaint(done, ComplaintClosed())
    assert subject == "customers.v1.SH.SH-001.complaint_closed"
    assert isinstance(message, customer_events_pb2.ComplaintClosed)
    assert message.outcome == "screen replaced free"
    subject, _ = events.of_complaint(made, ComplaintOpened())
    assert subject == "customers.v1.SH.SH-001.complaint_opened"


def test_an_erasure_is_announced_under_the_unit_of_whoever_erased() -> None:
    after = privacy.erased(
        customer(), PICKUP, privacy.erased_phone(), order_ids=["o-1"], key_ids=["k-1"], by=MANAGER
    )
    assert after.pending_events == (CustomerErased(("o-1",), ("k-1",), "SH", None),)
    subject, message = events.of_customer(after, after.pending_events[0])
    assert subject == "customers.v1.SH._.customer_erased"
    assert isinstance(message, customer_events_pb2.CustomerErased)
    assert (list(message.order_ids), list(message.key_ids)) == (["o-1"], ["k-1"])
    assert (message.meta.branch_id, message.meta.store_id) == ("SH", "_")
    at_hq = privacy.erased(customer(), PICKUP, privacy.erased_phone())
    assert events.of_customer(at_hq, at_hq.pending_events[0])[0] == (
        "customers.v1._._.customer_erased"
    )
