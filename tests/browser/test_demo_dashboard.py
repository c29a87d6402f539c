"""`make demo` serves the dashboard: `reconciler demo` as a real process (what `make demo` runs), its
printed URL opened in Chromium and signed in with the credentials it printed, the six example
stations Synced in the table with their control source, the demo's own controls shown, its simulated
EVs drawing power within the limit in force; Ctrl-C ends it."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.pages import dashboard

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def drawing_within(cell: Any, timeout: float) -> tuple[float, float] | None:
    """(drawn, limit) in kW once a power cell reads more than nothing and at most the limit; None after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = re.fullmatch(r"(\d+\.\d) / (\d+\.\d) kW", (await cell.text_content() or "").strip())
        if found and 0 < float(found.group(1)) <= float(found.group(2)):
            return float(found.group(1)), float(found.group(2))
        await asyncio.sleep(0.25)
    return None


async def test_make_demo_serves_the_dashboard(tmp_path: Path, browser: Any, artifacts: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reconciler.cli.main", "demo", "--http", f"127.0.0.1:{port}", "--state-dir",
        str(tmp_path / "state"), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    output: list[str] = []
    try:
        url = credentials = None
        async with asyncio.timeout(90):
            while credentials is None:
                line = (await process.stdout.readline()).decode()
                assert line, "".join(output)
                output.append(line)
                if found := re.search(r"dashboard:\s+(http://\S+)/", line):
                    url = found.group(1)
                if found := re.search(r"user (\S+)\s+password (\S+)", line):
                    credentials = (found.group(1), found.group(2))
        assert url == f"http://127.0.0.1:{port}", "".join(output)
        async with dashboard(browser, url) as ui:
            page = ui.page
            await page.goto(url + "/")
            await page.fill("#login-form input[name=user]", credentials[0])
            await page.fill("#login-form input[name=password]", credentials[1])
            await page.click("#login-form button[type=submit]")
            await expect(page.locator("#fleet-body .frow")).to_have_count(6)
            for i in range(1, 7):
                row = ui.row(f"PY-SIM-000{i}")
                await expect(row.locator(".badge")).to_have_text("Synced")
                await expect(row.locator(".control-badge")).to_contain_text("OCPP: ")
            await expect(page.locator("#demo-controls")).to_be_visible()
            # the demo's simulated drivers plug EVs in within 20 s: real power against the limit in force
            # (an EV that plugged in before the cap was set drew more: the table shows its next MeterValues)
            power = ui.row("PY-SIM-0001").locator(".num")
            seen = await drawing_within(power, 45.0)
            assert seen is not None, await power.text_content()
            await ui.screenshot(artifacts, "make-demo-fleet.png")
            await ui.open_station("PY-SIM-0001")
            await expect(ui.chart(1)).to_have_attribute("data-in-sync", "true")
            await expect(page.locator("#connectors")).to_contain_text("Charging")
            await ui.screenshot(artifacts, "make-demo-station.png", height=1080)  # docs/dashboard-station.png
            assert ui.errors == []
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, "".join(output) + rest.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
