"""Issue 7's concurrency test: the parts ledger under many clients on the real processes with
PostgreSQL, with the inventory process killed and restarted once in the middle.

CLIENTS clients run OPERATIONS write requests (each POST that reaches the gateway with a new
Idempotency-Key is one operation) against the demo warehouses of branch SH (WH-SH, WH-SH-001,
WH-SH-002) and a few Huawei parts, so that they contend for the same rows:

- the bulk are cheap stock documents: receipts, adjustments (found or missing), write-offs
  (scrap and return to the manufacturer);
- transfers between the three warehouses: requested, approved by the branch, then shipped and
  received (some short) or cancelled;
- a share of order parts through the repair lifecycle at store SH-001 (the only way the gateway
  reaches them): intake, diagnosis with a part, quote, approval (reserve), then the repair start
  (issue) or a cancel (release). A return from an order happens only when a cancel races a
  repair start; this mix does not force it;
- about an eighth of the operations move serialised items (串号) of one swap unit the test adds
  to the catalog: receipts of 1 to 3 new serials, write-offs of a free serial in stock, found
  (a new serial) and missing (a free one) adjustments, and transfers naming free serials, some
  received with one short. A free serial is read from the warehouse's list just before, so
  clients race for the same ones: the loser's 409 is part of the game.

Clients behave as the API asks: a 503 (or a 409 while the first try is still in flight) is
retried with the same Idempotency-Key after Retry-After. A step whose first try took effect
although its answer was lost (409 wrong status, 412 stale version) is recognised by reading the
document again. No request may be answered 500.

Afterwards:

- the conservation check (HQ, ledger against balances, per part and warehouse) is balanced;
- no stock level is negative (on hand, reserved, available) and reserved <= on hand;
- every stock document answered 201 is in the ledger exactly once (its unique document id),
  so no retry duplicated a movement;
- every movement event was delivered once: the inventory outbox has no unpublished or parked
  row; the INVENTORY stream's stock_moved messages since the load began carry distinct
  Nats-Msg-Ids, and as a multiset of (warehouse, part, kind, quantity, document) they equal the
  ledger rows written since then. A movement without its event, an event without its movement
  (a rolled back transaction that still announced), and an event published twice under two ids
  each break that equality; a republish under the same id (the relay killed between publishing
  and marking the row) is dropped by the stream's duplicate window, as designed. A serial's
  rows and events carry the serial, so the equality holds serial by serial;
- every serial is in exactly one place: each serial the test created answers
  GET /serials/{serial} with one place fitting its state (in stock: one warehouse, and listed
  there; in transit: one transfer, shipped and naming it; consumed, scrapped, returned or
  missing: none), its own ledger rows add up to 1 in stock and 0 otherwise, and a serial the
  test saw leave (written off, missing, short) is still gone; across all warehouses no serial
  is listed twice, none the test did not create, and each warehouse's list of the part is as
  long as its on-hand; every serial document answered 201 has one ledger row per serial it
  named, and no (document, kind, serial) row is in the ledger twice.

Runs in the PostgreSQL pass only (TEST_DATABASE_URL), on a system of its own.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from aftersales.events.v1 import inventory_events_pb2
from devtools.system import LocalSystem, SystemConfig
from servicekit.testing import NatsServer, eventually
from tests.e2e.conftest import Api, repair_order

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"),
        reason="PostgreSQL pass only (TEST_DATABASE_URL): issue 7 asks for the real processes "
        "on PostgreSQL",
    ),
    pytest.mark.timeout(420),
]

OPERATIONS = int(os.environ.get("INVENTORY_CONCURRENCY_OPERATIONS", "10000"))
CLIENTS = int(os.environ.get("INVENTORY_CONCURRENCY_CLIENTS", "16"))
PARTS = 4  # Huawei parts of WH-SH-001, shared by every client: contention on purpose
HANG_SECONDS = 20.0
CENTRAL, STORE_1, STORE_2 = "WH-SH", "WH-SH-001", "WH-SH-002"
WAREHOUSES = (CENTRAL, STORE_1, STORE_2)
KEEPERS = {CENTRAL: "sh.manager", STORE_1: "sh001.keeper", STORE_2: "sh002.keeper"}
MANAGER = "sh.manager"
ORDERS = "/api/v1/repair-orders"
IN_FLIGHT = "still in progress"
# Weights of what a client does next; a transfer is 3 or 4 requests, an order 5 or 6. The
# serial_ ones make about an eighth of the requests.
MIX = {
    "receipt": 30,
    "adjustment": 16,
    "write_off": 12,
    "transfer": 9,
    "order": 2,
    "serial_receipt": 4,
    "serial_adjustment": 2,
    "serial_write_off": 2,
    "serial_transfer": 2,
}
# A swap unit of the test's own, so that every serial of it is one the test made.
SERIAL_PART = "HW-SWP-LOAD"
SWAP_UNIT = {
    "brand": "huawei",
    "description": "P60 swap unit 整机备件 (load test)",
    "category": "swap-unit",
    "serialised": True,
    "standard_cost_fen": 150_000,
    "retail_price_fen": 260_000,
    "compatible_models": ["p60"],
}
# A client takes one of the first few free serials it reads, so that clients race for them.
CONTENDED = 4
WRITTEN_OFF = {"scrap": "scrapped", "return_to_manufacturer": "returned_to_manufacturer"}
STOCK_MOVED = "inventory.v1.*.*.stock_moved"
LedgerKey = tuple[str, str, str, int, str, str, str]  # ... document type and id, serial


@dataclass
class Tally:
    operations: Counter[str] = field(default_factory=Counter)  # write requests by kind
    answers: Counter[int] = field(default_factory=Counter)  # every answer, retries included
    retries: int = 0
    answers_503: int = 0
    in_flight_409: int = 0
    hangs: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # final 409s: not enough stock etc.
    took_effect_unseen: int = 0  # steps whose first try worked though its answer was lost
    unexpected: list[str] = field(default_factory=list)
    documents: dict[str, str] = field(default_factory=dict)  # document id -> kind, for 201s
    flows: Counter[str] = field(default_factory=Counter)  # transfers and orders by outcome
    # Serialised items: the serials a 201 document named, by document id; every serial made
    # (received or found); the ones seen leaving for good, with the state they must keep.
    serial_documents: dict[str, list[str]] = field(default_factory=dict)
    serials_made: set[str] = field(default_factory=set)
    serials_gone: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(self.operations.values())


@pytest.fixture
async def own_system(tmp_path: Path) -> AsyncIterator[LocalSystem]:
    local = LocalSystem(SystemConfig.for_tests(tmp_path, env={"RATE_LIMIT_PER_SECOND": "0"}))
    try:
        await local.start()
        yield local
    finally:
        local.stop()
        await local.drop_schemas()


class Client:
    """A well-behaved client: one Idempotency-Key per operation, kept across its retries."""

    def __init__(self, api: Api, tally: Tally) -> None:
        self.api, self.tally = api, tally

    async def send(
        self,
        kind: str,
        username: str,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        self.tally.operations[kind] += 1
        key = str(uuid.uuid4())
        while True:
            sent = {**await self.api.as_user(username), "Idempotency-Key": key, **(headers or {})}
            try:
                reply = await self.api.client.post(path, json=body, headers=sent)
            except httpx.TimeoutException:
                self.tally.hangs += 1
                self.tally.retries += 1
                continue
            self.tally.answers[reply.status_code] += 1
            if reply.status_code == 503:
                self.tally.answers_503 += 1
                self.tally.retries += 1
                await asyncio.sleep(float(reply.headers.get("retry-after", "1")))
                continue
            if reply.status_code == 409 and IN_FLIGHT in reply.text:
                self.tally.in_flight_409 += 1
                self.tally.retries += 1
                await asyncio.sleep(0.2)
                continue
            if reply.status_code >= 500:
                self.tally.unexpected.append(f"{kind} {path}: {reply.status_code} {reply.text}")
            return reply

    async def read(self, username: str, path: str, **params: str) -> httpx.Response:
        while True:
            try:
                reply = await self.api.get(username, path, **params)
            except httpx.TimeoutException:
                self.tally.hangs += 1
                continue
            if reply.status_code != 503:
                return reply
            await asyncio.sleep(float(reply.headers.get("retry-after", "1")))

    def expect(self, reply: httpx.Response, *statuses: int) -> bool:
        """True on success; a 409 (not enough stock, wrong status) is counted as refused."""
        if reply.status_code in statuses:
            return True
        if reply.status_code == 409:
            self.tally.refused[reply.json().get("detail", "")[:60]] += 1
        else:
            self.tally.unexpected.append(
                f"{reply.request.url.path}: {reply.status_code} {reply.text}"
            )
        return False

    # Stock documents: each with a document id of its own, to find it in the ledger after.

    async def receipt(self, warehouse: str, part: str) -> None:
        doc = f"GRN-{uuid.uuid4().hex[:16]}"
        body = {
            "part_number": part,
            "quantity": random.randint(1, 4),
            "unit_cost_fen": random.randint(10_000, 60_000),
            "document_id": doc,
        }
        path = f"/api/v1/warehouses/{warehouse}/receipts"
        if self.expect(await self.send("receipt", KEEPERS[warehouse], path, body), 201):
            self.tally.documents[doc] = "receipt"

    async def adjustment(self, warehouse: str, part: str) -> None:
        doc = f"ADJ-{uuid.uuid4().hex[:16]}"
        quantity = random.choice((-2, -1, -1, 1, 1, 2))
        body = {"part_number": part, "quantity": quantity, "reason": "盘点差异", "document_id": doc}
        path = f"/api/v1/warehouses/{warehouse}/adjustments"
        if self.expect(await self.send("adjustment", KEEPERS[warehouse], path, body), 201):
            self.tally.documents[doc] = "adjustment"

    async def write_off(self, warehouse: str, part: str) -> None:
        doc = f"WO-{uuid.uuid4().hex[:16]}"
        kind = random.choice(("scrap", "return_to_manufacturer"))
        body = {
            "part_number": part,
            "quantity": 1,
            "kind": kind,
            "reason": "损坏",
            "document_id": doc,
        }
        path = f"/api/v1/warehouses/{warehouse}/write-offs"
        if self.expect(await self.send("write_off", KEEPERS[warehouse], path, body), 201):
            self.tally.documents[doc] = kind

    # Serialised items: the test's swap unit, each unit named by its serial.

    async def free_serials(self, warehouse: str) -> list[str]:
        """The first few serials of the swap unit in stock in the warehouse and held for no
        order: the ones other clients are likely to take too."""
        path = f"/api/v1/warehouses/{warehouse}/serials"
        reply = await self.read(MANAGER, path, part_number=SERIAL_PART)
        if not self.expect(reply, 200):
            return []
        return [x["serial"] for x in reply.json()["items"] if x["order_id"] is None][:CONTENDED]

    def booked(self, document: str, kind: str, serials: list[str]) -> None:
        self.tally.documents[document] = kind
        self.tally.serial_documents[document] = serials

    async def serial_receipt(self, warehouse: str) -> None:
        doc = f"GRN-{uuid.uuid4().hex[:16]}"
        serials = new_serials(random.randint(1, 3))
        body = {
            "part_number": SERIAL_PART,
            "quantity": len(serials),
            "unit_cost_fen": random.randint(120_000, 180_000),
            "document_id": doc,
            "serials": serials,
        }
        path = f"/api/v1/warehouses/{warehouse}/receipts"
        if self.expect(await self.send("serial_receipt", KEEPERS[warehouse], path, body), 201):
            self.booked(doc, "receipt", serials)
            self.tally.serials_made.update(serials)

    async def serial_adjustment(self, warehouse: str) -> None:
        """A serial found (a new one) or missing (a free one in stock)."""
        if random.random() < 0.5:
            serials, quantity = new_serials(1), 1
        else:
            free = await self.free_serials(warehouse)
            if not free:
                self.tally.flows["serial missing: none free"] += 1
                return
            serials, quantity = [random.choice(free)], -1
        doc = f"ADJ-{uuid.uuid4().hex[:16]}"
        body = {
            "part_number": SERIAL_PART,
            "quantity": quantity,
            "reason": "盘点差异",
            "document_id": doc,
            "serials": serials,
        }
        path = f"/api/v1/warehouses/{warehouse}/adjustments"
        # A swap unit is worth more than a keeper may adjust alone: the branch manager does.
        if self.expect(await self.send("serial_adjustment", MANAGER, path, body), 201):
            self.booked(doc, "adjustment", serials)
            if quantity > 0:
                self.tally.serials_made.update(serials)
            else:
                self.tally.serials_gone[serials[0]] = "missing"

    async def serial_write_off(self, warehouse: str) -> None:
        free = await self.free_serials(warehouse)
        if not free:
            self.tally.flows["serial write-off: none free"] += 1
            return
        serial = random.choice(free)
        doc = f"WO-{uuid.uuid4().hex[:16]}"
        kind = random.choice(tuple(WRITTEN_OFF))
        body = {
            "part_number": SERIAL_PART,
            "quantity": 1,
            "kind": kind,
            "reason": "损坏",
            "document_id": doc,
            "serials": [serial],
        }
        path = f"/api/v1/warehouses/{warehouse}/write-offs"
        if self.expect(await self.send("serial_write_off", KEEPERS[warehouse], path, body), 201):
            self.booked(doc, kind, [serial])
            self.tally.serials_gone[serial] = WRITTEN_OFF[kind]

    # Transfers: request, approve, then ship and receive (some short), or cancel.

    async def transfer_step(
        self, path: str, step: str, username: str, body: dict[str, Any], after: str, name: str
    ) -> bool:
        reply = await self.send(f"{name}_{step}", username, f"{path}/{step}", body)
        if reply.status_code == 200:
            return True
        if reply.status_code == 409:
            # Its first try may have taken effect with the answer lost (inventory killed).
            now = await self.read(MANAGER, path)
            if now.status_code == 200 and now.json()["status"] == after:
                self.tally.took_effect_unseen += 1
                return True
        return self.expect(reply, 200)

    async def transfer(self, parts: list[str]) -> None:
        source, target = random.sample(WAREHOUSES, 2)
        lines = [
            {"part_number": p, "quantity": random.randint(1, 3)}
            for p in random.sample(parts, random.randint(1, 2))
        ]
        short = {"part_number": lines[0]["part_number"], "short": 1}
        await self.move("transfer", source, target, lines, short if random.random() < 0.2 else None)

    async def serial_transfer(self) -> None:
        """1 or 2 free serials of the sender, named on the request; a quarter arrive one short."""
        source, target = random.sample(WAREHOUSES, 2)
        free = await self.free_serials(source)
        if not free:
            self.tally.flows["serial transfer: none free"] += 1
            return
        serials = random.sample(free, min(len(free), random.randint(1, 2)))
        lines = [{"part_number": SERIAL_PART, "quantity": len(serials), "serials": serials}]
        short = None
        if random.random() < 0.25:
            short = {"part_number": SERIAL_PART, "short": 1, "short_serials": serials[:1]}
        if await self.move("serial_transfer", source, target, lines, short) and short:
            self.tally.serials_gone[serials[0]] = "missing"

    async def move(
        self,
        name: str,
        source: str,
        target: str,
        lines: list[dict[str, Any]],
        short: dict[str, Any] | None,
    ) -> bool:
        """Request, approve, then ship and receive (`short` its discrepancy), or cancel; True
        when received."""
        label = name.replace("_", " ")
        body = {"from_warehouse_id": source, "to_warehouse_id": target, "lines": lines}
        reply = await self.send(f"{name}_request", KEEPERS[target], "/api/v1/transfers", body)
        if not self.expect(reply, 201):
            self.tally.flows[f"{label} refused at request"] += 1
            return False
        path = f"/api/v1/transfers/{reply.json()['id']}"
        if not await self.transfer_step(path, "approve", MANAGER, {}, "approved", name):
            self.tally.flows[f"{label} not approved"] += 1
            return False
        if random.random() < 0.15:
            done = await self.transfer_step(path, "cancel", MANAGER, {}, "cancelled", name)
            self.tally.flows[f"{label} cancelled" if done else f"{label} cancel refused"] += 1
            return False
        if not await self.transfer_step(path, "ship", MANAGER, {}, "shipped", name):
            # Not enough at the sender, or a named serial has left it meanwhile.
            self.tally.flows[f"{label} ship refused"] += 1
            await self.transfer_step(path, "cancel", MANAGER, {}, "cancelled", name)
            return False
        received = {"discrepancies": [short]} if short else {}
        done = await self.transfer_step(
            path, "receive", KEEPERS[target], received, "received", name
        )
        self.tally.flows[f"{label} received" if done else f"{label} receive refused"] += 1
        return done

    # Order parts through the repair lifecycle at SH-001.

    async def order_step(
        self,
        order: tuple[str, str],
        username: str,
        step: str,
        body: dict[str, Any],
        after: tuple[str, ...],
    ) -> tuple[str, str] | None:
        """One step on (order id, ETag); the order's status and ETag after it, or None."""
        path = f"{ORDERS}/{order[0]}"
        kind = f"order_{step.replace('/', '_')}"
        reply = await self.send(kind, username, f"{path}/{step}", body, {"If-Match": order[1]})
        if reply.status_code == 200:
            return reply.json()["status"], reply.headers["ETag"]
        if reply.status_code in (409, 412):
            now = await self.read(username, path)
            if now.status_code == 200 and now.json()["status"] in after:
                self.tally.took_effect_unseen += 1
                return now.json()["status"], now.headers["ETag"]
        self.expect(reply, 200)
        return None

    async def order(self, parts: list[str]) -> None:
        intake = repair_order()
        intake["device"]["purchase_date"] = None  # out of warranty: the customer pays
        reply = await self.send("order_intake", "sh001.clerk", ORDERS, intake)
        if not self.expect(reply, 201):
            return
        diagnosis = {
            "fault_code": "F-LCD",
            "repair_level": "L2",
            "parts": [{"part_id": random.choice(parts), "quantity": 1}],
        }
        steps: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
            ("sh001.tech", "diagnosis", diagnosis, ("diagnosed",)),
            ("sh001.clerk", "quote", {"labour_fen": 5_000}, ("awaiting_approval",)),
            ("sh001.clerk", "approval", {"accepted": True}, ("approved", "waiting_parts")),
        ]
        if random.random() < 0.4:
            steps.append(("sh001.clerk", "cancel", {"reason": "customer left"}, ("cancelled",)))
        else:
            steps.append(("sh001.tech", "repair/start", {}, ("in_repair",)))
        order_id = reply.json()["id"]
        read = await self.read("sh001.clerk", f"{ORDERS}/{order_id}")
        if not self.expect(read, 200):
            return
        etag = read.headers["ETag"]
        for username, step, body, after in steps:
            moved = await self.order_step((order_id, etag), username, step, body, after)
            if moved is None:
                self.tally.flows[f"order stopped at {step}"] += 1
                return
            status, etag = moved
            if status == "waiting_parts":
                self.tally.flows["order waiting for parts"] += 1
                return
        self.tally.flows[f"order {steps[-1][1]}"] += 1

    async def run(self, parts: list[str], stopping: asyncio.Event) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        while not stopping.is_set() and self.tally.done < OPERATIONS:
            kind = random.choices(kinds, weights)[0]
            warehouse, part = random.choice(WAREHOUSES), random.choice(parts)
            if kind == "receipt":
                await self.receipt(warehouse, part)
            elif kind == "adjustment":
                await self.adjustment(warehouse, part)
            elif kind == "write_off":
                await self.write_off(warehouse, part)
            elif kind == "transfer":
                await self.transfer(parts)
            elif kind == "order":
                await self.order(parts)
            elif kind == "serial_receipt":
                await self.serial_receipt(warehouse)
            elif kind == "serial_adjustment":
                await self.serial_adjustment(warehouse)
            elif kind == "serial_write_off":
                await self.serial_write_off(warehouse)
            else:
                await self.serial_transfer()


