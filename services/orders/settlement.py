"""Manufacturer settlement (劳务费结算): the use cases over a unit of work, the ClaimChanged events
they announce, and the consumer of inventory's old-part returns that makes held lines payable.

- Events out: orders.v1.<branch>._.claim_changed (ClaimChanged) on every change of a claim
- Events in: inventory.v1.<branch>.<store>.old_parts_returned (OldPartsReturned) on stream
  INVENTORY, durable consumer `orders-old-parts`
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from aftersales.events.v1 import inventory_events_pb2, settlement_events_pb2
from servicekit import bus, paging
from servicekit.auth import AuthContext, require_role
from servicekit.errors import NotFound, PreconditionFailed, invalid
from servicekit.inbox import EventConsumer
from servicekit.outbox import fill_meta
from servicekit.runtime import Runtime
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork
from services.orders.adapters import base_data
from services.orders.adapters import settlement as store
from services.orders.domain import settlement as rules
from services.orders.domain.settlement import Claim, ClaimChanged, ClaimLine, ClaimPayment
from services.orders.handlers import NewUow

log = logging.getLogger(__name__)

INVENTORY_STREAM = "INVENTORY"
OLD_PARTS_CONSUMER = "orders-old-parts"
OLD_PARTS_SUBJECT = "inventory.v1.*.*.old_parts_returned"
CLAIMS_PAGE_SIZE = 50
CLAIMS_MAX_PAGE_SIZE = 100
BUILD_ATTEMPTS = 3  # a build racing another of the same month tries again, then finds it

Clock = Callable[[], datetime]


def translate(claim: Claim, _event: ClaimChanged) -> tuple[str, Message]:
    """ClaimChanged with every line as it now stands, on the branch's subject."""
    message = settlement_events_pb2.ClaimChanged(
        claim_id=claim.id,
        manufacturer=claim.manufacturer,
        month=claim.month,
        status=claim.status,
        version=claim.version,
        lines=[
            settlement_events_pb2.ClaimLine(
                order_id=x.order_id,
                number=x.number,
                store_id=x.store_id,
                repair_level=x.repair_level,
                labour_fen=x.labour_fen,
                parts_fen=x.parts_fen,
                state=x.state,
                reason_code=x.reason_code,
            )
            for x in claim.lines
        ],
        claimed_fen=claim.claimed_fen,
        accepted_fen=claim.accepted_fen,
        paid_fen=claim.paid_fen,
    )
    fill_meta(message.meta, claim.branch_id, None)
    return bus.subject("orders", claim.branch_id, None, "claim_changed"), message


async def build_claim(
    new_uow: NewUow,
    auth: AuthContext,
    manufacturer: str,
    branch_id: str,
    month: str,
    clock: Clock = utc_now,
) -> Claim:
    """Build the month's claim, or bring a claim still `built` up to date with the repairs
    closed since. Once it is submitted, the month's repairs closed after go into a
    supplementary claim, built the same way; with none, building answers the latest claim."""
    branch = branch_id or auth.branch_id or ""
    if not branch:
        raise invalid("branch_id", "is required")
    rules.check_writer(auth, branch)
    if not manufacturer:
        raise invalid("manufacturer", "is required")
    start, end = rules.month_bounds(month)
    rules.check_month_begun(month, clock())
    for attempt in range(BUILD_ATTEMPTS):
        try:
            return await _build(new_uow, auth, manufacturer, branch, month, start, end, clock)
        except (IntegrityError, PreconditionFailed):
            if attempt == BUILD_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _build(
    new_uow: NewUow,
    auth: AuthContext,
    manufacturer: str,
    branch: str,
    month: str,
    start: datetime,
    end: datetime,
    clock: Clock,
) -> Claim:
    async with new_uow() as uow:
        session = uow.session
        if not await base_data.brand_exists(session, manufacturer):
            raise invalid("manufacturer", f"unknown manufacturer {manufacturer!r}")
        claim = await store.claim_of_month(session, manufacturer, branch, month)
        lines = await _unclaimed_lines(session, manufacturer, branch, start, end)
        if claim is not None and claim.status != "built" and not lines:
            return claim
        if claim is None or claim.status != "built":
            claim = Claim(
                id=str(uuid.uuid4()),
                manufacturer=manufacturer,
                branch_id=branch,
                month=month,
                supplement=0 if claim is None else claim.supplement + 1,
                built_by=auth.user_id,
                built_at=clock(),
                lines=lines,
            )
            claim.pending_events.append(ClaimChanged())
            await store.add_claim(session, claim)
        else:
            read_version = claim.version
            if not claim.add_lines(lines):
                return claim
            await store.save_claim(session, claim, read_version)
        await store.add_lines(session, claim.id, lines)
        uow.track(claim, translate)
        await uow.commit()
    log.info("claim %s of %s %s %s: %d lines", claim.id, manufacturer, branch, month, len(lines))
    return claim


