"""Customer care on a real database and real JetStream: order events build a customer's history
across the chain and, at pickup, a follow-up; calls and complaints through the real gRPC API
(events out in the outbox); export, erasure and merge audited. SQLite, or PostgreSQL with
TEST_DATABASE_URL."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from aftersales.customers.v1 import customers_pb2, customers_pb2_grpc
from aftersales.events.v1 import order_events_pb2
from servicekit.auth import AuthContext
from servicekit.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from servicekit.grpc_client import call
from servicekit.inbox import EventConsumer
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER, fill_meta
from servicekit.runtime import Runtime
from servicekit.testing import acting_as, eventually, serving
from servicekit.timeutil import from_timestamp, shanghai_day_start_after, to_timestamp, utc_now
from services.customers import handlers
from services.customers.adapters import repository
from services.customers.adapters.orm import outbox
from services.customers.consumers import (
    ORDER_HISTORY_CONSUMER,
    ORDERS_STREAM,
    order_history_consumer,
)
from services.customers.notifications import store as notification_store
from services.customers.service import SPEC
from services.customers.tests.support import (
    IMEI,
    OTHER_PHONE,
    PHONE,
    Lane,
    consuming,
    order_received,
    publish,
)

pytestmark = pytest.mark.service("customers")

MONDAY = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
DAYS_AFTER_PICKUP = 3


@pytest.fixture
async def history(runtime: Runtime, lane: Lane) -> AsyncIterator[EventConsumer]:
    """The order-history consumer on the lane's branch only."""
    consumer = order_history_consumer(
        runtime,
        name=f"{ORDER_HISTORY_CONSUMER}-{lane.branch_id}",
        subject=f"orders.v1.{lane.branch_id}.*.*",
        days_after_pickup=DAYS_AFTER_PICKUP,
    )
    yield consumer
    with contextlib.suppress(Exception):
        await runtime.js.delete_consumer(ORDERS_STREAM, consumer.name)


@pytest.fixture
async def stub(runtime: Runtime) -> AsyncIterator[customers_pb2_grpc.CustomersServiceStub]:
    async with serving(SPEC, runtime) as channel:
        yield customers_pb2_grpc.CustomersServiceStub(channel)


def status_changed(
    lane: Lane, order_id: str, version: int, step: str, to_status: str, paid_fen: int = 0
) -> order_events_pb2.OrderStatusChanged:
    event = order_events_pb2.OrderStatusChanged(
        order_id=order_id,
        number=f"{lane.store_id}-261123-0001",
        step=step,
        to_status=to_status,
        version=version,
        paid_fen=paid_fen,
    )
    fill_meta(event.meta, lane.branch_id, lane.store_id)
    return event


async def publish_status(
    runtime: Runtime, lane: Lane, event: order_events_pb2.OrderStatusChanged
) -> None:
    await runtime.js.publish(
        f"orders.v1.{lane.branch_id}.{lane.store_id}.order_{event.to_status}",
        event.SerializeToString(),
        headers={
            MSG_ID_HEADER: event.meta.event_id,
            EVENT_TYPE_HEADER: order_events_pb2.OrderStatusChanged.DESCRIPTOR.full_name,
        },
    )


def hq() -> AuthContext:
    return AuthContext("u-hq", "hq_admin")


def manager(lane: Lane, user: str = "u-manager") -> AuthContext:
    return AuthContext(user, "branch_manager", lane.branch_id)


def agent(lane: Lane, user: str = "u-agent") -> AuthContext:
    return AuthContext(user, "followup_agent", lane.branch_id, lane.store_id)


