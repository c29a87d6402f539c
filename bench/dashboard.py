#!/usr/bin/env python3
"""Dashboard benchmark: how fast the fleet page is interactive with N connected, Synced stations.

    .venv/bin/python bench/dashboard.py [--stations 1000] [--runs 5] [--json out.json]

A real `reconciler watch` daemon and `reconciler simulate` (N stations, 2 connectors, a depot cap
from generated policies) run as separate processes on loopback; Debian's chromium is driven by
Playwright (`executable_path`, nothing downloaded). Credentials are put in sessionStorage before
the page loads (the sign-in is once per tab, not part of the page's speed). Per run, in a fresh
browser context, timed by the page's own clock (`performance`, from navigation start):
- table: navigation -> the table's first rows painted (the page's `fleet-rendered` mark: the first
  60 rows, more than a laptop screen shows; the rest follow in small tasks so the page keeps answering);
- interactive: navigation -> a click on a row answered (the selection painted), the click sent the
  moment the first rows are there; first click: that click alone (event timestamp -> painted frame);
- complete: navigation -> all N rows in the table (`fleet-complete`); click: a click on row N-2 then;
- filter: choosing a condition in the filter -> the table filtered and painted;
- station: clicking a station's link -> its view with the schedule charts rendered (three API calls,
  live GetCompositeSchedule calls to the simulated charger included).
Also the page's own `GET /stations` (sent while the modules load; the daemon computes 1,000 summaries
unless its one-second cache holds them), and `GET /stations` alone from this process with httpx
(mostly that cache's answer).
Prints medians and the worst run; --json writes every run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("RECONCILER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
USER, PASSWORD, STATION_PASSWORD = "bench", "bench-api-secret", "bench-station"

TIME_CLICK = """async (selector) => {
  const target = document.querySelector(selector);
  const answered = new Promise((resolve) => {
    document.addEventListener("click", (event) => {
      const started = event.timeStamp;
      requestAnimationFrame(() => setTimeout(() => resolve([started, performance.now()]), 0));
    }, { capture: true, once: true });
  });
  target.click();
  const [started, done] = await answered;
  return { ms: done - started, at: done };
}"""

TIME_FILTER = """async () => {
  const select = document.getElementById("filter-condition");
  const started = performance.now();
  select.value = "Synced";
  select.dispatchEvent(new Event("input", { bubbles: true }));
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const ms = performance.now() - started;
  const shown = document.querySelectorAll("#fleet-body .frow:not([hidden])").length;
  select.value = "";
  select.dispatchEvent(new Event("input", { bubbles: true }));
  return { ms, shown };
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def policies(directory: Path, n: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    stations = [
        f"apiVersion: reconciler/v1\nkind: Station\nmetadata: {{name: PY-SIM-{i:04d}, labels: {{site: depot, "
        f"row: r{i % 10}}}}}\nspec: {{connectors: 2, maxCurrentA: 32, phases: 3, voltage: 230}}\n"
        for i in range(1, n + 1)
    ]  # fmt: skip
    (directory / "stations.yaml").write_text("---\n".join(stations))
    (directory / "cap.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {name: depot-cap}\nspec:\n"
        "  selector: {matchLabels: {site: depot}}\n  profiles:\n    - connectorId: 0\n      chargingProfileId: 1\n"
        "      stackLevel: 0\n      chargingProfilePurpose: ChargePointMaxProfile\n"
        "      chargingProfileKind: Absolute\n"
        "      chargingSchedule: {startSchedule: '2024-01-01T00:00:00Z', chargingRateUnit: A,\n"
        "                         chargingSchedulePeriod: [{startPeriod: 0, limit: 16}]}\n"
    )


def wait_synced(http: httpx.Client, n: int, timeout: float) -> float:
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        try:
            stations = http.get("/stations").json()
            if isinstance(stations, list) and sum(s["condition"] == "Synced" for s in stations) == n:
                return time.monotonic() - started
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1.0)
    raise SystemExit(f"the {n} stations were not all Synced within {timeout:g}s")


def run_once(browser: Any, url: str, n: int) -> dict[str, float]:
    header = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(f"sessionStorage.setItem('reconciler.authorization', {json.dumps(header)});")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url + "/")
        # interactive: a click sent the moment the first rows are painted, answered by a painted frame
        page.wait_for_function("() => performance.getEntriesByName('fleet-rendered').length > 0", timeout=30_000)
        clicked = page.evaluate(TIME_CLICK, "#fleet-body .frow:nth-child(3) span:nth-child(3)")
        assert page.locator("#selection-count").inner_text() == "1 selected"
        every = "(n) => document.querySelectorAll('#fleet-body .frow').length === n"
        page.wait_for_function(every, arg=n, timeout=30_000)
        page.wait_for_function("() => performance.getEntriesByName('fleet-complete').length > 0", timeout=30_000)
        marks = page.evaluate(
            "() => Object.fromEntries(performance.getEntriesByType('mark').map(m => [m.name, m.startTime]))"
        )
        fetch = page.evaluate(
            "() => { const e = performance.getEntriesByName(location.origin + '/stations')[0];"
            " return [e.startTime, e.responseEnd]; }"
        )
        again = page.evaluate(TIME_CLICK, f"#fleet-body .frow:nth-child({n - 2}) span:nth-child(3)")
        filtered = page.evaluate(TIME_FILTER)
        assert filtered["shown"] == n, filtered
        started = time.perf_counter()
        page.locator("#fleet-body .frow:nth-child(5) a.station-link").click()
        page.wait_for_selector(".chart svg path.observed", state="attached", timeout=30_000)
        station = (time.perf_counter() - started) * 1000
        if errors:
            raise SystemExit(f"console errors: {errors}")
        return {"table_ms": marks["fleet-rendered"], "interactive_ms": clicked["at"], "first_click_ms": clicked["ms"],
                "stations_request_ms": fetch[1] - fetch[0], "stations_answered_ms": fetch[1],
                "painted_after_answer_ms": marks["fleet-rendered"] - fetch[1],
                "parsed_ms": marks["fleet-fetched"] - fetch[1],
                "built_ms": marks["fleet-built"] - marks["fleet-fetched"],
                "complete_ms": marks["fleet-complete"], "click_ms": again["ms"], "filter_ms": filtered["ms"],
                "station_view_ms": station}  # fmt: skip
    finally:
        context.close()