async def _unclaimed_lines(
    session: AsyncConnection, manufacturer: str, branch: str, start: datetime, end: datetime
) -> list[ClaimLine]:
    """A line for each claimable repair of the branch closed in [start, end) in no claim yet."""
    orders = [
        o
        for o in await store.unclaimed_orders(session, manufacturer, branch, start, end)
        if rules.claimable(o, manufacturer)
    ]
    prices = await store.labour_prices(session, manufacturer)
    returned = await store.returned_old_parts(session, (o.id for o in orders))
    return [rules.claim_line(o, prices, returned.get(o.id, {})) for o in orders]


async def get_claim(new_uow: NewUow, auth: AuthContext, claim_id: str) -> Claim:
    require_role(auth, rules.READERS)
    async with new_uow() as uow:
        claim = await store.get_claim(uow.session, claim_id) if claim_id else None
    if claim is None or not auth.covers(claim.branch_id):
        raise NotFound("no such claim in your scope")
    return claim


async def list_claims(
    new_uow: NewUow,
    auth: AuthContext,
    branch_id: str,
    manufacturer: str,
    month: str,
    status: str,
    page_size: int = 0,
    page_token: str = "",
) -> tuple[list[Claim], str]:
    """A page of the claims in scope, and the token of the next page ("" on the last)."""
    require_role(auth, rules.READERS)
    branch, _ = auth.narrow(branch_id or None, None)
    if month:
        rules.month_bounds(month)
    if status and status not in rules.CLAIM_STATUSES:
        raise invalid("status", f"must be one of {', '.join(rules.CLAIM_STATUSES)}")
    size = paging.page_size(page_size, CLAIMS_PAGE_SIZE, CLAIMS_MAX_PAGE_SIZE)
    after = paging.decode_page_token(page_token, 4) if page_token else []
    if after and not after[3].isdigit():
        raise invalid("cursor", "is not a cursor this service issued")
    async with new_uow() as uow:
        # One more than the page: whether there is a next page, without counting.
        claims = await store.list_claims(
            uow.session, branch, manufacturer, month, status, size + 1, after
        )
    if len(claims) <= size:
        return claims, ""
    last = claims[size - 1]
    return claims[:size], paging.encode_page_token(
        last.month, last.branch_id, last.manufacturer, str(last.supplement)
    )


def _expected(claim: Claim, expected_version: int) -> None:
    if expected_version <= 0:
        raise invalid("expected_version", "is required: the version of the claim as read")
    if claim.version != expected_version:
        raise PreconditionFailed(
            f"the claim is at version {claim.version}, not {expected_version}: read it again"
        )


async def _writable(uow: UnitOfWork, auth: AuthContext, claim_id: str) -> Claim:
    require_role(auth, rules.WRITERS)
    claim = await store.get_claim(uow.session, claim_id) if claim_id else None
    if claim is None or not auth.covers(claim.branch_id):
        raise NotFound("no such claim in your scope")
    return claim


