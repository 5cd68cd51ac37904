"""The rules of customer care, pure and fast: when a follow-up is due, how an unanswered call
is retried, which score opens a complaint and who sees it, edits and consent, erasure and
merge, and which order events move a customer's history."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, InvalidInput
from services.customers.domain import complaint, follow_up, privacy
from services.customers.domain.customer import (
    Customer,
    CustomerEdit,
    Visit,
    check_edit,
    customer_after_edit,
    customer_after_visit,
)
from services.customers.domain.history import OrderState, is_open, is_pickup, state_after

PICKUP = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai
DAY = timedelta(days=1)
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Half an hour before and after midnight in Shanghai: two Shanghai days, one UTC day (Nov 23).
LATE = datetime(2026, 11, 23, 23, 30, tzinfo=SHANGHAI)  # 15:30 UTC
EARLY = datetime(2026, 11, 24, 0, 30, tzinfo=SHANGHAI)  # 16:30 UTC


def shanghai_midnight(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=SHANGHAI)


def task(**changes: object) -> follow_up.FollowUp:
    made = follow_up.new_follow_up("f-1", "o-1", "SH-001-261123-0001", "SH", "SH-001", PICKUP, 3)
    return replace(made, **changes)  # type: ignore[arg-type]


def test_a_follow_up_is_due_the_set_days_after_pickup() -> None:
    due = shanghai_midnight(2026, 11, 26)
    assert follow_up.due_at(PICKUP, 3) == due
    assert follow_up.due_at(PICKUP, 0) == shanghai_midnight(2026, 11, 23)
    made = task()
    assert (made.state, made.attempts, made.due_at) == ("open", 0, due)
    # Due all that day; overdue once the day is over in Shanghai.
    assert not follow_up.is_overdue(made, due + DAY - timedelta(seconds=1))
    assert follow_up.is_overdue(made, due + DAY)
    assert not follow_up.is_overdue(replace(made, state="done"), PICKUP + 9 * DAY)


@pytest.mark.parametrize(
    ("picked_up_at", "due"),
    [(LATE, shanghai_midnight(2026, 11, 26)), (EARLY, shanghai_midnight(2026, 11, 27))],
)
def test_a_follow_up_counts_shanghai_days_from_the_pickup(
    picked_up_at: datetime, due: datetime
) -> None:
    """Picked up at 23:30 or 00:30 in Shanghai (the same UTC day): due three Shanghai days on,
    from the start of that day."""
    assert follow_up.due_at(picked_up_at, 3) == due
    assert not follow_up.is_overdue(task(due_at=due), due + DAY - timedelta(minutes=1))
    assert follow_up.is_overdue(task(due_at=due), due + DAY)


@pytest.mark.parametrize(
    ("called_at", "retry"),
    [(LATE, shanghai_midnight(2026, 11, 24)), (EARLY, shanghai_midnight(2026, 11, 25))],
)
def test_an_unanswered_call_is_retried_the_next_shanghai_day(
    called_at: datetime, retry: datetime
) -> None:
    after, _ = follow_up.after_attempt(task(), "agent-1", False, None, None, called_at)
    assert after.due_at == retry
    assert not follow_up.is_overdue(after, retry + DAY - timedelta(minutes=1))


def test_a_reached_customer_closes_the_follow_up_with_the_score() -> None:
    now = PICKUP + 3 * DAY
    after, attempt = follow_up.after_attempt(task(), "agent-1", True, 4, "fast and friendly", now)
    assert (after.state, after.score, after.comments, after.attempts) == (
        "done",
        4,
        "fast and friendly",
        1,
    )
    assert after.assigned_to == "agent-1"
    assert (attempt.number, attempt.reached, attempt.agent_id, attempt.at) == (
        1,
        True,
        "agent-1",
        now,
    )
    with pytest.raises(Conflict):
        follow_up.after_attempt(after, "agent-1", True, 5, None, now)


def test_an_unanswered_call_is_tried_again_the_next_day_three_times_in_all() -> None:
    current = task()
    now = PICKUP + 3 * DAY
    for number in (1, 2):
        current, attempt = follow_up.after_attempt(current, "agent-1", False, None, None, now)
        assert (current.state, current.attempts, attempt.number) == ("open", number, number)
        assert current.due_at == follow_up.shanghai_day_start_after(now, 1)
        now = current.due_at
    current, attempt = follow_up.after_attempt(current, "agent-1", False, None, None, now)
    assert (current.state, current.attempts) == ("unreachable", follow_up.MAX_ATTEMPTS)


@pytest.mark.parametrize(
    ("reached", "score", "field"),
    [(True, None, "score"), (True, 0, "score"), (True, 6, "score"), (False, 3, "score")],
)
def test_a_score_must_fit_the_call(reached: bool, score: int | None, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        follow_up.after_attempt(task(), "agent-1", reached, score, None, PICKUP)
    assert [e.field for e in error.value.errors] == [field]


def test_long_comments_are_refused() -> None:
    with pytest.raises(InvalidInput) as error:
        follow_up.check_attempt(True, 3, "x" * (follow_up.COMMENTS_MAX + 1))
    assert error.value.errors[0].field == "comments"


def test_a_task_taken_by_one_agent_is_not_another_agents() -> None:
    mine = follow_up.taken(task(), "agent-1")
    assert mine.assigned_to == "agent-1"
    assert follow_up.taken(mine, "agent-1") == mine
    with pytest.raises(Conflict):
        follow_up.taken(mine, "agent-2")
    with pytest.raises(Conflict):
        follow_up.after_attempt(mine, "agent-2", True, 5, None, PICKUP)
    # A manager standing in may record it.
    after, _ = follow_up.after_attempt(mine, "manager", True, 5, None, PICKUP, may_override=True)
    assert after.state == "done" and after.assigned_to == "agent-1"


@pytest.mark.parametrize(("score", "opens"), [(1, True), (2, True), (3, False), (5, False)])
def test_a_score_of_one_or_two_opens_a_complaint(score: int, opens: bool) -> None:
    assert complaint.opens_complaint(score) is opens
    assert complaint.opens_complaint(None) is False


def case(**changes: object) -> complaint.Complaint:
    made = complaint.new_complaint("c-1", "f-1", "o-1", "SH", "SH-001", 1, "agent-1", PICKUP)
    return replace(made, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("opened_at", "due"),
    [(LATE, shanghai_midnight(2026, 11, 25)), (EARLY, shanghai_midnight(2026, 11, 26))],
)
def test_a_complaint_is_answered_by_the_end_of_the_second_shanghai_day(
    opened_at: datetime, due: datetime
) -> None:
    made = complaint.new_complaint("c-1", "f-1", "o-1", "SH", "SH-001", 1, "agent-1", opened_at)
    assert made.due_at == due
    assert not complaint.is_overdue(made, due + DAY - timedelta(minutes=1))
    assert complaint.is_overdue(made, due + DAY)


def test_only_the_branch_manager_hq_and_the_owner_see_a_complaint() -> None:
    made = case()
    assert made.due_at == shanghai_midnight(2026, 11, 25)
    seen = {
        "hq": AuthContext("u-hq", "hq_admin"),
        "analyst": AuthContext("u-an", "hq_analyst"),
        "sh manager": AuthContext("u-sh", "branch_manager", "SH"),
        "owner": AuthContext("agent-1", "followup_agent", "SH", "SH-001"),
    }
    unseen = {
        "zj manager": AuthContext("u-zj", "branch_manager", "ZJ"),
        "clerk": AuthContext("u-c", "clerk", "SH", "SH-001"),
        "other agent": AuthContext("agent-2", "followup_agent", "SH"),
    }
    assert all(complaint.may_see(auth, made) for auth in seen.values())
    assert not any(complaint.may_see(auth, made) for auth in unseen.values())
    assert not complaint.may_handle(seen["analyst"], made)


def test_a_complaint_is_noted_handed_on_and_closed_with_an_outcome() -> None:
    made = case()
    note = complaint.note_added(made, "u-sh", "  called back, apologised ", PICKUP + DAY)
    assert note.note == "called back, apologised"
    assert complaint.handed_to(made, "u-sh").owner_id == "u-sh"
    with pytest.raises(InvalidInput) as error:
        complaint.closed(made, "  ", "u-sh", PICKUP)
    assert error.value.errors[0].field == "outcome"
    done = complaint.closed(made, "screen replaced free", "u-sh", PICKUP + DAY)
    assert (done.state, done.outcome, done.closed_by) == ("closed", "screen replaced free", "u-sh")
    assert not complaint.is_overdue(done, PICKUP + 9 * DAY)
    assert complaint.is_overdue(made, made.due_at + DAY)
    with pytest.raises(Conflict):
        complaint.closed(done, "again", "u-sh", PICKUP)
    with pytest.raises(Conflict):
        complaint.note_added(done, "u-sh", "late", PICKUP)


def customer(**changes: object) -> Customer:
    made = Customer(
        id="c-1",
        phone="13812345678",
        name="张三",
        order_count=1,
        first_seen_at=PICKUP,
        last_seen_at=PICKUP,
        last_store_id="SH-001",
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def test_an_edit_names_every_bad_field() -> None:
    with pytest.raises(InvalidInput) as error:
        check_edit(CustomerEdit(name=" ", phone="123", email="not-an-email", language="fr"))
    assert [e.field for e in error.value.errors] == ["name", "phone", "email", "language"]
    check_edit(CustomerEdit(phone="13987654321", email="zhang@example.com", language="en"))
    check_edit(CustomerEdit(email=""))  # removes it


def test_an_edit_changes_only_what_it_names_and_bumps_the_version() -> None:
    before = customer(email="old@example.com", message_consent=True)
    after = customer_after_edit(before, CustomerEdit(name=" 张三丰 ", message_consent=False))
    assert (after.name, after.phone, after.email) == ("张三丰", before.phone, "old@example.com")
    assert (after.message_consent, after.version) == (False, before.version + 1)
    assert customer_after_edit(before, CustomerEdit(email="")).email is None


def test_consent_given_at_an_intake_turns_it_on_and_an_intake_never_turns_it_off() -> None:
    visit = Visit(
        "o-2",
        "SH",
        "SH-001",
        "张三",
        "13812345678",
        "490154203237518",
        "huawei",
        "p60",
        PICKUP + DAY,
        message_consent=True,
        language="en",
    )
    given = customer_after_visit(customer(), visit, "c-new")
    assert (given.message_consent, given.language) == (True, "en")
    silent = customer_after_visit(given, replace(visit, message_consent=False, language=""), "x")
    assert (silent.message_consent, silent.language) == (True, "en")
    first = customer_after_visit(None, visit, "c-new")
    assert (first.message_consent, first.language) == (True, "en")


def test_erasure_anonymises_the_person() -> None:
    before = customer(email="z@example.com", message_consent=True, marketing_consent=True)
    placeholder = privacy.erased_phone()
    assert placeholder.startswith(privacy.ERASED_PHONE_PREFIX) and len(placeholder) <= 20
    assert privacy.erased_phone() != placeholder
    after = privacy.erased(before, PICKUP, placeholder)
    assert (after.name, after.phone, after.email) == ("已删除", placeholder, None)
    assert not (after.message_consent or after.marketing_consent)
    assert after.erased and after.order_count == before.order_count
    with pytest.raises(Conflict):
        privacy.erased(after, PICKUP, privacy.erased_phone())


def test_a_reason_is_required() -> None:
    with pytest.raises(InvalidInput) as error:
        privacy.check_reason("  ")
    assert error.value.errors[0].field == "reason"


def test_a_merge_adds_the_orders_to_the_kept_record_and_points_the_other_to_it() -> None:
    keep = customer(order_count=2, message_consent=False)
    other = customer(
        id="c-2",
        phone="13987654321",
        order_count=3,
        first_seen_at=PICKUP - DAY,
        last_seen_at=PICKUP + DAY,
        last_store_id="ZJ-001",
        email="z@example.com",
        message_consent=True,
    )
    kept, merged = privacy.merged(keep, other)
    assert (kept.order_count, kept.first_seen_at, kept.last_store_id) == (5, PICKUP - DAY, "ZJ-001")
    assert kept.email == "z@example.com" and kept.message_consent is False
    assert merged.merged_into == keep.id
    with pytest.raises(InvalidInput):
        privacy.merged(keep, keep)
    with pytest.raises(Conflict):
        privacy.merged(keep, merged)


def test_a_customer_is_within_reach_through_an_order_in_scope() -> None:
    paths = [("SH", "SH-001")]
    assert privacy.may_act_on(AuthContext("u", "hq_admin"), [])
    assert privacy.may_act_on(AuthContext("u", "branch_manager", "SH"), paths)
    assert not privacy.may_act_on(AuthContext("u", "branch_manager", "ZJ"), paths)
    assert not privacy.may_act_on(AuthContext("u", "clerk", "SH", "SH-002"), paths)


def state(version: int, status: str) -> OrderState:
    return OrderState("o-1", "N-1", "SH", "SH-001", status, version, 0, PICKUP)


def test_order_history_moves_only_forward() -> None:
    assert state_after(None, state(2, "diagnosed")) == state(2, "diagnosed")
    assert state_after(state(3, "approved"), state(2, "diagnosed")) is None
    assert state_after(state(3, "approved"), state(3, "approved")) is None
    assert state_after(state(3, "approved"), state(4, "in_repair")) == state(4, "in_repair")


def test_open_orders_and_pickups() -> None:
    assert is_open(None) and is_open("ready_for_pickup") and is_open("sent_out")
    assert is_open("declined")  # the device waits to be picked up unrepaired
    assert not any(is_open(s) for s in ("closed", "cancelled"))
    assert is_pickup("pickup", "closed")
    assert not is_pickup("cancel", "cancelled")
