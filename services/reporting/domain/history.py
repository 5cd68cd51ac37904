"""A synthetic order history (合成历史) at national scale, to measure the report centre on: the
facts of one store's orders over a span of days, drawn from a seeded generator (pure: the same
seed gives the same history). The rollups of such a history are the sum of the same
`contributions` the consumers add, so a seeded database answers like one fed by events."""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from servicekit.timeutil import SHANGHAI, shanghai_day
from services.reporting.domain.facts import OrderFact

SERVICE_TYPES = (("repair", 0.8), ("swap", 0.06), ("accessory", 0.09), ("software", 0.05))
BRANDS = (
    ("huawei", 0.3),
    ("xiaomi", 0.2),
    ("oppo", 0.15),
    ("vivo", 0.13),
    ("honor", 0.1),
    ("apple", 0.08),
    ("samsung", 0.04),
)
TECHNICIANS_PER_STORE = 3


@functools.cache
def _cumulative(weighted: tuple[tuple[str, float], ...]) -> tuple[list[str], list[float]]:
    return [name for name, _ in weighted], list(itertools.accumulate(w for _, w in weighted))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    # Cumulative weights worked out once: the same draw as choices(names, weights), cheaper.
    names, cumulative = _cumulative(weighted)
    return rng.choices(names, cum_weights=cumulative)[0]


def store_history(
    rng: random.Random,
    branch_id: str,
    store_id: str,
    orders: int,
    first: date,
    last: date,
) -> Iterator[OrderFact]:
    """`orders` orders of one store taken in from `first` to `last` (Shanghai days), in intake
    order, each as far along as it would be at the end of `last`: recent ones still open."""
    # Times in UTC, as the events carry them (and as the database keeps them).
    end = datetime.combine(last + timedelta(days=1), time.min, SHANGHAI).astimezone(UTC)
    start = datetime.combine(first, time(9), SHANGHAI).astimezone(UTC)
    span = (end - start).total_seconds() - 12 * 3600
    moments = sorted(rng.uniform(0, span) for _ in range(orders))
    recent_closed: list[OrderFact] = []
    facts: list[OrderFact] = []
    positions: dict[str, int] = {}
    for n, offset in enumerate(moments):
        received = start + timedelta(seconds=offset)
        fact = _one(rng, branch_id, store_id, f"{store_id}-{n:07d}", received, end)
        if recent_closed and rng.random() < 0.03:
            # 返修: back within 90 days of an earlier repair of this store.
            earlier = rng.choice(recent_closed[-50:])
            if earlier.closed_at and (received - earlier.closed_at).days <= 90:
                fact = replace(fact, repeat_repair=True, repeat_of_order_id=earlier.order_id)
                facts[positions[earlier.order_id]] = replace(earlier, came_back_as=fact.order_id)
                # By identity: comparing facts field by field cost a fifth of the seeding.
                del recent_closed[next(i for i, f in enumerate(recent_closed) if f is earlier)]
        positions[fact.order_id] = len(facts)
        facts.append(fact)
        if fact.repaired:
            recent_closed.append(fact)
            del recent_closed[:-200]
    yield from facts


def _one(
    rng: random.Random,
    branch_id: str,
    store_id: str,
    order_id: str,
    received: datetime,
    end: datetime,
) -> OrderFact:
    # The fields are drawn first and the fact made once: seeding makes ten million of them.
    service_type = _pick(rng, SERVICE_TYPES)
    in_warranty = rng.random() < 0.55
    promised = shanghai_day(received) + timedelta(days=rng.randint(1, 5))
    placed: dict[str, Any] = {
        "order_id": order_id,
        "number": order_id,
        "branch_id": branch_id,
        "store_id": store_id,
        "service_type": service_type,
        "brand": _pick(rng, BRANDS),
        "warranty_status": "in_warranty" if in_warranty else "out_of_warranty",
        "received_at": received,
        "promised_date": promised if rng.random() < 0.9 else None,
    }
    if rng.random() < 0.04:
        cancelled = received + timedelta(hours=rng.uniform(1, 48))
        if cancelled < end:
            return OrderFact(**placed, status="cancelled", version=3, cancelled_at=cancelled)
        return OrderFact(**placed, status="received", version=1)
    quick = service_type in ("accessory", "software")
    hours = rng.uniform(0.2, 2) if quick else rng.lognormvariate(3.2, 0.9)
    waiting = not quick and rng.random() < 0.08
    if waiting:
        hours += rng.uniform(48, 24 * 20)
    ready = received + timedelta(hours=hours)
    technician = f"t-{store_id}-{rng.randrange(TECHNICIANS_PER_STORE)}"
    waiting_at = received + timedelta(hours=rng.uniform(1, 6)) if waiting else None
    if waiting_at is not None and waiting_at < end:
        placed["waiting_parts_at"] = waiting_at
    if ready >= end:
        status = "waiting_parts" if "waiting_parts_at" in placed else "diagnosed"
        return OrderFact(**placed, status=status, version=4)
    worked = ready - timedelta(minutes=rng.uniform(5, 60))
    qc_failures = 0 if quick or rng.random() < 0.93 else 1
    paid = 0 if in_warranty else rng.randrange(5000, 80000, 100)
    repaired: dict[str, Any] = {
        **placed,
        "ready_at": ready,
        "technician_id": technician,
        "technician_version": 6,
        "worked_at": worked,
        "qc_failures": qc_failures,
        "quote_total_fen": paid,
        "repair_level": "" if quick else rng.choice(("L1", "L2", "L3")),
    }
    closed = ready + timedelta(hours=0 if quick else rng.uniform(1, 96))
    if closed >= end:
        return OrderFact(**repaired, status="ready_for_pickup", version=7)
    repaired.update(closed_at=closed, status="closed", version=8, paid_fen=paid)
    if rng.random() < 0.7:
        score = rng.choices((5, 4, 3, 2, 1), (0.55, 0.3, 0.1, 0.03, 0.02))[0]
        repaired.update(follow_up_attempt=1, follow_up_state="done", satisfaction=score)
    if in_warranty and not quick:
        state = rng.choices(("held", "claimed", "accepted", "rejected", "paid"), (1, 2, 2, 1, 4))[0]
        repaired.update(
            claim_id=f"claim-{branch_id}-{repaired['brand']}-{shanghai_day(closed):%Y%m}",
            claim_version=1,
            claim_month=f"{shanghai_day(closed):%Y-%m}",
            claim_state=state,
            claim_labour_fen=rng.randrange(2000, 9000, 500),
        )
    return OrderFact(**repaired)
