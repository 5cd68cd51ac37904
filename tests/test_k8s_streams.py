"""The streams step (servicekit.streams) against a real nats-server with the production
permissions: each service's NATS user makes and changes its own streams only, a second run
changes nothing, an old stream is brought to the settings, and a process at start never
rewrites a stream that exists. Also the sizing: the national sizes fit the prod NATS volume."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from servicekit import bus
from servicekit.bus_permissions import SERVICES
from servicekit.streams import apply_streams
from servicekit.testing import NatsServer

ROOT = Path(__file__).resolve().parent.parent
# The order the Job and `make migrate` run the users in: the archive (reporting's) sources the
# others, so it comes last.
ORDER = ("orders", "inventory", "customers", "reporting")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    started = NatsServer(tmp_path / "nats").start()
    yield started
    started.stop()


def run_step(server: NatsServer, user: str, *args: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "servicekit.streams", user, *args],
        env={**os.environ, **server.env(user), "NATS_STREAM_REPLICAS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(line.split("\t", 1) for line in result.stdout.splitlines())


def test_the_order_covers_every_service_user() -> None:
    assert sorted(ORDER) == sorted(SERVICES)


async def test_each_user_makes_its_own_streams_and_a_second_run_changes_nothing(
    server: NatsServer,
) -> None:
    made: dict[str, str] = {}
    for user in ORDER:
        made |= {name: what for name, what in run_step(server, user).items() if name not in made}
    assert made == {name: "created" for name in bus.stream_configs()}
    for user in ORDER:
        assert set(run_step(server, user).values()) == {"unchanged"}, user
    nc = await server.connect()
    try:
        js = nc.jetstream()
        for name, wanted in bus.stream_configs().items():
            config = (await js.stream_info(name)).config
            assert config.discard == DiscardPolicy.NEW, name
            assert config.max_bytes == wanted.max_bytes and config.max_bytes, name
            assert config.max_age == wanted.max_age and config.max_age, name
            assert config.storage == StorageType.FILE, name
    finally:
        await nc.close()


async def test_an_older_stream_is_brought_to_the_settings_by_the_step_only(
    server: NatsServer,
) -> None:
    nc = await server.connect()
    try:
        js = nc.jetstream()
        # ORDERS as an older version made it: dropping the oldest when full, no size limit.
        await js.add_stream(
            StreamConfig(
                name="ORDERS",
                subjects=bus.STREAMS["ORDERS"],
                storage=StorageType.FILE,
                discard=DiscardPolicy.OLD,
                max_age=3600,
            )
        )
        orders = await server.connect("orders")
        try:
            # A process at start: the stream exists, so it is left as it is.
            await bus.ensure_streams(orders.jetstream(), 1, ["ORDERS", "DEAD_LETTERS"])
        finally:
            await orders.close()
        old = (await js.stream_info("ORDERS")).config
        assert (old.discard, old.max_age) == (DiscardPolicy.OLD, 3600)
        assert (await js.stream_info("DEAD_LETTERS")).config.discard == DiscardPolicy.NEW

        done = run_step(server, "orders")
        assert done["ORDERS"].startswith("updated ")
        assert {"discard", "max_age", "max_bytes"} <= set(done["ORDERS"][8:].split(", "))
        new = (await js.stream_info("ORDERS")).config
        assert new.discard == DiscardPolicy.NEW
        assert new.max_bytes == bus.MAX_BYTES["local"]["ORDERS"]
        assert await apply_streams(js, ["ORDERS"], 1, "local") == {"ORDERS": "unchanged"}
    finally:
        await nc.close()


async def test_a_user_may_not_change_another_users_stream(server: NatsServer) -> None:
    run_step(server, "orders")
    inventory = await server.connect("inventory")
    try:
        with pytest.raises(Exception, match=r"(?i)permission|timeout"):
            await apply_streams(inventory.jetstream(), ["ORDERS"], 1, "national")
    finally:
        await inventory.close()


def byte_size(text: str) -> int:
    """`4500GB`, `4.5Ti` and the like, as nats-server and Kubernetes read them."""
    number, unit = re.fullmatch(r"([\d.]+)\s*([A-Za-z]*)", text.strip()).groups()  # type: ignore[union-attr]
    units = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}
    units |= {"KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}  # nats-server: binary
    units |= {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
    return int(float(number) * units[unit])


def nats_storage(component: str) -> tuple[int, int]:
    """(max_file_store, the data volume's request) of a NATS component."""
    docs = list(yaml.safe_load_all((ROOT / "k8s/components" / component / "nats.yaml").read_text()))
    (config,) = [d for d in docs if d and d["kind"] == "ConfigMap"]
    store = re.search(r"max_file_store:\s*(\S+)", config["data"]["nats.conf"])
    assert store, component
    (statefulset,) = [d for d in docs if d and d["kind"] == "StatefulSet"]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    return byte_size(store.group(1)), byte_size(claim["spec"]["resources"]["requests"]["storage"])


@pytest.mark.parametrize(("component", "sizing"), [("nats", "local"), ("nats-cluster", "national")])
def test_the_streams_fit_the_nats_store_and_the_store_its_volume(
    component: str, sizing: bus.Sizing
) -> None:
    """The server refuses a stream it could not hold: every stream's max_bytes together fit
    max_file_store (each server holds a copy of each), which fits the volume."""
    store, volume = nats_storage(component)
    wanted = sum(bus.MAX_BYTES[sizing].values())
    assert wanted <= store <= volume, (wanted, store, volume)
    assert store - wanted >= 0.05 * store, "room for the key bucket and the server's own state"


def test_the_national_sizes_follow_the_arithmetic() -> None:
    sizes = bus.MAX_BYTES["national"]
    for stream, events in bus.EVENTS_PER_ORDER.items():
        month = bus.BUSY_DAY_ORDERS * events * bus.STORED_EVENT_BYTES * bus.RETENTION.days
        assert month * bus.HEADROOM <= sizes[stream] < month * bus.HEADROOM + bus.GIB
    assert sizes["ORDERS"] == 64 * bus.GIB
    assert all(sizes[name] > bus.MAX_BYTES["local"][name] for name in sizes)
