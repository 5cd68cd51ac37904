"""Personal data in events, crypto-shredded (PIPL erasure).

Streams keep events for 30 days and dead letters for 90; no erasure can reach into them. So a
customer's name and phone travel only sealed (AES-256-GCM) with a data key of that customer,
and erasure destroys the key: every copy, in any stream or dead letter, becomes unreadable.

The keys live in the JetStream key-value bucket `PERSONAL_DATA_KEYS` (one history entry per
key, so a purge leaves no revision behind). Two entries per key:

- `subject.<ref>`: the key id (16 bytes) and the key (32 bytes), where `ref` is
  HMAC-SHA256(pepper, phone). Orders finds the customer's key by the phone at intake, before
  customers has heard of the customer, and without calling it; the pepper (a secret shared by
  orders and customers) keeps the entry's name from giving the phone away.
- `key.<key id>`: the key and `ref`. Customers opens an event by the key id it carries (a
  random id: nothing can be worked back from it), and erasure finds the `subject` entry of a
  key by it, so a phone the customer no longer has is cleared as well.

Orders creates a key only if none exists (`create` is atomic: of two replicas taking in the
same new phone at once, one wins and the other uses the winner's key). Erasure purges both
entries of every key of the customer's orders from the bucket's stream.

Intake does not wait for the broker: when the bucket cannot be reached at once, orders makes a
key for that order alone and hands its `key.<key id>` entry to its outbox (`DataKey.entry`),
whose relay stores it before any event sealed with it goes out. Erasure finds such a key by
the order like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

BUCKET = "PERSONAL_DATA_KEYS"
STREAM = f"KV_{BUCKET}"  # the stream JetStream keeps a bucket in
PEPPER_ENV = "PERSONAL_DATA_PEPPER"
# `make run` and the tests share this one; production sets PERSONAL_DATA_PEPPER from a Secret
# that orders and customers both mount.
LOCAL_PEPPER = "aftersales-local-development-pepper"

KEY_BYTES = 32
KEY_ID_BYTES = 16
NONCE_BYTES = 12
# Two replicas creating the same new customer's key at once: the loser reads the winner's.
CREATE_ATTEMPTS = 3
# How long intake waits for the bucket before it makes a key of its own (the broker is away).
BUCKET_WAIT_SECONDS = 1.0


class KeyShredded(Exception):
    """The data key is gone (the customer was erased): what it sealed can never be read."""


@dataclass(frozen=True)
class DataKey:
    key_id: str  # hex
    secret: bytes
    # A key made while the bucket was out of reach: its bucket entry (subject, value), for the
    # caller's outbox to store before the events sealed with it.
    entry: tuple[str, bytes] | None = None

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """`context` (the order id) is authenticated with it: a sealed value copied into
        another order's event does not open."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.secret).encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        try:
            return AESGCM(self.secret).decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode()
            )
        except InvalidTag:
            raise ValueError("the sealed personal data does not open with its key") from None


def subject_ref(pepper: bytes, phone: str) -> str:
    """The name of a phone's key: the same in every process that holds the pepper."""
    normalised = unicodedata.normalize("NFKC", phone).strip()
    return hmac.new(pepper, normalised.encode(), hashlib.sha256).hexdigest()


class DataKeys(Protocol):
    """Where the data keys are kept: the bucket, or memory in unit tests."""

    async def key_for_phone(self, phone: str) -> DataKey: ...

    async def key_by_id(self, key_id: str) -> DataKey: ...

    async def shred(self, key_ids: list[str]) -> None: ...