def new_serials(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:12].upper()
    return [f"LD{tag}{i}" for i in range(n)]


async def huawei_parts(api: Api) -> list[str]:
    catalog = await api.get("sh001.keeper", "/api/v1/parts", brand="huawei", limit="100")
    assert catalog.status_code == 200, catalog.text
    # Cheap enough that a quote stays under the branch's approval threshold.
    huawei = {
        p["part_number"]
        for p in catalog.json()["items"]
        if not p["serialised"] and p["retail_price_fen"] < 80_000
    }
    reply = await api.get("sh001.keeper", f"/api/v1/warehouses/{STORE_1}/stock")
    assert reply.status_code == 200, reply.text
    stocked = [lv["part_number"] for lv in reply.json()["levels"] if lv["part_number"] in huawei]
    assert len(stocked) >= PARTS, stocked
    return sorted(stocked)[:PARTS]


async def ledger_since(api: Api, warehouse: str, after_id: int) -> list[dict[str, Any]]:
    """The warehouse's movements with an id above `after_id` (the ledger is newest first)."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        reply = await api.get("hq.admin", f"/api/v1/warehouses/{warehouse}/movements", **params)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        for row in page["items"]:
            if int(row["id"]) <= after_id:
                return rows
            rows.append(row)
        cursor = page["next_cursor"]
        if not cursor:
            return rows


async def newest_movement(api: Api, warehouse: str) -> int:
    reply = await api.get("hq.admin", f"/api/v1/warehouses/{warehouse}/movements", limit="1")
    assert reply.status_code == 200, reply.text
    items = reply.json()["items"]
    return int(items[0]["id"]) if items else 0


def ledger_key(row: dict[str, Any]) -> LedgerKey:
    return (
        row["warehouse_id"],
        row["part_number"],
        row["kind"],
        int(row["quantity"]),
        row["document_type"],
        row["document_id"],
        "".join(row["serials"]),  # a serialised part's row moves one serial
    )


async def stream_last_seq(nats_url: str) -> int:
    connection = await NatsServer.at(nats_url).connect()
    try:
        info = await connection.jetstream().stream_info("INVENTORY")
        return int(info.state.last_seq)
    finally:
        await connection.close()


async def stock_moved_since(nats_url: str, after_seq: int) -> tuple[Counter[LedgerKey], int, int]:
    """stock_moved events in the INVENTORY stream after `after_seq`: as a multiset of ledger
    keys, their number, and how many distinct Nats-Msg-Ids they carry."""
    connection = await NatsServer.at(nats_url).connect()
    events: Counter[LedgerKey] = Counter()
    ids: set[str] = set()
    count = 0
    try:
        js = connection.jetstream()
        last = int((await js.stream_info("INVENTORY")).state.last_seq)
        if last <= after_seq:
            return events, 0, 0
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=after_seq + 1,
            ack_policy=AckPolicy.NONE,
            filter_subject=STOCK_MOVED,
        )
        subscription = await js.pull_subscribe(
            STOCK_MOVED, durable=None, stream="INVENTORY", config=config
        )
        while True:
            try:
                batch = await subscription.fetch(500, timeout=2)
            except nats.errors.TimeoutError:
                break
            for message in batch:
                event = inventory_events_pb2.StockMoved.FromString(message.data)
                events[
                    (
                        event.warehouse_id,
                        event.part_number,
                        event.kind,
                        event.quantity,
                        event.document_type,
                        event.document_id,
                        event.serial_number,
                    )
                ] += 1
                ids.add((message.headers or {}).get("Nats-Msg-Id", ""))
                count += 1
            if batch and batch[-1].metadata.num_pending == 0:
                break
        await subscription.unsubscribe()
    finally:
        await connection.close()
    return events, count, len(ids)


async def serials_in_place(
    api: Api, tally: Tally, on_hand: dict[str, int]
) -> tuple[list[str], Counter[str], int]:
    """Where the swap unit's serials are, read back through the gateway: what is wrong, the
    serials the test made by state now, and how many are listed in stock.

    `on_hand` is the swap unit's on-hand in every warehouse (0 where it never was)."""
    problems: list[str] = []
    listed: dict[str, list[str]] = {}  # serial -> the warehouses that list it
    for warehouse in on_hand:
        reply = await api.get(
            "hq.admin", f"/api/v1/warehouses/{warehouse}/serials", part_number=SERIAL_PART
        )
        assert reply.status_code == 200, reply.text
        items = reply.json()["items"]
        for x in items:
            listed.setdefault(x["serial"], []).append(warehouse)
        if len(items) != on_hand[warehouse]:
            problems.append(f"{warehouse} lists {len(items)} serials, on hand {on_hand[warehouse]}")
    problems += [f"{s} listed in {ws}" for s, ws in listed.items() if len(ws) > 1]
    problems += [f"{s} listed, never made" for s in set(listed) - tally.serials_made]

    limit = asyncio.Semaphore(8)

    async def trace(serial: str) -> httpx.Response:
        async with limit:
            return await api.get("hq.admin", f"/api/v1/serials/{serial}")

    made = sorted(tally.serials_made)
    states: Counter[str] = Counter()
    in_transit: dict[str, str] = {}
    for serial, reply in zip(made, await asyncio.gather(*(trace(s) for s in made)), strict=True):
        if reply.status_code != 200:
            problems.append(f"{serial}: {reply.status_code} {reply.text}")
            continue
        item = reply.json()
        state, history = item["state"], item["history"]
        states[state] += 1
        place = (item["warehouse_id"], item["transfer_id"])
        rows = sum(int(m["quantity"]) for m in history)
        if state == "in_stock":
            last = history[-1] if history else {}
            fits = (
                place[0] is not None
                and place[1] is None
                and listed.get(serial) == [place[0]]
                and rows == 1
                and (last.get("warehouse_id"), last.get("quantity")) == (place[0], 1)
            )
        elif state == "in_transit":
            fits = place[0] is None and place[1] is not None and serial not in listed and rows == 0
            in_transit[serial] = place[1]
        else:
            fits = place == (None, None) and serial not in listed and rows == 0
        if not fits or item["part_number"] != SERIAL_PART:
            problems.append(
                f"{serial}: {state} at {place}, listed in {listed.get(serial)}, its rows add "
                f"to {rows}"
            )
        gone = tally.serials_gone.get(serial)
        if gone is not None and state != gone:
            problems.append(f"{serial} left as {gone}, now {state} at {place}")
    for serial, transfer_id in in_transit.items():
        reply = await api.get("hq.admin", f"/api/v1/transfers/{transfer_id}")
        assert reply.status_code == 200, reply.text
        doc = reply.json()
        on_it = {s for line in doc["lines"] for s in line["serials"]}
        if doc["status"] != "shipped" or serial not in on_it:
            problems.append(f"{serial} in transit on {transfer_id}, {doc['status']}")
    return problems, states, len(listed)


