"""`make web-e2e`: the console in a real browser against the real system. Starts NATS, the four
services and the gateway (serving web/dist) on free ports as tests/e2e do, then runs the
Playwright walks in web/e2e/ with Debian's Chromium; screenshots land in web/e2e-results/.
TEST_DATABASE_URL=postgresql://... runs the system on PostgreSQL, as for the e2e tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from devtools.system import LocalSystem, SystemConfig
from servicekit.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
RESULTS = WEB / "e2e-results"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
WALKS = sorted(str(p.relative_to(WEB)) for p in (WEB / "e2e").glob("*.test.mjs"))


def main() -> int:
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", file=sys.stderr)
        return 2
    if not (WEB / "dist" / "index.html").exists():
        print("the console is not built: make web", file=sys.stderr)
        return 2
    shutil.rmtree(RESULTS, ignore_errors=True)
    RESULTS.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="web-e2e-") as folder:
        code = asyncio.run(walk(Path(folder)))
    print(f"screenshots: {RESULTS}")
    return code


async def walk(folder: Path) -> int:
    """Start the system in `folder`, run the walks against it, stop it; node's exit code."""
    local = LocalSystem(SystemConfig.for_tests(folder, env={"RATE_LIMIT_PER_SECOND": "0"}))
    try:
        await local.start()
        env = {
            **os.environ,
            "GATEWAY_URL": local.gateway_url,
            "DEMO_PASSWORD": DEMO_PASSWORD,
            "E2E_RESULTS": str(RESULTS),
            "CHROMIUM": CHROMIUM,
        }
        node = await asyncio.create_subprocess_exec(
            "node", "--test", "--test-reporter=spec", *WALKS, cwd=WEB, env=env
        )
        return await node.wait()
    finally:
        local.stop()
        await local.drop_schemas()


if __name__ == "__main__":
    sys.exit(main())
