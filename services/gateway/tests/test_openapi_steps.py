"""The OpenAPI of the order steps says, for each, who may take it and from which statuses, as
orders' contract declares its guards (the proto's enum `Step`, which orders keeps equal to its
domain's table): the contract the frontends rely on, read without opening orders' code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from services.gateway.routers.repair_orders import STEP_GUARDS, STORE_OF_STEP

STEP_PATH = "/api/v1/repair-orders/{order_id}/"


async def step_operations(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    paths = (await client.get("/openapi.json")).json()["paths"]
    return {
        path.removeprefix(STEP_PATH): item["post"]
        for path, item in paths.items()
        if path.startswith(STEP_PATH) and "post" in item
    }


def quoted(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def who_and_from(description: str) -> tuple[str, str]:
    who = description.split("**Who**:")[1].split("**From**:")[0]
    from_ = description.split("**From**:")[1].split("\n")[0]
    return who, from_


async def test_every_step_of_the_domain_is_a_documented_operation(
    client: httpx.AsyncClient,
) -> None:
    operations = await step_operations(client)
    assert set(operations) == set(STEP_GUARDS)
    for name, step in STEP_GUARDS.items():
        operation = operations[name]
        assert operation["summary"], name
        who, from_ = who_and_from(operation["description"])
        roles, store = who.split(";")
        assert quoted(roles) == list(step.roles), name
        assert STORE_OF_STEP[step.where] in store, name
        assert quoted(from_) == list(step.from_statuses), name
        assert ("is sent on" in operation["description"]) == step.does_work, name
        assert {"403", "404", "409", "412", "422", "428"} <= set(operation["responses"]), name


async def test_the_docs_say_what_the_guard_does(client: httpx.AsyncClient) -> None:
    operations = await step_operations(client)
    who, from_ = who_and_from(operations["pickup"]["description"])
    assert "`clerk`" in who and "`technician`" not in who and "the intake store" in who
    assert "`ready_for_pickup`" in from_ and "`declined`" in from_
    who, from_ = who_and_from(operations["repair/start"]["description"])
    assert who.startswith(" `technician`;") and "the store holding the device" in who
    assert from_.strip().startswith("`approved`.")
    who, _ = who_and_from(operations["manager-approval"]["description"])
    assert "`branch_manager`" in who and "`clerk`" not in who
    # The handler's own words follow the rules.
    assert "Moves to `in_repair`" in operations["repair/start"]["description"]


async def test_each_step_documents_its_body(client: httpx.AsyncClient) -> None:
    operations = await step_operations(client)
    for name in ("diagnosis", "quote", "pickup", "cancel", "send-out", "swap", "complete"):
        body = operations[name]["requestBody"]["content"]["application/json"]["schema"]
        assert "$ref" in body, name


async def test_a_step_doing_the_work_says_an_order_to_send_on_is_refused(
    client: httpx.AsyncClient,
) -> None:
    operations = await step_operations(client)
    for name in ("repair/start", "swap", "complete"):
        assert "not authorised for the brand is sent on" in operations[name]["description"]
    assert "sent on" not in operations["diagnosis"]["description"]


def test_the_gateway_opens_no_other_service_s_code() -> None:
    """Services talk through their contracts (gen/), never by importing each other (a test may
    start another service to call it through its contract)."""
    gateway = Path(__file__).resolve().parent.parent
    tests = Path(__file__).resolve().parent
    others = ("services.orders", "services.inventory", "services.customers", "services.reporting")
    found = [
        f"{path.relative_to(gateway)}: {line.strip()}"
        for path in gateway.rglob("*.py")
        if tests not in path.parents
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.lstrip().startswith(("import ", "from ")) and any(o in line for o in others)
    ]
    assert found == []
