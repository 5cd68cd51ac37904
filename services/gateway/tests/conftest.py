"""Fixtures: a migrated database (the repository's `db_target`: PostgreSQL in a throwaway schema
when TEST_DATABASE_URL is set, else SQLite in tmp_path), fake services on a real gRPC port, and
the app over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from servicekit import migrations
from servicekit.db import Database
from servicekit.testing import DatabaseTarget
from services.gateway.app import MIGRATIONS_DIR, create_app
from services.gateway.tests.fakes import FakeServices, start_fake_services
from services.gateway.tests.helpers import make_settings


@pytest.fixture
async def db(db_target: DatabaseTarget) -> AsyncIterator[Database]:
    database = Database(db_target.url, db_target.schema)
    await migrations.upgrade(database, MIGRATIONS_DIR)
    yield database
    await database.dispose()


@pytest.fixture
async def fakes() -> AsyncIterator[FakeServices]:
    services = await start_fake_services()
    yield services
    await services.server.stop(0)


@pytest.fixture
async def client(
    db_target: DatabaseTarget, fakes: FakeServices
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(db_target, fakes.address))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        yield http
