"""The report centre (报表中心) against a scripted day, on the real processes, through the gateway.

A system of its own (fresh databases and streams), so every figure at HQ is this script's alone:
in two stores of Shanghai and one of Zhejiang, orders go their routes (paid repairs picked up,
a QC failure then a pass, two warranty repairs claimed from the manufacturer, one accepted and
paid after its old part came back and one rejected, a wait for parts, a cancel, a decline with
an inspection fee, a quick software order, a repeat repair of an earlier order), follow-up
calls (回访) are recorded with scores, and every figure of /reports/kpis at HQ, a branch and a
store, the stock figures, the reconciliation, drill-downs and the export are compared with
values worked out by hand from the script. Then events already handled are delivered again
(another Nats-Msg-Id, the same event id) and older events of orders and of the claim arrive
late with new ids: nothing moves.

Days: every figure is asked for the period from the Shanghai day the system started to the
day the script ended (the same day but for a run across midnight), so no expectation depends
on the date; the few that would differ across midnight (a day's average stock value) are
checked only when the run stayed within one day.
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from nats.aio.client import Client as NATS

from aftersales.events.v1 import (
    customer_events_pb2,
    events_pb2,
    inventory_events_pb2,
    order_events_pb2,
    settlement_events_pb2,
)
from devtools.system import LocalSystem, SystemConfig
from servicekit.dead_letters import EVENT_ID_HEADER
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.testing import eventually
from servicekit.timeutil import SHANGHAI, shanghai_day, utc_now
from tests.e2e.conftest import Api, repair_order
from tests.e2e.test_repair_lifecycle import ORDERS, Desk

KPIS = "/api/v1/reports/kpis"
CLAIMS = "/api/v1/settlement/claims"
HOUR = 3600.0
TIMELINE_SLACK = 2.0  # seconds an order's turnaround may differ from its timeline's
SKETCH_ERROR = 0.01  # a branch's or HQ's percentiles come from a sketch within 1% (reporting.proto)
REPORTING_CONSUMERS = ("reporting-orders", "reporting-customers", "reporting-inventory")


@dataclass
class Run:
    system: LocalSystem
    started_on: date  # the Shanghai day before the system (and its opening stock) started


@pytest.fixture(scope="module")
async def own_system(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """The whole system started for this module alone: HQ's figures are the script's only."""
    folder: Path = tmp_path_factory.mktemp("report-centre")
    local = LocalSystem(SystemConfig.for_tests(folder, env={"RATE_LIMIT_PER_SECOND": "0"}))
    started_on = shanghai_day(utc_now())
    try:
        await local.start()
        yield Run(local, started_on)
    finally:
        local.stop()
        await local.drop_schemas()
    assert local.bus_refusals() == []


@pytest.fixture(scope="module")
async def own_api(own_system: Run) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=own_system.system.gateway_url, timeout=10) as client:
        yield Api(client)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Order:
    """One order of the script and what happened to it, as the API answered."""

    name: str
    desk: Desk
    issued_cost_fen: int = 0  # cost of the parts issued to it (standard cost: all stock was)
    satisfaction: int = 0  # the follow-up's score when the call reached the customer
    events: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.desk.order["id"])

    @property
    def order(self) -> dict[str, Any]:
        return self.desk.order

    def at(self, status: str) -> datetime | None:
        """When the order first went into `status` (its timeline)."""
        times = [moment(e["at"]) for e in self.order["timeline"] if e["status"] == status]
        return min(times) if times else None

    @property
    def ready_at(self) -> datetime | None:
        """Ready for pickup, or a quick order's completion (ready and closed at once)."""
        done = [moment(e["at"]) for e in self.order["timeline"] if e["step"] == "complete"]
        return self.at("ready_for_pickup") or (done[0] if done else None)

    @property
    def turnaround_seconds(self) -> int | None:
        ready, received = self.ready_at, self.at("received")
        if ready is None or received is None:
            return None
        return int((ready - received).total_seconds())

    @property
    def paid_fen(self) -> int:
        return sum(int(p["amount_fen"]) for p in self.order.get("payments", []))


