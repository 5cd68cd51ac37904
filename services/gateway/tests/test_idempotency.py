"""The Idempotency-Key store against a real, migrated database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from servicekit.db import Database
from servicekit.errors import Conflict, InvalidInput
from services.gateway.idempotency import (
    IdempotencyStore,
    StoredResponse,
    body_hash,
    check_key,
)
from services.gateway.orm import idempotency_keys

CREATED = StoredResponse(201, {"content-type": "application/json", "location": "/x/1"}, b'{"id":1}')
HASH = body_hash(b'{"a":1}')
ARGS = ("u-1", "k-1", "POST", "/api/v1/repair-orders")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(db: Database, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(db, clock)


async def test_same_request_replays_the_stored_response(store: IdempotencyStore) -> None:
    lease = await store.begin(*ARGS, HASH)
    assert isinstance(lease, str)
    await store.finish("u-1", "k-1", lease, CREATED)
    assert await store.begin(*ARGS, HASH) == CREATED
    replay = CREATED.replay()
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["location"] == "/x/1"


async def test_another_body_or_path_with_the_key_is_422(store: IdempotencyStore) -> None:
    lease = await store.begin(*ARGS, HASH)
    assert isinstance(lease, str)
    await store.finish("u-1", "k-1", lease, CREATED)
    with pytest.raises(InvalidInput) as raised:
        await store.begin(*ARGS, body_hash(b'{"a":2}'))
    assert raised.value.errors[0].field == "Idempotency-Key"
    with pytest.raises(InvalidInput):
        await store.begin("u-1", "k-1", "POST", "/api/v1/other", HASH)


async def test_keys_belong_to_their_user(store: IdempotencyStore) -> None:
    assert isinstance(await store.begin(*ARGS, HASH), str)
    assert isinstance(await store.begin("u-2", *ARGS[1:], HASH), str)


async def test_in_flight_is_409_until_it_is_stale(store: IdempotencyStore, clock: Clock) -> None:
    first = await store.begin(*ARGS, HASH)
    with pytest.raises(Conflict):
        await store.begin(*ARGS, HASH)
    clock.now += timedelta(seconds=61)
    second = await store.begin(*ARGS, HASH)
    assert isinstance(second, str) and second != first
    # The request that was taken over can no longer finish the entry; the new owner can.
    assert isinstance(first, str)
    await store.finish("u-1", "k-1", first, StoredResponse(201, {}, b"stale"))
    with pytest.raises(Conflict):
        await store.begin(*ARGS, HASH)
    await store.finish("u-1", "k-1", second, CREATED)
    assert await store.begin(*ARGS, HASH) == CREATED


async def test_released_keys_run_again(store: IdempotencyStore) -> None:
    lease = await store.begin(*ARGS, HASH)
    assert isinstance(lease, str)
    await store.release("u-1", "k-1", lease)
    assert isinstance(await store.begin(*ARGS, HASH), str)


async def test_concurrent_first_requests_one_wins(store: IdempotencyStore) -> None:
    results = await asyncio.gather(
        *(store.begin(*ARGS, HASH) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, str) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 4


async def test_keys_expire_after_a_day(store: IdempotencyStore, clock: Clock, db: Database) -> None:
    lease = await store.begin(*ARGS, HASH)
    assert isinstance(lease, str)
    await store.finish("u-1", "k-1", lease, CREATED)
    other = await store.begin("u-1", "k-2", *ARGS[2:], HASH)
    assert isinstance(other, str)
    clock.now += timedelta(hours=12)
    fresh = await store.begin("u-1", "k-3", *ARGS[2:], HASH)
    assert isinstance(fresh, str)
    clock.now += timedelta(hours=12, seconds=1)
    # An expired key is a new request again, even with another body.
    assert isinstance(await store.begin(*ARGS, body_hash(b"other")), str)
    assert await store.prune() == 1  # k-2; k-1 was renewed, k-3 is 12 hours old
    async with db.engine.connect() as conn:
        count = await conn.scalar(select(func.count()).select_from(idempotency_keys))
    assert count == 2


@pytest.mark.parametrize("key", ["", "x" * 201, "line\nbreak", "键"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(InvalidInput):
        check_key(key)


def test_good_keys() -> None:
    check_key("x" * 200)
    check_key("4f2a-9c1e 7/+=")


async def test_a_claim_is_one_statement_taken_or_not(store: IdempotencyStore, db: Database) -> None:
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        lease = await store.begin(*ARGS, HASH)
        assert isinstance(lease, str)
        assert len(statements) == 1
        assert "ON CONFLICT" in statements[0] and "RETURNING" in statements[0]
        # The key taken: the same statement says so (no error to catch), then the entry is read.
        statements.clear()
        with pytest.raises(Conflict):
            await store.begin(*ARGS, HASH)
        assert "ON CONFLICT" in statements[0]
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