async def picked_up(runtime: Runtime, lane: Lane, history: EventConsumer) -> str:
    """An order taken in with consent, repaired, paid and picked up; its id."""
    received = order_received(lane, received_at=MONDAY)
    received.customer.message_consent = True
    order_id = received.order_id
    await publish(runtime, lane, received)
    for version, (step, status, paid) in enumerate(
        [("diagnosis", "diagnosed", 0), ("qc", "ready_for_pickup", 0), ("pickup", "closed", 8800)],
        start=2,
    ):
        await publish_status(
            runtime, lane, status_changed(lane, order_id, version, step, status, paid)
        )

    async def follow_up_made() -> list[handlers.FollowUpView]:
        views, _ = await handlers.list_follow_ups(runtime.uow, hq(), "", False, 100, "")
        return [v for v in views if v.follow_up.order_id == order_id and v.customer]

    async with consuming(runtime, lane.consumer), consuming(runtime, history):
        await eventually(follow_up_made, within=15)
    return order_id


async def test_order_events_build_the_history_and_a_follow_up_after_pickup(
    runtime: Runtime, lane: Lane, history: EventConsumer
) -> None:
    order_id = await picked_up(runtime, lane, history)
    profile = await handlers.find_customer(runtime.uow, PHONE, "")
    assert profile.customer.message_consent is True
    assert profile.open_store_ids == []  # the only order is closed
    detail = await handlers.get_customer(runtime.uow, profile.customer.id)
    [record] = detail.history
    assert (record.order_id, record.status, record.store_id, record.paid_fen) == (
        order_id,
        "closed",
        lane.store_id,
        8800,
    )
    assert record.received_at == MONDAY and record.closed_at is not None

    views, _ = await handlers.list_follow_ups(runtime.uow, agent(lane), "open", False, 100, "")
    [view] = views
    # Due from the start of the third Shanghai day after the pickup's.
    assert view.follow_up.due_at == shanghai_day_start_after(view.follow_up.picked_up_at, 3)
    assert view.follow_up.picked_up_at == record.closed_at
    assert view.customer is not None and view.customer.phone == PHONE
    # Another store's agent has its own queue.
    elsewhere = AuthContext("u-other", "followup_agent", lane.branch_id, "OTHER-STORE")
    assert (await handlers.list_follow_ups(runtime.uow, elsewhere, "", False, 100, ""))[0] == []
    # Picked up just now, due in three days: not overdue yet.
    assert (await handlers.list_follow_ups(runtime.uow, agent(lane), "", True, 100, ""))[0] == []


async def test_a_follow_up_due_in_the_past_is_listed_overdue(runtime: Runtime, lane: Lane) -> None:
    # Shanghai midnights, where a task picked up and due the same day starts its day.
    long_ago, far_ahead = datetime(2020, 1, 5, 16, tzinfo=UTC), datetime(2100, 1, 3, 16, tzinfo=UTC)
    for picked_up_at in (long_ago, far_ahead):
        event = status_changed(lane, str(uuid.uuid4()), 5, "pickup", "closed")
        event.meta.occurred_at.CopyFrom(to_timestamp(picked_up_at))
        async with runtime.uow() as uow:
            await handlers.record_order_status(uow, event, days_after_pickup=0)
            await uow.commit()
    overdue, _ = await handlers.list_follow_ups(runtime.uow, manager(lane), "", True, 100, "")
    assert [v.follow_up.due_at for v in overdue] == [long_ago]
    assert overdue[0].customer is None  # its OrderReceived has not come yet
    every, _ = await handlers.list_follow_ups(runtime.uow, manager(lane), "open", False, 100, "")
    assert [v.follow_up.due_at for v in every] == [long_ago, far_ahead]


