"""The dashboard as a test sees it: a page in a fresh browser context, signed in with the API's
credentials, recording every console error and uncaught exception (`errors`, asserted empty)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.daemon.kit import CREDENTIALS

TIMEOUT_MS = 15_000  # upper bound for any condition a test waits on in the page


class Dashboard:
    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        self.url = url
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.set_default_timeout(TIMEOUT_MS)

    async def sign_in(self, path: str = "/") -> None:
        """Open the dashboard; it asks for the credentials once (reads are closed), then shows the fleet."""
        await self.page.goto(self.url + path)
        dialog = self.page.locator("#login-dialog")
        await dialog.wait_for(state="visible")
        await self.page.fill("#login-form input[name=user]", CREDENTIALS.user or "")
        await self.page.fill("#login-form input[name=password]", CREDENTIALS.password or "")
        await self.page.click("#login-form button[type=submit]")
        await self.page.wait_for_selector("body[data-ready=true]")

    def row(self, station: str) -> Any:
        return self.page.locator(f'#fleet-body .frow[data-id="{station}"]')

    async def open_station(self, station: str) -> None:
        await self.row(station).get_by_role("link", name=station).click()
        await self.page.locator("#station-title", has_text=station).wait_for()
        await self.page.locator(".chart").first.wait_for()

    def chart(self, connector: int) -> Any:
        return self.page.locator(f'.chart[data-connector="{connector}"]')

    async def screenshot(self, folder: Path, name: str, height: int | None = None) -> Path:
        """The whole page (or its top `height` pixels) as a PNG in `folder`."""
        path = folder / name
        await self.page.evaluate("window.scrollTo(0, 0)")
        clip = {"x": 0, "y": 0, "width": 1440, "height": height} if height else None
        await self.page.screenshot(path=str(path), full_page=True, clip=clip)
        assert path.stat().st_size > 10_000, path
        return path


@asynccontextmanager
async def dashboard(browser: Any, url: str, **context: Any) -> AsyncIterator[Dashboard]:
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900}, **context)
    try:
        page = await ctx.new_page()
        yield Dashboard(page, url)
    finally:
        await ctx.close()
