"""The daemon and the demo as real processes: `make demo` headless (6 Synced, clean Ctrl-C),
`plan --via` through a running daemon gives the daemon's own plan, SIGTERM mid-reconcile leaves the
ledger consistent and a restart converges."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest

from reconciler.simulator.fleet import Fleet
from tests.daemon.kit import AUTH, limit_a, running
from tests.daemon.test_watch import IDS, fleet_files
from tests.engine.fleetkit import PASSWORD, cap_policy, station_doc, write

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def poll(url: str, auth: tuple[str, str], check, timeout: float = 60.0) -> object:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(auth=auth, timeout=5) as http:
        while loop.time() < deadline:
            try:
                response = await http.get(url)
                if response.status_code == 200 and check(response.json()):
                    return response.json()
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError(f"{url}: condition not met within {timeout}s")


async def test_demo_runs_headless_until_interrupted(tmp_path: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "reconciler.cli.main",
        "demo",
        "--http",
        f"127.0.0.1:{port}",
        "--state-dir",
        str(tmp_path / "state"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = []
    try:
        password = None
        async with asyncio.timeout(90):
            while password is None:
                line = (await process.stdout.readline()).decode()
                assert line, "".join(output)
                output.append(line)
                found = re.search(r"user (\S+)\s+password (\S+)", line)
                if found:
                    password = (found.group(1), found.group(2))
        stations = await poll(
            f"http://127.0.0.1:{port}/stations",
            password,
            lambda body: len(body) == 6 and all(s["condition"] == "Synced" for s in body),
        )
        assert [s["id"] for s in stations] == [f"PY-SIM-000{i}" for i in range(1, 7)]  # type: ignore[union-attr]
        # the generated API password is shown once on stdout, and is in no command line nor the state files
        assert password[1].encode() not in Path(f"/proc/{process.pid}/cmdline").read_bytes()
        for path in (tmp_path / "state").rglob("*"):
            if path.is_file():
                assert password[1].encode() not in path.read_bytes(), path
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), 30)
        text = "".join(output) + rest.decode()
        assert process.returncode == 0, text
        assert text.count("curl -s -u admin:") == 3 and f"http://127.0.0.1:{port}/docs" in text
        assert "stopped its simulated chargers" in text and "Traceback" not in text
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_plan_via_a_running_daemon_is_the_daemons_plan(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        for station in IDS:
            await run.http.post(f"/stations/{station}/suspend")
        raw = {"action": "ClearChargingProfile", "payload": {"id": 1}}
        assert (await run.http.post("/api/inject/CP-0002", json=raw)).json() == {"status": "Accepted"}
        env = {**os.environ, "RECONCILER_INJECT_USER": AUTH[0], "RECONCILER_INJECT_PASSWORD": AUTH[1]}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reconciler.cli.main",
            "plan",
            "--policies",
            str(run.policies),
            "--via",
            run.daemon.http.url,
            "--db",
            str(tmp_path / "state.db"),
            "--json",
            "--detailed-exitcode",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 90)
        assert process.returncode == 2, err.decode()
        import json

        via = json.loads(out)
        direct = (await run.http.get("/plan")).json()

        def shape(plan):
            return {
                s["station"]: (s["status"], [a["description"] for a in s.get("actions", [])]) for s in plan["stations"]
            }

        assert shape(via) == shape(direct)
        assert shape(via)["CP-0002"][0] == "OutOfSync" and shape(via)["CP-0001"] == ("Synced", [])


def _many(n: int) -> tuple[list[str], dict[str, str]]:
    ids = [f"CP-{i:04d}" for i in range(1, n + 1)]
    return ids, {
        "stations.yaml": "---\n".join(station_doc(s, "depot") for s in ids),
        "caps.yaml": cap_policy("caps", ids, 20),
    }


async def test_sigterm_mid_reconcile_keeps_the_ledger_consistent_and_a_restart_converges(tmp_path: Path) -> None:
    ids, files = _many(40)
    policies = write(tmp_path / "policies", files)
    ws, api = free_port(), free_port()
    env = {**os.environ, "RECONCILER_STATION_PASSWORD": PASSWORD, "RECONCILER_API_PASSWORD": "pw"}

    async def daemon() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reconciler.cli.main",
            "watch",
            "-p",
            str(policies),
            "--listen",
            f"127.0.0.1:{ws}",
            "--http",
            f"127.0.0.1:{api}",
            "--db",
            str(tmp_path / "state.db"),
            "--concurrency",
            "4",
            "--shutdown-timeout",
            "2",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    first = await daemon()
    fleet = Fleet(
        f"ws://127.0.0.1:{ws}", len(ids), prefix="CP-", password=PASSWORD, backoff_initial=0.1, backoff_max=0.5
    )
    async with fleet:
        async with asyncio.timeout(60):
            while sum(cp.calls["SetChargingProfile"] for cp in fleet.stations.values()) < 3:
                await asyncio.sleep(0.01)
        first.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(first.communicate(), 30)
        assert first.returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
        sent = sum(cp.calls["SetChargingProfile"] for cp in fleet.stations.values())
        assert sent < len(ids), "the reconcile had finished before SIGTERM; nothing was interrupted"
        with sqlite3.connect(tmp_path / "state.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            ledger = {r[0] for r in db.execute("SELECT station_id FROM ledger")}
        for station in ledger:  # every ledger entry is on its charger (or pending, accounted for at restart)
            assert fleet[station].installed.by_id(1) is not None

        second = await daemon()
        try:
            body = await poll(
                f"http://127.0.0.1:{api}/stations",
                ("admin", "pw"),
                lambda b: all(s["condition"] == "Synced" for s in b),
                timeout=90,
            )
            assert len(body) == len(ids)  # type: ignore[arg-type]
            assert all(limit_a(cp, 0) == 20 for cp in fleet.stations.values())
            assert all(cp.calls["SetChargingProfile"] <= 2 for cp in fleet.stations.values())
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.communicate(), 30)


async def test_demo_once_simulates_the_stations_the_directory_declares(tmp_path: Path) -> None:
    """Issue 12 item 9: `demo -p DIR` ignored DIR's stations (it always simulated PY-SIM-0001...)."""
    ids = ["DEPOT-A1", "DEPOT-A2"]
    write(tmp_path / "p", {"s.yaml": "---\n".join(station_doc(s, "x", connectors=1) for s in ids),
                           "c.yaml": cap_policy("caps", ids, 16)})  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reconciler.cli.main", "demo", "--once", "-p", str(tmp_path / "p"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 90)
    text = out.decode()
    assert process.returncode == 0, text
    assert "in sync: DEPOT-A1, DEPOT-A2" in text and "PY-SIM" not in text
