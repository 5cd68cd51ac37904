"""promtool (Debian's `prometheus` package) for the tests: CI installs it (.ci/run), so there
a missing promtool fails; on a developer's machine without it those tests skip, saying so."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def promtool() -> str:
    found = shutil.which("promtool")
    if found is not None:
        return found
    if os.environ.get("CI"):
        pytest.fail("promtool is missing in CI: .ci/run installs Debian's prometheus package")
    pytest.skip("promtool is not installed (apt-get install prometheus); CI runs these checks")


def run(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """promtool with these arguments; its output (stdout and stderr) in `.stdout`."""
    done = subprocess.run(
        [promtool(), *map(str, args)],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=120,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode() + done.stderr.decode()
    )
