"""The event bus takes nobody's word: on a NATS server configured from
servicekit.bus_permissions (as `make run`, the end-to-end tests and Kubernetes are), a
connection without credentials is refused, and each service's user may publish only its own
events and read only the streams it consumes, through its own durable consumers."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError

from devtools.system import LocalSystem, SystemConfig
from servicekit import bus
from servicekit.bus_permissions import OPERATOR, SERVICES, USERS, BusUser
from servicekit.runtime import Runtime, ServiceSpec
from servicekit.settings import Settings
from servicekit.testing import (
    HARNESS,
    NatsServer,
    certificate_authority,
    eventually,
    free_port,
    issue_certificate,
)

ORDER_CLOSED = "orders.v1.SH.SH-001.order_closed"


class Refusals:
    """The permission violations the server reports to one connection."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def note(self, error: Exception) -> None:
        self.errors.append(str(error).lower())

    async def of(self, action: str, subject: str) -> bool:
        """Whether the server refused `action` on `subject`. It reports a refusal before it
        answers the PING of a flush that follows; the client hands the report to its error
        callback a moment later, so this waits for it (a refusal arrives, or the test fails)."""
        wanted = f'permissions violation for {action} to "{subject.lower()}"'

        async def reported() -> bool:
            return any(wanted in error for error in self.errors)

        return await eventually(reported, within=10)


@asynccontextmanager
async def connected_as(server: NatsServer, user: str) -> AsyncIterator[tuple[NATS, Refusals]]:
    refusals = Refusals()
    nc = await nats.connect(
        server.url,
        allow_reconnect=False,
        error_cb=refusals.note,
        **bus.connect_options(server.url, server.auth(user)),
    )
    try:
        yield nc, refusals
    finally:
        await nc.close()


async def publish_refused(server: NatsServer, user: str, subject: str) -> bool:
    """Whether the server refuses `user` a publish on `subject`."""
    async with connected_as(server, user) as (nc, refusals):
        await nc.publish(subject, b"forged", reply=f"{bus.inbox_prefix(user)}.probe")
        await nc.flush()
        return await refusals.of("publish", subject)


