"""A service's replicas behind one channel: a list of addresses balanced round-robin, a dead
replica's calls taken by the others, and only calls that cannot act twice tried again."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from servicekit.auth import AuthContext
from servicekit.errors import DomainError, ServiceUnavailable
from servicekit.grpc_client import channel_target, open_channel
from servicekit.grpc_server import abort_with, new_server
from servicekit.idempotency import passing_request_id
from servicekit.settings import service_address
from servicekit.testing import acting_as, gateway_signer, session_trust

SERVICE = "aftersales.test.v1.Things"
CALLER = AuthContext("u-1", "hq_admin")


@pytest.mark.parametrize(
    ("address", "target"),
    [
        ("127.0.0.1:50151", "127.0.0.1:50151"),
        ("orders:50151", "orders:50151"),
        ("dns:///orders-headless:50151", "dns:///orders-headless:50151"),
        ("127.0.0.1:50151,127.0.0.1:50251", "ipv4:127.0.0.1:50151,127.0.0.1:50251"),
        (" 10.0.0.1:1 , 10.0.0.2:1 ", "ipv4:10.0.0.1:1,10.0.0.2:1"),
        ("[::1]:50151,[::1]:50251", "ipv6:[::1]:50151,[::1]:50251"),
        ("ipv4:127.0.0.1:1,127.0.0.1:2", "ipv4:127.0.0.1:1,127.0.0.1:2"),
    ],
)
def test_an_address_setting_becomes_one_grpc_target(address: str, target: str) -> None:
    assert channel_target(address) == target


@pytest.mark.parametrize(
    ("address", "named"),
    [
        ("orders-1:50151,orders-2:50151", "'orders-1:50151' is no IP address"),
        ("127.0.0.1,127.0.0.1:2", "'127.0.0.1' is no IP address with its port"),
        ("127.0.0.1:1,127.0.0.1:x", "'127.0.0.1:x' is no IP address"),
        ("127.0.0.1:1,[::1]:2", "all IPv4 or all IPv6"),
    ],
)
def test_a_list_grpc_cannot_take_is_refused_naming_the_fault(address: str, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        channel_target(address)


def test_a_bad_address_list_stops_the_process_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INVENTORY_ADDR", "inventory-a:1,inventory-b:1")
    with pytest.raises(SystemExit, match=r"INVENTORY_ADDR: .*no IP address"):
        service_address("inventory")
    monkeypatch.setenv("INVENTORY_ADDR", "127.0.0.1:1,127.0.0.1:2")
    assert service_address("inventory") == "127.0.0.1:1,127.0.0.1:2"


class Replica:
    """An in-process server of SERVICE answering its name; the first `failing` calls of each
    method fail UNAVAILABLE, as a call in hand when a replica dies does."""

    def __init__(self, name: str, failing: int = 0, refusal: DomainError | None = None) -> None:
        self.name = name
        self.failing = failing
        self.refusal = refusal
        self.calls: Counter[str] = Counter()
        self.server, _health = new_server("test", session_trust())
        handlers = {
            method: grpc.unary_unary_rpc_method_handler(self._answer(method))
            for method in ("GetThing", "MakeThing")
        }
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, handlers)]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def _answer(self, method: str) -> Callable[[bytes, grpc.aio.ServicerContext], object]:
        async def answer(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.calls[method] += 1
            if self.refusal is not None:
                await abort_with(context, self.refusal)
            if self.calls[method] <= self.failing:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away")
            return self.name.encode()

        return answer


@pytest.fixture
async def replicas() -> AsyncIterator[list[Replica]]:
    started = [Replica("first"), Replica("second")]
    for replica in started:
        await replica.server.start()
    try:
        yield started
    finally:
        for replica in started:
            await replica.server.stop(None)


def addresses(replicas: list[Replica]) -> str:
    return ",".join(f"127.0.0.1:{replica.port}" for replica in replicas)


async def test_calls_balance_over_a_list_of_replica_addresses(replicas: list[Replica]) -> None:
    channel = open_channel(addresses(replicas), "test", gateway_signer())
    get = channel.unary_unary(f"/{SERVICE}/GetThing")
    try:
        with acting_as(CALLER):
            answers = Counter([await get(b"") for _ in range(20)])
    finally:
        await channel.close()
    # The very first calls may all reach whichever connected first; then they alternate.
    assert set(answers) == {b"first", b"second"}
    assert min(answers.values()) >= 5


async def test_a_dead_replica_leaves_the_rotation_and_no_call_fails(
    replicas: list[Replica],
) -> None:
    channel = open_channel(addresses(replicas), "test", gateway_signer())
    get = channel.unary_unary(f"/{SERVICE}/GetThing")
    make = channel.unary_unary(f"/{SERVICE}/MakeThing")
    try:
        with acting_as(CALLER):
            assert {await get(b"") for _ in range(10)} == {b"first", b"second"}
            await replicas[0].server.stop(None)
            answers = [await get(b"") for _ in range(10)]
            # A write with no request id too: the dead replica is out of the rotation.
            answers.append(await make(b""))
    finally:
        await channel.close()
    assert set(answers) == {b"second"}


async def test_reads_and_keyed_writes_are_tried_again_unkeyed_writes_are_not() -> None:
    flaky = Replica("flaky", failing=1)
    await flaky.server.start()
    channel = open_channel(f"127.0.0.1:{flaky.port}", "test", gateway_signer())
    try:
        with acting_as(CALLER):
            assert await channel.unary_unary(f"/{SERVICE}/GetThing")(b"") == b"flaky"
            make = channel.unary_unary(f"/{SERVICE}/MakeThing")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await make(b"")
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            flaky.calls["MakeThing"] = 0
            with passing_request_id("u-1:key-1"):
                assert await make(b"") == b"flaky"
    finally:
        await channel.close()
        await flaky.server.stop(None)
    # The read and the keyed write twice each (one refused, one answered); the unkeyed once.
    assert flaky.calls == {"GetThing": 2, "MakeThing": 2}


async def test_a_service_saying_it_cannot_serve_now_is_not_asked_again() -> None:
    """Its database is away: a 503 for the caller to retry when it sees fit (a keyed POST
    then runs again: the gateway keeps no 5xx), not a replica gone."""
    busy = Replica("busy", refusal=ServiceUnavailable("database restarting"))
    await busy.server.start()
    channel = open_channel(f"127.0.0.1:{busy.port}", "test", gateway_signer())
    try:
        with acting_as(CALLER), passing_request_id("u-1:key-1"):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await channel.unary_unary(f"/{SERVICE}/GetThing")(b"")
            with pytest.raises(grpc.aio.AioRpcError):
                await channel.unary_unary(f"/{SERVICE}/MakeThing")(b"")
    finally:
        await channel.close()
        await busy.server.stop(None)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert busy.calls == {"GetThing": 1, "MakeThing": 1}


async def test_a_replica_that_keeps_refusing_fails_the_call_within_its_deadline() -> None:
    down = Replica("down", failing=100)
    await down.server.start()
    channel = open_channel(f"127.0.0.1:{down.port}", "test", gateway_signer(), timeout=2)
    try:
        with acting_as(CALLER), pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(f"/{SERVICE}/GetThing")(b"")
    finally:
        await channel.close()
        await down.server.stop(None)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert down.calls["GetThing"] == 3
