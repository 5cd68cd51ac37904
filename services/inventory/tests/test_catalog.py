"""HQ keeps the catalog: parts added and changed, successors that exist and never loop, a
moved part's serialised flag kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from servicekit.auth import AuthContext
from servicekit.errors import Conflict, Forbidden, InvalidInput
from servicekit.runtime import Runtime, close_runtime, open_runtime
from servicekit.testing import DatabaseTarget, NatsServer, service_settings
from services.inventory.domain.catalog import Part, check_part
from services.inventory.handlers import catalog
from services.inventory.service import SPEC

HQ_ADMIN = AuthContext("u-hq", "hq_admin")
NEW = Part(
    part_number="HW-SCR-P60-V2",
    brand="huawei",
    description="P60 屏幕总成 (第二版)",
    category="screen",
    serialised=False,
    standard_cost_fen=42000,
    retail_price_fen=90000,
    compatible_models=("p60",),
)


def test_a_part_must_be_whole_and_its_successors_must_not_loop() -> None:
    known: dict[str, str | None] = {"A": "B", "B": None}
    check_part(replace(NEW, superseded_by="A"), known)
    with pytest.raises(InvalidInput):
        check_part(replace(NEW, superseded_by="Z"), known)
    with pytest.raises(Conflict):
        check_part(replace(NEW, part_number="B", superseded_by="A"), known)
    for bad, field in [
        (replace(NEW, category="toaster"), "category"),
        (replace(NEW, retail_price_fen=-1), "retail_price_fen"),
        (replace(NEW, compatible_models=("p60", "p60")), "compatible_models"),
        (replace(NEW, description=""), "description"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            check_part(bad, known)
        assert caught.value.errors[0].field == field


@pytest.fixture
async def runtime(db_target: DatabaseTarget, nats_server: NatsServer) -> AsyncIterator[Runtime]:
    settings = service_settings("inventory", db_target, nats_server.url, demo_data=True)
    runtime = await open_runtime(SPEC, settings)
    yield runtime
    await close_runtime(runtime)


@pytest.mark.service("inventory")
async def test_hq_adds_a_successor_and_supersedes_the_old_part(runtime: Runtime) -> None:
    uow = runtime.uow
    await catalog.put_part(uow, HQ_ADMIN, NEW)
    [old] = [
        p
        for p in (
            await catalog.list_parts(uow, catalog.part_filter("huawei", "screen", "p60"), 50, "")
        )[0]
        if p.part_number == "HW-SCR-P60"
    ]
    await catalog.put_part(uow, HQ_ADMIN, replace(old, superseded_by=NEW.part_number))
    parts, _ = await catalog.list_parts(uow, catalog.part_filter("", "", "p60"), 50, "")
    by_number = {p.part_number: p for p in parts}
    assert by_number["HW-SCR-P60"].superseded_by == NEW.part_number
    assert by_number[NEW.part_number].compatible_models == ("p60",)
    with pytest.raises(Conflict):  # the new one cannot be superseded by the old one
        await catalog.put_part(uow, HQ_ADMIN, replace(NEW, superseded_by="HW-SCR-P60"))
    with pytest.raises(Conflict):  # the old one has moved: its flag stays
        await catalog.put_part(uow, HQ_ADMIN, replace(old, serialised=True))
    with pytest.raises(Forbidden):
        await catalog.put_part(uow, AuthContext("u-shm", "branch_manager", "SH"), NEW)
