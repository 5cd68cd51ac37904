"""The demo data of SPEC §1 (org tree, brands and models, store authorisations, parts), in one
file so every service seeds from the same codes. Loaded by the local run only, never in
production."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DEMO_PASSWORD = "demo1234"


@cache
def demo_data() -> dict[str, Any]:
    with (Path(__file__).parent / "demo_data.json").open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data
