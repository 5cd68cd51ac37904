"""Replaying a stream into read models (重放): every message of a stream (the archive,
servicekit.bus.ARCHIVE_STREAM, for the whole history) from its first to the last one it held when
the replay began, in order, through the same handlers the service's durable consumers run.

- It reads with a consumer of its own that nobody acks (ephemeral, in memory, deleted at the
  end, dropped by the server soon after a replay that died), in batches; each batch is one
  transaction, like a live consumer's.
- The live inbox stays true by one rule: **the replay records the inbox row of every event it
  applies that a live consumer could still see**, under that consumer's name, and applies such
  an event only if its row is new. An event the live consumer handled first is skipped by the
  replay, and one the replay handled first is a duplicate to the live consumer. So a replay may
  run while the consumers run, provided whoever starts it has deleted those consumers' inbox
  rows in the transaction that emptied their read models (services/reporting/rebuild.py).
  "Could still see" is the inbox's own horizon: stored within `INBOX_KEPT` (the longer of the
  streams' and the dead letters' retention, plus a week); older events are applied without a
  row, as nothing can bring them back to a live consumer, and the inbox does not grow by the
  years of history.
- The archive is copied from its sources a moment after they store a message, so a replay
  that follows an emptying first waits (`wait_for_sources`) until the archive holds all its
  sources held after it: the events whose effects were emptied are then all replayed.
- A dead letter's replay (`Replay-For`) is a copy of an event the stream holds already, and is
  skipped: the original is applied in its place, by today's handlers.
- An event a handler finds `UnprocessableEvent`, or that cannot be decoded, is skipped and
  counted (its live consumer sent it to the dead letters); any other failure stops the replay
  with the stream sequence of the event, its batch rolled back.

Handlers that emit events (through the outbox) would emit them again: replay only read models.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from sqlalchemy import Table

from servicekit.auth import reset_auth, service_identity, set_auth
from servicekit.db import upsert_on
from servicekit.dead_letters import EVENT_ID_HEADER, REPLAY_FOR_HEADER
from servicekit.inbox import INBOX_KEPT, EventConsumer, Handler, UnprocessableEvent
from servicekit.outbox import EVENT_TYPE_HEADER, MSG_ID_HEADER
from servicekit.timeutil import utc_now
from servicekit.uow import UnitOfWork

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# The replay's consumer outlives a replay that died by this much, then the server drops it.
INACTIVE_THRESHOLD_SECONDS = 120.0
FETCH_TIMEOUT_SECONDS = 2.0
MAX_EMPTY_FETCHES = 5
# Where a stream's copy of a source's message tells where it came from.
SOURCE_HEADER = "Nats-Stream-Source"


def subject_matches(subject: str, pattern: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    tokens, wanted = subject.split("."), pattern.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


def subjects_overlap(first: str, second: str) -> bool:
    """Whether some subject matches both patterns."""
    a, b = first.split("."), second.split(".")
    for index in range(max(len(a), len(b))):
        if index >= len(a) or index >= len(b):
            return False
        if ">" in (a[index], b[index]):
            return True
        if "*" not in (a[index], b[index]) and a[index] != b[index]:
            return False
    return True


def consumer_filter(patterns: Sequence[str]) -> list[str]:
    """The filter subjects of a consumer taking every pattern: the server refuses overlapping
    ones, so patterns that overlap give way to reading everything (`>`); the readers pick
    their subjects themselves."""
    unique = list(dict.fromkeys(patterns))
    if any(subjects_overlap(a, b) for i, a in enumerate(unique) for b in unique[i + 1 :]):
        return [">"]
    return unique


@dataclass(frozen=True)
class Reader:
    """A live consumer as a replay runs it: the name its inbox rows go under, the subjects it
    reads and, per event type, the message class and every handler it runs (its formers'
    too)."""

    name: str
    subjects: tuple[str, ...]
    routes: dict[str, tuple[type[Message], tuple[Handler, ...]]]

    @classmethod
    def of(cls, consumer: EventConsumer) -> Reader:
        routes: dict[str, tuple[type[Message], tuple[Handler, ...]]] = {}
        for handlers in [consumer.handlers, *(former.handlers for former in consumer.formers)]:
            for event_type, (message_class, handler) in handlers.items():
                _, known = routes.get(event_type, (message_class, ()))
                routes[event_type] = (message_class, (*known, handler))
        return cls(consumer.name, tuple(consumer.subjects), routes)

    def reads(self, subject: str) -> bool:
        return any(subject_matches(subject, pattern) for pattern in self.subjects)


@dataclass
class Replayed:
    """What a replay did: the stream sequence it stopped at, the events it applied (once per
    reader), those it skipped as unprocessable, and how many a live consumer had applied
    first."""

    last_sequence: int = 0
    applied: int = 0
    unprocessable: int = 0
    handled_live: int = 0
    batches: int = 0
    unprocessable_sequences: list[int] = field(default_factory=list)


class ReplayFailed(Exception):
    """A handler failed on an event for a reason other than the event itself."""

    def __init__(self, sequence: int, error: Exception) -> None:
        super().__init__(f"replay stopped at stream sequence {sequence}: {error!r}")
        self.sequence = sequence


@dataclass(frozen=True)
class _Event:
    sequence: int
    event_id: str
    event: Message
    # The readers that take it, each with its handlers of this event type.
    readers: tuple[tuple[str, tuple[Handler, ...]], ...]
    # Whether a live consumer could still see it: then its inbox row decides.
    recent: bool


async def wait_for_sources(js: JetStreamContext, stream: str, within: float = 60.0) -> None:
    """Wait until `stream` (the archive) holds every message its sources held when this began:
    an event a live consumer handled before then is in it. The server copies them a moment
    after they are stored. TimeoutError naming the source it is behind on (the archive full,
    or a source away)."""
    deadline = asyncio.get_running_loop().time() + within
    sources = (await js.stream_info(stream)).config.sources or []
    for source in sources:
        try:
            info = await js.stream_info(source.name)
        except NotFoundError:
            continue  # not made yet: nothing to copy
        target, subjects = info.state.last_seq, info.config.subjects or []
        while target and await _copied_up_to(js, stream, source.name, subjects) < target:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{stream} is behind {source.name} (its #{target})")
            await asyncio.sleep(0.05)


async def _copied_up_to(js: JetStreamContext, stream: str, source: str, subjects: list[str]) -> int:
    """The last sequence of `source` that `stream` holds a copy of (the server notes it in each
    copy's Nats-Stream-Source header: `<source> <sequence> …`)."""
    copied = 0
    for subject in subjects:
        with contextlib.suppress(NotFoundError):
            last = await js.get_last_msg(stream, subject)
            origin = ((last.headers or {}).get(SOURCE_HEADER) or "").split()
            if len(origin) > 1 and origin[0].split(":")[0] == source and origin[1].isdigit():
                copied = max(copied, int(origin[1]))
    return copied


async def replay(
    js: JetStreamContext,
    stream: str,
    readers: Sequence[Reader],
    new_uow: Callable[[], UnitOfWork],
    inbox: Table,
    service: str,
    batch_size: int = BATCH_SIZE,
) -> Replayed:
    """Apply every event of `stream` the readers read, from its first message to the last one
    stored when this began, one transaction per batch; the handlers act as `service`."""
    result = Replayed()
    subjects = consumer_filter([pattern for reader in readers for pattern in reader.subjects])
    if not subjects:
        return result
    stop_at = (await js.stream_info(stream)).state.last_seq
    name = f"replay-{uuid.uuid4().hex[:12]}"
    await js.add_consumer(
        stream,
        ConsumerConfig(
            name=name,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
            inactive_threshold=INACTIVE_THRESHOLD_SECONDS,
            mem_storage=True,
            num_replicas=1,
        ),
    )
    token = set_auth(service_identity(service))
    try:
        subscription = await js.pull_subscribe_bind(durable=name, stream=stream)
        done = stop_at == 0 or (await js.consumer_info(stream, name)).num_pending == 0
        empty_fetches = 0
        while not done:
            try:
                messages = await subscription.fetch(batch_size, timeout=FETCH_TIMEOUT_SECONDS)
                empty_fetches = 0
            except (NatsTimeout, TimeoutError):
                # Nothing came: finished, unless the server was only slow to answer; a server
                # that keeps holding back what is pending (refused permission) stops it.
                pending = (await js.consumer_info(stream, name)).num_pending
                done = pending == 0
                empty_fetches += 1
                if not done and empty_fetches >= MAX_EMPTY_FETCHES:
                    raise ReplayFailed(
                        result.last_sequence + 1,
                        TimeoutError(f"{stream} delivers nothing though {pending} are pending"),
                    ) from None
                continue
            within = [m for m in messages if m.metadata.sequence.stream <= stop_at]
            done = len(within) < len(messages) or any(
                m.metadata.sequence.stream == stop_at or m.metadata.num_pending == 0 for m in within
            )
            if within:
                await _apply_batch(within, readers, new_uow, inbox, result)
                result.last_sequence = within[-1].metadata.sequence.stream
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    finally:
        reset_auth(token)
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(stream, name)
    return result


async def _apply_batch(
    messages: list[Msg],
    readers: Sequence[Reader],
    new_uow: Callable[[], UnitOfWork],
    inbox: Table,
    result: Replayed,
) -> None:
    recent_since = utc_now() - INBOX_KEPT
    events = []
    for msg in messages:
        taken = _take(msg, readers, recent_since)
        if isinstance(taken, _Event):
            events.append(taken)
        elif taken is not None:
            _skip_unprocessable(result, msg.metadata.sequence.stream, taken)
    result.batches += 1
    if not events:
        return
    try:
        async with new_uow() as uow:
            applied, live = await _apply(uow, inbox, events)
            await uow.commit()
    except Exception:
        # One event at a time, so only the one at fault is skipped (or stops the replay).
        for event in events:
            await _apply_one(event, new_uow, inbox, result)
        return
    result.applied += applied
    result.handled_live += live


async def _apply_one(
    event: _Event, new_uow: Callable[[], UnitOfWork], inbox: Table, result: Replayed
) -> None:
    try:
        async with new_uow() as uow:
            applied, live = await _apply(uow, inbox, [event])
            await uow.commit()
    except UnprocessableEvent as error:
        _skip_unprocessable(result, event.sequence, str(error))
        return
    except Exception as error:
        raise ReplayFailed(event.sequence, error) from error
    result.applied += applied
    result.handled_live += live


def _skip_unprocessable(result: Replayed, sequence: int, reason: str) -> None:
    log.warning("replay skipped stream sequence %d: %s", sequence, reason)
    result.unprocessable += 1
    result.unprocessable_sequences.append(sequence)


def _take(msg: Msg, readers: Sequence[Reader], recent_since: datetime) -> _Event | str | None:
    """The event in a message with the readers that take it; None when no reader takes it, or
    why it cannot be read."""
    headers = msg.headers or {}
    if headers.get(REPLAY_FOR_HEADER):
        return None
    event_type = headers.get(EVENT_TYPE_HEADER, "")
    takers = [
        (reader, reader.routes[event_type])
        for reader in readers
        if event_type in reader.routes and reader.reads(msg.subject)
    ]
    if not takers:
        return None
    event_id = headers.get(EVENT_ID_HEADER) or headers.get(MSG_ID_HEADER)
    if not event_id:
        return "no message id"
    message_class = takers[0][1][0]
    try:
        event = message_class.FromString(msg.data)
    except DecodeError as error:
        return f"undecodable: {error}"
    meta = msg.metadata
    return _Event(
        sequence=meta.sequence.stream,
        event_id=event_id,
        event=event,
        readers=tuple((reader.name, handlers) for reader, (_, handlers) in takers),
        recent=meta.timestamp >= recent_since,
    )


async def _apply(uow: UnitOfWork, inbox: Table, events: list[_Event]) -> tuple[int, int]:
    """Apply the events in `uow`; how many (per reader) were applied, and how many a live
    consumer had recorded first."""
    rows = {
        (name, event.event_id): None
        for event in events
        if event.recent
        for name, _ in event.readers
    }
    new: set[tuple[str, str]] = set()
    if rows:
        now = utc_now()
        noted = await uow.session.execute(
            _note(uow.session.dialect.name, inbox),
            [
                {"consumer": name, "event_id": event_id, "handled_at": now}
                for name, event_id in rows
            ],
        )
        new = {(row.consumer, row.event_id) for row in noted}
    applied = live = 0
    for event in events:
        for name, handlers in event.readers:
            key = (name, event.event_id)
            if event.recent:
                if key not in new:
                    live += 1
                    continue
                # The same event twice in one batch is applied once.
                new.discard(key)
            for handler in handlers:
                await handler(uow, event.event)
            applied += 1
    return applied, live


@functools.cache
def _note(dialect_name: str, inbox: Table) -> Any:
    """Record inbox rows not there already, returning those that were new: one multi-row
    INSERT … ON CONFLICT DO NOTHING RETURNING per batch, built once per inbox."""
    return (
        upsert_on(dialect_name, inbox)
        .on_conflict_do_nothing()
        .returning(inbox.c.consumer, inbox.c.event_id)
    )
