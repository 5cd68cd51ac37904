"""Fuzz the gateway's whole OpenAPI with schemathesis, as three roles, against the real
processes on PostgreSQL: no request, valid or not, may get a server error (5xx).

A system of its own, so the junk (bad logins, odd orders) disturbs no other test. It runs on
PostgreSQL only (TEST_DATABASE_URL; the CI's PostgreSQL pass): that is the database that refuses
text SQLite takes, so a fuzz on SQLite would find less and cost the same. Bounded: FUZZ_EXAMPLES
examples per operation, mode and role (positive and negative data), FUZZ_SECONDS per role at
most. Each role has a fixed seed, so the CI runs the same examples each time; FUZZ_SEED=n
explores others.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from requests.structures import CaseInsensitiveDict
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok

from devtools.system import LocalSystem, SystemConfig
from servicekit.demo import DEMO_PASSWORD
from servicekit.identifiers import luhn_valid

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"),
        reason="fuzzes on PostgreSQL only: set TEST_DATABASE_URL",
    ),
]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
# Intake is where most text reaches a database: it gets more.
INTAKE_EXAMPLES = 4 * EXAMPLES
SECONDS_PER_ROLE = float(os.environ.get("FUZZ_SECONDS", "60"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))
INTAKE = "POST /api/v1/repair-orders"
STORE = "SH-001"  # where the three roles can all take in orders
NUL_TEXT = ("\x00", "a\x00b")
# Only where JSON escapes it: a form or URL cannot carry a lone surrogate.
SURROGATE_TEXT = ("\ud800", "x\udfffy")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)(: |$)")
VENV = "site-packages"
ROLES = {"hq_admin": "hq.admin", "branch_manager": "sh.manager", "clerk": "sh001.clerk"}


@dataclass
class Fuzzed:
    system: LocalSystem
    schema: Any
    tokens: dict[str, str]


@dataclass
class ServerError:
    operation: str
    status: int
    curl: str
    response: str


@pytest.fixture(scope="module")
async def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Fuzzed]:
    folder = tmp_path_factory.mktemp("fuzz")
    system = LocalSystem(SystemConfig.for_tests(folder, env={"RATE_LIMIT_PER_SECOND": "0"}))
    try:
        await system.start()
        async with httpx.AsyncClient(base_url=system.gateway_url, timeout=10) as client:
            # Every role logs in before any fuzzing: the fuzzed bad logins may lock this client
            # address out of the login endpoint for a while.
            tokens = {}
            for role, username in ROLES.items():
                reply = await client.post(
                    "/api/v1/auth/token", data={"username": username, "password": DEMO_PASSWORD}
                )
                assert reply.status_code == 200, reply.text
                tokens[role] = reply.json()["access_token"]
            spec = (await client.get("/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(spec)
        yield Fuzzed(system, schema, tokens)
    finally:
        system.stop()
        await system.drop_schemas()


def with_valid_identifiers(case: Case, data: st.DataObject) -> None:
    """Half the generated orders get a valid IMEI, phone, brand, model and key, so their
    free text (names, descriptions, notes) gets past the checks and into the database instead
    of stopping at a 422 for an IMEI that fails Luhn."""
    body: Any = case.body
    if not (isinstance(body, dict) and data.draw(st.booleans(), label="valid identifiers")):
        return
    number = data.draw(st.integers(0, 10**12 - 1), label="identifier digits")
    imei = f"86{number:012d}"
    imei += next(digit for digit in "0123456789" if luhn_valid(imei + digit))
    body["customer"]["phone"] = f"139{number % 10**8:08d}"
    # Blank ones are refused before anything is stored.
    if not body["customer"]["name"].strip():
        body["customer"]["name"] = "顾客"
    if not body["fault"]["description"].strip():
        body["fault"]["description"] = "screen cracked"
    body["device"].update(imei=imei, brand="huawei", model="p60", purchase_date=None)
    body["fault"]["symptom_code"] = None
    body.update(service_type="repair", promised_date=None, store_id=STORE)
    headers = CaseInsensitiveDict(case.headers or {})
    headers["Idempotency-Key"] = uuid4().hex
    case.headers = headers


def text_slots(value: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every string inside a JSON-like value."""
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    slots = []
    for key, item in items:
        if isinstance(item, str):
            slots.append((value, key))
        else:
            slots.extend(text_slots(item))
    return slots


