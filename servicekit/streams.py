"""The one step that makes and changes the JetStream streams (servicekit.bus.stream_configs),
run before the services start: `make migrate` locally, the Job `streams` in Kubernetes.

    python -m servicekit.streams USER [--sizing local|national]

connects as the NATS user USER (its password from NATS_PASSWORD_FILE, NATS_URL, NATS_TLS_CA,
NATS_STREAM_REPLICAS and NATS_ARCHIVE_MAX_BYTES as a service reads them) and brings the streams
that user keeps (servicekit.bus_permissions: orders ORDERS, inventory INVENTORY, customers
CUSTOMERS, reporting the ARCHIVE; each the DEAD_LETTERS) to these settings: made when missing,
updated when they differ. Each user may change only its own streams, so the step runs once per
user, reporting last (the archive reads the others). A change the server refuses (storage or
retention of a stream that exists) fails the step with the server's reason: such a change is a
new stream and a replay (docs/operations.md), never an edit at start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterable
from dataclasses import asdict

from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from servicekit import bus, bus_permissions
from servicekit.bus import SIZINGS, Sizing
from servicekit.settings import Settings

log = logging.getLogger(__name__)


def _differences(wanted: StreamConfig, current: StreamConfig) -> list[str]:
    """The settings of `wanted` the stream has otherwise (what the server fills in aside)."""
    have = asdict(current)
    return sorted(
        key for key, value in asdict(wanted).items() if value is not None and have[key] != value
    )


async def apply_streams(
    js: JetStreamContext,
    names: Iterable[str],
    replicas: int,
    sizing: Sizing,
    archive_max_bytes: int | None = None,
) -> dict[str, str]:
    """Bring each of `names` to its settings; per stream what was done: created, updated (with
    the settings that changed) or unchanged."""
    configs = bus.stream_configs(replicas, sizing, archive_max_bytes)
    done: dict[str, str] = {}
    for name in names:
        wanted = configs[name]
        try:
            current = (await js.stream_info(name)).config
        except NotFoundError:
            await js.add_stream(wanted)
            done[name] = "created"
            continue
        changed = _differences(wanted, current)
        if changed:
            await js.update_stream(wanted)
            done[name] = "updated " + ", ".join(changed)
        else:
            done[name] = "unchanged"
    return done


async def run(user: str, sizing: Sizing) -> int:
    settings = Settings.from_env(user)
    names = bus_permissions.user(user).streams_made()
    archive = settings.archive_max_bytes if sizing == "local" else None
    nc = await bus.connect_once(settings.nats_url, f"streams-{user}", settings.nats_auth)
    try:
        done = await apply_streams(nc.jetstream(), names, settings.stream_replicas, sizing, archive)
    finally:
        await nc.close()
    for name, what in done.items():
        print(f"{name}\t{what}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servicekit.streams", description=__doc__)
    parser.add_argument("user", choices=sorted(bus_permissions.SERVICES))
    parser.add_argument("--sizing", choices=SIZINGS, default="local")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    return asyncio.run(run(args.user, args.sizing))


if __name__ == "__main__":
    sys.exit(main())
