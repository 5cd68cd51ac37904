"""Fixtures: a migrated database (PostgreSQL in a throwaway schema when TEST_DATABASE_URL is
set, else SQLite in tmp_path), fake services on a real gRPC port, and the app over ASGI."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from servicekit import migrations
from servicekit.db import Database
from services.gateway.app import MIGRATIONS_DIR, create_app
from services.gateway.tests.fakes import FakeServices, start_fake_services
from services.gateway.tests.helpers import make_settings


@pytest.fixture
async def db_target(tmp_path: Path) -> AsyncIterator[tuple[str, str | None]]:
    """(database url, schema) of an empty database for one test."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}", None
        return
    schema = f"gateway_test_{secrets.token_hex(6)}"
    yield url, schema
    admin = Database(url)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture
async def db(db_target: tuple[str, str | None]) -> AsyncIterator[Database]:
    database = Database(*db_target)
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
    db_target: tuple[str, str | None], fakes: FakeServices
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(db_target, fakes.address))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        yield http
