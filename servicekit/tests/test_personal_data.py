"""Crypto-shredding against a real NATS server: one data key per phone however many processes
ask at once, found by its id, and gone for good (no revision, no marker) once shredded."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from nats.js import JetStreamContext

from servicekit import bus
from servicekit.personal_data import (
    BUCKET,
    STREAM,
    DataKey,
    InMemoryKeys,
    KeyShredded,
    PersonalDataKeys,
    subject_ref,
)
from servicekit.testing import NatsServer

PEPPER = b"test-pepper"


def new_phone() -> str:
    # The server and its bucket live for the whole session: each test a phone of its own.
    return "139" + "".join(secrets.choice("0123456789") for _ in range(8))


@pytest.fixture
async def js(nats_server: NatsServer) -> AsyncIterator[JetStreamContext]:
    nc = await bus.connect(nats_server.url, "personal-data-test", nats_server.auth())
    yield nc.jetstream()
    await nc.close()


async def messages_on(js: JetStreamContext, subject: str) -> int:
    info = await js.stream_info(STREAM, subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


def test_a_sealed_value_opens_only_with_its_key_and_for_its_order() -> None:
    key = DataKey(secrets.token_hex(16), secrets.token_bytes(32))
    sealed = key.seal("张三 13812345678".encode(), "order-1")
    assert b"13812345678" not in sealed
    assert key.open(sealed, "order-1").decode() == "张三 13812345678"
    with pytest.raises(ValueError):
        key.open(sealed, "order-2")  # copied into another order's event
    with pytest.raises(ValueError):
        DataKey(key.key_id, secrets.token_bytes(32)).open(sealed, "order-1")


def test_the_key_name_follows_the_phone_not_how_it_was_typed() -> None:
    assert subject_ref(PEPPER, "１３８１２３４５６７８ ") == subject_ref(PEPPER, "13812345678")
    assert subject_ref(PEPPER, "13812345678") != subject_ref(b"other", "13812345678")
    assert "13812345678" not in subject_ref(PEPPER, "13812345678")


async def test_replicas_taking_in_one_new_phone_at_once_share_one_key(
    js: JetStreamContext,
) -> None:
    phone = new_phone()
    replicas = [PersonalDataKeys(js, pepper=PEPPER) for _ in range(4)]
    keys = await asyncio.gather(*(r.key_for_phone(phone) for r in replicas for _ in range(3)))
    assert len({k.key_id for k in keys}) == 1
    assert len({k.secret for k in keys}) == 1
    found = await replicas[0].key_by_id(keys[0].key_id)
    assert found == keys[0]
    with pytest.raises(KeyShredded):
        await replicas[0].key_by_id(secrets.token_hex(16))  # never made
    with pytest.raises(ValueError):
        await replicas[0].key_by_id("")  # an event from before sealing


async def test_shredding_leaves_nothing_of_the_key_or_the_phone(js: JetStreamContext) -> None:
    keys = PersonalDataKeys(js, pepper=PEPPER)
    phone = new_phone()
    key = await keys.key_for_phone(phone)
    ref = subject_ref(PEPPER, phone)
    assert await messages_on(js, f"$KV.{BUCKET}.subject.{ref}") == 1

    await keys.shred([key.key_id])
    await keys.shred([key.key_id])  # an erasure asked again

    with pytest.raises(KeyShredded):
        await keys.key_by_id(key.key_id)
    assert await messages_on(js, f"$KV.{BUCKET}.subject.{ref}") == 0
    assert await messages_on(js, f"$KV.{BUCKET}.key.{key.key_id}") == 0
    # The phone taken in again later is a new customer with a new key.
    again = await keys.key_for_phone(phone)
    assert again.key_id != key.key_id


async def test_shredding_an_old_key_spares_the_phones_new_one(js: JetStreamContext) -> None:
    keys = PersonalDataKeys(js, pepper=PEPPER)
    phone = new_phone()
    old = await keys.key_for_phone(phone)
    await keys.shred([old.key_id])
    new = await keys.key_for_phone(phone)
    await keys.shred([old.key_id])
    assert await keys.key_for_phone(phone) == new


async def test_the_in_memory_keys_follow_the_same_rules() -> None:
    keys = InMemoryKeys()
    key = await keys.key_for_phone("13812345678")
    assert await keys.key_for_phone("13812345678") == key
    assert await keys.key_by_id(key.key_id) == key
    await keys.shred([key.key_id])
    with pytest.raises(KeyShredded):
        await keys.key_by_id(key.key_id)
    assert (await keys.key_for_phone("13812345678")).key_id != key.key_id


async def test_a_key_made_while_the_broker_is_away_opens_once_its_entry_is_stored(
    js: JetStreamContext, nats_server: NatsServer
) -> None:
    """Intake does not wait for the broker: a key for the one order, whose entry the outbox
    stores later; stored as handed over, it opens and shreds like any other."""
    nc = await bus.connect(nats_server.url, "away", nats_server.auth())
    away = nc.jetstream()
    await nc.close()
    made = await PersonalDataKeys(away, pepper=PEPPER).key_for_phone(new_phone())
    assert made.entry is not None
    subject, value = made.entry
    keys = PersonalDataKeys(js, pepper=PEPPER)
    await keys.key_for_phone(new_phone())  # the bucket exists
    await js.publish(subject, value)
    assert (await keys.key_by_id(made.key_id)).secret == made.secret
    await keys.shred([made.key_id])
    with pytest.raises(KeyShredded):
        await keys.key_by_id(made.key_id)
