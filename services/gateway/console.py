"""The web console (管理后台, `web/`) and the API docs, served by the gateway itself: nothing
comes from the internet, for stores on an intranet.

- `/assets/*`: the console's built files; their names carry a content hash, so they are cached
  for a year and never revalidated.
- Any other GET outside `/api`, `/docs` and `/openapi.json` that no route answers (a deep link
  such as `/orders/123`): the console's `index.html`, under a strict Content-Security-Policy;
  the browser's router takes it from there. Under `/api` an unknown path stays a JSON 404.
- `/track/{token}` asked for by a browser (Accept: text/html): the same page, which shows the
  tracking link; programs keep the JSON (the tracking router asks `wants_page`).
- `/docs`: Swagger UI from a pinned package's files (fastapi-offline), not a CDN.

Without a build (`web/dist` missing) the API works as before and those pages say the console is
not built.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIST = ROOT / "web" / "dist"
DOCS_STATIC = Path(fastapi_offline.__file__).parent / "static"

# Hashed names: a changed file is a new name, so the old one may be kept for good.
ASSET_CACHE = "public, max-age=31536000, immutable"
# The packed copies of an asset, best first, by the Content-Encoding each is.
PACKED = (("br", ".br"), ("gzip", ".gz"))
# index.html names the current hashed files: always asked again (a 304 when unchanged).
PAGE_CACHE = "no-cache"
# Scripts only from the gateway, no inline script and no eval; Ant Design writes its styles into
# <style> elements at run time, hence 'unsafe-inline' for styles alone.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI starts from an inline script FastAPI writes into its page.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
NOT_BUILT = "The web console is not built: run `make web` (the API works without it).\n"
# Paths a browser's deep link never means: theirs stay the API's own 404.
API_PREFIXES = ("/api/", "/docs/")
API_PATHS = frozenset({"/api", "/docs", "/openapi.json"})
DOCS_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"})


@dataclass(frozen=True)
class Console:
    """Where the built console lies (CONSOLE_DIST overrides `web/dist`)."""

    dist: Path

    @property
    def index(self) -> Path:
        return self.dist / "index.html"

    @property
    def assets(self) -> Path:
        return self.dist / "assets"

    def page(self) -> Response:
        """index.html under the console's policy; a short note while it is not built."""
        headers = {
            "Content-Security-Policy": CONSOLE_CSP,
            "X-Content-Type-Options": "nosniff",
            # Deep links may carry a tracking token: keep it out of other sites' Referer.
            "Referrer-Policy": "no-referrer",
            "Vary": "Accept",
        }
        if not self.index.is_file():
            return PlainTextResponse(NOT_BUILT, 404, headers=headers)
        return FileResponse(self.index, headers={**headers, "Cache-Control": PAGE_CACHE})

    def asset(self, name: str, accept_encoding: str = "") -> Response:
        """A built file, as the browser accepts it: the build packs each asset beside itself
        (`.br`, `.gz`, web/scripts/compress.mjs), a third of the bytes on a store's link."""
        base = self.assets.resolve()
        path = (base / name).resolve()
        # Only files inside assets/: `..` or a link out of it is no asset.
        if not path.is_relative_to(base) or not path.is_file():
            raise HTTPException(404, f"no asset {name}")
        headers = {
            "Cache-Control": ASSET_CACHE,
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept-Encoding",
        }
        accepted = {part.split(";")[0].strip() for part in accept_encoding.lower().split(",")}
        for encoding, suffix in PACKED:
            packed = path.with_name(path.name + suffix)
            if encoding in accepted and packed.is_file():
                return FileResponse(
                    packed,
                    media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                    headers={**headers, "Content-Encoding": encoding},
                )
        return FileResponse(path, headers=headers)


def wants_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML) rather than a program asking for data."""
    return "text/html" in request.headers.get("accept", "")


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def deep_link(path: str) -> bool:
    return path not in API_PATHS and not path.startswith(API_PREFIXES)


class DeepLinks:
    """The router's last resort, where no route matched at all: a browser's GET of a console
    path gets index.html, anything else the router's own 404 (a problem document). A path
    some route has with another method stays that route's 405: the router answers those before
    it falls back here."""

    def __init__(self, console: Console, not_found: ASGIApp) -> None:
        self.console = console
        self.not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and deep_link(scope["path"])
        ):
            await self.console.page()(scope, receive, send)
            return
        await self.not_found(scope, receive, send)


def install(app: FastAPI, dist: Path | None = None) -> None:
    """Serve the console from `dist` (default: `web/dist`; the gateway's CONSOLE_DIST setting)
    and the docs from local files. The app must be made with `docs_url=None` and
    `redoc_url=None`."""
    console = Console(dist or DEFAULT_DIST)
    app.state.console = console

    @app.get("/assets/{name:path}", include_in_schema=False)
    async def asset(name: str, request: Request) -> Response:
        return console.asset(name, request.headers.get("accept-encoding", ""))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def docs_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/docs/static/{name}", include_in_schema=False)
    async def docs_static(name: str) -> Response:
        if name not in DOCS_FILES:
            raise HTTPException(404, f"no file {name}")
        return FileResponse(DOCS_STATIC / name, headers={"Cache-Control": "public, max-age=86400"})

    app.router.default = DeepLinks(console, app.router.default)
