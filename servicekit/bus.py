"""NATS JetStream: the streams every service relies on, created at start with an explicit
duplicate window, and the subject scheme that follows the org tree:
`<domain>.v1.<branch_id>.<store_id>.<event_name>`."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

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


def subject(domain: str, branch_id: str, store_id: str | None, event_name: str) -> str:
    # Branch-level events (a central warehouse) use `_` in the store position.
    return f"{domain}.v1.{branch_id}.{store_id or '_'}.{event_name}"


async def connect(url: str, name: str) -> NATS:
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
    )


async def connect_once(url: str, name: str, timeout: float = 10.0) -> NATS:
    """A connection for a one-off command: ConnectionError when NATS does not answer within
    `timeout` (the client itself would keep trying)."""

    async def quiet(_error: Exception) -> None:
        pass

    try:
        return await asyncio.wait_for(
            nats.connect(url, name=name, allow_reconnect=False, error_cb=quiet), timeout
        )
    except TimeoutError:
        raise ConnectionError(f"NATS does not answer at {url}") from None


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create the streams (or bring them to our settings), each kept in `replicas` copies."""
    streams = [(name, subjects, RETENTION) for name, subjects in STREAMS.items()]
    streams.append((DEAD_LETTERS_STREAM, DEAD_LETTERS_SUBJECTS, DEAD_LETTER_RETENTION))
    for name, subjects, max_age in streams:
        config = StreamConfig(
            name=name,
            subjects=subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=max_age.total_seconds(),
            duplicate_window=DUPLICATE_WINDOW.total_seconds(),
            num_replicas=replicas,
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            # It exists with other settings (an older version): bring it to ours.
            await js.update_stream(config)