async def test_status_events_before_the_intake_event_and_twice_still_count_once(
    runtime: Runtime, lane: Lane, history: EventConsumer
) -> None:
    received = order_received(lane, received_at=MONDAY)
    closed = status_changed(lane, received.order_id, 9, "pickup", "closed", 100)
    stale = status_changed(lane, received.order_id, 3, "diagnosis", "diagnosed")
    for event in (closed, stale, closed):
        await publish_status(runtime, lane, event)
    async with consuming(runtime, history):
        await eventually(lambda: _follow_ups_of(runtime, received.order_id), within=15)
    await publish(runtime, lane, received)
    async with consuming(runtime, lane.consumer):
        profile = await eventually(lambda: _profile(runtime, PHONE), within=15)
    detail = await handlers.get_customer(runtime.uow, profile.customer.id)
    assert [(r.status, r.paid_fen) for r in detail.history] == [("closed", 100)]
    assert len(await _follow_ups_of(runtime, received.order_id)) == 1


async def _follow_ups_of(runtime: Runtime, order_id: str) -> list[handlers.FollowUpView]:
    views, _ = await handlers.list_follow_ups(runtime.uow, hq(), "", False, 100, "")
    return [v for v in views if v.follow_up.order_id == order_id]


async def _profile(runtime: Runtime, phone: str) -> handlers.CustomerProfile | None:
    try:
        return await handlers.find_customer(runtime.uow, phone, "")
    except NotFound:
        return None


async def test_an_open_order_shows_its_store_and_the_list_is_scoped(
    runtime: Runtime, lane: Lane, stub: customers_pb2_grpc.CustomersServiceStub
) -> None:
    async with runtime.uow() as uow:
        await handlers.record_order_received(uow, order_received(lane), lane.keys)
        await uow.commit()
    with acting_as(AuthContext("u-c", "clerk", lane.branch_id, lane.store_id)):
        mine = await call(stub.ListCustomers, customers_pb2.ListCustomersRequest())
    with acting_as(AuthContext("u-z", "clerk", "ZJ", "ZJ-001")):
        theirs = await call(stub.ListCustomers, customers_pb2.ListCustomersRequest())
        found = await call(stub.FindCustomer, customers_pb2.FindCustomerRequest(phone=PHONE))
    assert [c.phone for c in mine.customers] == [PHONE]
    assert list(mine.customers[0].open_store_ids) == [lane.store_id]
    assert theirs.customers == []
    assert found.id == mine.customers[0].id


