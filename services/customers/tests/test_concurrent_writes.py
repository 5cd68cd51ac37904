"""Two replicas writing the same customers at once, on PostgreSQL (SQLite has one writer at a
time, so there the same calls take turns): a new phone taken in twice makes one customer, one
new IMEI brought in under two phones at once makes one device (with the later visit's owner),
and merge(A, B) beside merge(B, A) is one merge and one refusal, never a deadlock (a 500)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, NotFound
from servicekit.runtime import Runtime
from servicekit.testing import eventually
from servicekit.timeutil import utc_now
from services.customers import handlers
from services.customers.adapters import repository
from services.customers.adapters.orm import customers, devices
from services.customers.domain.customer import Customer
from services.customers.tests.support import IMEI, OTHER_PHONE, PHONE, Lane, order_received

pytestmark = pytest.mark.service("customers")

_PID = text("SELECT pg_backend_pid()")
_WAITING = text("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = :pid AND NOT granted)")


@pytest.fixture(autouse=True)
def postgresql_only(runtime: Runtime) -> None:
    if runtime.db.engine.dialect.name != "postgresql":
        pytest.skip("row locks and their races are PostgreSQL's (SQLite has one writer)")


async def waiting_for_a_lock(runtime: Runtime, pid: int) -> bool:
    async with runtime.db.session() as session:
        return bool(await session.scalar(_WAITING, {"pid": pid}))


async def test_one_new_phone_taken_in_by_two_replicas_at_once_is_one_customer(
    runtime: Runtime, lane: Lane
) -> None:
    first, second = order_received(lane), order_received(lane)
    second_pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def second_replica() -> None:
        async with runtime.uow() as uow:
            second_pid.set_result(await uow.session.scalar(_PID))
            await handlers.record_order_received(uow, second, lane.keys)
            await uow.commit()

    async with runtime.uow() as uow:
        await handlers.record_order_received(uow, first, lane.keys)
        # The second replica takes the same new phone in before the first commits: there is
        # no row to lock yet, so it must wait for the first's insert and then use its row.
        other = asyncio.create_task(second_replica())
        pid = await second_pid
        await eventually(lambda: waiting_for_a_lock(runtime, pid))
        await uow.commit()
    await other
    async with runtime.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(customers).where(customers.c.phone == PHONE)
        )
        found = await repository.customer_by_phone(session, PHONE)
    assert count == 1
    assert found is not None and found.order_count == 2


async def test_one_new_imei_brought_in_under_two_phones_at_once_is_one_device(
    runtime: Runtime, lane: Lane
) -> None:
    first = order_received(lane)
    later = order_received(lane, phone=OTHER_PHONE, received_at=utc_now() + timedelta(minutes=1))
    second_pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def second_replica() -> None:
        async with runtime.uow() as uow:
            second_pid.set_result(await uow.session.scalar(_PID))
            await handlers.record_order_received(uow, later, lane.keys)
            await uow.commit()

    async with runtime.uow() as uow:
        await handlers.record_order_received(uow, first, lane.keys)
        # The same IMEI comes in under another phone before the first commits: no device row
        # to lock yet, so the second waits for the first's insert and then uses its row.
        other = asyncio.create_task(second_replica())
        pid = await second_pid
        await eventually(lambda: waiting_for_a_lock(runtime, pid))
        await uow.commit()
    await other
    async with runtime.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(devices).where(devices.c.imei == IMEI)
        )
        device = await repository.device_by_imei(session, IMEI)
        owner = await repository.customer_by_phone(session, OTHER_PHONE)
    assert count == 1
    # Brought in last under the other phone: the device changed hands.
    assert device is not None and owner is not None and device.owner_id == owner.id


class LockInterleaving:
    """Holds each merge after the first customer row it locks until the other merge has locked
    one too, or waits for a lock: so two merges that lock in opposite orders meet crosswise."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pids: dict[asyncio.Task[Any], int] = {}
        self.locked: set[asyncio.Task[Any]] = set()
        self.read_customer = repository.customer_by_id

    async def customer_by_id(
        self, session: AsyncConnection, customer_id: str, for_update: bool = False
    ) -> Customer | None:
        task = asyncio.current_task()
        assert task is not None
        if for_update and task not in self.pids:
            self.pids[task] = int(await session.scalar(_PID) or 0)
        found = await self.read_customer(session, customer_id, for_update)
        if for_update and task not in self.locked:
            self.locked.add(task)
            await eventually(lambda: self._other_moved(task))
        return found

    async def _other_moved(self, task: asyncio.Task[Any]) -> bool:
        others = [t for t in self.pids if t is not task]
        if not others:
            return False
        return any(t in self.locked for t in others) or any(
            [await waiting_for_a_lock(self.runtime, self.pids[t]) for t in others]
        )


async def test_two_merges_of_one_pair_in_opposite_orders_are_one_merge_and_one_refusal(
    runtime: Runtime, lane: Lane, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with runtime.uow() as uow:
        await handlers.record_order_received(uow, order_received(lane), lane.keys)
        await handlers.record_order_received(
            uow, order_received(lane, phone=OTHER_PHONE, imei="356938035643809"), lane.keys
        )
        await uow.commit()
    a = (await handlers.find_customer(runtime.uow, PHONE, "")).customer.id
    b = (await handlers.find_customer(runtime.uow, OTHER_PHONE, "")).customer.id
    manager = AuthContext("u-manager", "branch_manager", lane.branch_id)
    interleaving = LockInterleaving(runtime)
    monkeypatch.setattr(repository, "customer_by_id", interleaving.customer_by_id)

    outcomes = await asyncio.gather(
        handlers.merge_customers(runtime.uow, manager, a, b, "same person"),
        handlers.merge_customers(runtime.uow, manager, b, a, "same person"),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1, outcomes
    # The second finds one record merged already (and, in reach by its orders no more, gone).
    assert isinstance(refused[0], Conflict | NotFound), refused[0]
    async with runtime.db.session() as session:
        merged = [await repository.customer_by_id(session, c) for c in (a, b)]
    assert sorted(bool(c and c.merged_into) for c in merged) == [False, True]
