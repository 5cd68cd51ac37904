"""The whole system as local processes: a NATS server (unless NATS_URL names one), the four
services and the gateway, each a separate process with its own database. `make run`, the
end-to-end tests and the benchmark all start it through this one class. A service may run as
several replicas (`replicas`, PostgreSQL only): each its own process, gRPC and metrics port and
instance name, all on the service's schema and its durable consumers (which split the
messages between them); every client of the service balances over them. Each start makes new
caller-token key pairs in `<data dir>/keys` and hands every process the folder
(INTERNAL_TOKEN_KEYS). Our NATS server has the users and permissions of production
(servicekit.bus_permissions): each service connects as its own user, with its password file
(NATS_PASSWORD_FILE), so a service that publishes outside its subjects fails here too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from nats.aio.client import Client as NATS
from sqlalchemy import text

from servicekit import bus
from servicekit.bus import BusAuth
from servicekit.caller_token import GATEWAY, generate_key_pairs
from servicekit.db import Database
from servicekit.grpc_client import is_serving, open_channel
from servicekit.settings import DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS, tls_from_env
from servicekit.testing import HARNESS, NatsServer, free_port

SERVICES = ("orders", "inventory", "customers", "reporting")
ROOT = Path(__file__).resolve().parent.parent
# `make run`'s ports of a service's further replicas: the first's, plus this for each one more.
REPLICA_PORT_STEP = 100
MAX_REPLICAS = 9


def replica_names(service: str, count: int) -> list[str]:
    """The processes of a service's replicas: the first keeps the service's name (its log file,
    its key in `LocalSystem.processes`), the others are `<service>-2`, `<service>-3`, ..."""
    return [service] + [f"{service}-{number}" for number in range(2, count + 1)]


def parse_replicas(text: str) -> dict[str, int]:
    """`orders=2,reporting=2` (REPLICAS) as counts by service; ValueError naming the fault."""
    counts: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, equals, count = (piece.strip() for piece in item.partition("="))
        if not equals:
            raise ValueError(f"REPLICAS: {item!r} is not <service>=<count>")
        if name not in SERVICES:
            place = " (the gateway runs once: a load balancer belongs in front of more)"
            raise ValueError(
                f"REPLICAS: no service {name!r}; the services are {', '.join(SERVICES)}"
                + (place if name == "gateway" else "")
            )
        if name in counts:
            raise ValueError(f"REPLICAS: {name} is named twice")
        if not count.isdigit() or not 1 <= int(count) <= MAX_REPLICAS:
            raise ValueError(
                f"REPLICAS: {name}={count!r}: the count must be a whole number from 1 to "
                f"{MAX_REPLICAS}"
            )
        counts[name] = int(count)
    return counts


def check_replicas(replicas: dict[str, int], database_url: str | None) -> None:
    """More than one replica needs a database they can all share: PostgreSQL."""
    several = sorted(name for name, count in replicas.items() if count > 1)
    if several and not (database_url or "").startswith("postgresql"):
        raise ValueError(
            f"REPLICAS: {', '.join(several)} cannot run as several replicas on SQLite: the "
            "replicas of a service share its database, and each SQLite file belongs to one "
            "process here; set DATABASE_URL=postgresql://... (each service gets a schema)"
        )


@dataclass
class SystemConfig:
    data_dir: Path
    gateway_port: int = 8080
    grpc_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_GRPC_PORTS))
    metrics_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_METRICS_PORTS))
    nats_port: int = 14222
    nats_url: str | None = None  # an existing NATS server; None starts our own
    database_url: str | None = None  # PostgreSQL for all (a schema each); None: SQLite files
    schema_prefix: str = ""
    demo_data: bool = True
    env: dict[str, str] = field(default_factory=dict)  # extra environment for every process
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # How many replicas of a service run (1 when not named); their ports in grpc_ports and
    # metrics_ports by process name (replica_names).
    replicas: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.with_replicas(self.replicas)

    def with_replicas(self, replicas: dict[str, int]) -> SystemConfig:
        """Run `replicas` of those services; a further replica's ports are the first's plus
        REPLICA_PORT_STEP for each one before it (`make run`'s fixed ports)."""
        self.replicas = dict(replicas)
        for service in SERVICES:
            for number, name in enumerate(self.processes_of(service)):
                step = REPLICA_PORT_STEP * number
                self.grpc_ports.setdefault(name, self.grpc_ports[service] + step)
                self.metrics_ports.setdefault(name, self.metrics_ports[service] + step)
        return self

    @classmethod
    def on_free_ports(cls, data_dir: Path, **changes: object) -> SystemConfig:
        """Every port picked free: for tests and benchmarks beside anything else running."""
        replicas = changes.pop("replicas", {})
        assert isinstance(replicas, dict)
        config = cls(
            data_dir=data_dir,
            gateway_port=free_port(),
            grpc_ports={name: free_port() for name in SERVICES},
            metrics_ports={name: free_port() for name in SERVICES},
            nats_port=free_port(),
        )
        for key, value in changes.items():
            setattr(config, key, value)
        for service in SERVICES:
            for name in replica_names(service, replicas.get(service, 1))[1:]:
                config.grpc_ports[name] = free_port()
                config.metrics_ports[name] = free_port()
        return config.with_replicas(replicas)

    def processes_of(self, service: str) -> list[str]:
        """The process names of the service's replicas."""
        return replica_names(service, self.replicas.get(service, 1))

    def service_processes(self) -> list[str]:
        return [name for service in SERVICES for name in self.processes_of(service)]

    def address_of(self, service: str) -> str:
        """Where its clients find the service: every replica's address, comma-separated
        (servicekit.grpc_client balances over them)."""
        return ",".join(f"127.0.0.1:{self.grpc_ports[name]}" for name in self.processes_of(service))

    @classmethod
    def for_tests(cls, data_dir: Path, **changes: object) -> SystemConfig:
        """Free ports; PostgreSQL in fresh schemas when TEST_DATABASE_URL is set."""
        config = cls.on_free_ports(data_dir, **changes)
        if os.environ.get("TEST_DATABASE_URL"):
            config.database_url = os.environ["TEST_DATABASE_URL"]
            config.schema_prefix = f"e{uuid.uuid4().hex[:8]}_"
        return config


def service_of(process: str) -> str:
    """The service a process (replica_names) runs, or "gateway"."""
    return process.partition("-")[0]


class LocalSystem:
    def __init__(self, config: SystemConfig) -> None:
        check_replicas(config.replicas, config.database_url)
        self.config = config
        self.nats: NatsServer | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.jwt_secret = secrets.token_urlsafe(32)
        self.log_dir = config.data_dir / "logs"
        self.keys_dir = config.data_dir / "keys"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.config.gateway_port}"

    @property
    def sms_outbox(self) -> Path:
        """Where the customers service's local SMS provider writes, one JSON line a message."""
        return self.config.data_dir / "sms-outbox.jsonl"

    @property
    def nats_url(self) -> str:
        if self.config.nats_url:
            return self.config.nats_url
        assert self.nats is not None
        return self.nats.url

    def bus_env(self, user: str) -> dict[str, str]:
        """What a process needs to reach NATS as `user`: with our own server its credentials;
        with one NATS_URL names, whatever the environment says."""
        if self.nats is None:
            return {"NATS_URL": self.nats_url}
        return self.nats.env(user)

    def bus_auth(self, user: str = HARNESS) -> BusAuth:
        if self.nats is None:
            return BusAuth(user)
        return self.nats.auth(user)

    async def connect_bus(self, user: str = HARNESS) -> NATS:
        """A NATS connection as `user`: by default the harness, which may do anything, for a
        test's own look into the streams."""
        return await bus.connect_once(self.nats_url, f"test-{user}", self.bus_auth(user))

    def bus_refusals(self) -> list[str]:
        """What our NATS server refused a service's own connection (named after the service):
        a publish or subscription outside its permissions, which its flows cannot survive."""
        if self.nats is None:
            return []
        log = self.nats.store_dir / "nats-server.log"
        names = "|".join(SERVICES)
        # The server names a client `"<version>:<language>:<connection name>"`.
        refused = re.compile(rf'"[^":]*:[^":]*:({names})" - "[^"]*" - \w+ Violation')
        return [
            line for line in log.read_text(errors="replace").splitlines() if refused.search(line)
        ]

    def schemas(self) -> list[str]:
        return [f"{self.config.schema_prefix}{name}" for name in (*SERVICES, "gateway")]

    def _env(self, name: str) -> dict[str, str]:
        config = self.config
        service = service_of(name)
        env = {
            **os.environ,
            "DATA_DIR": str(config.data_dir),
            "DEMO_DATA": "1" if config.demo_data and name == service else "0",
            "PYTHONUNBUFFERED": "1",
            "INTERNAL_TOKEN_KEYS": str(self.keys_dir),
            # Which replica this is, in its traces.
            "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={name}",
            **{f"{s.upper()}_ADDR": config.address_of(s) for s in SERVICES},
        }
        if config.database_url:
            env["DATABASE_URL"] = config.database_url
            env["DB_SCHEMA"] = f"{config.schema_prefix}{service}"
        else:
            env.pop("DATABASE_URL", None)
            env.pop("DB_SCHEMA", None)
        if name == "gateway":
            env["GATEWAY_PORT"] = str(config.gateway_port)
            env["JWT_SECRET"] = self.jwt_secret
        else:
            env.update(self.bus_env(service))
            env["GRPC_PORT"] = str(config.grpc_ports[name])
            env["METRICS_PORT"] = str(config.metrics_ports[name])
        if service == "customers":
            env["SMS_OUTBOX_FILE"] = str(self.sms_outbox)
        env.update(config.env)
        env.update(config.service_env.get(service, {}))
        if name != service:
            env.update(config.service_env.get(name, {}))
        return env

    def spawn(self, name: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        # A session of its own: Ctrl-C reaches the launcher only, which stops the rest in order.
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service_of(name)}"],
            cwd=ROOT,
            env=self._env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def start(self, timeout: float = 60.0) -> None:
        generate_key_pairs(self.keys_dir, (GATEWAY, *SERVICES))
        if not self.config.nats_url:
            self.nats = NatsServer(self.config.data_dir / "nats", self.config.nats_port).start()
        # The first replica of each migrates its schema and seeds the demo data; the others
        # start once it serves, on a schema that is ready.
        for service in SERVICES:
            self.spawn(service)
        await asyncio.gather(*(self.wait_serving(name, timeout) for name in SERVICES))
        more = [name for name in self.config.service_processes() if name not in SERVICES]
        for name in more:
            self.spawn(name)
        await asyncio.gather(*(self.wait_serving(name, timeout) for name in more))
        self.spawn("gateway")
        await self.wait_gateway_ready(timeout)

    async def wait_serving(self, name: str, timeout: float = 60.0) -> None:
        # Health checks need no caller token; with GRPC_TLS_* set, this channel uses them too.
        channel = open_channel(f"127.0.0.1:{self.config.grpc_ports[name]}", tls=tls_from_env())
        deadline = time.monotonic() + timeout
        try:
            while not await is_serving(channel):
                self._check_alive(name)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not become ready; see {self.log_dir}")
                await asyncio.sleep(0.1)
        finally:
            await channel.close()

    async def wait_gateway_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.gateway_url, timeout=2) as client:
            while True:
                self._check_alive("gateway")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"gateway did not become ready; see {self.log_dir}")
                await asyncio.sleep(0.1)

    def _check_alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def kill(self, name: str) -> None:
        """SIGKILL: the crash case, no chance to clean up."""
        process = self.processes[name]
        process.kill()
        process.wait()

    def terminate(self, name: str, timeout: float = 20.0) -> int:
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    async def restart(self, name: str, env: dict[str, str] | None = None) -> None:
        if env is not None:
            self.config.service_env[name] = env
        self.spawn(name)
        if name == "gateway":
            await self.wait_gateway_ready()
        else:
            await self.wait_serving(name)

    def dead(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def stop(self) -> None:
        for name in ("gateway", *reversed(self.config.service_processes())):
            if name in self.processes:
                self.terminate(name)
        if self.nats:
            self.nats.stop()

    async def drop_schemas(self) -> None:
        """Forget the PostgreSQL schemas this system made (tests and benchmarks)."""
        if not self.config.database_url:
            return
        db = Database(self.config.database_url)
        async with db.begin() as conn:
            for schema in self.schemas():
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await db.dispose()

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}