class PersonalDataKeys:
    """The data keys of customers, in the `PERSONAL_DATA_KEYS` bucket (opened, or made, at
    first use, by whichever service comes first)."""

    def __init__(self, js: JetStreamContext, replicas: int = 1, pepper: bytes | None = None):
        self._js = js
        self._replicas = replicas
        self._pepper = pepper if pepper is not None else LOCAL_PEPPER.encode()
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            try:
                self._kv = await self._js.key_value(BUCKET)
            except BucketNotFoundError:
                self._kv = await self._js.create_key_value(
                    KeyValueConfig(
                        bucket=BUCKET,
                        history=1,
                        direct=True,
                        storage=StorageType.FILE,
                        replicas=self._replicas,
                        description="per-customer data keys; erasure purges them",
                    )
                )
        return self._kv

    async def key_for_phone(self, phone: str) -> DataKey:
        """The customer's key, made now if the phone has none (intake); while the bucket is
        out of reach, a key for this one order whose entry goes through the outbox."""
        try:
            return await asyncio.wait_for(self._key_for_phone(phone), BUCKET_WAIT_SECONDS)
        except (TimeoutError, NatsError) as error:
            log.warning("data key bucket out of reach (%s): a key for this order alone", error)
            ref = subject_ref(self._pepper, phone)
            made = DataKey(secrets.token_hex(KEY_ID_BYTES), secrets.token_bytes(KEY_BYTES))
            entry = (f"$KV.{BUCKET}.key.{made.key_id}", made.secret + bytes.fromhex(ref))
            return DataKey(made.key_id, made.secret, entry)

    async def _key_for_phone(self, phone: str) -> DataKey:
        kv = await self._bucket()
        ref = subject_ref(self._pepper, phone)
        for _ in range(CREATE_ATTEMPTS):
            found = await self._get(f"subject.{ref}")
            if found is not None:
                return DataKey(found[:KEY_ID_BYTES].hex(), found[KEY_ID_BYTES:])
            made = DataKey(secrets.token_hex(KEY_ID_BYTES), secrets.token_bytes(KEY_BYTES))
            await kv.create(f"key.{made.key_id}", made.secret + bytes.fromhex(ref))
            try:
                await kv.create(f"subject.{ref}", bytes.fromhex(made.key_id) + made.secret)
            except KeyWrongLastSequenceError:
                await self._purge(f"key.{made.key_id}")  # another process made it first
                continue
            return made
        raise RuntimeError("could not settle on a data key for a phone")

    async def key_by_id(self, key_id: str) -> DataKey:
        """The key an event names; KeyShredded once its customer was erased, ValueError for
        no key id at all (an event from before sealing, or a forged one)."""
        if not _is_key_id(key_id):
            raise ValueError(f"names no data key: {key_id!r}")
        found = await self._get(f"key.{key_id}")
        if found is None:
            raise KeyShredded(f"data key {key_id} is destroyed")
        return DataKey(key_id, found[:KEY_BYTES])

    async def shred(self, key_ids: list[str]) -> None:
        """Destroy the keys and their phone entries: purged from the bucket's stream, so no
        revision or marker names them. Purging again is harmless (an erasure retried)."""
        for key_id in key_ids:
            if not _is_key_id(key_id):
                continue
            found = await self._get(f"key.{key_id}")
            if found is not None:
                ref = found[KEY_BYTES:].hex()
                # Only while it still names this key: a phone reused later has a new one.
                subject = await self._get(f"subject.{ref}")
                if subject is not None and subject[:KEY_ID_BYTES].hex() == key_id:
                    await self._purge(f"subject.{ref}")
            await self._purge(f"key.{key_id}")

    async def _get(self, key: str) -> bytes | None:
        kv = await self._bucket()
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return None
        return entry.value or None

    async def _purge(self, key: str) -> None:
        await self._bucket()
        await self._js.purge_stream(STREAM, subject=f"$KV.{BUCKET}.{key}")


class InMemoryKeys:
    """The same rules in a dictionary, for tests of one service without the bucket."""

    def __init__(self) -> None:
        self._by_phone: dict[str, DataKey] = {}
        self._by_id: dict[str, DataKey] = {}

    def key_for(self, phone: str) -> DataKey:
        key = self._by_phone.get(phone)
        if key is None:
            key = DataKey(secrets.token_hex(KEY_ID_BYTES), secrets.token_bytes(KEY_BYTES))
            self._by_phone[phone] = self._by_id[key.key_id] = key
        return key

    async def key_for_phone(self, phone: str) -> DataKey:
        return self.key_for(phone)

    async def key_by_id(self, key_id: str) -> DataKey:
        if not _is_key_id(key_id):
            raise ValueError(f"names no data key: {key_id!r}")
        if key_id not in self._by_id:
            raise KeyShredded(f"data key {key_id} is destroyed")
        return self._by_id[key_id]

    async def shred(self, key_ids: list[str]) -> None:
        for key_id in key_ids:
            self._by_id.pop(key_id, None)
        self._by_phone = {p: k for p, k in self._by_phone.items() if k.key_id in self._by_id}


def _is_key_id(key_id: str) -> bool:
    if len(key_id) != 2 * KEY_ID_BYTES:
        return False
    try:
        bytes.fromhex(key_id)
    except ValueError:
        return False
    return True
