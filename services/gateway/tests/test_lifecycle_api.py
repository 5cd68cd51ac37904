"""Lifecycle steps at the gateway: the ETag on reads, If-Match required on steps (428), a stale
one refused (412), the order and its new ETag in the answer, scope and role kept."""

from __future__ import annotations

import httpx

from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import auth_headers, intake

DIAGNOSIS = {"fault_code": "F-LCD", "repair_level": "L2", "parts": [{"part_id": "HW-SCR-001"}]}


async def taken_in(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    clerk = await auth_headers(client, "sh001.clerk")
    created = await client.post("/api/v1/repair-orders", json=intake(), headers=clerk)
    assert created.status_code == 201, created.text
    return created.json()["id"], clerk


async def test_a_read_carries_the_etag_and_a_step_needs_it(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    order_id, clerk = await taken_in(client)
    tech = await auth_headers(client, "sh001.tech")
    read = await client.get(f"/api/v1/repair-orders/{order_id}", headers=clerk)
    assert read.headers["ETag"] == '"1"' and read.json()["version"] == 1

    path = f"/api/v1/repair-orders/{order_id}/diagnosis"
    missing = await client.post(path, json=DIAGNOSIS, headers=tech)
    assert missing.status_code == 428
    assert missing.headers["content-type"] == "application/problem+json"

    moved = await client.post(path, json=DIAGNOSIS, headers={**tech, "If-Match": '"1"'})
    assert moved.status_code == 200, moved.text
    assert moved.headers["ETag"] == '"2"'
    body = moved.json()
    assert (body["status"], body["version"]) == ("diagnosed", 2)
    assert body["timeline"][-1]["step"] == "diagnosis"
    sent = fakes.seen.requests[-1]
    assert (sent.expected_version, sent.diagnosis.parts[0].quantity) == (1, 1)

    stale = await client.post(path, json=DIAGNOSIS, headers={**tech, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["type"] == "urn:aftersales:problem:precondition_failed"

    timeline = await client.get(f"/api/v1/repair-orders/{order_id}/timeline", headers=clerk)
    assert timeline.headers["ETag"] == '"2"'
    assert [e["status"] for e in timeline.json()["items"]] == ["received", "diagnosed"]


async def test_a_step_is_404_outside_scope_403_for_the_wrong_role_409_from_the_wrong_status(
    client: httpx.AsyncClient,
) -> None:
    order_id, clerk = await taken_in(client)
    path = f"/api/v1/repair-orders/{order_id}"
    other = await auth_headers(client, "sh002.clerk")
    cancel = {"reason": "changed mind"}
    outside = await client.post(f"{path}/cancel", json=cancel, headers={**other, "If-Match": '"1"'})
    assert outside.status_code == 404
    wrong_role = await client.post(
        f"{path}/diagnosis", json=DIAGNOSIS, headers={**clerk, "If-Match": '"1"'}
    )
    assert wrong_role.status_code == 403
    done = await client.post(f"{path}/cancel", json=cancel, headers={**clerk, "If-Match": 'W/"1"'})
    assert done.status_code == 200 and done.json()["status"] == "cancelled"
    again = await client.post(f"{path}/cancel", json=cancel, headers={**clerk, "If-Match": '"2"'})
    assert again.status_code == 409


async def test_bad_bodies_and_if_match_are_422_by_field(client: httpx.AsyncClient) -> None:
    order_id, clerk = await taken_in(client)
    path = f"/api/v1/repair-orders/{order_id}"
    garbled = await client.post(
        f"{path}/cancel", json={"reason": "x"}, headers={**clerk, "If-Match": "yesterday"}
    )
    assert garbled.status_code == 422
    assert garbled.json()["errors"][0]["field"] == "If-Match"
    # "²" is a digit to str.isdigit, not to int()
    for etag in (b'"99999999999"', b'"-1"', b'"\xb2"', b"*"):
        raw = [(k.encode(), v.encode()) for k, v in clerk.items()] + [(b"If-Match", etag)]
        odd = await client.post(f"{path}/cancel", json={"reason": "x"}, headers=raw)
        assert odd.status_code == 422, etag
    negative = await client.post(
        f"{path}/quote",
        json={"labour_fen": -1},
        headers={**clerk, "If-Match": '"1"'},
    )
    assert negative.status_code == 422
    assert negative.json()["errors"][0]["field"] == "labour_fen"


async def test_openapi_documents_each_step_with_its_roles_and_statuses(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    steps = [
        "diagnosis",
        "quote",
        "approval",
        "manager-approval",
        "parts",
        "repair/start",
        "repair/finish",
        "qc",
        "pickup",
        "cancel",
    ]
    for step in steps:
        operation = paths[f"/api/v1/repair-orders/{{order_id}}/{step}"]["post"]
        assert "**Who**" in operation["description"] and "**From**" in operation["description"]
        assert {"403", "404", "409", "412", "428"} <= set(operation["responses"])
    assert "/api/v1/repair-orders/{order_id}/timeline" in paths


async def test_a_step_retried_with_its_idempotency_key_answers_the_first_response(
    client: httpx.AsyncClient, fakes: FakeServices
) -> None:
    order_id, clerk = await taken_in(client)
    headers = {**clerk, "If-Match": '"1"', "Idempotency-Key": "cancel-once"}
    path = f"/api/v1/repair-orders/{order_id}/cancel"
    first = await client.post(path, json={"reason": "changed mind"}, headers=headers)
    calls = len(fakes.seen.requests)
    retry = await client.post(path, json={"reason": "changed mind"}, headers=headers)
    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.headers["Idempotent-Replayed"] == "true"
    # The replay keeps the body (its version is the ETag) but not the ETag header: the
    # idempotency store keeps only the headers it lists.
    assert retry.json() == first.json() and retry.json()["version"] == 2
    assert len(fakes.seen.requests) == calls  # orders was not asked again


async def test_a_step_without_data_takes_no_body(client: httpx.AsyncClient) -> None:
    order_id, _ = await taken_in(client)
    tech = await auth_headers(client, "sh001.tech")
    reply = await client.post(
        f"/api/v1/repair-orders/{order_id}/repair/start", headers={**tech, "If-Match": '"1"'}
    )
    assert reply.status_code == 409  # reached orders (the fake knows no repair/start)
