"""A rolling update runs the previous release beside the new schema: the init container
migrates to head (under the advisory lock) while the old pods still serve, and a rollback runs
the old code on it. So every migration since the previous release must be an expand step
(docs/migrations.md): the previous release's own table definitions, checked out of git, run
their queries against a database migrated to head by this one, and no column added since is
one its INSERTs would leave NOT NULL without a default.

The previous release of a process is the code just before its newest migration was added (the
release that migration was written for replaced it). The test needs the git history (CI:
fetch-depth 0); without it, it skips and says why."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData

from servicekit import migrations
from servicekit.db import Database
from servicekit.testing import database_target, drop_schema

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ("orders", "inventory", "customers", "reporting", "gateway")

# Run with the previous release's packages first on the path: its own tables, its own
# servicekit.db, each table read as its code reads it (every column it knows).
OLD_CODE = """
import asyncio, importlib, json, sys
from sqlalchemy import func, select
from servicekit.db import Database

module, url, schema, code = sys.argv[1:5]
loaded = importlib.import_module(module)
metadata = loaded.SPEC.metadata if hasattr(loaded, "SPEC") else loaded.metadata
assert loaded.__file__.startswith(code), f"{loaded.__file__} is not the previous release's"

async def main():
    db = Database(url, schema or None)
    try:
        async with db.engine.connect() as conn:
            for table in metadata.sorted_tables:
                await conn.execute(select(table).limit(1))
                await conn.execute(select(func.count()).select_from(table))
    finally:
        await db.dispose()

asyncio.run(main())
print(json.dumps({t.name: sorted(c.name for c in t.columns) for t in metadata.sorted_tables}))
"""


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        pytest.skip(f"no git history here (git {' '.join(args)}): {result.stderr.strip()}")
    return result.stdout.strip()


def previous_release(process: str) -> str:
    added = git(
        "log",
        "-1",
        "--diff-filter=A",
        "--format=%H",
        "--",
        f"services/{process}/migrations/versions",
    )
    if not added:
        pytest.skip(f"{process}: no migration in the history here")
    return git("rev-parse", f"{added}^")


def check_out(commit: str, folder: Path) -> Path:
    """The packages of `commit` (servicekit, services, gen) in `folder`."""
    archive = folder / "code.tar"
    with archive.open("wb") as out:
        subprocess.run(
            ["git", "archive", "--format=tar", commit, "servicekit", "services", "gen"],
            cwd=ROOT,
            stdout=out,
            check=True,
            timeout=120,
        )
    code = folder / "code"
    with tarfile.open(archive) as tar:
        tar.extractall(code, filter="data")
    return code


def head_metadata(process: str) -> MetaData:
    if process == "gateway":
        metadata: MetaData = importlib.import_module("services.gateway.orm").metadata
        return metadata
    return importlib.import_module(f"services.{process}.service").SPEC.metadata


def module_of(process: str) -> str:
    return "services.gateway.orm" if process == "gateway" else f"services.{process}.service"


def run_old_code(code: Path, process: str, url: str, schema: str | None) -> dict[str, Any]:
    packages = [str(code), str(code / "gen")]
    result = subprocess.run(
        [sys.executable, "-c", OLD_CODE, module_of(process), url, schema or "", str(code)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(packages)},
        cwd=code,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"the previous release fails on the new schema:\n{result.stderr}"
    tables: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return tables


# A breach this test found, kept visible until it is mended (strict: the test fails once the
# previous release runs again, so the mark cannot outlive the breach).
@pytest.mark.parametrize("process", PROCESSES)
async def test_the_previous_release_runs_on_the_schema_at_head(
    process: str, tmp_path: Path
) -> None:
    commit = previous_release(process)
    code = check_out(commit, tmp_path)
    target = database_target(process, tmp_path)
    db = Database(target.url, target.schema)
    try:
        await migrations.upgrade(db, ROOT / "services" / process / "migrations")
        old_tables = run_old_code(code, process, target.url, target.schema)
    finally:
        await db.dispose()
        await drop_schema(target)
    assert old_tables, f"{process} at {commit[:10]} has no tables"
    # What the old code writes: it names its own columns only; a column added since must take
    # a default or NULL, or its INSERTs fail on the new schema.
    breaking = []
    for table in head_metadata(process).sorted_tables:
        for column in table.columns:
            new = table.name in old_tables and column.name not in old_tables[table.name]
            required = not column.nullable and column.server_default is None
            if new and required and column.autoincrement is not True:
                breaking.append(f"{table.name}.{column.name}")
    assert breaking == [], (
        f"columns added since {commit[:10]} that the previous release cannot fill: {breaking} "
        "(docs/migrations.md: add them nullable or with a server default first)"
    )
