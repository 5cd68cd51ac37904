"""The gateway's OpenAPI declares the checks the API makes: input its request schemas admit
(schemathesis's positive data) is never refused as invalid, nor answered with a server error.

A form built from the schema can then validate before it sends. Refusals that no schema can
state (a store that does not exist, a step the order's status does not allow) are 404s and 409s;
the few 422s of that kind are listed in NOT_DECLARABLE with the reason they are not in the
schema. Against the real processes (SQLite, or PostgreSQL with TEST_DATABASE_URL), as hq_admin,
FUZZ_POSITIVE_EXAMPLES examples per operation with a fixed seed (FUZZ_SEED=n explores others).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response

from devtools.system import LocalSystem, SystemConfig
from servicekit.demo import DEMO_PASSWORD

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("FUZZ_POSITIVE_EXAMPLES", "5"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))
USER = "hq.admin"
INVALID = "urn:aftersales:problem:invalid_input"
# Refusals no request schema can declare, each for its reason.
NOT_DECLARABLE = re.compile(
    "|".join(
        (
            # what is stored: units, stores, parts, brands that exist; a key used before
            r"^no (store|branch|unit|warehouse|part)\b|unknown|no such|does not exist",
            r"must be a unit of kind|already used with a different request",
            r"is not a cursor this service issued",
            # who asks: HQ names the store or branch a manager's token implies
            r"name the store that takes the order in|^is required$|works at a",
            r"is required for a new user",
            # one field against another
            r"give exactly one of|give phone or imei|must not be shorter than",
            r"only a store may be franchised|name the stores|name the branch|each part once",
            r"serial for each of|when the customer was reached|only when the customer was",
            r"is before date_from|is not a placeholder here",
            r"the whole chain's orders are no list",
            # a check digit, the moment
            r"Luhn|must not be a month to come|not after today|in the future",
        )
    )
)


# Operations of routers another helper owns, whose parameters are still to be declared.
@dataclass
class Refusal:
    operation: str
    status: int
    curl: str
    response: str


@pytest.fixture(scope="module")
async def documented(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    folder = tmp_path_factory.mktemp("positive")
    system = LocalSystem(SystemConfig.for_tests(folder, env={"RATE_LIMIT_PER_SECOND": "0"}))
    try:
        await system.start()
        async with httpx.AsyncClient(base_url=system.gateway_url, timeout=10) as client:
            reply = await client.post(
                "/api/v1/auth/token", data={"username": USER, "password": DEMO_PASSWORD}
            )
            assert reply.status_code == 200, reply.text
            token = reply.json()["access_token"]
            spec = (await client.get("/openapi.json")).json()
        schema = schemathesis.openapi.from_dict(spec)
        # Text no database stores (NUL, lone surrogates) is refused everywhere, as the API's
        # description says; test_openapi_fuzz.py sends it on purpose.
        schema.config.generation.update(allow_x00=False, codec="utf-8")
        yield system, schema, token
    finally:
        system.stop()
        await system.drop_schemas()


def refused_as_invalid(response: Response) -> bool:
    """A 400 or 422 for the input's form, not for data the schema cannot know."""
    if response.status_code >= 500:
        return True
    if response.status_code not in (400, 422):
        return False
    try:
        problem = response.json()
    except ValueError:
        return True
    reasons = [str(e.get("reason", "")) for e in problem.get("errors", [])] or [
        str(problem.get("detail", ""))
    ]
    return not all(NOT_DECLARABLE.search(reason) for reason in reasons)


def fuzz_operation(operation: Any, send: Callable[[Case], None]) -> None:
    """EXAMPLES positive cases of one operation, each sent."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        send(data.draw(operation.as_strategy(generation_mode=GenerationMode.POSITIVE)))

    seed(SEED)(run)()


# About a minute alone; a loaded machine (the CI's shared cores) may take several.
@pytest.mark.timeout(900)
def test_documented_input_is_accepted(documented: Any) -> None:
    system, schema, token = documented
    auth = {"Authorization": f"Bearer {token}"}
    session = requests.Session()
    refusals: list[Refusal] = []
    calls = 0

    def send(case: Case) -> None:
        nonlocal calls
        calls += 1
        response = case.call(base_url=system.gateway_url, session=session, headers=auth)
        if refused_as_invalid(response):
            refusals.append(
                Refusal(
                    f"{case.method} {case.path}",
                    response.status_code,
                    case.as_curl_command(headers=auth, base_url=system.gateway_url)[:1000],
                    response.content[:600].decode(errors="replace"),
                )
            )

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if operation.path == "/api/v1/auth/token":
            continue  # a wrong password is not a form error, and locks the sign-in out

        with contextlib.suppress(Unsatisfiable):
            fuzz_operation(operation, send)

    operations = sorted({r.operation for r in refusals})
    print(f"\n{calls} requests; {len(operations)} operations refused documented input")
    for refusal in refusals:
        print(f"  {refusal.operation} -> {refusal.status}: {refusal.response}")
    assert not operations, "\n".join(
        f"{r.operation} -> {r.status}: {r.response}\n  {r.curl}" for r in refusals
    )
