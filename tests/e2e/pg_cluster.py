"""A PostgreSQL server of a test's own (PostgreSQL 15's initdb and pg_ctl), on a free port in a
temporary folder, that the test can really stop and start again. Run as root, the server runs
as the `postgres` user, as PostgreSQL requires."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from servicekit.testing import free_port

BIN_DIR = Path(os.environ.get("PG_BIN_DIR", "/usr/lib/postgresql/15/bin"))
_SERVER_USER = "postgres"


def missing_reason() -> str | None:
    """Why no cluster can be made here, or None when one can."""
    if not (BIN_DIR / "initdb").exists() or not (BIN_DIR / "pg_ctl").exists():
        return f"no PostgreSQL server binaries in {BIN_DIR} (set PG_BIN_DIR)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(_SERVER_USER)
        except KeyError:
            return f"running as root and there is no {_SERVER_USER!r} user to run the server"
    return None


class PgCluster:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="pg-cluster-"))
        self.data_dir = self.folder / "data"
        self.log_file = self.folder / "server.log"
        self.port = free_port()
        if os.geteuid() == 0:
            user = pwd.getpwnam(_SERVER_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", _SERVER_USER, "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> PgCluster:
        self._run(
            str(BIN_DIR / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.folder} -c fsync=off -c max_connections=200"
        )
        self._run(
            str(BIN_DIR / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(BIN_DIR / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and forget its files."""
        if (self.data_dir / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
