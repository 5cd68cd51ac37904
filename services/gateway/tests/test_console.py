"""The gateway serves the built console and the API docs from its own files: deep links get
index.html under a strict CSP, hashed assets are cached for good, unknown API paths stay JSON
404s, the tracking link's JSON stays the programs', and /docs needs no CDN."""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from servicekit.testing import DatabaseTarget
from services.gateway.app import create_app
from services.gateway.console import ASSET_CACHE, CONSOLE_CSP, NOT_BUILT
from services.gateway.tests.fakes import FakeServices
from services.gateway.tests.helpers import auth_headers, make_settings

INDEX = (
    '<!doctype html><html><body><div id="root"></div>'
    '<script type="module" src="/assets/index-abc123.js"></script></body></html>'
)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A tiny stand-in for `web/dist`."""
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "assets" / "index-abc123.js").write_text("console.log('console')")
    (tmp_path / "secret.txt").write_text("not an asset")
    return folder


async def app_client(
    db_target: DatabaseTarget, fakes: FakeServices, dist: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    settings = dataclasses.replace(make_settings(db_target, fakes.address), console_dist=str(dist))
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://gw") as http,
    ):
        yield http


@pytest.fixture
async def web(
    db_target: DatabaseTarget, fakes: FakeServices, dist: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    async for http in app_client(db_target, fakes, dist, monkeypatch):
        yield http


@pytest.fixture
async def unbuilt(
    db_target: DatabaseTarget, fakes: FakeServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    async for http in app_client(db_target, fakes, tmp_path / "missing", monkeypatch):
        yield http


@pytest.mark.parametrize("path", ["/", "/orders", "/orders/5f0c/detail", "/login?next=/orders"])
async def test_a_deep_link_gets_the_console_page_under_a_strict_policy(
    web: httpx.AsyncClient, path: str
) -> None:
    reply = await web.get(path, headers={"Accept": "text/html"})
    assert reply.status_code == 200
    assert reply.text == INDEX
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.headers["content-security-policy"] == CONSOLE_CSP
    assert "script-src 'self';" in CONSOLE_CSP
    assert reply.headers["cache-control"] == "no-cache"
    assert reply.headers["x-content-type-options"] == "nosniff"


async def test_hashed_assets_are_cached_for_good(web: httpx.AsyncClient) -> None:
    reply = await web.get("/assets/index-abc123.js")
    assert reply.status_code == 200
    assert reply.text == "console.log('console')"
    assert reply.headers["cache-control"] == ASSET_CACHE
    assert "immutable" in ASSET_CACHE


async def test_an_asset_is_sent_packed_as_the_browser_accepts(
    web: httpx.AsyncClient, dist: Path
) -> None:
    script = dist / "assets" / "index-abc123.js"
    (dist / "assets" / "index-abc123.js.gz").write_bytes(gzip.compress(script.read_bytes()))
    (dist / "assets" / "index-abc123.js.br").write_bytes(b"brotli stand-in")

    packed = await web.get("/assets/index-abc123.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.text == "console.log('console')"  # httpx unpacks it
    assert packed.headers["content-type"].startswith("text/javascript")
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.headers["cache-control"] == ASSET_CACHE

    best = await web.get("/assets/index-abc123.js", headers={"Accept-Encoding": "gzip, br;q=1"})
    assert best.headers["content-encoding"] == "br"
    assert best.headers["content-length"] == str(len(b"brotli stand-in"))

    plain = await web.get("/assets/index-abc123.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.text == "console.log('console')"


@pytest.mark.parametrize("name", ["missing.js", "..%2Fsecret.txt", "..%2F..%2Fsecret.txt"])
async def test_no_file_outside_the_assets_is_served_as_one(
    web: httpx.AsyncClient, name: str
) -> None:
    reply = await web.get(f"/assets/{name}")
    assert reply.status_code == 404
    assert "not an asset" not in reply.text
    assert reply.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/api/unknown", "/api/v1/no-such-thing", "/api", "/docs/nope"])
async def test_an_unknown_api_path_stays_a_json_problem(web: httpx.AsyncClient, path: str) -> None:
    reply = await web.get(path, headers={"Accept": "text/html"})
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["status"] == 404


async def test_a_post_to_a_console_path_is_no_page(web: httpx.AsyncClient) -> None:
    reply = await web.post("/orders", json={})
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"


async def test_another_method_on_an_api_path_stays_405(web: httpx.AsyncClient) -> None:
    reply = await web.delete("/api/v1/me", headers=await auth_headers(web, "sh001.clerk"))
    assert reply.status_code == 405


async def test_the_tracking_link_is_a_page_for_a_browser_and_json_for_a_program(
    web: httpx.AsyncClient,
) -> None:
    page = await web.get("/track/some-token", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 200
    assert page.text == INDEX
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["vary"] == "Accept"
    data = await web.get("/track/" + "x" * 65, headers={"Accept": "application/json"})
    assert data.status_code == 404
    assert data.headers["content-type"] == "application/problem+json"


async def test_the_docs_load_swagger_ui_from_the_gateway(web: httpx.AsyncClient) -> None:
    page = await web.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert 'src="/docs/static/swagger-ui-bundle.js"' in page.text
    script = await web.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    assert (await web.get("/docs/static/swagger-ui.css")).status_code == 200
    assert (await web.get("/docs/static/secret")).status_code == 404
    assert (await web.get("/docs/oauth2-redirect")).status_code == 200
    spec = await web.get("/openapi.json")
    assert spec.status_code == 200
    assert "/assets/{name}" not in spec.json()["paths"]


async def test_without_a_build_the_api_works_and_the_console_says_it_is_not_built(
    unbuilt: httpx.AsyncClient,
) -> None:
    page = await unbuilt.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert page.text == NOT_BUILT
    me = await unbuilt.get("/api/v1/me", headers=await auth_headers(unbuilt, "sh001.clerk"))
    assert me.status_code == 200
    assert (await unbuilt.get("/assets/index.js")).status_code == 404
