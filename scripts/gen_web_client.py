"""Generate the console's API types (web/src/api/schema.d.ts) from the gateway's OpenAPI
(`make web-client`), with openapi-typescript from web/node_modules.

With --check, generate into a temporary file and fail when the committed one differs: the
console's client can never drift from the API it calls (`make web-client-check`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
SCHEMA = WEB / "src" / "api" / "schema.d.ts"
GENERATOR = WEB / "node_modules" / ".bin" / "openapi-typescript"


def openapi() -> str:
    app = create_app(GatewaySettings(jwt_secret="unused-when-only-documenting"))
    return json.dumps(app.openapi(), ensure_ascii=False, indent=1)


def generate(out: Path) -> None:
    if not GENERATOR.exists():
        raise SystemExit("openapi-typescript is missing: run `make web-deps` first")
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "openapi.json"
        spec.write_text(openapi(), encoding="utf-8")
        subprocess.run([str(GENERATOR), str(spec), "-o", str(out)], check=True, cwd=WEB)


def main() -> None:
    if "--check" not in sys.argv[1:]:
        generate(SCHEMA)
        return
    with tempfile.TemporaryDirectory() as folder:
        fresh = Path(folder) / "schema.d.ts"
        generate(fresh)
        if not SCHEMA.exists() or fresh.read_text() != SCHEMA.read_text():
            raise SystemExit(
                f"{SCHEMA.relative_to(ROOT)} is stale: run `make web-client` and commit it"
            )
    print(f"{SCHEMA.relative_to(ROOT)} is up to date")


if __name__ == "__main__":
    main()