async def _save(uow: UnitOfWork, claim: Claim, read_version: int) -> None:
    await store.save_claim(uow.session, claim, read_version)
    uow.track(claim, translate)


async def submit_claim(
    new_uow: NewUow,
    auth: AuthContext,
    claim_id: str,
    expected_version: int,
    clock: Clock = utc_now,
) -> Claim:
    """The claim goes to the manufacturer with every repair of its month closed so far: those
    closed since it was built join it first. Later ones go into a supplementary claim."""
    async with new_uow() as uow:
        claim = await _writable(uow, auth, claim_id)
        _expected(claim, expected_version)
        start, end = rules.month_bounds(claim.month)
        late = await _unclaimed_lines(uow.session, claim.manufacturer, claim.branch_id, start, end)
        claim.add_lines(late)
        claim.submit(clock())
        await _save(uow, claim, expected_version)
        await store.add_lines(uow.session, claim.id, late)
        await uow.commit()
    return claim


async def decide_claim(
    new_uow: NewUow,
    auth: AuthContext,
    claim_id: str,
    expected_version: int,
    content: bytes,
    clock: Clock = utc_now,
) -> Claim:
    """The manufacturer's decision file, all rows or none. The same file again answers the
    claim as it is, whatever version the caller read."""
    fingerprint = rules.fingerprint(content)
    async with new_uow() as uow:
        claim = await _writable(uow, auth, claim_id)
        if claim.decision_fingerprint == fingerprint:
            return claim
        _expected(claim, expected_version)
        decisions = rules.parse_decisions(content, claim)
        claim.decide(decisions, fingerprint, clock())
        await _save(uow, claim, expected_version)
        await uow.commit()
    return claim


async def record_payment(
    new_uow: NewUow,
    auth: AuthContext,
    claim_id: str,
    expected_version: int,
    amount_fen: int,
    paid_on: str,
    request_id: str,
    clock: Clock = utc_now,
) -> Claim:
    """A payment received from the manufacturer; a retry with the same request id records
    none and answers the claim as it is."""
    day = rules.parse_paid_on(paid_on)
    async with new_uow() as uow:
        session = uow.session
        claim = await _writable(uow, auth, claim_id)
        if request_id and await store.payment_made(session, request_id) == claim.id:
            return claim
        _expected(claim, expected_version)
        payment = ClaimPayment(amount_fen, day, auth.user_id, clock(), request_id)
        claim.record_payment(payment)
        await _save(uow, claim, expected_version)
        await store.add_payment(session, claim.id, payment)
        await uow.commit()
    return claim


async def old_parts_returned(uow: UnitOfWork, event: inventory_events_pb2.OldPartsReturned) -> None:
    """Inventory sent a batch of old parts back: note them by order line, and the claims
    holding those orders' lines owe that much less (a line owing none is payable). A return
    before the claim is built is found by the build. The consumer commits."""
    session = uow.session
    returned = [(x.order_id, x.line_id, x.quantity) for x in event.lines]
    await store.note_old_parts_returned(session, returned)
    order_ids = {order_id for order_id, _, _ in returned}
    for claim_id in await store.claims_holding(session, order_ids):
        claim = await store.get_claim(session, claim_id)
        assert claim is not None  # found by its lines
        held = [x for x in claim.lines if x.held]
        back = await store.returned_old_parts(session, (x.order_id for x in held))
        owed = {x.order_id: rules.old_parts_owed(x.parts, back.get(x.order_id, {})) for x in held}
        read_version = claim.version
        if claim.old_parts_returned(owed):
            await _save(uow, claim, read_version)


def old_parts_consumer(
    runtime: Runtime, name: str = OLD_PARTS_CONSUMER, subject: str = OLD_PARTS_SUBJECT
) -> EventConsumer:
    return runtime.consumer(
        name,
        INVENTORY_STREAM,
        [subject],
        {
            inventory_events_pb2.OldPartsReturned.DESCRIPTOR.full_name: (
                inventory_events_pb2.OldPartsReturned,
                old_parts_returned,
            )
        },
    )