class Script:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.orders: dict[str, Order] = {}
        self.costs: dict[str, int] = {}
        self.retail: dict[str, int] = {}

    async def take_in(
        self, name: str, clerk: str, brand: str, model: str, *, warranty: bool, **extra: Any
    ) -> Order:
        body = repair_order(**extra)
        body["device"].update(brand=brand, model=model)
        if not warranty:
            body["device"]["purchase_date"] = None  # no proof of purchase: the customer pays
        created = await self.api.post(clerk, ORDERS, body, str(uuid.uuid4()))
        assert created.status_code == 201, created.text
        status = created.json()["warranty"]["status"]
        assert status == ("in_warranty" if warranty else "out_of_warranty"), created.text
        read = await self.api.get(clerk, f"{ORDERS}/{created.json()['id']}")
        order = Order(name, Desk(self.api, read.json(), read.headers["ETag"]))
        self.orders[name] = order
        return order

    async def part_of(
        self,
        warehouse: str,
        brand: str,
        model: str,
        keeper: str,
        enough: int = 2,
        category: str = "screen",
    ) -> str:
        """A plain part of the model and category the warehouse holds at least `enough` of;
        notes its cost and retail price."""
        catalog = await self.api.get(keeper, "/api/v1/parts", brand=brand, limit="100")
        assert catalog.status_code == 200, catalog.text
        standard = {
            p["part_number"]: p["standard_cost_fen"]
            for p in catalog.json()["items"]
            if model in p["compatible_models"] and p["category"] == category
        }
        self.retail.update(
            {p["part_number"]: p["retail_price_fen"] for p in catalog.json()["items"]}
        )
        stock = await self.api.get(keeper, f"/api/v1/warehouses/{warehouse}/stock")
        assert stock.status_code == 200, stock.text
        level = next(
            lv
            for lv in stock.json()["levels"]
            if lv["part_number"] in standard and lv["available"] >= enough
        )
        # Opening stock came in at the catalog's standard cost, so that is what an issue costs.
        assert level["average_cost_fen"] == standard[level["part_number"]]
        self.costs[level["part_number"]] = standard[level["part_number"]]
        return str(level["part_number"])

    async def diagnose_and_quote(
        self, order: Order, tech: str, clerk: str, part: str, level: str, labour: int, qty: int = 1
    ) -> None:
        diagnosis = {
            "fault_code": "F-LCD",
            "actions": ["replace_screen"],
            "parts": [{"part_id": part, "quantity": qty}],
            "repair_level": level,
        }
        await order.desk.take(tech, "diagnosis", diagnosis)
        await order.desk.take(clerk, "quote", {"labour_fen": labour})

    async def repair(
        self, order: Order, tech: str, clerk: str, level: str, qc_failures: int = 0
    ) -> None:
        """Approved, parts issued, repaired (failing QC `qc_failures` times first), picked up
        paying the quote."""
        await order.desk.take(clerk, "approval", {"accepted": True})
        started = await order.desk.take(tech, "repair/start", {})
        order.issued_cost_fen = sum(
            line["issued"] * self.costs[line["part_id"]] for line in started["lines"]
        )
        kept = [line["line_id"] for line in started["lines"] if line["warranty"]]
        finish: dict[str, Any] = {"actions_done": ["replace_screen"], "repair_level": level}
        if kept:
            finish["old_parts_kept"] = kept
        for _ in range(qc_failures):
            await order.desk.take(tech, "repair/finish", finish)
            await order.desk.take(clerk, "qc", {"passed": False, "note": "touch dead"})
        await order.desk.take(tech, "repair/finish", finish)
        await order.desk.take(clerk, "qc", {"passed": True})
        due = order.order["quote"]["total_fen"]
        pay = {"method": "cash", "amount_fen": due} if due else {}
        closed = await order.desk.take(clerk, "pickup", pay)
        assert closed["status"] == "closed"

    async def follow_up(self, agent: str, order: Order, score: int | None) -> None:
        """A call on the order's follow-up: reached with a score, or (None) not reached."""

        async def task() -> dict[str, Any] | None:
            reply = await self.api.get(agent, "/api/v1/follow-ups", limit="100")
            assert reply.status_code == 200, reply.text
            return next((f for f in reply.json()["items"] if f["order_id"] == order.id), None)

        found = await eventually(task, within=20)
        path = f"/api/v1/follow-ups/{found['id']}"
        taken = await self.api.post(agent, f"{path}/take", {})
        assert taken.status_code == 200, taken.text
        call = {"reached": True, "score": score} if score else {"reached": False}
        done = await self.api.post(agent, f"{path}/attempts", call, str(uuid.uuid4()))
        assert done.status_code == 201, done.text
        order.satisfaction = score or 0


async def user_id(api: Api, username: str) -> str:
    reply = await api.get(username, "/api/v1/me")
    assert reply.status_code == 200, reply.text
    return str(reply.json()["id"])


async def claim_step(api: Api, path: str, etag: str, **body: Any) -> httpx.Response:
    headers = {
        **await api.as_user("sh.manager"),
        "If-Match": etag,
        "Idempotency-Key": str(uuid.uuid4()),
    }
    if "csv" in body:
        headers["Content-Type"] = "text/csv"
        return await api.client.post(path, content=body["csv"], headers=headers)
    return await api.client.post(path, json=body.get("json", {}), headers=headers)


async def settle(api: Api, accepted: Order, rejected: Order) -> None:
    """劳务费结算: the month's Huawei claim of SH built, submitted, decided (one line accepted,
    one rejected), the accepted line's old part returned by the keeper, then paid."""
    closed_at = moment(str(accepted.order["closed_at"]))
    month = f"{closed_at.astimezone(SHANGHAI):%Y-%m}"
    built = await api.post("sh.manager", CLAIMS, {"manufacturer": "huawei", "month": month})
    assert built.status_code == 200, built.text
    claim = built.json()
    assert {x["order_id"] for x in claim["lines"]} == {accepted.id, rejected.id}
    path = f"{CLAIMS}/{claim['id']}"
    submitted = await claim_step(api, f"{path}/submit", built.headers["ETag"])
    assert submitted.status_code == 200, submitted.text
    rows = ["order_number,decision,reason_code,amount_fen"]
    for line in claim["lines"]:
        if line["order_id"] == rejected.id:
            rows.append(f"{line['number']},rejected,NO-PROOF,")
        else:
            rows.append(f"{line['number']},accepted,,")
    decided = await claim_step(
        api, f"{path}/decisions", submitted.headers["ETag"], csv=("\n".join(rows) + "\n").encode()
    )
    assert decided.status_code == 200, decided.text

    owed = await api.get("sh001.keeper", "/api/v1/warehouses/WH-SH-001/old-parts")
    assert owed.status_code == 200, owed.text
    batch = {
        "lines": [
            {"order_id": x["order_id"], "line_id": x["line_id"], "quantity": x["owed"]}
            for x in owed.json()["items"]
            if x["order_id"] == accepted.id
        ]
    }
    assert batch["lines"]
    sent = await api.post(
        "sh001.keeper", "/api/v1/warehouses/WH-SH-001/old-part-returns", batch, str(uuid.uuid4())
    )
    assert sent.status_code == 201, sent.text

    async def payable() -> httpx.Response | None:
        read = await api.get("sh.manager", path)
        ready = read.json()["held_fen"] == 0 and read.json()["payable_fen"] > 0
        return read if ready else None

    read = await eventually(payable, within=20)
    # Paid on the 1st of the claim's month: never after today, whatever today is.
    everything = {"amount_fen": read.json()["payable_fen"], "paid_on": month + "-01"}
    paid = await claim_step(api, f"{path}/payments", read.headers["ETag"], json=everything)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"


