"""Every answer goes through the model its route documents, ready responses included (the ETag
and Location ones, the idempotent replays): what the OpenAPI says is what clients get. And every
error of every operation is documented as the problem details it is."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from starlette.responses import Response

from services.gateway import problems
from services.gateway.render import DocumentedRoute, json_response


class Shape(BaseModel):
    name: str
    count: int = 0


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    router = APIRouter(route_class=DocumentedRoute)

    @router.get("/as-documented", response_model=Shape)
    async def as_documented() -> Response:
        return json_response({"name": "a", "internal": "not documented"}, headers={"ETag": '"1"'})

    @router.get("/not-as-documented", response_model=Shape)
    async def not_as_documented() -> Response:
        return json_response({"count": "many"})

    @router.get("/undocumented-status", response_model=Shape)
    async def undocumented_status() -> Response:
        return json_response({"name": "a"}, 202)

    @router.get("/csv", response_model=Shape)
    async def csv() -> Response:
        return Response("a,b\n", media_type="text/csv")

    app = FastAPI()
    problems.install(app)
    app.include_router(router)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        yield client


async def test_an_answer_is_written_by_its_documented_model(http: httpx.AsyncClient) -> None:
    reply = await http.get("/as-documented")
    assert reply.status_code == 200 and reply.headers["ETag"] == '"1"'
    assert reply.json() == {"name": "a", "count": 0}
    assert int(reply.headers["content-length"]) == len(reply.content)


async def test_an_answer_that_is_not_as_documented_is_a_server_fault(
    http: httpx.AsyncClient,
) -> None:
    for path in ("/not-as-documented", "/undocumented-status"):
        reply = await http.get(path)
        assert reply.status_code == 500, path
        assert reply.headers["content-type"] == problems.PROBLEM_JSON


async def test_an_answer_that_is_not_json_goes_as_it_is(http: httpx.AsyncClient) -> None:
    assert (await http.get("/csv")).text == "a,b\n"


async def test_every_error_of_every_operation_is_a_documented_problem(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            if path.startswith("/api/"):
                assert set(problems.COMMON_PROBLEMS) <= {int(s) for s in responses}, path
            for status, response in responses.items():
                if int(status) >= 400 and path != "/readyz":
                    assert response["content"] == {problems.PROBLEM_JSON: {"schema": problem}}, (
                        method,
                        path,
                        status,
                    )
    assert "HTTPValidationError" not in spec["components"]["schemas"]