async def test_a_low_score_opens_a_complaint_only_its_branch_sees(
    runtime: Runtime,
    lane: Lane,
    history: EventConsumer,
    stub: customers_pb2_grpc.CustomersServiceStub,
) -> None:
    order_id = await picked_up(runtime, lane, history)
    [view] = await _follow_ups_of(runtime, order_id)
    follow_up_id = view.follow_up.id
    with acting_as(agent(lane)):
        taken = await call(
            stub.TakeFollowUp, customers_pb2.TakeFollowUpRequest(follow_up_id=follow_up_id)
        )
        assert taken.assigned_to == "u-agent"
        for bad in (0, 6):
            with pytest.raises(InvalidInput) as error:
                await call(
                    stub.RecordFollowUpAttempt,
                    customers_pb2.RecordFollowUpAttemptRequest(
                        follow_up_id=follow_up_id, reached=True, score=bad
                    ),
                )
            assert error.value.errors[0].field == "score"
        missed = await call(
            stub.RecordFollowUpAttempt,
            customers_pb2.RecordFollowUpAttemptRequest(follow_up_id=follow_up_id, reached=False),
        )
        assert (missed.state, missed.attempts) == ("open", 1)
        assert from_timestamp(missed.due_at) > from_timestamp(taken.due_at) - timedelta(days=9)
        done = await call(
            stub.RecordFollowUpAttempt,
            customers_pb2.RecordFollowUpAttemptRequest(
                follow_up_id=follow_up_id, reached=True, score=2, comments="slow and rude"
            ),
        )
    assert (done.state, done.score, done.attempts) == ("done", 2, 2)
    assert done.complaint_id
    other_agent = AuthContext("u-other-agent", "followup_agent", lane.branch_id, lane.store_id)
    with acting_as(other_agent), pytest.raises(NotFound):
        await call(
            stub.GetComplaint, customers_pb2.GetComplaintRequest(complaint_id=done.complaint_id)
        )
    with acting_as(AuthContext("u-zj", "branch_manager", "ZJ")):
        zj = await call(stub.ListComplaints, customers_pb2.ListComplaintsRequest())
        assert zj.complaints == []
        with pytest.raises(NotFound):
            await call(
                stub.GetComplaint, customers_pb2.GetComplaintRequest(complaint_id=done.complaint_id)
            )
    with acting_as(manager(lane)):
        [case] = (
            await call(stub.ListComplaints, customers_pb2.ListComplaintsRequest(state="open"))
        ).complaints
        assert (case.id, case.score, case.owner_id, case.comments) == (
            done.complaint_id,
            2,
            "u-agent",
            "slow and rude",
        )
        noted = await call(
            stub.AddComplaintNote,
            customers_pb2.AddComplaintNoteRequest(
                complaint_id=case.id, note="called, offered a free check", owner_id="u-manager"
            ),
        )
        assert noted.owner_id == "u-manager" and [n.note for n in noted.notes] == [
            "called, offered a free check"
        ]
        with pytest.raises(InvalidInput) as error:
            await call(
                stub.CloseComplaint, customers_pb2.CloseComplaintRequest(complaint_id=case.id)
            )
        assert error.value.errors[0].field == "outcome"
        closed = await call(
            stub.CloseComplaint,
            customers_pb2.CloseComplaintRequest(complaint_id=case.id, outcome="screen redone free"),
        )
    assert (closed.state, closed.outcome) == ("closed", "screen redone free")

    async with runtime.db.session() as session:
        subjects = [
            row.subject for row in await session.execute(select(outbox).order_by(outbox.c.seq))
        ]
    prefix = f"customers.v1.{lane.branch_id}.{lane.store_id}."
    assert [s.removeprefix(prefix) for s in subjects if s.startswith(prefix)] == [
        "follow_up_recorded",
        "follow_up_recorded",
        "complaint_opened",
        "complaint_closed",
    ]


async def test_an_agent_cannot_record_a_call_another_agent_took(
    runtime: Runtime,
    lane: Lane,
    history: EventConsumer,
    stub: customers_pb2_grpc.CustomersServiceStub,
) -> None:
    order_id = await picked_up(runtime, lane, history)
    [view] = await _follow_ups_of(runtime, order_id)
    request = customers_pb2.RecordFollowUpAttemptRequest(
        follow_up_id=view.follow_up.id, reached=False
    )
    with acting_as(agent(lane)):
        await call(
            stub.TakeFollowUp, customers_pb2.TakeFollowUpRequest(follow_up_id=view.follow_up.id)
        )
    with acting_as(agent(lane, "u-agent-2")), pytest.raises(Conflict):
        await call(stub.RecordFollowUpAttempt, request)
    with (
        acting_as(AuthContext("u-c", "clerk", lane.branch_id, lane.store_id)),
        pytest.raises(Forbidden),
    ):
        await call(stub.RecordFollowUpAttempt, request)
    with acting_as(AuthContext("u-zj", "followup_agent", "ZJ")), pytest.raises(NotFound):
        await call(stub.RecordFollowUpAttempt, request)


