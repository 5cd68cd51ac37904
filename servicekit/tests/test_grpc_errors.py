"""How a service's failures reach its callers over real gRPC: a domain error comes back as
itself, a lost database connection as ServiceUnavailable (worth a retry), a transaction the
database rolled back to break a deadlock is run again, anything else as an InternalError that
gives nothing away."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from sqlalchemy.exc import OperationalError

from servicekit.auth import AuthContext
from servicekit.errors import InternalError, NotFound, ServiceUnavailable
from servicekit.grpc_client import call, open_channel
from servicekit.grpc_server import LOST_RACE_TRIES, new_server
from servicekit.testing import acting_as, gateway_signer, session_trust

FAILURES: dict[str, Callable[[], Exception]] = {
    "NotFound": lambda: NotFound("no repair order x"),
    "DatabaseGone": lambda: OperationalError(
        "SELECT 1", {}, ConnectionError("server closed the connection"), connection_invalidated=True
    ),
    "DatabaseError": lambda: OperationalError("SELECT 1", {}, ValueError("syntax")),
    "Bug": lambda: RuntimeError("secret detail"),
}


class Deadlocked(Exception):
    """What the driver raises for the victim of a deadlock the server broke."""

    sqlstate = "40P01"


def deadlock() -> Exception:
    return OperationalError("SELECT ... FOR UPDATE", {}, Deadlocked("deadlock detected"))


def losing_races(times: int) -> grpc.RpcMethodHandler:
    """Deadlocked `times` times, then answers how many tries it took."""
    tries = 0

    async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        nonlocal tries
        tries += 1
        if tries <= times:
            raise deadlock()
        return str(tries).encode()

    return grpc.unary_unary_rpc_method_handler(handle)


def failing(make: Callable[[], Exception]) -> grpc.RpcMethodHandler:
    async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise make()

    return grpc.unary_unary_rpc_method_handler(handle)


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server, _health = new_server("test", session_trust())
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "aftersales.test.v1.Failing",
                {name: failing(make) for name, make in FAILURES.items()}
                | {
                    "LosesTwice": losing_races(2),
                    "AlwaysLoses": losing_races(LOST_RACE_TRIES),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}", "test", gateway_signer())
    yield channel
    await channel.close()
    await server.stop(None)


async def invoke(channel: grpc.aio.Channel, name: str) -> bytes:
    with acting_as(AuthContext("u-1", "clerk", "SH", "SH-001")):
        answer: bytes = await call(channel.unary_unary(f"/aftersales.test.v1.Failing/{name}"), b"")
    return answer


async def test_a_domain_error_comes_back_as_itself(channel: grpc.aio.Channel) -> None:
    with pytest.raises(NotFound, match="no repair order x"):
        await invoke(channel, "NotFound")


async def test_a_lost_database_connection_is_unavailable(channel: grpc.aio.Channel) -> None:
    with pytest.raises(ServiceUnavailable, match="database unavailable"):
        await invoke(channel, "DatabaseGone")


@pytest.mark.parametrize("name", ["DatabaseError", "Bug"])
async def test_anything_else_is_internal_and_says_nothing(
    channel: grpc.aio.Channel, name: str
) -> None:
    with pytest.raises(InternalError) as raised:
        await invoke(channel, name)
    assert raised.value.message == "internal error"


async def test_a_call_that_lost_a_deadlock_is_run_again_and_answers(
    channel: grpc.aio.Channel,
) -> None:
    assert await invoke(channel, "LosesTwice") == b"3"


async def test_a_call_that_keeps_losing_races_gives_up_as_internal(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(InternalError):
        await invoke(channel, "AlwaysLoses")
