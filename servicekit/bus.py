"""NATS JetStream: the streams every service relies on, created at start with an explicit
duplicate window, and the subject scheme that follows the org tree:
`<domain>.v1.<branch_id>.<store_id>.<event_name>`."""

from __future__ import annotations

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


async def ensure_streams(js: JetStreamContext) -> None:
    for name, subjects in STREAMS.items():
        config = StreamConfig(
            name=name,
            subjects=subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=RETENTION.total_seconds(),
            duplicate_window=DUPLICATE_WINDOW.total_seconds(),
        )
        try:
            await js.add_stream(config)
        except BadRequestError:
            # It exists with other settings (an older version): bring it to ours.
            await js.update_stream(config)
