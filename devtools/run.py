"""`make run`: start the whole system locally on its embedded defaults and keep it running
until Ctrl-C. NATS_URL and DATABASE_URL, when set, are used instead of our own NATS server and
the SQLite files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

from devtools.system import SERVICES, LocalSystem, SystemConfig
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


def banner(system: LocalSystem) -> str:
    url = system.gateway_url
    users = ", ".join(demo_usernames())
    return f"""
After-sales platform is running.

  Gateway      {url}          (API docs: {url}/docs)
  Web console  {url}/         (sign in as a demo user below)
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
    return SystemConfig(
        data_dir=Path(os.environ.get("DATA_DIR", ".data")).resolve(),
        gateway_port=int(os.environ.get("GATEWAY_PORT", "8080")),
        nats_url=os.environ.get("NATS_URL") or None,
        database_url=os.environ.get("DATABASE_URL") or None,
    )


async def run(config: SystemConfig) -> None:
    wanted = [config.gateway_port, *config.grpc_ports.values(), *config.metrics_ports.values()]
    if not config.nats_url:
        wanted.append(config.nats_port)
    if taken := [port for port in wanted if _port_taken(port)]:
        raise SystemExit(f"ports already in use: {taken}; is another `make run` still running?")
    system = LocalSystem(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("Starting NATS, " + ", ".join(SERVICES) + " and the gateway ...", flush=True)
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
