"""NATS JetStream: the streams every service relies on, their settings and sizes (made and
changed by one step, servicekit.streams), and the subject scheme that follows the org tree:
`<domain>.v1.<branch_id>.<store_id>.<event_name>`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StoreCompression,
    StreamConfig,
    StreamSource,
)
from nats.js.errors import BadRequestError, NotFoundError

log = logging.getLogger(__name__)

# The window in which the stream drops a re-published message with the same Nats-Msg-Id.
# The outbox relay republishes at most a few seconds after a crash, well inside it.
DUPLICATE_WINDOW = timedelta(minutes=10)
RETENTION = timedelta(days=30)

STREAMS: dict[str, list[str]] = {
    "ORDERS": ["orders.v1.>"],
    "INVENTORY": ["inventory.v1.>"],
    "CUSTOMERS": ["customers.v1.>"],
}

# Messages a consumer could not handle, kept for an operator to look at and replay
# (servicekit.dead_letters): `deadletters.v1.<service>.<consumer>`.
DEAD_LETTERS_STREAM = "DEAD_LETTERS"
DEAD_LETTERS_SUBJECTS = ["deadletters.v1.>"]
# Long enough for someone to notice, fix and replay; not for ever, so a flood cannot fill
# the disk.
DEAD_LETTER_RETENTION = timedelta(days=90)

# The whole history (存档), from which a read model is rebuilt or a new figure backfilled
# (servicekit.replay): the server copies every message of the streams above into it, subject
# and headers as they were; nothing publishes to it. Five years are kept online, and the year
# under way. S2-compressed (about 390 bytes an event on disk); when full it takes nothing new
# (`discard=new`) rather than dropping the oldest, so the sources wait, unlost for as long as
# they keep their 30 days, until the limit is raised (README, "Rebuild and backfill"). No one
# may purge it or delete from it.
ARCHIVE_STREAM = "ARCHIVE"
ARCHIVE_RETENTION = timedelta(days=6 * 366)
# The server refuses a stream larger than its storage, so the size is the deployment's
# (NATS_ARCHIVE_MAX_BYTES; 4 TiB for the target scale); this default fits a laptop.
ARCHIVE_MAX_BYTES = 512 * 1024**2

# Every stream is bounded in bytes and age, and full means `discard=new`: the server refuses
# the next publish rather than dropping the oldest message, which a consumer may not have read
# yet. The outbox relay keeps the refused rows and waits (servicekit.outbox: BrokerUnavailable),
# an alert fires well before the limit, and raising max_bytes (servicekit.streams) lets them
# through; nothing an event's consumers have not had is ever deleted for room. max_age (30
# days) only removes what the consumer-lag alert has been shouting about for a month.
#
# The arithmetic, for the chain's busy day (SPEC: 300,000 orders) taken as every day: an order
# makes about 15 events, 9 in ORDERS (received, 8 lifecycle steps), 4 in INVENTORY (stock
# movements) and 2 in CUSTOMERS; an event is 675 bytes as the stream stores it (measured:
# 418 B of payload with the report facts and one part line, plus subject and headers). ORDERS:
# 300,000 x 9 x 675 B = 1.82 GB a day, x 30 days = 54.7 GB; INVENTORY 24.3 GB; CUSTOMERS
# 12.2 GB; each with a quarter on top for a busier month, rounded up to whole GiB. Dead
# letters: a 1 % failure rate of 4.5 M events a day for 90 days at about 1 KB each (the event
# and the error's headers) is 4 GB: 8 GiB. With the 4 TiB archive that is 4.11 TiB on every
# server of the cluster (R3 keeps a copy on each): the prod NATS volume is 4.5 TiB.
BUSY_DAY_ORDERS = 300_000
STORED_EVENT_BYTES = 675
EVENTS_PER_ORDER = {"ORDERS": 9, "INVENTORY": 4, "CUSTOMERS": 2}
HEADROOM = 1.25
GIB = 1024**3
Sizing = Literal["local", "national"]
SIZINGS: tuple[Sizing, ...] = ("local", "national")


def _national_bytes(stream: str) -> int:
    day = BUSY_DAY_ORDERS * EVENTS_PER_ORDER[stream] * STORED_EVENT_BYTES
    return -(-int(day * RETENTION.days * HEADROOM) // GIB) * GIB


# max_bytes per stream: `local` fits a laptop's or a test's server (and the dev cluster's
# 2 GiB volume); `national` is the arithmetic above.
MAX_BYTES: dict[Sizing, dict[str, int]] = {
    "local": {
        "ORDERS": 256 * 1024**2,
        "INVENTORY": 128 * 1024**2,
        "CUSTOMERS": 128 * 1024**2,
        DEAD_LETTERS_STREAM: 64 * 1024**2,
        ARCHIVE_STREAM: ARCHIVE_MAX_BYTES,
    },
    "national": {
        **{name: _national_bytes(name) for name in STREAMS},
        DEAD_LETTERS_STREAM: 8 * GIB,
        ARCHIVE_STREAM: 4 * 1024 * GIB,
    },
}


def subject(domain: str, branch_id: str, store_id: str | None, event_name: str) -> str:
    # Branch-level events (a central warehouse) use `_` in the store position.
    return f"{domain}.v1.{branch_id}.{store_id or '_'}.{event_name}"


@dataclass(frozen=True)
class BusAuth:
    """Who a connection is (servicekit.bus_permissions): the user's name, which also names its
    reply inboxes, the file holding its password (from its own Secret; None: no password),
    and the CA that signed the server's certificate (for `tls://` URLs; None: the system's)."""

    user: str
    password_file: Path | None = None
    tls_ca: Path | None = None


def inbox_prefix(user: str) -> str:
    """Replies to a user's requests (JetStream acks and API answers) come to inboxes under
    this prefix, which only that user may subscribe to."""
    return f"_INBOX.{user}"


def connect_options(url: str, auth: BusAuth) -> dict[str, Any]:
    options: dict[str, Any] = {"inbox_prefix": inbox_prefix(auth.user)}
    if auth.password_file is not None:
        options["user"] = auth.user
        options["password"] = auth.password_file.read_text().strip()
    if auth.tls_ca is not None or url.startswith("tls://"):
        options["tls"] = ssl.create_default_context(
            cafile=str(auth.tls_ca) if auth.tls_ca else None
        )
    return options


async def connect(url: str, name: str, auth: BusAuth) -> NATS:
    async def on_error(error: Exception) -> None:
        log.warning("nats error: %s", error)

    async def on_disconnect() -> None:
        log.warning("nats disconnected")

    async def on_reconnect() -> None:
        log.info("nats reconnected")

    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        **connect_options(url, auth),
    )


async def connect_once(url: str, name: str, auth: BusAuth, timeout: float = 10.0) -> NATS:
    """A connection for a one-off command: ConnectionError when NATS does not answer within
    `timeout` (the client itself would keep trying)."""

    async def quiet(_error: Exception) -> None:
        pass

    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                name=name,
                allow_reconnect=False,
                error_cb=quiet,
                **connect_options(url, auth),
            ),
            timeout,
        )
    except TimeoutError:
        raise ConnectionError(f"NATS does not answer at {url}") from None


def stream_configs(
    replicas: int = 1, sizing: Sizing = "local", archive_max_bytes: int | None = None
) -> dict[str, StreamConfig]:
    """Every stream as it should be: `replicas` copies, sized for `sizing` (the archive's size
    `archive_max_bytes` when given: NATS_ARCHIVE_MAX_BYTES)."""
    sizes = MAX_BYTES[sizing]
    configs = {
        name: _stream_config(name, subjects, RETENTION, sizes[name], replicas)
        for name, subjects in STREAMS.items()
    }
    configs[DEAD_LETTERS_STREAM] = _stream_config(
        DEAD_LETTERS_STREAM,
        DEAD_LETTERS_SUBJECTS,
        DEAD_LETTER_RETENTION,
        sizes[DEAD_LETTERS_STREAM],
        replicas,
    )
    configs[ARCHIVE_STREAM] = archive_config(
        replicas, sizes[ARCHIVE_STREAM] if archive_max_bytes is None else archive_max_bytes
    )
    return configs


async def ensure_streams(
    js: JetStreamContext,
    replicas: int = 1,
    owned: Iterable[str] | None = None,
    read: Iterable[str] = (),
    archive_max_bytes: int = ARCHIVE_MAX_BYTES,
) -> None:
    """At a process's start: the streams it publishes to (`owned`; all when None) and those it
    reads exist. The streams step (servicekit.streams: `make migrate`, the Job in k8s) makes
    and changes them; a process makes one only where it is missing (a laptop, a test's fresh
    server), with the local sizes, and never changes one that exists, so no process rewrites
    a stream with whatever settings it happens to have."""
    configs = stream_configs(replicas, "local", archive_max_bytes)
    names = list(configs) if owned is None else list(owned)
    names += [name for name in read if name not in names]
    for name in names:
        try:
            await js.stream_info(name)
        except NotFoundError:
            # Refused when another process made it a moment ago: it exists, which is the point.
            with contextlib.suppress(BadRequestError):
                await js.add_stream(configs[name])


def _stream_config(
    name: str, subjects: list[str], max_age: timedelta, max_bytes: int, replicas: int
) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_age=max_age.total_seconds(),
        max_bytes=max_bytes,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        num_replicas=replicas,
    )


def archive_config(replicas: int, max_bytes: int) -> StreamConfig:
    return StreamConfig(
        name=ARCHIVE_STREAM,
        sources=[StreamSource(name=name) for name in STREAMS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        max_age=ARCHIVE_RETENTION.total_seconds(),
        max_bytes=max_bytes,
        compression=StoreCompression.S2,
        duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        deny_delete=True,
        deny_purge=True,
        num_replicas=replicas,
    )