def summary(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {key: {"median": statistics.median(r[key] for r in runs), "max": max(r[key] for r in runs)}
            for key in runs[0]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sync-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    env = {**os.environ, "RECONCILER_API_USER": USER, "RECONCILER_API_PASSWORD": PASSWORD,
           "RECONCILER_STATION_PASSWORD": STATION_PASSWORD, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}  # fmt: skip
    cli = [sys.executable, "-m", "reconciler.cli.main"]
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        folder = Path(tmp)
        policies(folder / "policies", args.stations)
        ws, api = free_port(), free_port()
        url = f"http://127.0.0.1:{api}"
        daemon = subprocess.Popen([*cli, "watch", "-p", str(folder / "policies"), "--listen", f"127.0.0.1:{ws}",
                                   "--http", f"127.0.0.1:{api}", "--db", str(folder / "state.db"),
                                   "--drift-interval", "300"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        simulators = None
        try:
            with httpx.Client(base_url=url, auth=(USER, PASSWORD), timeout=30) as http:
                for _ in range(300):  # bounded: the daemon answers within a few seconds
                    try:
                        if http.get("/readyz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.1)
                simulators = subprocess.Popen([*cli, "simulate", "--stations", str(args.stations), "--url",
                                               f"ws://127.0.0.1:{ws}"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL)  # fmt: skip
                synced_s = wait_synced(http, args.stations, args.sync_timeout)
                api_ms = []
                for _ in range(max(5, args.runs)):
                    started = time.perf_counter()
                    assert len(http.get("/stations").json()) == args.stations
                    api_ms.append((time.perf_counter() - started) * 1000)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                try:
                    run_once(browser, url, args.stations)  # warm-up: the browser's caches, the daemon's paths
                    runs = [run_once(browser, url, args.stations) for _ in range(args.runs)]
                finally:
                    browser.close()
        finally:
            for process in (simulators, daemon):
                if process is not None:
                    process.terminate()
                    try:
                        process.wait(15)
                    except subprocess.TimeoutExpired:
                        process.kill()

    figures = summary(runs)
    figures["get_stations_ms"] = {"median": statistics.median(api_ms), "max": max(api_ms)}
    print(f"dashboard, {args.stations} connected Synced stations (all Synced after {synced_s:.1f}s); "
          f"{args.runs} runs, medians (worst) in ms")  # fmt: skip
    labels = {"table_ms": "navigation -> first rows painted", "interactive_ms": "navigation -> first click answered",
              "first_click_ms": "first click -> selection painted",
              "complete_ms": "navigation -> every row in the table",
              "stations_request_ms": "  of which the page's GET /stations",
              "stations_answered_ms": "  navigation -> GET /stations answered",
              "painted_after_answer_ms": "  answer -> first rows painted",
              "parsed_ms": "    answer -> parsed (JSON)", "built_ms": "    parsed -> first rows built",
              "click_ms": "click (row N-2) -> selection painted",
              "filter_ms": "filter -> table filtered, painted", "station_view_ms": "station link -> charts drawn",
              "get_stations_ms": "GET /stations alone (httpx)"}  # fmt: skip
    for key, label in labels.items():
        print(f"  {label:<40} {figures[key]['median']:8.1f}  ({figures[key]['max']:.1f})")
    if args.json:
        args.json.write_text(json.dumps({"stations": args.stations, "runs": runs, "figures": figures,
                                         "synced_after_s": synced_s, "machine": platform.platform(),
                                         "cpus": os.cpu_count()}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
