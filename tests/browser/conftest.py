"""Headless Chromium for the dashboard's tests: Debian's `chromium` (installed by `.ci/run`), driven by
Playwright for Python through `executable_path`; Playwright never downloads a browser here.

One browser per module (on the module's event loop, shared with the daemons the tests start), one
fresh context per test (its own sessionStorage). Every page records console errors and uncaught
exceptions; `Page.errors` is what a test asserts empty. Screenshots go to `test-artifacts/`
(gitignored; CI keeps the directory as the run's artifacts).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

CHROMIUM = os.environ.get("RECONCILER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium the browser tests are skipped, unless CI requires them (RECONCILER_REQUIRE_BROWSER=1)."""
    missing = not Path(CHROMIUM).exists()
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing = True
    if not missing:
        return
    if os.environ.get("RECONCILER_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(
            f"browser tests required but {CHROMIUM} or playwright is missing "
            "(apt-get install chromium; pip install -e '.[test]')"
        )
    skip = pytest.mark.skip(reason=f"no {CHROMIUM} or playwright: apt-get install chromium; pip install -e '.[test]'")
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(skip)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