# What a figure is worked out from, written once: the hand computation of every field of the
# contract's Figures over a set of the script's orders (the definitions of reporting.proto).


def expected_figures(
    received: list[Order],
    closed: list[Order],
    *,
    cancelled: int,
    repeats: int,
    came_back: set[str],
    declined: set[str],
    qc_failed: set[str],
    promised: set[str],
    labour: tuple[int, int, int],
) -> dict[str, Any]:
    """Every figure of a scope whose orders were all received, readied, closed and cancelled
    within the period. `closed` are the closed orders (declined ones among them)."""
    ready = [o for o in received if o.turnaround_seconds is not None]
    turnarounds = sorted(o.turnaround_seconds or 0 for o in ready)
    repaired = [o for o in closed if o.name not in declined]
    first_time = [o for o in repaired if o.name not in qc_failed and o.name not in came_back]
    followed = [o for o in closed if o.satisfaction]
    on_time = [o for o in ready if o.name in promised]  # every promise was the next day
    claimed, accepted, paid = labour
    n = len(received)

    def rank(q: float) -> float | None:
        return turnarounds[math.floor(q * (len(turnarounds) - 1))] / HOUR if turnarounds else None

    return {
        "received": n,
        "closed": len(closed),
        "cancelled": cancelled,
        "ready": len(ready),
        "turnaround_median_hours": rank(0.5),
        "turnaround_p90_hours": rank(0.9),
        "turnaround_mean_hours": sum(turnarounds) / len(ready) / HOUR if ready else None,
        "promised": len([o for o in ready if o.name in promised]),
        "on_time": len(on_time),
        "on_time_rate": 1.0 if on_time else None,
        "repeat_received": repeats,
        "repeat_repair_rate": repeats / n if n else None,
        "repaired": len(repaired),
        "first_time_fixed": len(first_time),
        "first_time_fix_rate": len(first_time) / len(repaired) if repaired else None,
        "followed_up": len(followed),
        "follow_up_rate": len(followed) / len(closed) if closed else None,
        "average_satisfaction": (
            sum(o.satisfaction for o in followed) / len(followed) if followed else None
        ),
        "revenue_fen": sum(o.paid_fen for o in closed),
        "labour_claimed_fen": claimed,
        "labour_accepted_fen": accepted,
        "labour_paid_fen": paid,
    }


def compare(where: str, actual: dict[str, Any], expected: dict[str, Any], exact: bool) -> None:
    """Counts, money and rates exactly; hours within two seconds per order (the script reads
    the times of the order's timeline, stamped a moment before its event, to the millisecond),
    and a branch's or HQ's percentiles within the sketch's 1% besides."""
    for name, want in expected.items():
        got = actual[name]
        if want is None or got is None or isinstance(want, int | str):
            assert got == want, f"{where}.{name}: {got} != {want}"
            continue
        slack = 1e-9
        if name.endswith("_hours"):
            slack += TIMELINE_SLACK / HOUR
            if name in ("turnaround_median_hours", "turnaround_p90_hours") and not exact:
                slack += want * SKETCH_ERROR + 1.0 / HOUR  # a duration under 1 s counts as 1 s
        assert abs(got - want) <= slack, f"{where}.{name}: {got} != {want}"


async def kpis(api: Api, user: str, period: dict[str, str], **scope: str) -> dict[str, Any]:
    reply = await api.get(user, KPIS, **period, **scope)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def settled(system: LocalSystem) -> None:
    """Until reporting's consumers have taken every message their streams hold."""
    nc: NATS = await system.connect_bus()
    try:
        js = nc.jetstream()

        async def caught_up() -> bool:
            for stream, name in zip(
                ("ORDERS", "CUSTOMERS", "INVENTORY"), REPORTING_CONSUMERS, strict=True
            ):
                info = await js.consumer_info(stream, name)
                if info.num_pending or info.num_ack_pending:
                    return False
            return True

        await eventually(caught_up, within=30, interval=0.1)
    finally:
        await nc.close()


async def stream_events(
    system: LocalSystem, stream: str, kind: type[Message], match: Callable[[Any], bool]
) -> list[tuple[Any, Any]]:
    """The messages of a stream holding a `kind` event that `match`es, oldest first, each with
    its event: subject, headers and protobuf payload as the relay published them."""
    nc: NATS = await system.connect_bus()
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            if (msg.headers or {}).get(EVENT_TYPE_HEADER) == kind.DESCRIPTOR.full_name:
                event = kind.FromString(msg.data or b"")
                if match(event):
                    found.append((msg, event))
        return found
    finally:
        await nc.close()


async def order_events(system: LocalSystem, order_id: str) -> dict[str, Any]:
    """The order's messages in ORDERS by step ("intake" for OrderReceived; a step taken twice,
    its first)."""
    found: dict[str, Any] = {}
    received = await stream_events(
        system, "ORDERS", events_pb2.OrderReceived, lambda e: e.order_id == order_id
    )
    found["intake"] = received[0][0]
    steps = await stream_events(
        system, "ORDERS", order_events_pb2.OrderStatusChanged, lambda e: e.order_id == order_id
    )
    for msg, event in steps:
        found.setdefault(event.step, msg)
    return found


