"""The dashboard of a `--via` daemon in real headless Chromium: daemon A holds the chargers (embedded
Central System, CP-0001 connected, CP-0002 declared but never connected); daemon B reaches them
through A's inject API. B's fleet table shows CP-0002 not connected with an Offline badge whose
title is the proxy's reason, CP-0001 connected; the summary counts one connected."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from reconciler.daemon.service import Daemon
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.fleet import Fleet
from tests.browser.pages import dashboard
from tests.browser.rig import World, settings
from tests.daemon.kit import AUTH
from tests.engine.fleetkit import PASSWORD, cap_policy, load, station_doc, write

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]
IDS = ["CP-0001", "CP-0002"]


async def test_via_fleet_table_shows_the_station_the_proxy_does_not_hold_as_not_connected(
    tmp_path: Path, browser: Any
) -> None:
    policies = write(tmp_path / "policies", {"stations.yaml": "---\n".join(station_doc(s, "depot") for s in IDS),
                                             "caps.yaml": cap_policy("caps", IDS, 16)})  # fmt: skip
    a = Daemon(settings(tmp_path, policies), load(policies))
    await a.start()
    try:
        assert a.central is not None
        fleet = Fleet(a.central.url, 0)
        fleet.add(SimulatedChargePoint("CP-0001", connectors=2, max_current=32), password=PASSWORD,
                  backoff_initial=0.05, backoff_max=0.3)  # fmt: skip
        async with fleet:
            via = f"http://{AUTH[0]}:{AUTH[1]}@{a.http.url.removeprefix('http://')}"
            b = Daemon(replace(settings(tmp_path, policies), db=tmp_path / "b.db", listen=None, via=via),
                       load(policies))  # fmt: skip
            await b.start()
            try:
                run = World(b, fleet, None, b.http.url)  # type: ignore[arg-type]
                await run.until(lambda: set(b.latest) == set(IDS), "B judged both stations")
                async with dashboard(browser, b.http.url) as ui:
                    await ui.sign_in()
                    await expect(ui.page.locator("#fleet-body .frow")).to_have_count(len(IDS))
                    await expect(ui.row("CP-0002")).to_contain_text("○ no")
                    badge = ui.row("CP-0002").locator(".badge")
                    await expect(badge).to_have_text("Offline")
                    assert "not connected" in (await badge.get_attribute("title") or "")
                    assert AUTH[1] not in (await badge.get_attribute("title") or "")
                    await expect(ui.row("CP-0001")).to_contain_text("● yes")
                    await expect(ui.page.locator("body")).to_contain_text("2 stations · 1 connected")
                    assert not ui.errors, ui.errors
            finally:
                await b.stop()
    finally:
        await a.stop()