async def outbox_left(schema: str) -> tuple[int, int]:
    """Unpublished and parked rows of the inventory outbox."""
    url = os.environ["TEST_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            f"SELECT count(*) FILTER (WHERE published_at IS NULL) AS unpublished, "
            f'count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked FROM "{schema}".outbox'
        )
        assert row is not None
        return int(row["unpublished"]), int(row["parked"])
    finally:
        await connection.close()


async def test_ten_thousand_stock_operations_with_inventory_killed_midway_stay_conserved(
    own_system: LocalSystem,
) -> None:
    system = own_system
    limits = httpx.Limits(max_connections=CLIENTS * 2)
    async with httpx.AsyncClient(
        base_url=system.gateway_url, timeout=HANG_SECONDS, limits=limits
    ) as http:
        api = Api(http)
        for user in {*KEEPERS.values(), MANAGER, "hq.admin", "sh001.clerk", "sh001.tech"}:
            await api.token(user)
        parts = await huawei_parts(api)
        swap_unit = await api.client.put(
            f"/api/v1/parts/{SERIAL_PART}", json=SWAP_UNIT, headers=await api.as_user("hq.admin")
        )
        assert swap_unit.status_code == 200, swap_unit.text
        baseline = {w: await newest_movement(api, w) for w in WAREHOUSES}
        stream_baseline = await stream_last_seq(system.nats_url)

        tally = Tally()
        stopping = asyncio.Event()
        started = time.monotonic()
        clients = [
            asyncio.create_task(Client(api, tally).run(parts, stopping)) for _ in range(CLIENTS)
        ]
        try:

            async def halfway() -> bool:
                return tally.done >= OPERATIONS // 2

            await eventually(halfway, within=180, interval=0.05)
            killed_at, killed_after = time.monotonic(), tally.done
            system.kill("inventory")
            await asyncio.sleep(1)
            await system.restart("inventory")
            await api.wait_for_state("inventory", "serving", timeout=60)
            back_after = time.monotonic() - killed_at
            done = await asyncio.wait_for(asyncio.gather(*clients), timeout=240)
            assert done
        finally:
            stopping.set()
            for task in clients:
                task.cancel()
        load_seconds = time.monotonic() - started

        checks_started = time.monotonic()
        reply = await api.get("hq.admin", "/api/v1/inventory/conservation")
        assert reply.status_code == 200, reply.text
        conservation = reply.json()
        off = [p for p in conservation["parts"] if not p["balanced"]]

        negative = []
        swap_units: dict[str, int] = {}  # on hand of the swap unit, by warehouse
        for warehouse in (
            w["id"] for w in (await api.get("hq.admin", "/api/v1/warehouses")).json()["items"]
        ):
            stock = await api.get("hq.admin", f"/api/v1/warehouses/{warehouse}/stock")
            assert stock.status_code == 200, stock.text
            swap_units[warehouse] = 0
            for lv in stock.json()["levels"]:
                if (
                    min(lv["on_hand"], lv["reserved"], lv["available"]) < 0
                    or lv["reserved"] > lv["on_hand"]
                ):
                    negative.append((warehouse, lv))
                if lv["part_number"] == SERIAL_PART:
                    swap_units[warehouse] = lv["on_hand"]
        misplaced, serial_states, serials_listed = await serials_in_place(api, tally, swap_units)

        async def outbox_drained() -> tuple[int, int] | None:
            left = await outbox_left(f"{system.config.schema_prefix}inventory")
            return left if left[0] == 0 else None

        unpublished, parked = await eventually(outbox_drained, within=60, interval=0.5)
        ledger: list[dict[str, Any]] = []
        for warehouse in WAREHOUSES:
            ledger += await ledger_since(api, warehouse, baseline[warehouse])
        in_ledger = Counter(ledger_key(row) for row in ledger)
        events, messages, distinct_ids = await stock_moved_since(system.nats_url, stream_baseline)
        by_document = Counter(
            row["document_id"] for row in ledger if row["document_id"] in tally.documents
        )
        missing = [d for d in tally.documents if by_document[d] == 0]
        # A serial document books one row per serial it names, any other document one row.
        doubled = {
            d: n
            for d, n in by_document.items()
            if n > max(1, len(tally.serial_documents.get(d, ())))
        }
        serial_rows = Counter(
            (row["document_id"], row["kind"], s) for row in ledger for s in row["serials"]
        )
        serials_twice = [key for key, n in serial_rows.items() if n > 1]
        named_in_ledger: dict[str, list[str]] = {}
        for row in ledger:
            if row["document_id"] in tally.serial_documents:
                named_in_ledger.setdefault(row["document_id"], []).extend(row["serials"])
        serials_unlike = {
            d: named_in_ledger.get(d, [])
            for d, serials in tally.serial_documents.items()
            if sorted(named_in_ledger.get(d, [])) != sorted(serials)
        }
        checks_seconds = time.monotonic() - checks_started
        serial_operations = sum(
            n for kind, n in tally.operations.items() if kind.startswith("serial_")
        )

    print(
        f"\n{tally.done} operations by {CLIENTS} clients in {load_seconds:.1f} s "
        f"({tally.done / load_seconds:.0f}/s): {dict(sorted(tally.operations.items()))}\n"
        f"answers {dict(sorted(tally.answers.items()))}; retries {tally.retries} (503: "
        f"{tally.answers_503}, 409 in flight: {tally.in_flight_409}, timeouts {tally.hangs}); "
        f"steps that had taken effect unseen {tally.took_effect_unseen}\n"
        f"refused (409): {dict(tally.refused.most_common(6))}\n"
        f"flows: {dict(sorted(tally.flows.items()))}\n"
        f"inventory killed after {killed_after} operations, serving again after "
        f"{back_after:.1f} s\n"
        f"ledger rows since start {len(ledger)}, stock_moved messages {messages} "
        f"({distinct_ids} distinct Nats-Msg-Ids), outbox unpublished {unpublished} "
        f"parked {parked}; conservation over {len(conservation['parts'])} parts balanced "
        f"{conservation['balanced']}; checks {checks_seconds:.1f} s\n"
        f"serials: {serial_operations} serial operations ({serial_operations / tally.done:.0%}); "
        f"{len(tally.serials_made)} serials made, {len(tally.serial_documents)} serial "
        f"documents, {len(serial_rows)} serial ledger rows; now "
        f"{dict(sorted(serial_states.items()))}, {serials_listed} listed in stock "
        f"({sum(swap_units.values())} on hand), {len(tally.serials_gone)} seen leaving"
    )
    assert tally.done >= OPERATIONS
    assert tally.answers[500] == 0, f"a request was answered 500: {tally.unexpected[:5]}"
    assert not tally.unexpected, tally.unexpected[:5]
    assert tally.answers_503 > 0, "the kill was never seen: did inventory stop?"
    assert conservation["balanced"] is True and not off, off[:5]
    assert not [p for p in conservation["parts"] if p["serials_off"]]
    assert not negative, negative[:5]
    assert not missing, (
        f"{len(missing)} documents answered 201 are not in the ledger: {missing[:5]}"
    )
    assert not doubled, f"retries booked documents twice: {list(doubled.items())[:5]}"
    assert not serials_twice, f"serial rows booked twice: {serials_twice[:5]}"
    assert not serials_unlike, (
        f"serial documents whose rows are not their serials: {list(serials_unlike.items())[:5]}"
    )
    assert (unpublished, parked) == (0, 0)
    assert messages == distinct_ids, "a movement event is in the stream twice"
    assert messages == len(ledger) and events == in_ledger, (
        f"events and ledger differ: only in ledger {list((in_ledger - events).items())[:5]}, "
        f"only in events {list((events - in_ledger).items())[:5]}"
    )
    assert tally.serials_made and tally.serials_gone, "the serial mix did nothing"
    assert not misplaced, f"serials not in exactly one place: {misplaced[:5]}"
