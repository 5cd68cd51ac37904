"""Complaints (投诉): a follow-up scored 1 or 2 opens one for the branch, with an owner (the
agent who took the call, until the branch manager hands it to someone), notes as it is worked
on, and an outcome when closed. Only the branch's manager, HQ and the owner see it. Pure rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, invalid
from servicekit.timeutil import shanghai_day_start_after
from services.customers.domain.events import ComplaintClosed, ComplaintEvent, ComplaintOpened

COMPLAINT_SCORES = frozenset({1, 2})
ANSWER_WITHIN_DAYS = 2
"""The branch answers the customer by the end of the second Shanghai day after the complaint's:
it is due from the start of that day and overdue once that day is over."""
TEXT_MAX = 2000

OPEN = "open"
CLOSED = "closed"
STATES = (OPEN, CLOSED)

HQ_ROLES = ("hq_admin", "hq_analyst")


@dataclass(frozen=True)
class Complaint:
    id: str
    follow_up_id: str
    order_id: str
    branch_id: str
    store_id: str
    score: int
    owner_id: str
    opened_at: datetime
    due_at: datetime
    state: str = OPEN
    outcome: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    # Raised by the changes made since it was read; sent when they commit.
    pending_events: tuple[ComplaintEvent, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Note:
    author_id: str
    note: str
    at: datetime


def opens_complaint(score: int | None) -> bool:
    """A score of 1 or 2 is a dissatisfied customer: the branch must act."""
    return score in COMPLAINT_SCORES


def new_complaint(
    complaint_id: str,
    follow_up_id: str,
    order_id: str,
    branch_id: str,
    store_id: str,
    score: int,
    owner_id: str,
    now: datetime,
) -> Complaint:
    return Complaint(
        id=complaint_id,
        follow_up_id=follow_up_id,
        order_id=order_id,
        branch_id=branch_id,
        store_id=store_id,
        score=score,
        owner_id=owner_id,
        opened_at=now,
        due_at=shanghai_day_start_after(now, ANSWER_WITHIN_DAYS),
        pending_events=(ComplaintOpened(),),
    )


def may_see(auth: AuthContext, complaint: Complaint) -> bool:
    """HQ, the branch's manager, and whoever owns it."""
    if auth.role in HQ_ROLES:
        return True
    if auth.role == "branch_manager" and auth.branch_id == complaint.branch_id:
        return True
    return auth.user_id == complaint.owner_id


def may_handle(auth: AuthContext, complaint: Complaint) -> bool:
    """HQ admin, the branch's manager, or the owner add notes and close; analysts only read."""
    if auth.role == "hq_analyst":
        return False
    return may_see(auth, complaint)


def is_overdue(complaint: Complaint, now: datetime) -> bool:
    return complaint.state == OPEN and complaint.due_at < shanghai_day_start_after(now, 0)


def check_text(field: str, text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise invalid(field, "must not be empty")
    if len(cleaned) > TEXT_MAX:
        raise invalid(field, f"at most {TEXT_MAX} characters")
    return cleaned


def note_added(complaint: Complaint, author_id: str, text: str, now: datetime) -> Note:
    if complaint.state != OPEN:
        raise Conflict("the complaint is closed")
    return Note(author_id, check_text("note", text), now)


def handed_to(complaint: Complaint, owner_id: str) -> Complaint:
    if complaint.state != OPEN:
        raise Conflict("the complaint is closed")
    return replace(complaint, owner_id=owner_id)


def closed(complaint: Complaint, outcome: str, user_id: str, now: datetime) -> Complaint:
    text = check_text("outcome", outcome)
    if complaint.state != OPEN:
        raise Conflict("the complaint is closed already")
    return replace(
        complaint,
        state=CLOSED,
        outcome=text,
        closed_at=now,
        closed_by=user_id,
        pending_events=(*complaint.pending_events, ComplaintClosed()),
    )
