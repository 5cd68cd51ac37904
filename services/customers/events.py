"""The integration events customer care announces, built from its records and the events their
changes recorded: the translators the unit of work sends them through."""

from __future__ import annotations

from google.protobuf.message import Message

from aftersales.events.v1 import customer_events_pb2
from servicekit import bus
from servicekit.outbox import fill_meta
from servicekit.timeutil import to_timestamp
from services.customers.domain.complaint import Complaint
from services.customers.domain.customer import Customer
from services.customers.domain.events import (
    ComplaintClosed,
    ComplaintEvent,
    ComplaintOpened,
    CustomerEvent,
    FollowUpEvent,
)
from services.customers.domain.follow_up import FollowUp


def _subject(branch_id: str, store_id: str, name: str) -> str:
    return bus.subject("customers", branch_id, store_id, name)


def of_customer(customer: Customer, event: CustomerEvent) -> tuple[str, Message]:
    """An erasure goes out under the unit of whoever erased (`_` at HQ's level)."""
    branch_id, store_id = event.branch_id or "_", event.store_id or "_"
    erased = customer_events_pb2.CustomerErased(
        customer_id=customer.id, order_ids=event.order_ids, key_ids=event.key_ids
    )
    fill_meta(erased.meta, branch_id, store_id)
    return _subject(branch_id, store_id, "customer_erased"), erased


def of_follow_up(follow_up: FollowUp, event: FollowUpEvent) -> tuple[str, Message]:
    recorded = customer_events_pb2.FollowUpRecorded(
        follow_up_id=follow_up.id,
        order_id=follow_up.order_id,
        attempt=event.attempt,
        reached=event.reached,
        score=event.score or 0,
        state=follow_up.state,
        picked_up_at=to_timestamp(follow_up.picked_up_at),
        due_at=to_timestamp(event.due_at),
    )
    fill_meta(recorded.meta, follow_up.branch_id, follow_up.store_id)
    return _subject(follow_up.branch_id, follow_up.store_id, "follow_up_recorded"), recorded


def of_complaint(complaint: Complaint, event: ComplaintEvent) -> tuple[str, Message]:
    message: Message
    match event:
        case ComplaintOpened():
            name = "complaint_opened"
            message = customer_events_pb2.ComplaintOpened(
                complaint_id=complaint.id,
                follow_up_id=complaint.follow_up_id,
                order_id=complaint.order_id,
                score=complaint.score,
                owner_id=complaint.owner_id,
            )
        case ComplaintClosed():
            name = "complaint_closed"
            message = customer_events_pb2.ComplaintClosed(
                complaint_id=complaint.id,
                order_id=complaint.order_id,
                outcome=complaint.outcome or "",
                opened_at=to_timestamp(complaint.opened_at),
            )
    fill_meta(message.meta, complaint.branch_id, complaint.store_id)
    return _subject(complaint.branch_id, complaint.store_id, name), message