async def publish(system: LocalSystem, subject: str, data: bytes, headers: dict[str, str]) -> None:
    nc: NATS = await system.connect_bus()
    try:
        ack = await nc.jetstream().publish(subject, data, headers=headers)
        assert not ack.duplicate
    finally:
        await nc.close()


def round_half_up(numerator: int, denominator: int) -> int:
    return int((Decimal(numerator) / Decimal(denominator)).to_integral_value(ROUND_HALF_UP))


async def test_every_figure_of_a_scripted_day_at_store_branch_and_hq(
    own_system: Run, own_api: Api
) -> None:
    api, system, first_day = own_api, own_system.system, own_system.started_on
    s = Script(api)
    sh001_part = await s.part_of("WH-SH-001", "huawei", "p60", "sh001.keeper", enough=5)
    sh002_part = await s.part_of("WH-SH-002", "xiaomi", "xiaomi14", "sh002.keeper")
    zj_part = await s.part_of("WH-ZJ-001", "samsung", "galaxy-s24", "zj001.keeper")
    zj_battery = await s.part_of(
        "WH-ZJ-001", "samsung", "galaxy-s24", "zj001.keeper", enough=1, category="battery"
    )

    # SH-001 (Shanghai): A1 a paid repair promised for tomorrow, its device later back at
    # SH-002 (R1, a repeat repair); A2 a paid repair failing QC once; W1 and W2 in-warranty
    # Huawei repairs (free) claimed from Huawei: W1 at L2 accepted and paid once its old part is
    # back, W2 at L1 rejected; C1 approved, its part reserved, then cancelled.
    tomorrow = (shanghai_day(utc_now()) + timedelta(days=1)).isoformat()
    a1 = await s.take_in(
        "A1", "sh001.clerk", "huawei", "p60", warranty=False, promised_date=tomorrow
    )
    await s.diagnose_and_quote(a1, "sh001.tech", "sh001.clerk", sh001_part, "L2", 8_000)
    await s.repair(a1, "sh001.tech", "sh001.clerk", "L2")
    a2 = await s.take_in("A2", "sh001.clerk", "huawei", "p60", warranty=False)
    await s.diagnose_and_quote(a2, "sh001.tech", "sh001.clerk", sh001_part, "L2", 5_000)
    await s.repair(a2, "sh001.tech", "sh001.clerk", "L2", qc_failures=1)
    w1 = await s.take_in("W1", "sh001.clerk", "huawei", "p60", warranty=True)
    await s.diagnose_and_quote(w1, "sh001.tech", "sh001.clerk", sh001_part, "L2", 0)
    await s.repair(w1, "sh001.tech", "sh001.clerk", "L2")
    w2 = await s.take_in("W2", "sh001.clerk", "huawei", "p60", warranty=True)
    await s.diagnose_and_quote(w2, "sh001.tech", "sh001.clerk", sh001_part, "L1", 0)
    await s.repair(w2, "sh001.tech", "sh001.clerk", "L1")
    c1 = await s.take_in("C1", "sh001.clerk", "huawei", "p60", warranty=False)
    await s.diagnose_and_quote(c1, "sh001.tech", "sh001.clerk", sh001_part, "L2", 5_000)
    await c1.desk.take("sh001.clerk", "approval", {"accepted": True})
    await c1.desk.take("sh001.clerk", "cancel", {"reason": "customer left"})

    # SH-002: B1 a Xiaomi repair short of its part (more than the store holds): waiting for
    # parts; R1 the device of A1 back (返修), taken in and left open.
    b1 = await s.take_in("B1", "sh002.clerk", "xiaomi", "xiaomi14", warranty=False)
    await s.diagnose_and_quote(b1, "sh002.tech", "sh002.clerk", sh002_part, "L2", 5_000, qty=10)
    await b1.desk.take("sh002.clerk", "approval", {"accepted": True})
    # Ten of a part are above the branch's approval threshold: the manager approves too.
    waiting = await b1.desk.take("sh.manager", "manager-approval", {"approved": True})
    assert waiting["status"] == "waiting_parts"
    short = sum(int(line["quantity"]) - int(line["reserved"]) for line in waiting["lines"])
    back = repair_order(device={**a1.order["device"], "purchase_date": None})
    created = await api.post("sh002.clerk", ORDERS, back, str(uuid.uuid4()))
    assert created.status_code == 201, created.text
    assert created.json()["repeat_of_order_id"] == a1.id
    read = await api.get("sh002.clerk", f"{ORDERS}/{created.json()['id']}")
    r1 = s.orders["R1"] = Order("R1", Desk(api, read.json(), read.headers["ETag"]))

    # ZJ-001 (Zhejiang): Z1 a paid Samsung repair promised for tomorrow; Z2 declined at the
    # quote, returned with an inspection fee; Z3 a quick software order (刷机) and Z4 a quick
    # battery replacement (附件更换, the battery issued from the store's warehouse), each done
    # and paid at the desk by the clerk.
    z1 = await s.take_in(
        "Z1", "zj001.clerk", "samsung", "galaxy-s24", warranty=False, promised_date=tomorrow
    )
    await s.diagnose_and_quote(z1, "zj001.tech", "zj001.clerk", zj_part, "L2", 6_000)
    await s.repair(z1, "zj001.tech", "zj001.clerk", "L2")
    z2 = await s.take_in("Z2", "zj001.clerk", "samsung", "galaxy-s24", warranty=False)
    await s.diagnose_and_quote(z2, "zj001.tech", "zj001.clerk", zj_part, "L3", 90_000)
    await z2.desk.take("zj001.clerk", "approval", {"accepted": False, "note": "too dear"})
    await z2.desk.take("zj001.clerk", "pickup", {"method": "cash", "amount_fen": 3_000})
    z3 = await s.take_in(
        "Z3", "zj001.clerk", "samsung", "galaxy-s24", warranty=False, service_type="software"
    )
    flashed = {"actions_done": ["flash"], "service_fen": 2_000, "method": "cash"}
    done = await z3.desk.take("zj001.clerk", "complete", {**flashed, "amount_fen": 2_000})
    assert done["status"] == "closed"
    z4 = await s.take_in(
        "Z4", "zj001.clerk", "samsung", "galaxy-s24", warranty=False, service_type="accessory"
    )
    swapped = {
        "actions_done": ["replace_battery"],
        "parts": [{"part_id": zj_battery, "quantity": 1}],
        "service_fen": 1_000,
        "method": "cash",
        "amount_fen": 1_000 + s.retail[zj_battery],
    }
    done = await z4.desk.take("zj001.clerk", "complete", swapped)
    assert done["status"] == "closed" and done["lines"][0]["issued"] == 1
    z4.issued_cost_fen = s.costs[zj_battery]

    # 回访: A1 scored 5, A2 3, Z1 4; W1's customer was not reached.
    await s.follow_up("sh.followup", a1, 5)
    await s.follow_up("sh.followup", a2, 3)
    await s.follow_up("sh.followup", w1, None)
    await s.follow_up("zj.followup", z1, 4)

    await settle(api, w1, w2)
    last_day = shanghai_day(utc_now())
    period = {"date_from": first_day.isoformat(), "date_to": last_day.isoformat()}

    # --- What every figure must be, by hand. ---
    sh001 = [a1, a2, w1, w2, c1]
    sh002 = [b1, r1]
    zj001 = [z1, z2, z3, z4]
    rules = {
        "came_back": {"A1"},  # A1's device came back as R1
        "declined": {"Z2"},  # returned unrepaired: closed, not repaired, never ready
        "qc_failed": {"A2"},
        "promised": {"A1", "Z1"},  # promised for the day after intake, ready the same day
    }
    # Huawei's labour prices (demo base data): L2 6,000 fen (W1), L1 3,000 fen (W2). Claimed
    # counts the rejected line too; accepted and paid only W1's.
    labour_sh = (6_000 + 3_000, 6_000, 6_000)
    no_labour = (0, 0, 0)

    def closed_of(orders: list[Order]) -> list[Order]:
        return [o for o in orders if o.order["status"] == "closed"]

    expected = {
        # SH-001: five in, four closed and ready (C1 cancelled); first-time fixed only W1 and
        # W2 (A1 came back, A2 failed QC once); two of four closed followed up (5 and 3).
        ("SH", "SH-001"): expected_figures(
            sh001, closed_of(sh001), cancelled=1, repeats=0, labour=labour_sh, **rules
        ),
        # SH-002: B1 and R1 in, both open; R1 is the one repeat repair of the chain.
        ("SH", "SH-002"): expected_figures(
            sh002, [], cancelled=0, repeats=1, labour=no_labour, **rules
        ),
        ("SH", ""): expected_figures(
            sh001 + sh002, closed_of(sh001), cancelled=1, repeats=1, labour=labour_sh, **rules
        ),
        # ZJ-001: Z1 repaired, on time, scored 4; Z2 declined and closed with its 3,000 fen
        # inspection fee: closed but not repaired, not ready, not followed up.
        ("ZJ", "ZJ-001"): expected_figures(
            zj001, closed_of(zj001), cancelled=0, repeats=0, labour=no_labour, **rules
        ),
        ("ZJ", ""): expected_figures(
            zj001, closed_of(zj001), cancelled=0, repeats=0, labour=no_labour, **rules
        ),
        ("", ""): expected_figures(
            sh001 + sh002 + zj001,
            closed_of(sh001 + zj001),
            cancelled=1,
            repeats=1,
            labour=labour_sh,
            **rules,
        ),
    }
    # Spelled out by hand too, so a slip in expected_figures cannot hide a wrong figure:
    # (received, closed, cancelled, ready, promised, on_time, repeat_received, repaired,
    # first_time_fixed, followed_up), then the rates and money.
    names = (
        "received",
        "closed",
        "cancelled",
        "ready",
        "promised",
        "on_time",
        "repeat_received",
        "repaired",
        "first_time_fixed",
        "followed_up",
    )
    by_hand = {
        # A1 A2 W1 W2 C1 in; all but C1 closed and ready; A1 promised and on time; none a
        # repeat; first-time fixed W1 W2 (A1 came back, A2 failed QC); A1 A2 followed up.
        ("SH", "SH-001"): (5, 4, 1, 4, 1, 1, 0, 4, 2, 2),
        ("SH", "SH-002"): (2, 0, 0, 0, 0, 0, 1, 0, 0, 0),  # B1 waiting, R1 the repeat of A1
        # Z1 to Z4 in and closed; all but Z2 (declined) ready, repaired and first-time fixed;
        # Z1 on time and the only one followed up.
        ("ZJ", "ZJ-001"): (4, 4, 0, 3, 1, 1, 0, 3, 3, 1),
        ("SH", ""): (7, 4, 1, 4, 1, 1, 1, 4, 2, 2),
        ("ZJ", ""): (4, 4, 0, 3, 1, 1, 0, 3, 3, 1),
        ("", ""): (11, 8, 1, 7, 2, 2, 1, 7, 5, 3),
    }
    for key, counts in by_hand.items():
        assert tuple(expected[key][n] for n in names) == counts, key
    rates = ("repeat_repair_rate", "first_time_fix_rate", "follow_up_rate", "average_satisfaction")
    assert tuple(expected[("SH", "SH-001")][n] for n in rates) == (0.0, 0.5, 0.5, 4.0)
    assert tuple(expected[("SH", "SH-002")][n] for n in rates) == (0.5, None, None, None)
    assert tuple(expected[("ZJ", "ZJ-001")][n] for n in rates) == (0.0, 1.0, 0.25, 4.0)
    assert tuple(expected[("", "")][n] for n in rates) == (1 / 11, 5 / 7, 3 / 8, 4.0)
    hq = expected[("", "")]
    # Revenue: what A1, A2 and Z1 paid at pickup, Z2's inspection fee, Z3's service fee and
    # Z4's service fee and battery; warranty work is free.
    z4_paid = 1_000 + s.retail[zj_battery]
    assert z4.paid_fen == z4_paid
    assert hq["revenue_fen"] == a1.paid_fen + a2.paid_fen + z1.paid_fen + 3_000 + 2_000 + z4_paid
    assert a1.paid_fen > 8_000 and a2.paid_fen > 5_000 and w1.paid_fen == w2.paid_fen == 0
    assert expected[("ZJ", "")]["revenue_fen"] == z1.paid_fen + 5_000 + z4_paid

    async def hq_caught_up() -> bool:
        figures = (await kpis(api, "hq.analyst", period))["figures"]
        counts = ("received", "closed", "cancelled", "followed_up", "labour_paid_fen")
        return all(figures[n] == hq[n] for n in counts)

    await eventually(hq_caught_up, within=30, interval=0.2)
    await settled(system)

    tech = {name: await user_id(api, name) for name in ("sh001.tech", "zj001.tech", "zj001.clerk")}
    zero_ages = [{"age": a, "orders": 0} for a in ("0-2", "3-7", "8-14", "15-30", "31+")]
    two_open = [{**zero_ages[0], "orders": 2}, *zero_ages[1:]]
    one_waiting = [{**zero_ages[0], "orders": 1}, *zero_ages[1:]]
    sh_backlog = {  # B1 and R1 came in today (age 0-2); B1 waits for parts since today
        "open": two_open,
        "waiting_parts": one_waiting,
        "swap_limit_near": 0,
        "swap_limit_passed": 0,
    }
    none_open = {
        "open": zero_ages,
        "waiting_parts": zero_ages,
        "swap_limit_near": 0,
        "swap_limit_passed": 0,
    }

    def technician(name: str, done: list[Order], came_back: int) -> dict[str, Any]:
        turnarounds = [o.turnaround_seconds or 0 for o in done]
        scored = [o.satisfaction for o in done if o.satisfaction]
        store = done[0].order["store_id"]
        return {
            "technician_id": tech[name],
            "branch_id": store[:2],
            "store_id": store,
            "completed": len(done),
            "turnaround_mean_hours": sum(turnarounds) / len(done) / HOUR,
            "came_back": came_back,
            "repeat_rate": came_back / len(done),
            "average_satisfaction": sum(scored) / len(scored) if scored else None,
        }

    # sh001.tech finished A1, A2, W1, W2 (A1 came back; A1 and A2 scored 5 and 3);
    # zj001.tech finished Z1 (scored 4); zj001.clerk did Z3's and Z4's quick work at the desk
    # (not called). Z2 was never worked on; SH-002's orders are not yet.
    sh_tech = technician("sh001.tech", [a1, a2, w1, w2], came_back=1)
    zj_techs = [
        technician("zj001.tech", [z1], came_back=0),
        technician("zj001.clerk", [z3, z4], came_back=0),
    ]

    def check_technicians(
        where: str, got: list[dict[str, Any]], want: list[dict[str, Any]]
    ) -> None:
        assert len(got) == len(want), f"{where}: {got}"
        ordered = sorted(want, key=lambda x: (x["store_id"], x["technician_id"]))
        for g, w in zip(got, ordered, strict=True):
            compare(f"{where}.technician", g, w, exact=True)

    scopes = {
        # (user, branch filter, store filter): the scope's key, its backlog, its technicians
        ("hq.analyst", "", ""): (("", ""), sh_backlog, []),
        ("sh.manager", "", ""): (("SH", ""), sh_backlog, [sh_tech]),
        ("hq.analyst", "ZJ", ""): (("ZJ", ""), none_open, zj_techs),
        ("sh.manager", "SH", "SH-001"): (("SH", "SH-001"), none_open, [sh_tech]),
        ("sh002.clerk", "", ""): (("SH", "SH-002"), sh_backlog, []),
        ("zj001.clerk", "", ""): (("ZJ", "ZJ-001"), none_open, zj_techs),
    }
    answers: dict[tuple[str, str], dict[str, Any]] = {}
    for (user, branch, store), (key, backlog, technicians) in scopes.items():
        narrowing = {k: v for k, v in (("branch_id", branch), ("store_id", store)) if v}
        got = answers[key] = await kpis(api, user, period, **narrowing)
        where = f"{key[0] or 'HQ'}/{key[1]}"
        assert (got["branch_id"], got["store_id"]) == (key[0] or None, key[1] or None), where
        assert (got["date_from"], got["date_to"]) == (period["date_from"], period["date_to"])
        compare(where, got["figures"], expected[key], exact=bool(key[1]))
        assert got["orders_received"] == expected[key]["received"]
        assert got["backlog"] == backlog, where
        check_technicians(where, got["technicians"], technicians)

    # The level below: HQ's branches, SH's stores, each with its own figures (a sketch's
    # percentiles at both levels: the breakdown reads no order).
    hq_units = answers[("", "")]["by_unit"]
    assert [(u["branch_id"], u["store_id"]) for u in hq_units] == [("SH", None), ("ZJ", None)]
    for unit in hq_units:
        compare(
            f"HQ.by_unit.{unit['branch_id']}",
            unit["figures"],
            expected[(unit["branch_id"], "")],
            exact=False,
        )
    sh_units = answers[("SH", "")]["by_unit"]
    assert [(u["branch_id"], u["store_id"]) for u in sh_units] == [
        ("SH", "SH-001"),
        ("SH", "SH-002"),
    ]
    for unit in sh_units:
        compare(
            f"SH.by_unit.{unit['store_id']}",
            unit["figures"],
            expected[("SH", unit["store_id"])],
            exact=False,
        )
    assert answers[("SH", "")]["by_store"] == [
        {"branch_id": "SH", "store_id": "SH-001", "orders_received": 5},
        {"branch_id": "SH", "store_id": "SH-002", "orders_received": 2},
    ]
    assert answers[("", "")]["by_store"] == []
    assert answers[("", "")]["by_service_type"] == [
        {"service_type": "accessory", "orders_received": 1},
        {"service_type": "repair", "orders_received": 9},
        {"service_type": "software", "orders_received": 1},
    ]

    # By service type and brand (no percentiles in a split): Huawei repairs are SH-001's five
    # and R1, Samsung's Z1 and Z2, Xiaomi's B1; Z3 the one software order, Z4 the accessory one.
    by_split = {
        ("repair", "huawei"): ([*sh001, r1], closed_of(sh001), 1, 1, labour_sh),
        ("repair", "samsung"): ([z1, z2], [z1, z2], 0, 0, no_labour),
        ("repair", "xiaomi"): ([b1], [], 0, 0, no_labour),
        ("software", "samsung"): ([z3], [z3], 0, 0, no_labour),
        ("accessory", "samsung"): ([z4], [z4], 0, 0, no_labour),
    }
    splits = answers[("", "")]["by_split"]
    assert [(x["service_type"], x["brand"]) for x in splits] == sorted(by_split)
    for split in splits:
        key = (split["service_type"], split["brand"])
        received, closed, cancelled, repeats, labour = by_split[key]
        want = expected_figures(
            received, closed, cancelled=cancelled, repeats=repeats, labour=labour, **rules
        )
        want["turnaround_median_hours"] = want["turnaround_p90_hours"] = None
        compare(f"HQ.by_split.{key}", split["figures"], want, exact=True)

    # Drill-down: the orders behind a figure, exactly.
    async def behind(user: str, figure: str, **scope: str) -> set[str]:
        reply = await api.get(user, f"{KPIS}/orders", figure=figure, **period, **scope)
        assert reply.status_code == 200, reply.text
        assert reply.json()["next_cursor"] is None
        return {o["order_id"] for o in reply.json()["items"]}

    assert await behind("sh.manager", "not_first_time_fixed", store_id="SH-001") == {a1.id, a2.id}
    assert await behind("sh.manager", "followed_up") == {a1.id, a2.id}
    assert await behind("sh.manager", "open") == {b1.id, r1.id}
    assert await behind("sh.manager", "waiting_parts") == {b1.id}
    assert await behind("sh.manager", "repeat_received") == {r1.id}
    assert await behind("sh.manager", "cancelled") == {c1.id}
    assert await behind("hq.analyst", "closed", branch_id="ZJ") == {z1.id, z2.id, z3.id, z4.id}
    assert await behind("zj001.clerk", "ready") == {z1.id, z3.id, z4.id}
    # Paged one at a time, the same four closed orders of ZJ, each once.
    paged: list[str] = []
    cursor: str | None = None
    while True:
        page_params: dict[str, str] = {"cursor": cursor} if cursor else {}
        reply = await api.get(
            "zj.manager", f"{KPIS}/orders", figure="closed", limit="1", **period, **page_params
        )
        assert reply.status_code == 200, reply.text
        paged += [o["order_id"] for o in reply.json()["items"]]
        cursor = reply.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(paged) == sorted([z1.id, z2.id, z3.id, z4.id])
    assert await behind("hq.analyst", "on_time", branch_id="ZJ") == {z1.id}
    assert await behind("hq.analyst", "late", branch_id="ZJ") == set()

    # --- Stock figures: inventory's own books (every warehouse's value) and the issues. ---
    values: dict[tuple[str, str], int] = {}
    listed = await api.get("hq.admin", "/api/v1/warehouses")
    for house in listed.json()["items"]:
        stock = await api.get("hq.admin", f"/api/v1/warehouses/{house['id']}/stock")
        unit = (house["branch_id"], house["store_id"] or "")
        values[unit] = values.get(unit, 0) + sum(lv["value_fen"] for lv in stock.json()["levels"])
    issued = {
        ("SH", "SH-001"): (sum(o.issued_cost_fen for o in (a1, a2, w1, w2)), 4),
        ("ZJ", "ZJ-001"): (z1.issued_cost_fen + z4.issued_cost_fen, 2),
    }
    assert issued[("SH", "SH-001")][0] > 0 and issued[("ZJ", "ZJ-001")][0] > 0
    one_day = first_day == last_day

    def stock_totals(units: list[tuple[str, str]]) -> dict[str, Any]:
        value = sum(values.get(u, 0) for u in units)
        cost = sum(issued.get(u, (0, 0))[0] for u in units)
        orders = sum(issued.get(u, (0, 0))[1] for u in units)
        totals: dict[str, Any] = {
            "inventory_value_fen": value,
            "issued_cost_fen": cost,
            # Every part came in today: none has been held for 90 days, so none is slow.
            "slow_moving_value_fen": 0,
            "parts_cost_fen": cost,  # nothing was returned from an order
            "orders_with_issues": orders,
            "parts_cost_per_order_fen": round_half_up(cost, orders) if orders else None,
        }
        if one_day:
            # One day: its closing value is the average; turnover = value ÷ (issued ÷ 1 day).
            totals["average_inventory_value_fen"] = value
            totals["turnover_days"] = None  # nothing issued: the stock does not turn
            if cost:
                turnover = Decimal(value) * 1 / Decimal(cost)
                totals["turnover_days"] = float(turnover.quantize(Decimal("0.1"), ROUND_HALF_UP))
        return totals

    all_units = sorted(values)
    waiting_part = [{"part_number": sh002_part, "orders": 1, "quantity": short}]
    stock_scopes = {
        ("hq.analyst", "", ""): (all_units, waiting_part),
        ("sh.manager", "", ""): ([u for u in all_units if u[0] == "SH"], waiting_part),
        ("sh.manager", "", "SH-001"): ([("SH", "SH-001")], []),
        ("sh.manager", "", "SH-002"): ([("SH", "SH-002")], waiting_part),
        ("zj.manager", "", "ZJ-001"): ([("ZJ", "ZJ-001")], []),
    }
    stock_answers = {}
    for (user, branch, store), (units, waiting_parts) in stock_scopes.items():
        narrowing = {k: v for k, v in (("branch_id", branch), ("store_id", store)) if v}
        reply = await api.get(user, "/api/v1/reports/stock", **period, **narrowing)
        assert reply.status_code == 200, reply.text
        got = stock_answers[(user, store)] = reply.json()
        want = stock_totals(units)
        assert {k: got["total"][k] for k in want} == want, (user, store)
        assert got["waiting_parts"] == waiting_parts, (user, store)
        if not store:
            by_store = {(x["branch_id"], x["store_id"] or ""): x for x in got["by_store"]}
            for unit in units:
                part = stock_totals([unit])
                assert {k: by_store[unit][k] for k in part} == part, unit

    # 维修记录与用料不符: every part issued is on its order's record and every finished
    # record's part was issued, so nothing is listed.
    mismatches = await api.get("hq.analyst", "/api/v1/reports/record-mismatches")
    assert mismatches.status_code == 200, mismatches.text
    assert mismatches.json()["items"] == []

    # --- The export: the branch's rows, by store and by service type. ---
    export = await api.get("sh.manager", "/api/v1/exports/kpis", format="csv", **period)
    assert export.status_code == 200, export.text
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert [(r["维度"], r["门店"], r["服务类型"], r["接单量"]) for r in rows] == [
        ("门店", "SH-001", "", "5"),
        ("门店", "SH-002", "", "2"),
        ("服务类型", "", "repair", "7"),
    ]
    assert {(r["起始日期"], r["截止日期"]) for r in rows} == {
        (period["date_from"], period["date_to"])
    }

    # --- Redelivered and reordered events change nothing. ---
    before = {
        "kpis": answers,
        "stock": stock_answers,
        "orders": await behind("sh.manager", "open"),
        "mismatches": (await api.get("hq.analyst", "/api/v1/reports/record-mismatches")).json(),
    }
    # Delivered again: A1's pickup, its issue at the warehouse (the ledger row and the order
    # line), A2's follow-up call, and the claim's last change.
    issues = await stream_events(
        system, "INVENTORY", inventory_events_pb2.StockMoved, lambda e: e.document_id == a1.id
    )
    lines = await stream_events(
        system, "INVENTORY", inventory_events_pb2.OrderPartsChanged, lambda e: e.order_id == a1.id
    )
    calls = await stream_events(
        system, "CUSTOMERS", customer_events_pb2.FollowUpRecorded, lambda e: e.order_id == a2.id
    )
    claim = await stream_events(
        system, "ORDERS", settlement_events_pb2.ClaimChanged, lambda e: True
    )
    assert [e.kind for _, e in issues] == ["issue"] and lines and calls
    assert [e.status for _, e in claim][-1] == "paid"
    again = [(await order_events(system, a1.id))["pickup"], issues[0][0], lines[-1][0]]
    for message in [*again, calls[-1][0], claim[-1][0]]:
        headers = dict(message.headers or {})
        # Another Nats-Msg-Id (so the stream takes it), the same event id: the inbox dedupes.
        headers[EVENT_ID_HEADER] = headers[MSG_ID_HEADER]
        headers[MSG_ID_HEADER] = str(uuid.uuid4())
        await publish(system, message.subject, message.data, headers)
    # Older events arriving late, as new events (new ids): C1's intake (it is cancelled),
    # W1's diagnosis (it is closed), B1's quote (it waits for parts), the claim as built.
    late = [
        (await order_events(system, c1.id))["intake"],
        (await order_events(system, w1.id))["diagnosis"],
        (await order_events(system, b1.id))["quote"],
        claim[0][0],  # the claim as built: W1's line held, nothing accepted or paid
    ]
    for message in late:
        headers = dict(message.headers or {})
        headers[MSG_ID_HEADER] = str(uuid.uuid4())
        headers.pop(EVENT_ID_HEADER, None)
        await publish(system, message.subject, message.data, headers)
    await settled(system)
    after_answers = {}
    for (user, branch, store), (key, _, _) in scopes.items():
        narrowing = {k: v for k, v in (("branch_id", branch), ("store_id", store)) if v}
        after_answers[key] = await kpis(api, user, period, **narrowing)
    after_stock = {}
    for user, branch, store in stock_scopes:
        narrowing = {k: v for k, v in (("branch_id", branch), ("store_id", store)) if v}
        reply = await api.get(user, "/api/v1/reports/stock", **period, **narrowing)
        after_stock[(user, store)] = reply.json()
    after = {
        "kpis": after_answers,
        "stock": after_stock,
        "orders": await behind("sh.manager", "open"),
        "mismatches": (await api.get("hq.analyst", "/api/v1/reports/record-mismatches")).json(),
    }
    assert after == before
