"""The web dashboard's files, served by the daemon at `/`: a page built on the public REST API alone.

Flow: a browser -> `GET /` (index.html) -> `GET /dashboard/{file}` (the CSS and ES modules in
`api/static/`, package data, read once at start) -> the page asks for the API credentials once, keeps
them in sessionStorage and calls the same endpoints as any client (`/stations`, `/events/stream`,
`/stations/{id}/schedules`...). `GET /dashboard/config` tells the page what it needs before it has
credentials: whether reads are open and whether the daemon runs the demo's simulated stations.

Nothing is fetched from elsewhere: a Content-Security-Policy of 'self' says so to the browser. The
files hold no secret, so they are served without credentials, like `/docs`.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

if TYPE_CHECKING:
    from reconciler.daemon.service import Daemon

TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}  # fmt: skip
POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
          "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")  # fmt: skip
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}  # fmt: skip


def assets() -> dict[str, tuple[bytes, str]]:
    """file name -> (content, media type) of every file in `api/static/`."""
    found: dict[str, tuple[bytes, str]] = {}
    folder = resources.files("reconciler.api").joinpath("static")
    for item in folder.iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1] if "." in item.name else ""
        if item.is_file() and suffix in TYPES:
            found[item.name] = (item.read_bytes(), TYPES[suffix])
    if "index.html" not in found:
        raise RuntimeError(f"the dashboard's files are missing from {folder}; reinstall the package")
    return found


def router(daemon: Daemon) -> APIRouter:
    files = assets()
    api = APIRouter(tags=["dashboard"])

    def serve(name: str) -> Response:
        content, media = files[name]
        return Response(content, media_type=media, headers=HEADERS)

    @api.get("/", include_in_schema=False)
    async def index() -> Response:
        return serve("index.html")

    @api.get("/dashboard/config")
    async def config() -> dict[str, Any]:
        """What the dashboard needs before it has credentials (open, holds no secret): whether reads
        need credentials, the accepted schemes, and whether this is the demo (simulated stations)."""
        return {"open_reads": daemon.settings.open_reads, "auth": ["basic", "bearer"],
                "demo": daemon.fleet is not None, "version": "1"}  # fmt: skip

    @api.get("/dashboard/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in files or name == "index.html":
            raise HTTPException(404, f"no dashboard file {name!r}")
        return serve(name)

    return api
