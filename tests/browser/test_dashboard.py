"""The dashboard in real headless Chromium against a real daemon with simulated stations (issue 11):
the fleet table shows every station with the right badge and control source; peak shaving leads to a
chart whose reported line sits at 7.4 kW and a badge `OCPP: 7.4 kW`; "clear all" shows drift, then
convergence back to git's state; a suspended station keeps the manual state; the energy cap shows the
duration it computed; a live update keeps scrolling, selection and open dialogs; no console errors."""

from __future__ import annotations

import contextlib
import math
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import expect

from reconciler.simulator.sessions import Sessions
from tests.browser.pages import dashboard
from tests.browser.rig import CAP_W, DEPOT, STATIONS, crowd, demo, world

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

CONTROL = {
    "D-01": "OCPP: 11.0 kW (1)", "D-02": "OCPP: 11.0 kW (1)", "D-03": "OCPP: 11.0 kW (1)",
    "G-01": "hardware limit",  # the ledger holds the cap, but the charger reads back none (not enforced)
    "R-01": "hardware limit", "S-01": "not read back", "X-01": "not read back", "H-01": "hardware limit",
    "P-01": "Policy: OK", "B-01": "Policy: Blocked",
}  # fmt: skip
CONDITION = {
    "D-01": "Synced", "D-02": "Synced", "D-03": "Synced", "G-01": "Degraded", "R-01": "OutOfSync",
    "S-01": "Suspended", "X-01": "Offline", "H-01": "Synced", "P-01": "Synced", "B-01": "Synced",
}  # fmt: skip


STATIONS_SORTED = sorted(STATIONS)
PROGRESSING_COLOUR = """() => {
  const probe = document.createElement("span");
  probe.className = "badge Progressing";
  document.body.append(probe);
  const colour = getComputedStyle(probe).color;
  probe.remove();
  return colour;
}"""
UNNAMED = """() => [...document.querySelectorAll("a, button, input, select, [tabindex]")]
  .filter((el) => el.offsetParent !== null || el.getClientRects().length)
  .filter((el) => !(el.getAttribute("aria-label") || (el.labels && el.labels.length) || el.textContent.trim()
                   || el.getAttribute("aria-labelledby") || el.title))
  .map((el) => el.outerHTML.slice(0, 120))"""


def kw(watts: float) -> str:
    return f"{watts / 1000:.1f}"


def spoken(seconds: int) -> str:
    """9818 -> '2 h 43 min 38 s' (how the dashboard writes a duration)."""
    hours, minutes, rest = seconds // 3600, seconds % 3600 // 60, seconds % 60
    return " ".join(p for p in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "",
                                f"{rest} s" if rest else "") if p)  # fmt: skip