async def test_export_erasure_and_their_audit(
    runtime: Runtime,
    lane: Lane,
    history: EventConsumer,
    stub: customers_pb2_grpc.CustomersServiceStub,
) -> None:
    order_id = await picked_up(runtime, lane, history)
    [view] = await _follow_ups_of(runtime, order_id)
    with acting_as(agent(lane)):
        await call(
            stub.RecordFollowUpAttempt,
            customers_pb2.RecordFollowUpAttemptRequest(
                follow_up_id=view.follow_up.id, reached=True, score=1, comments="never again"
            ),
        )
    notices = {"ready_for_pickup": str(uuid.uuid4()), "closed": str(uuid.uuid4())}
    async with runtime.uow() as uow:  # a notice sent and one still queued about the order
        for kind, event_id in (("ready_for_pickup", "e-1"), ("closed", "e-2")):
            await notification_store.queue_notice(
                uow.session,
                id=notices[kind],
                order_id=order_id,
                order_number="SH-1",
                event_id=event_id,
                kind=kind,
                branch_id=lane.branch_id,
                store_id=lane.store_id,
                values={},
                at=utc_now(),
            )
        await notification_store.settle(
            uow.session, notices["ready_for_pickup"], status="sent", text="您的手机已修好"
        )
        await uow.commit()
    customer_id = (await handlers.find_customer(runtime.uow, PHONE, "")).customer.id
    with acting_as(manager(lane)):
        with pytest.raises(InvalidInput) as error:
            await call(
                stub.ExportCustomer, customers_pb2.ExportCustomerRequest(customer_id=customer_id)
            )
        assert error.value.errors[0].field == "reason"
        exported = await call(
            stub.ExportCustomer,
            customers_pb2.ExportCustomerRequest(customer_id=customer_id, reason="request #12"),
        )
    document = json.loads(exported.json)
    assert document["customer"]["phone"] == PHONE
    assert [d["imei"] for d in document["devices"]] == [IMEI]
    assert [h["order_id"] for h in document["history"]] == [order_id]
    assert document["follow_ups"][0]["comments"] == "never again"
    assert document["complaints"][0]["score"] == 1
    assert [c["source"] for c in document["consents"]] == ["intake"]
    assert [(n["kind"], n["status"], n["text"]) for n in document["notices"]] == [
        ("ready_for_pickup", "sent", "您的手机已修好"),
        ("closed", "queued", None),
    ]

    with acting_as(AuthContext("u-zj", "branch_manager", "ZJ")), pytest.raises(NotFound):
        await call(
            stub.EraseCustomer,
            customers_pb2.EraseCustomerRequest(customer_id=customer_id, reason="x"),
        )
    with (
        acting_as(AuthContext("u-c", "clerk", lane.branch_id, lane.store_id)),
        pytest.raises(Forbidden),
    ):
        await call(
            stub.EraseCustomer,
            customers_pb2.EraseCustomerRequest(customer_id=customer_id, reason="x"),
        )
    with acting_as(hq()):
        erased = await call(
            stub.EraseCustomer,
            customers_pb2.EraseCustomerRequest(customer_id=customer_id, reason="request #12"),
        )
        assert (erased.name, erased.phone, erased.email, erased.erased) == ("已删除", "", "", True)
        assert list(erased.devices) == []
        with pytest.raises(Conflict):
            await call(
                stub.EraseCustomer,
                customers_pb2.EraseCustomerRequest(customer_id=customer_id, reason="again"),
            )
        audit = await call(
            stub.ListPrivacyAudit, customers_pb2.ListPrivacyAuditRequest(customer_id=customer_id)
        )
    assert [(e.action, e.actor_user_id, e.reason) for e in audit.entries] == [
        ("erasure", "u-hq", "request #12"),
        ("export", "u-manager", "request #12"),
    ]
    with pytest.raises(NotFound):
        await handlers.find_customer(runtime.uow, PHONE, "")
    with pytest.raises(NotFound):
        await handlers.find_customer(runtime.uow, "", IMEI)
    detail = await handlers.get_customer(runtime.uow, customer_id)
    assert [r.order_id for r in detail.history] == [order_id]  # kept for accounting
    async with runtime.uow() as uow:
        notices = await notification_store.notices_of_orders(uow.session, [order_id])
    # What the notices said is gone, the queued one is never sent; the record of them stays.
    assert [(n.kind, n.status, n.text) for n in notices] == [
        ("ready_for_pickup", "sent", None),
        ("closed", "failed", None),
    ]
    [after] = await _follow_ups_of(runtime, order_id)
    assert after.follow_up.comments is None and after.follow_up.score == 1
    with acting_as(manager(lane)), pytest.raises(Forbidden):
        await call(stub.ListPrivacyAudit, customers_pb2.ListPrivacyAuditRequest())


