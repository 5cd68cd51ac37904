"""`make run`: start the whole system locally on its embedded defaults and keep it running
until Ctrl-C. NATS_URL and DATABASE_URL, when set, are used instead of our own NATS server and
the SQLite files. REPLICAS=orders=2,reporting=2 runs that many replicas of those services
(PostgreSQL only), the gateway balancing over them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

from devtools.system import (
    SERVICES,
    LocalSystem,
    SystemConfig,
    check_replicas,
    parse_replicas,
)
from servicekit.demo import DEMO_PASSWORD
from services.gateway.demo import demo_users


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def demo_usernames() -> list[str]:
    return [username for username, _name, _role, _unit in demo_users()]


def nats_users(system: LocalSystem) -> str:
    """Where our NATS server's users keep their passwords (the operator's replays dead
    letters: NATS_USER=operator NATS_PASSWORD_FILE=<its file>)."""
    if system.nats is None:
        return ""
    return f"\n  NATS users   {system.nats.password_file('operator').parent} (one per service)"


def replicas(config: SystemConfig) -> str:
    """The services running as several replicas: each replica's gRPC and metrics ports."""
    lines: list[str] = []
    for service in SERVICES:
        names = config.processes_of(service)
        if len(names) > 1:
            grpc = ", ".join(str(config.grpc_ports[name]) for name in names)
            metrics = ", ".join(str(config.metrics_ports[name]) for name in names)
            heading = "Replicas" if not lines else ""
            ports = f"gRPC {grpc}; metrics {metrics}"
            lines.append(f"\n  {heading:<12} {service:<10} {', '.join(names)}: {ports}")
    return "".join(lines)


def banner(system: LocalSystem) -> str:
    url = system.gateway_url
    users = ", ".join(demo_usernames())
    return f"""
After-sales platform is running.

  Gateway      {url}          (API docs: {url}/docs)
  Web console  {url}/         (sign in as a demo user below){replicas(system.config)}
  NATS         {system.nats_url}{nats_users(system)}
  Logs         {system.log_dir}/<process>.log
  Keys         {system.keys_dir} (caller-token key pairs, new each run)
  Demo users   {users}
  Password     {DEMO_PASSWORD} (all demo users)

Try:
  curl -s -X POST {url}/api/v1/auth/token -d username=sh001.clerk -d password={DEMO_PASSWORD}

Press Ctrl-C to stop.
"""


def config_from_env() -> SystemConfig:
    """The run's settings; SystemExit naming the fault when REPLICAS asks what cannot run."""
    database_url = os.environ.get("DATABASE_URL") or None
    try:
        counts = parse_replicas(os.environ.get("REPLICAS", ""))
        check_replicas(counts, database_url)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return SystemConfig(
        data_dir=Path(os.environ.get("DATA_DIR", ".data")).resolve(),
        gateway_port=int(os.environ.get("GATEWAY_PORT", "8080")),
        nats_url=os.environ.get("NATS_URL") or None,
        database_url=database_url,
        # As for `make migrate`: the services' schemas named <prefix><service>.
        schema_prefix=os.environ.get("DB_SCHEMA_PREFIX", ""),
        replicas=counts,
    )


async def run(config: SystemConfig) -> None:
    processes = config.service_processes()
    wanted = [
        config.gateway_port,
        *(config.grpc_ports[name] for name in processes),
        *(config.metrics_ports[name] for name in processes),
    ]
    if not config.nats_url:
        wanted.append(config.nats_port)
    if taken := [port for port in wanted if _port_taken(port)]:
        raise SystemExit(f"ports already in use: {taken}; is another `make run` still running?")
    system = LocalSystem(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("Starting NATS, " + ", ".join(processes) + " and the gateway ...", flush=True)
    try:
        await system.start()
        print(banner(system), flush=True)
        while not stop.is_set():
            if dead := system.dead():
                print(f"stopped unexpectedly: {', '.join(dead)}; see {system.log_dir}")
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        print("Stopping ...", flush=True)
        system.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    asyncio.run(run(config_from_env()))