async def test_fleet_table_shows_every_station_with_its_badge_and_control_source(
    tmp_path: Path, browser: Any, artifacts: Path
) -> None:
    async with world(tmp_path) as run, dashboard(browser, run.url) as ui:
        await ui.sign_in()
        page = ui.page
        await expect(page.locator("#fleet-body .frow")).to_have_count(len(STATIONS))
        for station in STATIONS:
            row = ui.row(station)
            badge = row.locator(".badge")
            await expect(badge).to_have_text(CONDITION[station])
            await expect(badge).to_have_class(f"badge {CONDITION[station]}")
            await expect(row.locator(".control-badge")).to_have_text(CONTROL[station])
        # the reason on hover: Degraded says why, Blocked says what the station reported
        assert "not enforced" in (await ui.row("G-01").locator(".badge").get_attribute("title") or "")
        # G-01 accepted the cap but does not enforce it: no OCPP limit shown, its hardware is the limit
        await expect(ui.row("G-01").locator(".control-badge")).not_to_contain_text("OCPP")
        await expect(ui.row("G-01").locator(".num")).to_have_text("0.0 / 44.2 kW")
        await expect(ui.row("X-01").locator(".num")).to_have_text(re.compile(r" / unknown$"))  # nothing read back
        assert "SuspendedEVSE" in (await ui.row("B-01").locator(".control-badge").get_attribute("title") or "")
        await expect(ui.row("S-01").locator(".badge")).to_have_attribute("title", "suspended by ops: maintenance")
        # power drawn from MeterValues against the limit in force, connected, revision, site
        await expect(ui.row("D-01").locator(".num")).to_have_text(f"{kw(CAP_W)} / {kw(CAP_W)} kW")
        await expect(ui.row("X-01")).to_contain_text("○ no")
        await expect(ui.row("D-01")).to_contain_text("● yes")
        assert run.revision and run.daemon.policies.revision == run.revision
        await expect(ui.row("D-01").locator("code")).to_have_text(run.revision[:8])
        await expect(ui.row("D-01")).to_contain_text("ago")  # last reconcile
        # the condition colours differ (green, amber, red, grey, purple)
        colours = {c: await ui.row(s).locator(".badge").evaluate("e => getComputedStyle(e).color")
                   for s, c in CONDITION.items()}  # fmt: skip
        colours["Progressing"] = await page.evaluate(PROGRESSING_COLOUR)  # a state too short to catch in a row
        assert len(set(colours.values())) == 6, colours

        # every control has an accessible name, and the keyboard reaches a station
        assert await page.evaluate(UNNAMED) == []
        for _ in range(40):  # Tab through the page (bounded) to the first station link, then Enter
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.classList.contains('station-link')"):
                break
        assert await page.evaluate("document.activeElement.textContent") == STATIONS_SORTED[0]
        await page.keyboard.press("Enter")
        await expect(page.locator("#station-title")).to_have_text(STATIONS_SORTED[0])
        await page.locator(".chart").first.wait_for()
        assert await page.evaluate(UNNAMED) == []
        await page.go_back()
        await expect(page.locator("#fleet-view")).to_be_visible()

        # filters: site, label, condition (and the URL keeps them)
        await page.select_option("#filter-site", "lab")
        await expect(page.locator("#fleet-body .frow:visible")).to_have_count(3)
        await page.select_option("#filter-condition", "Synced")
        await expect(page.locator("#fleet-body .frow:visible")).to_have_count(3)
        assert "site=lab" in page.url and "condition=Synced" in page.url
        await page.click("#filter-reset")
        await page.select_option("#filter-label", "vendor=acme")
        await expect(page.locator("#fleet-body .frow:visible")).to_have_count(7)
        await page.click("#condition-chips button[data-condition=Degraded]")
        await expect(page.locator("#fleet-body .frow:visible")).to_have_count(1)
        await page.click("#filter-reset")
        await expect(page.locator("#fleet-body .frow:visible")).to_have_count(len(STATIONS))

        await ui.screenshot(artifacts, "fleet.png")  # docs/dashboard-fleet.png
        await page.emulate_media(color_scheme="dark")
        background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert sum(int(v) for v in background[4:-1].split(",")[:3]) < 120, background  # a dark page
        await ui.screenshot(artifacts, "fleet-dark.png")
        assert ui.errors == []


