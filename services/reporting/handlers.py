"""Use cases of the reporting service: event handlers that keep the order facts and rollups,
and the KPI queries, scoped to the caller.

The consumers hand a batch's events to the handlers one by one in one unit of work; the
handlers only note what each event says, and `finish_batch` (run as the unit commits) then
reads the facts the batch touches in one statement, applies every event to them (domain/facts),
and writes the facts and the summed rollup changes (domain/rollups) in one statement per table.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from google.protobuf.message import Message

from aftersales.events.v1 import (
    customer_events_pb2,
    events_pb2,
    order_events_pb2,
    settlement_events_pb2,
)
from servicekit.auth import AuthContext
from servicekit.errors import invalid
from servicekit.inbox import Handler, UnprocessableEvent
from servicekit.paging import decode_page_token, encode_page_token, page_size
from servicekit.timeutil import as_utc, from_timestamp, shanghai_day, utc_now
from servicekit.uow import UnitOfWork
from services.reporting.adapters import repository
from services.reporting.domain import facts as fact_rules
from services.reporting.domain.facts import INTAKE_VERSION, OrderFact, OrderStep
from services.reporting.domain.kpis import (
    Figures,
    Kpis,
    SplitFigures,
    StoreKpis,
    TechnicianFigures,
    UnitFigures,
    add_counters,
    backlog,
    with_exact,
    with_sketch,
)
from services.reporting.domain.period import report_period
from services.reporting.domain.rollups import delta, merge

NewUow = Callable[[], UnitOfWork]

DEFAULT_PAGE, MAX_PAGE = 50, 200


@dataclass
class ClaimState:
    claim_id: str
    version: int
    month: str
    lines: dict[str, tuple[str, int]]  # order id → (line state, labour fen)


@dataclass
class Batch:
    """What a batch's events said, in arrival order, until `finish_batch` applies it."""

    steps: list[OrderStep] = field(default_factory=list)
    follow_ups: list[tuple[str, int, str, int]] = field(default_factory=list)
    claims: list[ClaimState] = field(default_factory=list)


_batches: weakref.WeakKeyDictionary[UnitOfWork, Batch] = weakref.WeakKeyDictionary()


def _batch(uow: UnitOfWork) -> Batch:
    batch = _batches.get(uow)
    if batch is None:
        batch = _batches[uow] = Batch()
        uow.at_commit("reporting-facts", functools.partial(finish_batch, uow))
    return batch


def _placed(meta: events_pb2.EventMeta) -> None:
    if not meta.branch_id or not meta.store_id:
        raise UnprocessableEvent("an event without its branch and store cannot be counted")


