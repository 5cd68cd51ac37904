"""Settlement at the gateway: what it sends orders' SettlementService and how it answers: the
claim with its ETag, If-Match required on the steps (428, a malformed one 422), the decision
file as a text/csv body or a multipart file (other bodies 415), a refused file's rows named in
a 422 problem, a payment retried with its Idempotency-Key recorded once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from aftersales.orders.v1 import orders_pb2, orders_pb2_grpc
from servicekit.auth import current_auth
from servicekit.errors import FieldError, InvalidInput, NotFound, PreconditionFailed
from servicekit.grpc_server import SERVING, new_server
from servicekit.testing import DatabaseTarget
from services.gateway.app import create_app
from services.gateway.tests.helpers import auth_headers, make_settings

CSV = b"order_number,decision,reason_code,amount_fen\nSH-001-260310-0001,accepted,,86000\n"


@dataclass
class FakeSettlement(orders_pb2_grpc.SettlementServiceServicer):
    requests: list[Any] = field(default_factory=list)
    claim: orders_pb2.Claim = field(
        default_factory=lambda: orders_pb2.Claim(
            id="c-1",
            manufacturer="huawei",
            branch_id="SH",
            month="2026-03",
            status="built",
            version=1,
            claimed_fen=86000,
            lines=[
                orders_pb2.SettlementLine(
                    order_id="o-1",
                    number="SH-001-260310-0001",
                    store_id="SH-001",
                    repair_level="L2",
                    labour_fen=6000,
                    parts_fen=80000,
                    claimed_fen=86000,
                    state="held",
                    old_parts_owed=1,
                )
            ],
        )
    )

    def _seen(self, request: Any) -> orders_pb2.Claim:
        self.requests.append((current_auth(), request))
        if getattr(request, "id", "c-1") != "c-1":
            raise NotFound("no such claim in your scope")
        expected = getattr(request, "expected_version", self.claim.version)
        if expected != self.claim.version:
            raise PreconditionFailed(f"the claim is at version {self.claim.version}")
        return self.claim

    def _moved(self, status: str) -> orders_pb2.Claim:
        self.claim.status = status
        self.claim.version += 1
        return self.claim

    async def ListClaims(self, request: Any, context: Any) -> orders_pb2.ListClaimsResponse:
        self._seen(request)
        summary = orders_pb2.Claim()
        summary.CopyFrom(self.claim)
        del summary.lines[:]
        # A page of one, that says another follows.
        return orders_pb2.ListClaimsResponse(claims=[summary], next_page_token="after-c-1")

    async def BuildClaim(self, request: Any, context: Any) -> orders_pb2.Claim:
        return self._seen(request)

    async def GetClaim(self, request: Any, context: Any) -> orders_pb2.Claim:
        return self._seen(request)

    async def SubmitClaim(self, request: Any, context: Any) -> orders_pb2.Claim:
        self._seen(request)
        return self._moved("submitted")

    async def DecideClaim(self, request: Any, context: Any) -> orders_pb2.Claim:
        self._seen(request)
        if b"bad" in request.csv:
            raise InvalidInput(
                "the decision file has errors; nothing was recorded",
                [FieldError("rows[2].decision", "must be one of accepted, rejected")],
            )
        return self._moved("decided")

    async def RecordClaimPayment(self, request: Any, context: Any) -> orders_pb2.Claim:
        self._seen(request)
        self.claim.paid_fen += request.amount_fen
        self.claim.payments.append(
            orders_pb2.ClaimPayment(amount_fen=request.amount_fen, paid_on=request.paid_on)
        )
        return self._moved("paid")


@pytest.fixture
async def settlement() -> AsyncIterator[tuple[FakeSettlement, str]]:
    fake = FakeSettlement()
    server, health = new_server("fakes")
    orders_pb2_grpc.add_SettlementServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await health.set("", SERVING)
    yield fake, f"127.0.0.1:{port}"
    await server.stop(0)


@pytest.fixture
async def http(
    db_target: DatabaseTarget, settlement: tuple[FakeSettlement, str]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(db_target, settlement[1]))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as client,
    ):
        yield client


PATH = "/api/v1/settlement/claims"


async def test_build_read_and_list(
    http: httpx.AsyncClient, settlement: tuple[FakeSettlement, str]
) -> None:
    fake, _ = settlement
    manager = await auth_headers(http, "sh.manager")
    built = await http.post(
        PATH, json={"manufacturer": "huawei", "month": "2026-03"}, headers=manager
    )
    assert built.status_code == 200, built.text
    assert built.headers["ETag"] == '"1"' and built.headers["Location"] == f"{PATH}/c-1"
    body = built.json()
    assert (body["status"], body["claimed_fen"], body["lines"][0]["state"]) == (
        "built",
        86000,
        "held",
    )
    assert body["lines"][0]["decision"] is None
    auth, sent = fake.requests[-1]
    assert (auth.role, auth.branch_id) == ("branch_manager", "SH")
    assert (sent.manufacturer, sent.month, sent.branch_id) == ("huawei", "2026-03", "")

    bad = await http.post(PATH, json={"manufacturer": "huawei", "month": "March"}, headers=manager)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "month"

    read = await http.get(f"{PATH}/c-1", headers=manager)
    assert read.status_code == 200 and read.headers["ETag"] == '"1"'
    missing = await http.get(f"{PATH}/c-9", headers=manager)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

    listed = await http.get(PATH, params={"month": "2026-03", "limit": "1"}, headers=manager)
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["lines"] is None and item["id"] == "c-1"
    assert listed.json()["next_cursor"] == "after-c-1"
    sent = fake.requests[-1][1]
    assert (sent.month, sent.page_size, sent.page_token) == ("2026-03", 1, "")
    await http.get(PATH, params={"cursor": "after-c-1"}, headers=manager)
    assert fake.requests[-1][1].page_token == "after-c-1"


async def test_steps_need_if_match(
    http: httpx.AsyncClient, settlement: tuple[FakeSettlement, str]
) -> None:
    fake, _ = settlement
    manager = await auth_headers(http, "sh.manager")
    missing = await http.post(f"{PATH}/c-1/submit", headers=manager)
    assert missing.status_code == 428
    malformed = await http.post(f"{PATH}/c-1/submit", headers={**manager, "If-Match": "abc"})
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "If-Match"
    stale = await http.post(f"{PATH}/c-1/submit", headers={**manager, "If-Match": '"7"'})
    assert stale.status_code == 412
    done = await http.post(f"{PATH}/c-1/submit", headers={**manager, "If-Match": '"1"'})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.headers["ETag"]) == ("submitted", '"2"')
    assert fake.requests[-1][1].expected_version == 1


async def test_the_decision_file_comes_as_csv_or_multipart(
    http: httpx.AsyncClient, settlement: tuple[FakeSettlement, str]
) -> None:
    fake, _ = settlement
    manager = await auth_headers(http, "sh.manager")
    fake.claim.version = 2
    path = f"{PATH}/c-1/decisions"
    as_json = await http.post(path, json={"csv": "x"}, headers={**manager, "If-Match": '"2"'})
    assert as_json.status_code == 415
    refused = await http.post(
        path,
        content=CSV.replace(b"accepted", b"bad"),
        headers={**manager, "If-Match": '"2"', "Content-Type": "text/csv"},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"field": "rows[2].decision", "reason": "must be one of accepted, rejected"}
    ]
    empty_form = await http.post(
        path, files={"other": ("x.csv", CSV)}, headers={**manager, "If-Match": '"2"'}
    )
    assert empty_form.status_code == 422
    assert empty_form.json()["errors"][0]["field"] == "file"
    uploaded = await http.post(
        path,
        files={"file": ("decisions.csv", CSV, "text/csv")},
        headers={**manager, "If-Match": '"2"'},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert fake.requests[-1][1].csv == CSV
    fake.claim.status, fake.claim.version = "submitted", 2
    as_body = await http.post(
        path, content=CSV, headers={**manager, "If-Match": '"2"', "Content-Type": "text/csv"}
    )
    assert as_body.status_code == 200
    assert fake.requests[-1][1].csv == CSV


async def test_a_payment_retried_with_its_key_is_recorded_once(
    http: httpx.AsyncClient, settlement: tuple[FakeSettlement, str]
) -> None:
    fake, _ = settlement
    manager = await auth_headers(http, "sh.manager")
    headers = {**manager, "If-Match": '"1"', "Idempotency-Key": "pay-1"}
    body = {"amount_fen": 86000, "paid_on": "2026-04-01"}
    first = await http.post(f"{PATH}/c-1/payments", json=body, headers=headers)
    assert first.status_code == 200, first.text
    again = await http.post(f"{PATH}/c-1/payments", json=body, headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    payments = [
        (a, r) for a, r in fake.requests if isinstance(r, orders_pb2.RecordClaimPaymentRequest)
    ]
    assert len(payments) == 1
    auth, sent = payments[0]
    assert sent.request_id == f"{auth.user_id}:pay-1"
    zero = await http.post(
        f"{PATH}/c-1/payments", json={"amount_fen": 0, "paid_on": "2026-04-01"}, headers=manager
    )
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["field"] == "amount_fen"


async def test_the_decision_body_is_documented(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    body = spec["paths"][f"{PATH}/{{claim_id}}/decisions"]["post"]["requestBody"]["content"]
    assert set(body) == {"text/csv", "multipart/form-data"}


async def test_a_decision_file_uploaded_with_an_idempotency_key_is_decided_once(
    http: httpx.AsyncClient, settlement: tuple[FakeSettlement, str]
) -> None:
    fake, _ = settlement
    manager = await auth_headers(http, "sh.manager")
    fake.claim.status, fake.claim.version = "submitted", 2
    headers = {**manager, "If-Match": '"2"', "Idempotency-Key": "decide-c-1-once"}
    path = f"{PATH}/c-1/decisions"
    first = await http.post(
        path, files={"file": ("decisions.csv", CSV, "text/csv")}, headers=headers
    )
    assert first.status_code == 200, first.text
    sent = len(fake.requests)
    again = await http.post(
        path, files={"file": ("decisions.csv", CSV, "text/csv")}, headers=headers
    )
    assert again.status_code == 200, again.text
    assert len(fake.requests) == sent