async def subscribe_refused(server: NatsServer, user: str, subject: str) -> bool:
    async with connected_as(server, user) as (nc, refusals):
        await nc.subscribe(subject)
        await nc.flush()
        return await refusals.of("subscription", subject)


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server of this module's own: its consumers keep out of the session server's."""
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture
async def streams_made(nats_server: NatsServer) -> None:
    nc = await nats_server.connect(HARNESS)
    await bus.ensure_streams(nc.jetstream())
    await nc.close()


async def test_a_connection_without_credentials_is_refused(nats_server: NatsServer) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await nats.connect(nats_server.url, allow_reconnect=False, max_reconnect_attempts=0)


async def test_a_wrong_password_is_refused(nats_server: NatsServer, tmp_path: Path) -> None:
    wrong = tmp_path / "password"
    wrong.write_text("not-the-password")
    with pytest.raises(NatsError, match="Authorization Violation"):
        await bus.connect_once(nats_server.url, "forger", bus.BusAuth("orders", wrong))


@pytest.mark.parametrize(
    ("user", "subject"),
    [
        # The forged order_closed the customers service would text the customer about.
        ("customers", ORDER_CLOSED),
        ("reporting", ORDER_CLOSED),
        ("inventory", ORDER_CLOSED),
        ("orders", "customers.v1.SH.SH-001.customer_registered"),
        ("orders", "inventory.v1.SH.SH-001.stock_moved"),
        ("customers", "inventory.v1.SH.SH-001.stock_moved"),
        # Another service's dead letters, and stream administration it has no business in.
        ("customers", "deadletters.v1.orders.orders-x"),
        ("customers", "$JS.API.STREAM.UPDATE.ORDERS"),
        ("customers", "$JS.API.STREAM.DELETE.ORDERS"),
        ("reporting", "$JS.API.STREAM.PURGE.ORDERS"),
        ("reporting", "$JS.API.STREAM.MSG.DELETE.DEAD_LETTERS"),
        # A consumer it does not run, or of a stream it does not read.
        ("customers", "$JS.API.CONSUMER.CREATE.ORDERS.reporting-orders"),
        ("inventory", "$JS.API.CONSUMER.CREATE.ORDERS.spy"),
        ("inventory", "$JS.API.CONSUMER.MSG.NEXT.ORDERS.reporting-orders"),
        # Acks for another service's consumer.
        ("customers", "$JS.ACK.ORDERS.reporting-orders.1.1.1.1.0"),
        # The operator replays dead letters; it is not a service and does not run consumers.
        (OPERATOR, "$JS.API.CONSUMER.CREATE.ORDERS.spy"),
    ],
)
async def test_a_service_may_not_publish_outside_its_subjects(
    nats_server: NatsServer, streams_made: None, user: str, subject: str
) -> None:
    assert await publish_refused(nats_server, user, subject)


@pytest.mark.parametrize(
    ("user", "subject"),
    [
        ("customers", "orders.v1.>"),  # core subscribers see every publish of the subject
        ("reporting", ">"),
        ("customers", "_INBOX.orders.>"),  # another user's replies (its acks, API answers)
        ("inventory", "_INBOX.>"),
        ("orders", "$JS.ACK.>"),
    ],
)
async def test_a_service_may_not_listen_outside_its_inbox(
    nats_server: NatsServer, user: str, subject: str
) -> None:
    assert await subscribe_refused(nats_server, user, subject)


@pytest.mark.parametrize("service", ["orders", "inventory", "customers"])
async def test_a_service_publishes_its_own_events_to_its_own_stream(
    nats_server: NatsServer, streams_made: None, service: str
) -> None:
    (stream,) = SERVICES[service].owns
    subject = bus.subject(service, "SH", "SH-001", "probe")
    nc = await nats_server.connect(service)
    try:
        ack = await nc.jetstream().publish(subject, b"its own")
    finally:
        await nc.close()
    assert ack.stream == stream


def service_spec(name: str) -> ServiceSpec:
    spec: ServiceSpec = importlib.import_module(f"services.{name}.service").SPEC
    return spec


def consumers_of(name: str) -> list[Any]:
    """The consumers the service runs, built without a database or a bus (their names,
    streams and subjects are all this needs)."""
    spec = service_spec(name)
    nothing: Any = None
    runtime = Runtime(Settings.from_env(name), nothing, spec.metadata, nothing, nothing, nothing)
    return list(spec.consumers(runtime))


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_consumer_a_service_runs_is_in_its_permissions(service: str) -> None:
    allowed = {
        (consumed.stream, durable)
        for consumed in SERVICES[service].consumes
        for durable in consumed.durables
    }
    running = {(consumer.stream, consumer.name) for consumer in consumers_of(service)}
    assert running == allowed, "servicekit.bus_permissions lists exactly the consumers it runs"


async def test_a_service_runs_its_consumers_as_its_own_user(
    nats_server: NatsServer, streams_made: None
) -> None:
    """Each of customers' consumers is created, fetches and acks with customers' own user."""
    nc = await nats_server.connect("customers")
    harness = await nats_server.connect(HARNESS)
    try:
        js = nc.jetstream()
        for consumer in consumers_of("customers"):
            await js.add_consumer(consumer.stream, consumer.config())
            pull = await js.pull_subscribe_bind(durable=consumer.name, stream=consumer.stream)
            # An event on the consumer's own filter, its wildcards filled in.
            subject = consumer.subjects[0].replace(">", "x").replace("*", "SH")
            await harness.jetstream().publish(subject, b"an event")
            (msg,) = await pull.fetch(1, timeout=10)
            await msg.ack_sync()
            info = await js.consumer_info(consumer.stream, consumer.name)
            assert info.num_ack_pending == 0
    finally:
        await nc.close()
        await harness.close()


async def test_a_key_value_bucket_in_the_table_is_kept_by_its_user_alone(tmp_path: Path) -> None:
    """A service given a key-value bucket (`key_value`) creates it, writes, reads, lists and
    deletes keys; another service can neither read nor write them."""
    users = {
        **USERS,
        "keeper": BusUser("keeper", key_value=("personal_keys",)),
    }
    server = NatsServer(tmp_path / "nats", users=users).start()
    try:
        keeper = await server.connect("keeper")
        try:
            js = keeper.jetstream()
            bucket = await js.create_key_value(bucket="personal_keys")
            await bucket.put("customer-1", b"a key")
            assert (await bucket.get("customer-1")).value == b"a key"
            assert await bucket.keys() == ["customer-1"]
            await bucket.delete("customer-1")
            again = await js.key_value("personal_keys")
            with pytest.raises(KeyNotFoundError):
                await again.get("customer-1")
        finally:
            await keeper.close()
        assert await publish_refused(server, "orders", "$KV.personal_keys.customer-1")
        assert await subscribe_refused(server, "orders", "$KV.personal_keys.>")
        assert await publish_refused(server, "orders", "$JS.API.DIRECT.GET.KV_personal_keys")
    finally:
        server.stop()


async def test_the_system_reports_what_nats_refused_a_service(tmp_path: Path) -> None:
    """The end-to-end suite fails when a service's own connection was refused anything:
    LocalSystem finds it in the server's log (a test's own forger, unnamed, is not counted)."""
    system = LocalSystem(SystemConfig.on_free_ports(tmp_path))
    system.nats = NatsServer(tmp_path / "nats").start()
    try:
        assert system.bus_refusals() == []
        forger = await nats.connect(
            system.nats_url,
            **bus.connect_options(system.nats_url, system.bus_auth("customers")),
        )
        await forger.publish(ORDER_CLOSED, b"forged")
        await forger.flush()
        await forger.close()
        nc = await bus.connect_once(system.nats_url, "orders", system.bus_auth("orders"))
        await nc.publish(ORDER_CLOSED.replace("orders.", "customers.", 1), b"not its own")
        await nc.flush()
        await nc.close()

        async def reported() -> list[str]:
            return system.bus_refusals()

        (line,) = await eventually(reported)
        assert '"$G/user:orders" - Publish Violation' in line
    finally:
        system.nats.stop()


def test_the_harness_and_the_operator_are_no_service() -> None:
    assert HARNESS not in USERS, "the harness exists only on our test servers"
    assert OPERATOR not in SERVICES


async def test_a_tls_server_takes_only_tls_clients_that_trust_its_ca(tmp_path: Path) -> None:
    ca = certificate_authority(tmp_path, "nats-ca")
    server = NatsServer(
        tmp_path / "nats", free_port(), tls=issue_certificate(tmp_path, "nats", ca, server=True)
    ).start()
    try:
        nc = await server.connect("orders")
        try:
            await bus.ensure_streams(nc.jetstream(), owned=["ORDERS"])
            ack = await nc.jetstream().publish(bus.subject("orders", "SH", None, "probe"), b"x")
            assert ack.stream == "ORDERS"
        finally:
            await nc.close()
        plain_url = server.url.replace("tls://", "nats://")
        auth = server.auth("orders")
        with pytest.raises(Exception):  # noqa: B017 - the client's refusal differs by version
            await bus.connect_once(plain_url, "plain", bus.BusAuth(auth.user, auth.password_file))
        stranger = certificate_authority(tmp_path, "stranger")
        with pytest.raises(Exception):  # noqa: B017
            await bus.connect_once(
                server.url, "untrusting", bus.BusAuth(auth.user, auth.password_file, stranger.file)
            )
    finally:
        server.stop()


def test_every_user_replies_to_its_own_inbox_only() -> None:
    for name, user in USERS.items():
        inboxes = [s for s in user.subscribe() if s.startswith("_INBOX")]
        assert inboxes == [f"_INBOX.{name}.>"]


def test_the_permission_table_is_the_one_the_services_connect_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NATS_USER", raising=False)
    for name in SERVICES:
        assert Settings.from_env(name).nats_auth.user == name
