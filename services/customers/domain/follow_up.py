"""Follow-up calls (回访): some days after a pickup an agent of the store or branch calls the
customer, records whether they were reached and, if so, a satisfaction score (1-5) and comments.
An unanswered call is tried again the next day, three tries in all, then closed as unreachable.
Days are Shanghai days: a task is due from the start of its day, and overdue once that day is
over, whatever the hour of the pickup or the call. Pure rules: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from servicekit.errors import Conflict, FieldError, InvalidInput
from servicekit.timeutil import shanghai_day_start_after
from services.customers.domain.events import FollowUpEvent, FollowUpRecorded

DEFAULT_DAYS_AFTER_PICKUP = 3
MAX_ATTEMPTS = 3
RETRY_AFTER_DAYS = 1
COMMENTS_MAX = 1000
SCORES = range(1, 6)

OPEN = "open"
DONE = "done"
UNREACHABLE = "unreachable"
STATES = (OPEN, DONE, UNREACHABLE)


@dataclass(frozen=True)
class FollowUp:
    id: str
    order_id: str
    number: str
    branch_id: str
    store_id: str
    picked_up_at: datetime
    due_at: datetime
    state: str = OPEN
    assigned_to: str | None = None
    attempts: int = 0
    score: int | None = None
    comments: str | None = None
    # Raised by the changes made since it was read; sent when they commit.
    pending_events: tuple[FollowUpEvent, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Attempt:
    """One call: reached or not; a score and comments only when reached."""

    number: int
    reached: bool
    score: int | None
    comments: str | None
    agent_id: str
    at: datetime


def due_at(picked_up_at: datetime, days_after_pickup: int) -> datetime:
    """When the first call is due: the start of the Shanghai day the set number of days after
    the pickup's."""
    return shanghai_day_start_after(picked_up_at, days_after_pickup)


def overdue_before(now: datetime) -> datetime:
    """A task due before this (the start of today in Shanghai) is overdue: its day is over."""
    return shanghai_day_start_after(now, 0)


def new_follow_up(
    follow_up_id: str,
    order_id: str,
    number: str,
    branch_id: str,
    store_id: str,
    picked_up_at: datetime,
    days_after_pickup: int,
) -> FollowUp:
    return FollowUp(
        id=follow_up_id,
        order_id=order_id,
        number=number,
        branch_id=branch_id,
        store_id=store_id,
        picked_up_at=picked_up_at,
        due_at=due_at(picked_up_at, days_after_pickup),
    )


def is_overdue(follow_up: FollowUp, now: datetime) -> bool:
    return follow_up.state == OPEN and follow_up.due_at < overdue_before(now)


def taken(follow_up: FollowUp, agent_id: str) -> FollowUp:
    """An agent takes the task from the queue of their store or branch."""
    if follow_up.state != OPEN:
        raise Conflict(f"the follow-up is {follow_up.state}: nothing left to take")
    if follow_up.assigned_to and follow_up.assigned_to != agent_id:
        raise Conflict("another agent has taken this follow-up")
    return replace(follow_up, assigned_to=agent_id)


def check_attempt(reached: bool, score: int | None, comments: str | None) -> None:
    errors = []
    if reached and score not in SCORES:
        errors.append(FieldError("score", "must be 1 to 5 when the customer was reached"))
    if not reached and score is not None:
        errors.append(FieldError("score", "only when the customer was reached"))
    if comments is not None and len(comments) > COMMENTS_MAX:
        errors.append(FieldError("comments", f"at most {COMMENTS_MAX} characters"))
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in errors), errors)


def after_attempt(
    follow_up: FollowUp,
    agent_id: str,
    reached: bool,
    score: int | None,
    comments: str | None,
    now: datetime,
    may_override: bool = False,
) -> tuple[FollowUp, Attempt]:
    """The follow-up once a call is recorded, and the call. Reached: done with its score. Not
    reached: tried again the next (Shanghai) day, until the third try closes it as
    unreachable. Whoever records a call on an untaken task takes it; a manager
    (`may_override`) may record on one another agent took."""
    check_attempt(reached, score, comments)
    if follow_up.state != OPEN:
        raise Conflict(f"the follow-up is {follow_up.state}: no more calls to record")
    if follow_up.assigned_to and follow_up.assigned_to != agent_id and not may_override:
        raise Conflict("another agent has taken this follow-up")
    attempt = Attempt(follow_up.attempts + 1, reached, score, comments or None, agent_id, now)
    assigned = follow_up.assigned_to or agent_id
    if reached:
        after = replace(
            follow_up,
            state=DONE,
            assigned_to=assigned,
            attempts=attempt.number,
            score=score,
            comments=comments or None,
        )
    elif attempt.number >= MAX_ATTEMPTS:
        after = replace(follow_up, state=UNREACHABLE, assigned_to=assigned, attempts=attempt.number)
    else:
        after = replace(
            follow_up,
            assigned_to=assigned,
            attempts=attempt.number,
            due_at=shanghai_day_start_after(now, RETRY_AFTER_DAYS),
        )
    recorded = FollowUpRecorded(attempt.number, reached, score, follow_up.due_at)
    return replace(after, pending_events=(*after.pending_events, recorded)), attempt