def with_refused_text(case: Case, data: st.DataObject) -> None:
    """Half the cases get text PostgreSQL cannot store (NUL; in JSON bodies also a lone
    surrogate) in one of their strings: body, query or path. Random generation almost never
    produces it, and on PostgreSQL it is what turns into a server error."""
    json_body = case.media_type == "application/json"
    slots = [(json_body, *slot) for slot in text_slots(case.body)]
    slots += [(False, *slot) for slot in text_slots(case.query)]
    slots += [(False, *slot) for slot in text_slots(case.path_parameters)]
    if not slots or not data.draw(st.booleans(), label="refused text"):
        return
    in_json, container, key = slots[data.draw(st.integers(0, len(slots) - 1), label="where")]
    choices = NUL_TEXT + SURROGATE_TEXT if in_json else NUL_TEXT
    container[key] = data.draw(st.sampled_from(choices), label="text")


def operation_name(operation: Any) -> str:
    return f"{operation.method.upper()} {operation.path}"


def fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    call: Callable[[Case], None],
    deadline: float,
    role_seed: int,
) -> None:
    """Up to EXAMPLES cases of one operation in one mode, each sent through `call`."""

    @settings(
        max_examples=INTAKE_EXAMPLES if operation_name(operation) == INTAKE else EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        if mode is GenerationMode.POSITIVE and operation_name(operation) == INTAKE:
            with_valid_identifiers(case, data)
        with_refused_text(case, data)
        call(case)

    # Time is checked per operation, never inside a run: Hypothesis needs each example to
    # draw the same way when it is replayed.
    if time.monotonic() > deadline:
        return
    run = seed(role_seed)(run)
    # An operation without parameters or body has no invalid data to send.
    with contextlib.suppress(Unsatisfiable):
        run()


def server_log_errors(system: LocalSystem) -> list[str]:
    """The errors in every process's log, each once: the exception, and where in our code
    it was raised (the full tracebacks are in the logs)."""
    seen: set[str] = set()
    for log in sorted(system.log_dir.glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") in ("error", "critical") or "exc" in entry:
                seen.add(f"{log.stem}: {entry.get('message', '')} {summary(entry.get('exc', ''))}")
    return sorted(seen)


def summary(traceback: str) -> str:
    """The last exception of a traceback, and the deepest frame outside the libraries."""
    lines = traceback.splitlines()
    raised = [line for line in lines if EXCEPTION_LINE.match(line)]
    ours = [line.strip() for line in lines if line.strip().startswith("File") and VENV not in line]
    where = f" at {ours[-1]}" if ours else ""
    return f"{raised[-1][:300] if raised else ''}{where}"


@pytest.mark.parametrize("role", list(ROLES))
def test_no_server_error(fuzzed: Fuzzed, role: str) -> None:
    auth = {"Authorization": f"Bearer {fuzzed.tokens[role]}"}
    errors: list[ServerError] = []
    session = requests.Session()
    deadline = time.monotonic() + SECONDS_PER_ROLE
    statuses: Counter[str] = Counter()

    def call(case: Case) -> None:
        # The role's token on every request: the fuzz is of what lies behind authentication.
        response = case.call(
            base_url=fuzzed.system.gateway_url, session=session, headers=auth, timeout=30
        )
        statuses[f"{case.method} {case.path} {response.status_code}"] += 1
        if response.status_code >= 500:
            curl = case.as_curl_command(headers=auth, base_url=fuzzed.system.gateway_url)
            errors.append(
                ServerError(
                    operation=f"{case.method} {case.path}",
                    status=response.status_code,
                    curl=curl[:2000],
                    response=response.content[:500].decode(errors="replace"),
                )
            )

    operations = []
    for result in fuzzed.schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    # Each role takes the operations in an order of its own, so that when time runs out on a
    # loaded machine the roles between them still reach every operation.
    operations.sort(
        key=lambda operation: zlib.crc32(f"{role} {operation_name(operation)}".encode())
    )
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, call, deadline, zlib.crc32(role.encode()) + SEED)
    # Shown with -s, or beside a failure: what the fuzz reached.
    print(f"\n{role}: {statuses.total()} requests")
    if time.monotonic() > deadline:
        print(f"  FUZZ_SECONDS ({SECONDS_PER_ROLE:.0f} s) ran out: later operations got fewer")
    for line, count in sorted(statuses.items()):
        print(f"  {line} ×{count}")
    assert statuses, "nothing was fuzzed"
    assert not errors, report(errors, fuzzed.system, statuses.total())


def report(errors: list[ServerError], system: LocalSystem, calls: int) -> str:
    grouped: dict[tuple[str, int], list[ServerError]] = {}
    for error in errors:
        grouped.setdefault((error.operation, error.status), []).append(error)
    lines = [f"{len(errors)} server errors in {calls} requests:"]
    for (operation, status), found in grouped.items():
        lines.append(f"\n{operation} → {status} ×{len(found)}, e.g. {found[0].response}")
        lines.extend(f"  {error.curl}" for error in found[:3])
    lines.append("\nerrors in the logs of " + str(Path(system.log_dir)) + ":")
    lines.extend(server_log_errors(system))
    return "\n".join(lines)