async def test_peak_shaving_button_shows_the_reported_line_at_7_4_kw(
    tmp_path: Path, browser: Any, artifacts: Path
) -> None:
    async with world(tmp_path) as run, dashboard(browser, run.url) as ui:
        await ui.sign_in()
        page = ui.page
        await ui.open_station("D-02")
        await expect(ui.chart(0).locator("path.observed")).to_have_attribute("data-levels-kw", kw(CAP_W))

        await page.fill("#form-peak input[name=max_kw]", "7.4")
        await page.click("#form-peak button[type=submit]")
        await expect(page.locator(".toast", has_text="verified by read-back")).to_be_visible()
        await expect(page.locator("#station-control")).to_have_text("OCPP: 7.4 kW (2)")
        for connector in (0, 1, 2):
            await expect(ui.chart(connector).locator("path.observed")).to_have_attribute("data-levels-kw", "7.4")
            await expect(ui.chart(connector)).to_have_attribute("data-in-sync", "true")
        assert run.fleet["D-02"].offered_current(1)[0] == pytest.approx(7400 / 690, abs=0.1)  # the charger enforces it
        await expect(page.locator("#overrides tbody tr")).to_have_count(1)
        await expect(page.locator("#overrides")).to_contain_text("peak_shaving")

        # the governing profile per period, on hover and from the keyboard
        chart = ui.chart(0).locator("svg")
        box = await chart.bounding_box()
        assert box is not None
        await chart.hover(position={"x": box["width"] * 0.5, "y": box["height"] * 0.4})
        tooltip = ui.chart(0).locator(".tooltip")
        await expect(tooltip).to_be_visible()
        await expect(tooltip).to_contain_text("governed by #900000 ChargePointMaxProfile stack 1")
        await expect(tooltip).to_contain_text("override #")
        await page.mouse.move(0, 0)
        await expect(tooltip).to_be_hidden()
        await chart.focus()
        await page.keyboard.press("ArrowRight")
        await expect(tooltip).to_contain_text("expected 7.4 kW · reported 7.4 kW")
        closers = page.locator(".toast button")  # toasts can be dismissed (success ones also go by themselves)
        for _ in range(10):
            if await closers.count() == 0:
                break
            with contextlib.suppress(PlaywrightError):
                await closers.first.click(timeout=1000)
        await expect(page.locator(".toast")).to_have_count(0)
        await ui.screenshot(artifacts, "station.png")
        await ui.screenshot(artifacts, "station-top.png", height=1500)

        # the profile viewer: every profile with purpose, kind, stack level; the composite as bars
        await page.click("#act-profiles")
        viewer = page.locator("#profiles-dialog")
        await expect(viewer).to_be_visible()
        await expect(viewer.locator(".profile-card")).to_have_count(2)
        await expect(viewer.locator('.profile-card[data-profile="900000"]')).to_contain_text("ChargePointMaxProfile")
        await expect(viewer.locator('.profile-card[data-profile="1"]')).to_contain_text("cap.yaml:")
        await expect(viewer.locator("svg.bars rect.bar").first).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(viewer).to_be_hidden()

        # the fleet shows it too, marked as an override
        await page.click("a.back")
        await expect(ui.row("D-02").locator(".control-badge")).to_have_text("OCPP: 7.4 kW (2)")
        await expect(ui.row("D-02").locator(".override-mark")).to_have_text("⚑ 1")

        # removing the override brings git's state back
        await ui.open_station("D-02")
        await page.click("#overrides button.remove-override")
        await expect(page.locator(".toast", has_text="git's state is back")).to_be_visible()
        await expect(page.locator("#station-control")).to_have_text("OCPP: 11.0 kW (1)")
        await expect(ui.chart(0).locator("path.observed")).to_have_attribute("data-levels-kw", kw(CAP_W))
        assert ui.errors == []


