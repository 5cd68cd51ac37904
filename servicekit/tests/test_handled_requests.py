"""The handled-requests log on a real database: a committed try is found again by its request
id, the same id with another request is refused, two tries racing leave one, and a key past its
lifetime is free again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from servicekit import idempotency
from servicekit.db import Database, new_metadata
from servicekit.errors import Conflict, InvalidInput
from servicekit.idempotency import KEY_LIFETIME, ReceivedRequest
from servicekit.outbox import outbox_table
from servicekit.testing import DatabaseTarget, database_with
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork

metadata = new_metadata()
outbox = outbox_table(metadata)
handled = idempotency.handled_requests_table(metadata)

REQUEST = ReceivedRequest("u-1:key-1", "/aftersales.inventory.v1.InventoryService/X", "a" * 64)


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    async with database_with(db_target, metadata) as database:
        yield database


def new_uow(db: Database) -> UnitOfWork:
    return UnitOfWork(db, outbox, lambda: None, handled)


async def handle(db: Database, request: ReceivedRequest | None, result: str) -> str:
    """A use case as services write one: an earlier try's result, else this try's."""
    held = idempotency.hold_received(request)
    try:
        async with new_uow(db) as uow:
            if (earlier := await uow.earlier_result()) is not None:
                return earlier
            await uow.commit(result_id=result)
        return result
    finally:
        idempotency.release_received(held)


async def rows(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(select(func.count()).select_from(handled))).scalar_one())


async def test_a_retry_finds_what_the_first_try_made(db: Database) -> None:
    assert await handle(db, REQUEST, "DOC-1") == "DOC-1"
    assert await handle(db, REQUEST, "DOC-2") == "DOC-1"
    assert await rows(db) == 1


async def test_calls_without_a_request_id_are_not_logged(db: Database) -> None:
    assert await handle(db, None, "DOC-1") == "DOC-1"
    assert await handle(db, None, "DOC-2") == "DOC-2"
    assert await rows(db) == 0


async def test_the_same_id_for_another_method_is_another_request(db: Database) -> None:
    other = ReceivedRequest(REQUEST.request_id, "/other/Method", REQUEST.request_hash)
    assert await handle(db, REQUEST, "DOC-1") == "DOC-1"
    assert await handle(db, other, "DOC-2") == "DOC-2"


async def test_the_same_id_with_another_request_is_refused(db: Database) -> None:
    await handle(db, REQUEST, "DOC-1")
    changed = ReceivedRequest(REQUEST.request_id, REQUEST.method, "b" * 64)
    with pytest.raises(InvalidInput) as refused:
        await handle(db, changed, "DOC-2")
    assert refused.value.errors[0].field == "Idempotency-Key"
    assert await rows(db) == 1


async def test_a_try_that_lost_the_race_to_another_is_a_conflict(db: Database) -> None:
    # Both tries found no earlier result; the one that commits second must roll back.
    await handle(db, REQUEST, "DOC-1")
    async with db.session() as session:
        with pytest.raises(Conflict):
            await idempotency.remember(session, handled, REQUEST, "DOC-2", utc_now())
    assert await handle(db, REQUEST, "DOC-3") == "DOC-1"


async def test_a_key_past_its_lifetime_is_free_again(db: Database) -> None:
    await handle(db, REQUEST, "DOC-1")
    later = utc_now() + KEY_LIFETIME + timedelta(minutes=1)
    async with db.session() as session:
        assert await idempotency.earlier_result(session, handled, REQUEST, later) is None
        await session.commit()
    assert await rows(db) == 0
    assert await handle(db, REQUEST, "DOC-2") == "DOC-2"


async def test_pruning_forgets_only_what_is_past_the_lifetime(db: Database) -> None:
    await handle(db, REQUEST, "DOC-1")
    async with db.session() as session:
        assert await idempotency.prune(session, handled, utc_now() - KEY_LIFETIME) == 0
        assert await idempotency.prune(session, handled, utc_now() + timedelta(seconds=1)) == 1
        await session.commit()
    assert await rows(db) == 0


def test_request_ids_are_bounded() -> None:
    idempotency.check_request_id("u-1:" + "k" * 200)
    for bad in ("", "x" * 256):
        with pytest.raises(InvalidInput):
            idempotency.check_request_id(bad)