async def test_edit_and_merge(
    runtime: Runtime, lane: Lane, stub: customers_pb2_grpc.CustomersServiceStub
) -> None:
    second_imei = "356938035643809"
    async with runtime.uow() as uow:
        await handlers.record_order_received(uow, order_received(lane), lane.keys)
        await handlers.record_order_received(
            uow, order_received(lane, name="张三", phone=OTHER_PHONE, imei=second_imei), lane.keys
        )
        await uow.commit()
    keep = (await handlers.find_customer(runtime.uow, PHONE, "")).customer
    other = (await handlers.find_customer(runtime.uow, OTHER_PHONE, "")).customer
    clerk = AuthContext("u-c", "clerk", lane.branch_id, lane.store_id)
    with acting_as(clerk):
        with pytest.raises(InvalidInput) as error:
            await call(
                stub.UpdateCustomer,
                customers_pb2.UpdateCustomerRequest(customer_id=keep.id, phone="1234", email="x@"),
            )
        assert [e.field for e in error.value.errors] == ["phone", "email"]
        with pytest.raises(Conflict) as clash:
            await call(
                stub.UpdateCustomer,
                customers_pb2.UpdateCustomerRequest(customer_id=keep.id, phone=OTHER_PHONE),
            )
        assert clash.value.errors[0].field == "phone"
        edited = await call(
            stub.UpdateCustomer,
            customers_pb2.UpdateCustomerRequest(
                customer_id=keep.id,
                expected_version=1,
                email="zhang@example.com",
                message_consent=True,
                language="en",
            ),
        )
        assert (edited.email, edited.message_consent, edited.language, edited.version) == (
            "zhang@example.com",
            True,
            "en",
            2,
        )
        with pytest.raises(PreconditionFailed):
            await call(
                stub.UpdateCustomer,
                customers_pb2.UpdateCustomerRequest(
                    customer_id=keep.id, expected_version=1, name="x"
                ),
            )
        with pytest.raises(Forbidden):
            await call(
                stub.MergeCustomers,
                customers_pb2.MergeCustomersRequest(
                    keep_id=keep.id, merge_id=other.id, reason="same"
                ),
            )
    with acting_as(AuthContext("u-z", "clerk", "ZJ", "ZJ-001")), pytest.raises(NotFound):
        await call(
            stub.UpdateCustomer, customers_pb2.UpdateCustomerRequest(customer_id=keep.id, name="x")
        )
    with acting_as(manager(lane)):
        merged = await call(
            stub.MergeCustomers,
            customers_pb2.MergeCustomersRequest(
                keep_id=keep.id, merge_id=other.id, reason="two phones, one person"
            ),
        )
    assert merged.order_count == 2
    assert sorted(d.imei for d in merged.devices) == sorted([IMEI, second_imei])
    # The merged record's phone leads to the kept one, now and for later intakes.
    assert (await handlers.find_customer(runtime.uow, OTHER_PHONE, "")).customer.id == keep.id
    async with runtime.uow() as uow:
        await handlers.record_order_received(
            uow, order_received(lane, phone=OTHER_PHONE), lane.keys
        )
        await uow.commit()
    detail = await handlers.get_customer(runtime.uow, keep.id)
    assert detail.profile.customer.order_count == 3 and len(detail.history) == 3
    async with runtime.db.session() as session:
        consents = await repository.consents_of(session, keep.id)
    assert [(c["source"], c["message_consent"]) for c in consents] == [("edit", True)]
    with acting_as(hq()):
        audit = await call(stub.ListPrivacyAudit, customers_pb2.ListPrivacyAuditRequest())
    assert [(e.action, e.customer_id) for e in audit.entries][:1] == [("merge", keep.id)]
