"""Rebuilding reporting's read models from the archive (重建):
`python -m services.reporting rebuild`.

One transaction empties every read-model table (every table of reporting's metadata but the
outbox, the inbox and its failures) and deletes the inbox rows of reporting's consumers; then
the whole archive (servicekit.bus.ARCHIVE_STREAM) is replayed through the handlers of every
consumer the service runs (`SPEC.consumers`, so a handler added later is rebuilt too), one
transaction per batch (servicekit.replay). Before emptying, and again after it, it waits
until the archive holds all its sources hold: an archive that stopped copying (full) is found
before anything is emptied, and every event whose effect was emptied is replayed. A new
figure is backfilled this way for all the history, so it never reads zero before the day it
was added.

On PostgreSQL it may run while reporting's consumers run: the emptying transaction locks the
tables against them, and afterwards every event is applied by whichever of the replay and the
live consumer records its inbox row first. While it runs the figures of the history not yet
replayed read low; at the end it prints what it applied. A SQLite file belongs to one process
(servicekit.db): there, stop the service first. (The tests run it beside a consumer in one
process, which shares the writer's turn.)
"""

from __future__ import annotations

import asyncio
import logging
import sys

from sqlalchemy import Table, delete, text
from sqlalchemy.exc import DBAPIError

from servicekit import bus
from servicekit.db import lost_race
from servicekit.inbox import FAILURES_TABLE
from servicekit.logs import configure_logging
from servicekit.replay import Reader, Replayed, ReplayFailed, replay, wait_for_sources
from servicekit.runtime import Runtime, ServiceSpec, close_runtime, open_runtime
from servicekit.settings import Settings

log = logging.getLogger(__name__)

# Tables that are not read models: what the service owes others and the inbox's bookkeeping.
# A later table that is no read model either says so with `info={"read_model": False}`.
NOT_READ_MODELS = frozenset({"outbox", "inbox", FAILURES_TABLE})

USAGE = "usage: python -m services.reporting rebuild"
# Tries of the emptying transaction when a live batch's locks deadlock with it.
EMPTYING_ATTEMPTS = 5


def read_model_tables(spec: ServiceSpec) -> list[Table]:
    """The tables a rebuild empties and fills again, parents first."""
    return [
        table
        for table in spec.metadata.sorted_tables
        if table.name not in NOT_READ_MODELS and table.info.get("read_model", True)
    ]


async def rebuild(runtime: Runtime, spec: ServiceSpec, batch_size: int = 500) -> Replayed:
    """Empty the read models and replay the archive into them through every consumer's
    handlers."""
    consumers = spec.consumers(runtime)
    names = [name for c in consumers for name in (c.name, *(f.name for f in c.formers))]
    tables = read_model_tables(spec)
    # An archive that stopped copying (full) is found before anything is emptied.
    await wait_for_sources(runtime.js, bus.ARCHIVE_STREAM)
    for attempt in range(1, EMPTYING_ATTEMPTS + 1):
        try:
            await _empty(runtime, tables, names)
            break
        except DBAPIError as error:
            # The lock ran into a live batch that holds the tables in another order: the
            # database broke the deadlock, the batch finishes, and the lock is taken again.
            if not lost_race(error) or attempt == EMPTYING_ATTEMPTS:
                raise
            log.info("emptying lost a race with a live batch: trying again")
            await asyncio.sleep(0.2 * attempt)
    log.info("read models emptied", extra={"fields": {"tables": [t.name for t in tables]}})
    # What the consumers had handled, now emptied, must be in the archive before it is read.
    await wait_for_sources(runtime.js, bus.ARCHIVE_STREAM)
    return await replay(
        runtime.js,
        bus.ARCHIVE_STREAM,
        [Reader.of(consumer) for consumer in consumers],
        runtime.uow,
        runtime.inbox,
        spec.name,
        batch_size,
    )


async def _empty(runtime: Runtime, tables: list[Table], names: list[str]) -> None:
    async with runtime.db.session() as session:
        if session.dialect.name == "postgresql":
            # A live batch in flight finishes first, and the next waits for this commit: none
            # can leave an inbox row whose effect this deletes.
            locked = ", ".join(f'"{table.name}"' for table in [*tables, runtime.inbox])
            await session.execute(text(f"LOCK TABLE {locked} IN EXCLUSIVE MODE"))
        for table in reversed(tables):
            await session.execute(delete(table))
        if names:
            await session.execute(delete(runtime.inbox).where(runtime.inbox.c.consumer.in_(names)))
        await session.commit()


async def command(spec: ServiceSpec, args: list[str]) -> int:
    """`rebuild`: exit 0 when every read model was rebuilt, 1 when the replay stopped."""
    if args:
        print(USAGE, file=sys.stderr)
        return 2
    settings = Settings.from_env(spec.name)
    configure_logging(spec.name, settings.log_level)
    runtime = await open_runtime(spec, settings)
    try:
        done = await rebuild(runtime, spec)
    except (ReplayFailed, TimeoutError) as error:
        print(f"{error}; run rebuild again once it is fixed", file=sys.stderr)
        return 1
    finally:
        await close_runtime(runtime)
    print(
        f"rebuilt {', '.join(t.name for t in read_model_tables(spec))} from "
        f"{bus.ARCHIVE_STREAM} up to sequence {done.last_sequence}: {done.applied} applied, "
        f"{done.handled_live} handled live meanwhile, {done.unprocessable} unprocessable "
        f"skipped {done.unprocessable_sequences[:20]}"
    )
    return 0