async def test_clear_all_shows_drift_then_convergence_back_to_git(tmp_path: Path, browser: Any) -> None:
    async with world(tmp_path) as run, dashboard(browser, run.url) as ui:
        await ui.sign_in()
        page = ui.page
        await ui.open_station("D-03")
        await expect(ui.chart(1)).to_have_attribute("data-in-sync", "true")
        await expect(page.locator(".drift-band")).to_have_count(0)

        await page.click("#act-clear")
        dialog = page.locator("#confirm-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("Self-heal will restore git's profile(s) #1 (depot-cap, ")
        await page.click("#confirm-ok")
        # drift first (the charger lost git's cap), caught the moment it is drawn...
        await page.wait_for_selector('.chart[data-in-sync="false"] .drift-band[data-drift="missing"]')
        await expect(page.locator(".toast", has_text="self-heal will restore git's profile(s) #1")).to_be_visible()
        # ...then self-heal converges back to git's state, live, without a click
        for connector in (0, 1, 2):
            await expect(ui.chart(connector)).to_have_attribute("data-in-sync", "true")
        await expect(ui.chart(0).locator("path.observed")).to_have_attribute("data-levels-kw", kw(CAP_W))
        await expect(page.locator(".drift-band")).to_have_count(0)
        await expect(page.locator("#events li[data-kind='profile.cleared']")).to_have_count(1)
        await expect(page.locator("#events li[data-kind='action.set']")).to_have_count(2)  # the first apply, the heal
        await expect(page.locator("#station-badge .badge")).to_have_text("Synced")
        assert len(run.fleet["D-03"].installed.entries) == 1
        assert ui.errors == []


async def test_a_suspended_station_keeps_the_manual_state(tmp_path: Path, browser: Any) -> None:
    async with world(tmp_path) as run, dashboard(browser, run.url) as ui:
        await ui.sign_in()
        page = ui.page
        await ui.open_station("D-01")
        await page.click("#act-suspend")
        await expect(page.locator("#station-badge .badge")).to_have_text("Suspended")
        await expect(page.locator(".toast", has_text="manual changes stay until resume")).to_be_visible()

        await page.click("#act-clear")
        await expect(page.locator("#confirm-dialog")).to_contain_text("The station is suspended")
        await page.click("#confirm-ok")
        await expect(page.locator(".toast", has_text="stay cleared until it is resumed")).to_be_visible()
        await expect(ui.chart(1)).to_have_attribute("data-in-sync", "false")

        # reconcile now: the daemon records Suspended and sends nothing; the manual state stays
        sets = run.fleet["D-01"].calls["SetChargingProfile"]
        await page.click("#act-reconcile")
        await expect(page.locator(".toast", has_text="Reconciled D-01")).to_contain_text("Suspended")
        await page.click('.segmented button[data-range="3600"]')
        await expect(ui.chart(1)).to_have_attribute("data-in-sync", "false")
        await expect(ui.chart(0).locator("path.observed")).to_have_attribute("data-levels-kw", "none")
        assert run.fleet["D-01"].installed.entries == () and run.fleet["D-01"].calls["SetChargingProfile"] == sets

        # resume: reconciling again heals it
        await page.click("#act-resume")
        await expect(page.locator("#station-badge .badge")).to_have_text("Synced")
        await expect(ui.chart(1)).to_have_attribute("data-in-sync", "true")
        assert len(run.fleet["D-01"].installed.entries) == 1
        assert ui.errors == []


async def test_the_energy_cap_button_shows_the_duration_it_computed(tmp_path: Path, browser: Any) -> None:
    async with world(tmp_path) as run, dashboard(browser, run.url) as ui:
        await ui.sign_in()
        page = ui.page
        await ui.open_station("H-01")
        form = page.locator("#form-energy")
        await form.locator("input[name=energy_kwh]").fill("30")
        await form.locator("input[name=power_kw]").fill("22")  # the parameters are editable
        await form.locator("input[name=hours]").fill("4")
        await form.locator("button[type=submit]").click()
        seconds = min(4 * 3600, math.floor(30_000 * 3600 / 22_000))  # power for min(window, energy / power)
        result = form.locator("output")
        await expect(result).to_contain_text(f"22.0 kW for {spoken(seconds)} ({seconds} s)")
        await expect(result).to_contain_text("limited by energy")
        await expect(page.locator(".toast", has_text=spoken(seconds))).to_be_visible()
        await expect(page.locator("#overrides")).to_contain_text("energy_cap")

        # time of use: 22 kW off-peak, 7 kW 18:00-22:00 in the site's timezone, as an override too
        tou = page.locator("#form-tou")
        await tou.locator("button[type=submit]").click()
        await expect(tou.locator("output")).to_contain_text("verified by read-back")
        await expect(page.locator("#overrides")).to_contain_text("time_of_use")
        await expect(page.locator("#overrides tbody tr")).to_have_count(2)
        assert ui.errors == []


async def test_wrong_credentials_and_api_errors_show_the_api_message(tmp_path: Path, browser: Any) -> None:
    async with world(tmp_path) as run, dashboard(browser, run.url) as ui:
        page = ui.page
        await page.goto(run.url + "/")
        await page.fill("#login-form input[name=user]", "ops")
        await page.fill("#login-form input[name=password]", "wrong")
        await page.click("#login-form button[type=submit]")
        await expect(page.locator("#login-error")).to_contain_text("refused these credentials (401)")
        await page.fill("#login-form input[name=password]", "api-secret")
        await page.click("#login-form button[type=submit]")
        await page.wait_for_selector("body[data-ready=true]")
        await ui.open_station("X-01")  # declared, not connected
        await expect(ui.chart(0)).to_contain_text("Station X-01 not found or not connected")
        await page.click("#form-peak button[type=submit]")
        toast = page.locator(".toast.error")
        await expect(toast).to_contain_text("Station X-01 not found or not connected")
        await expect(page.locator("#form-peak output")).to_have_text("Station X-01 not found or not connected")
        # the browser logs the refused sign-in and the 404 answer itself; nothing else went wrong
        assert len(ui.errors) == 2 and "401" in ui.errors[0] and "404" in ui.errors[1], ui.errors


async def test_a_live_update_keeps_scroll_selection_and_open_dialogs(tmp_path: Path, browser: Any) -> None:
    async with crowd(tmp_path, 240) as run, dashboard(browser, run.url) as ui:
        await ui.sign_in()
        page = ui.page
        await expect(page.locator("#fleet-body .frow")).to_have_count(240)
        await ui.row("T-0150").locator("input[type=checkbox]").check()
        await ui.row("T-0152").locator("input[type=checkbox]").click(position={"x": 2, "y": 2})
        await expect(page.locator("#selection-count")).to_have_text("2 selected")
        scroller = page.locator("#fleet-scroll")
        top = await scroller.evaluate("e => { e.scrollTop = 4321; return e.scrollTop; }")
        assert top > 3000
        first = (
            "e => { const top = e.getBoundingClientRect().top + 60; "  # the first row in view
            "return [...e.querySelectorAll('.frow[data-id]')].find((r) => r.getBoundingClientRect().bottom > top)"
            ".dataset.id; }"
        )
        in_view = await scroller.evaluate(first)
        await page.click("#bulk-suspend")
        dialog = page.locator("#confirm-dialog")
        await expect(dialog).to_be_visible()
        updates = int(await page.locator("#live").get_attribute("data-updates") or 0)

        # another operator suspends T-0151: the table learns it live (server-sent events)
        assert (await run.http.post("/stations/T-0151/suspend", json={"reason": "elsewhere"})).status_code == 200
        await expect(ui.row("T-0151").locator(".badge")).to_have_text("Suspended")
        assert int(await page.locator("#live").get_attribute("data-updates") or 0) > updates
        assert await scroller.evaluate("e => e.scrollTop") == top
        assert await scroller.evaluate(first) == in_view  # the same rows are in view
        await expect(dialog).to_be_visible()
        await expect(page.locator("#selection-count")).to_have_text("2 selected")
        await expect(ui.row("T-0150").locator("input[type=checkbox]")).to_be_checked()
        await expect(ui.row("T-0152")).to_contain_class("selected")

        # and the dialog still works: suspending the selection
        await page.click("#confirm-ok")
        await expect(ui.row("T-0150").locator(".badge")).to_have_text("Suspended")
        await expect(ui.row("T-0152").locator(".badge")).to_have_text("Suspended")
        assert ui.errors == []


async def test_demo_mode_scales_and_starts_stations(tmp_path: Path, browser: Any) -> None:
    async with demo(tmp_path) as run, dashboard(browser, run.url) as ui:
        await ui.sign_in()
        page = ui.page
        controls = page.locator("#demo-controls")
        await expect(controls).to_be_visible()
        await controls.locator("input").fill("1")
        await controls.locator("button").click()
        await expect(page.locator(".toast", has_text="1 simulated station(s) running")).to_be_visible()
        await expect(ui.row("D-03").locator(".badge")).to_have_text("Offline")
        await ui.open_station("D-03")
        await page.click("#act-start")
        await expect(page.locator("#station-badge .badge")).to_have_text("Synced")
        await expect(ui.chart(0).locator("path.observed")).to_have_attribute("data-levels-kw", kw(CAP_W))
        await page.click("#act-stop")
        await expect(page.locator("#station-badge .badge")).to_have_text("Offline")
        await expect(ui.chart(0)).to_contain_text("Station D-03 not found or not connected")
        assert ui.errors == []


async def test_open_reads_show_the_fleet_and_ask_for_credentials_at_the_first_action(
    tmp_path: Path, browser: Any
) -> None:
    async with crowd(tmp_path, 3, open_reads=True) as run, dashboard(browser, run.url) as ui:
        page = ui.page
        await page.goto(run.url + "/")
        await expect(page.locator("#fleet-body .frow")).to_have_count(3)  # no sign-in to read
        await expect(page.locator("#login-dialog")).to_be_hidden()
        await ui.row("T-0002").locator("input[type=checkbox]").check()
        await page.click("#bulk-suspend")
        await page.click("#confirm-ok")
        # the API answers 401: the dashboard asks once, then sends the request again with them
        await expect(page.locator("#login-dialog")).to_be_visible()
        await page.fill("#login-form input[name=password]", "api-secret")
        await page.fill("#login-form input[name=user]", "ops")
        await page.click("#login-form button[type=submit]")
        await expect(ui.row("T-0002").locator(".badge")).to_have_text("Suspended")
        await expect(page.locator(".toast", has_text="Suspended")).to_be_visible()
        assert run.daemon.state is not None and "T-0002" in run.daemon.state.suspensions()
        assert (await page.evaluate("sessionStorage.getItem('reconciler.authorization')")).startswith("Basic ")
        assert len(ui.errors) == 1 and "401" in ui.errors[0], ui.errors  # the browser logs the refused request


async def test_demo_stations_show_power_drawn_within_the_limit_in_force(
    tmp_path: Path, browser: Any, artifacts: Path
) -> None:
    """The demo's simulated drivers charge EVs: the fleet table shows real power against the limit."""
    sessions = Sessions(seed=3, idle_s=(0.0, 0.5), charge_s=(600.0, 600.0), meter_interval_s=1, max_sessions=1)
    async with demo(tmp_path, sessions=sessions) as run, dashboard(browser, run.url) as ui:
        await ui.sign_in()
        for name in DEPOT[:3]:
            cell = ui.row(name).locator(".num")
            # drawing (not 0.0), within the 11.0 kW cap (an EV that plugged in before the cap was set drew
            # more; the table shows its next MeterValues at its next refresh: up to 5 s, more on a busy machine)
            within = re.compile(r"^(?:0\.[1-9]|[1-9]\.\d|10\.\d|11\.0) / 11\.0 kW$")
            await expect(cell).to_have_text(within, timeout=30_000)
            drawn = float((await cell.text_content() or "").split(" / ")[0])
            assert 0 < drawn <= kw_value(CAP_W), name
            await expect(ui.row(name).locator(".control-badge")).to_have_text(f"OCPP: {kw(CAP_W)} kW (1)")
        await expect(ui.page.locator("#fleet-totals")).to_contain_text(f"of {3 * CAP_W / 1000:.1f} kW allowed")
        await ui.screenshot(artifacts, "demo-fleet.png")
        await ui.open_station("D-01")
        facts = ui.page.locator("#station-facts")
        await expect(facts).to_contain_text("the charger read back 11.0 kW")
        await expect(ui.page.locator("#connectors")).to_contain_text("Charging")
        await ui.screenshot(artifacts, "demo-station.png")
        assert ui.errors == []


def kw_value(watts: float) -> float:
    return round(watts / 1000, 1)