def _promised(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError as error:
        raise UnprocessableEvent(f"promised_date {text!r} is not a date") from error


async def order_received(uow: UnitOfWork, event: events_pb2.OrderReceived) -> None:
    """受理: the order's first fact (version 1)."""
    _placed(event.meta)
    occurred = from_timestamp(event.meta.occurred_at)
    received = from_timestamp(event.received_at) if event.HasField("received_at") else occurred
    _batch(uow).steps.append(
        OrderStep(
            order_id=event.order_id,
            number=event.number,
            branch_id=event.meta.branch_id,
            store_id=event.meta.store_id,
            service_type=event.service_type,
            brand=event.device.brand,
            warranty_status=event.warranty_status,
            received_at=received,
            promised_date=_promised(event.promised_date),
            repeat_repair=event.repeat_repair,
            repeat_of_order_id=event.repeat_of_order_id,
            step="intake",
            to_status="received",
            version=INTAKE_VERSION,
            occurred_at=received,
            actor=event.meta.actor_user_id,
        )
    )


async def order_status_changed(uow: UnitOfWork, event: order_events_pb2.OrderStatusChanged) -> None:
    """A step of the order: its whole state as of this version, and the step's milestone."""
    _placed(event.meta)
    occurred = from_timestamp(event.meta.occurred_at)
    _batch(uow).steps.append(
        OrderStep(
            order_id=event.order_id,
            number=event.number,
            branch_id=event.meta.branch_id,
            store_id=event.meta.store_id,
            service_type=event.service_type,
            brand=event.brand,
            warranty_status=event.warranty_status,
            received_at=from_timestamp(event.received_at)
            if event.HasField("received_at")
            else None,
            promised_date=_promised(event.promised_date),
            repeat_repair=event.repeat_repair,
            repeat_of_order_id=event.repeat_of_order_id,
            step=event.step,
            to_status=event.to_status,
            version=event.version,
            occurred_at=occurred,
            actor=event.meta.actor_user_id,
            repair_level=event.repair_level,
            qc_failures=event.qc_failures,
            paid_fen=event.paid_fen,
            quote_total_fen=event.quote_total_fen,
        )
    )


async def claim_changed(uow: UnitOfWork, event: settlement_events_pb2.ClaimChanged) -> None:
    """劳务费结算: the claim's lines as they stand, by order."""
    _batch(uow).claims.append(
        ClaimState(
            event.claim_id,
            event.version,
            event.month,
            {line.order_id: (line.state, line.labour_fen) for line in event.lines},
        )
    )


async def follow_up_recorded(uow: UnitOfWork, event: customer_events_pb2.FollowUpRecorded) -> None:
    """回访: one call attempt on an order."""
    score = event.score if event.reached else 0
    _batch(uow).follow_ups.append((event.order_id, event.attempt, event.state, score))


async def finish_batch(uow: UnitOfWork) -> None:
    """Apply the batch's events to the facts they touch and add the change to the rollups."""
    batch = _batches.pop(uow, None)
    if batch is None:
        return
    order_ids = {s.order_id for s in batch.steps} | {s.repeat_of_order_id for s in batch.steps}
    order_ids |= {order_id for order_id, *_ in batch.follow_ups}
    order_ids |= {order_id for claim in batch.claims for order_id in claim.lines}
    order_ids.discard("")
    if not order_ids and not batch.claims:
        return
    facts = await repository.lock_facts(
        uow.session, order_ids, [claim.claim_id for claim in batch.claims]
    )
    before = dict(facts)
    for step in batch.steps:
        facts[step.order_id] = fact_rules.apply_step(_fact(facts, step.order_id), step)
        if step.repeat_of_order_id:
            earlier = _fact(facts, step.repeat_of_order_id)
            facts[earlier.order_id] = fact_rules.came_back(earlier, step.order_id)
    for order_id, attempt, state, score in batch.follow_ups:
        facts[order_id] = fact_rules.apply_follow_up(_fact(facts, order_id), attempt, state, score)
    for claim in batch.claims:
        # A line that left the claim is cleared: its order is no longer claimed by it.
        left = [f.order_id for f in facts.values() if f.claim_id == claim.claim_id]
        lines = {**dict.fromkeys(left, ("", 0)), **claim.lines}
        for order_id, (state, labour_fen) in lines.items():
            facts[order_id] = fact_rules.apply_claim_line(
                _fact(facts, order_id),
                claim.claim_id,
                claim.version,
                claim.month,
                state,
                labour_fen,
            )
    changed = [f for order_id, f in facts.items() if before.get(order_id) != f]
    await repository.save_facts(uow.session, changed)
    await repository.add_rollups(
        uow.session, merge(delta(before.get(f.order_id), f) for f in changed)
    )


def _fact(facts: dict[str, OrderFact], order_id: str) -> OrderFact:
    return facts.get(order_id) or OrderFact(order_id)


ORDER_EVENTS: dict[str, tuple[type[Message], Handler]] = {
    events_pb2.OrderReceived.DESCRIPTOR.full_name: (events_pb2.OrderReceived, order_received),
    order_events_pb2.OrderStatusChanged.DESCRIPTOR.full_name: (
        order_events_pb2.OrderStatusChanged,
        order_status_changed,
    ),
    settlement_events_pb2.ClaimChanged.DESCRIPTOR.full_name: (
        settlement_events_pb2.ClaimChanged,
        claim_changed,
    ),
}
"""Handlers of the order events (stream ORDERS), by event full name; others are acked unread."""

CUSTOMER_EVENTS: dict[str, tuple[type[Message], Handler]] = {
    customer_events_pb2.FollowUpRecorded.DESCRIPTOR.full_name: (
        customer_events_pb2.FollowUpRecorded,
        follow_up_recorded,
    ),
}
"""Handlers of the customers' events (stream CUSTOMERS): follow-ups."""


async def get_kpis(
    new_uow: NewUow,
    auth: AuthContext,
    branch_id: str,
    store_id: str,
    date_from: str,
    date_to: str,
) -> Kpis:
    """Every figure for the caller's unit, or a unit below it they name, over a period of
    Shanghai days. A unit outside their scope is NotFound, never another's figures."""
    branch, store = auth.narrow(branch_id or None, store_id or None)
    period = report_period(date_from, date_to, today=shanghai_day(utc_now()))
    async with new_uow() as uow:
        session = uow.session
        # A statement for the counters and one for the sketches, each answering for the unit
        # and the units below it: every round trip costs, the more so on a busy machine.
        split_rows, unit_rows = await repository.scope_figures(session, branch, store, period)
        total = add_counters(counters for _, _, counters in split_rows)
        if store:
            # One store's percentiles are exact, from its own orders.
            figures = with_exact(
                total, await repository.store_turnarounds(session, branch, store, period)
            )
            units: list[UnitFigures] = []
        else:
            sketch, sketches = await repository.scope_sketches(session, branch, store, period)
            figures = with_sketch(total, sketch)
            units = [
                UnitFigures(b, s, with_sketch(counters, sketches.get((b, s), {})))
                for b, s, counters in unit_rows
            ]
        # by_store, the older breakdown: a branch's stores, or the store itself; at HQ the
        # breakdown is by branch (by_unit), never 10,000 stores summed over the period.
        if branch and not store:
            stores = [(u.branch_id, u.store_id, u.figures["received"]) for u in units]
        elif store:
            stores = [(b, s, counters.get("received", 0)) for b, s, counters in unit_rows]
        else:
            stores = []
        open_rows = await repository.backlog_rows(session, branch, store)
        technicians = (
            await repository.technician_rows(session, branch, store, period)
            if branch or store
            else []
        )
    return Kpis(
        branch,
        store,
        period,
        figures,
        by_split=tuple(
            SplitFigures(kind, brand, Figures(counters))
            for kind, brand, counters in sorted(split_rows, key=lambda r: (r[0], r[1]))
        ),
        by_unit=tuple(sorted(units, key=lambda u: (u.branch_id, u.store_id))),
        by_store=tuple(
            StoreKpis(b, s, n) for b, s, n in sorted(stores, key=lambda r: (r[1], r[0])) if n
        ),
        backlog=backlog(open_rows, period.last),
        technicians=tuple(TechnicianFigures(*row) for row in technicians),
    )


async def list_figure_orders(
    new_uow: NewUow,
    auth: AuthContext,
    branch_id: str,
    store_id: str,
    date_from: str,
    date_to: str,
    figure: str,
    requested_page_size: int,
    page_token: str,
) -> tuple[list[OrderFact], str]:
    """The orders behind one figure of a branch or a store, a page at a time (keyset paging by
    the time of the figure's event, then order id)."""
    branch, store = auth.narrow(branch_id or None, store_id or None)
    if figure not in repository.FIGURES_LISTED:
        raise invalid("figure", f"must be one of {', '.join(repository.FIGURES_LISTED)}")
    if not branch and not store:
        raise invalid("branch_id", "name a branch or a store: the whole chain's orders are no list")
    period = report_period(date_from, date_to, today=shanghai_day(utc_now()))
    limit = page_size(requested_page_size, DEFAULT_PAGE, MAX_PAGE)
    after = None
    if page_token:
        moment, order_id = decode_page_token(page_token, 2)
        try:
            after = (as_utc(datetime.fromisoformat(moment)), order_id)
        except ValueError as error:
            raise invalid("cursor", "is not a cursor this service issued") from error
    async with new_uow() as uow:
        found = await repository.figure_orders(
            uow.session, branch, store, period, figure, after, limit + 1
        )
    page, more = found[:limit], len(found) > limit
    token = ""
    if more:
        last = page[-1]
        moment_of_last = getattr(last, repository.figure_time(figure))
        token = encode_page_token(moment_of_last.isoformat(), last.order_id)
    return page, token
