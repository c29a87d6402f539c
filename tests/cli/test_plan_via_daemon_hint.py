"""`reconciler plan --via` (the real CLI, a subprocess) against a running reconciler daemon, with the
CLI's own fresh state: the daemon's caps are not this state's, so every station stays BLOCKED (a
foreign cap is never taken for ours), but the reason says that the inject API is a reconciler
daemon that most likely installed them, not to prune them, and how to plan with its state
(`--db` the daemon's state file, which the daemon names to a caller with its credentials) or to
ask it (`GET /plan`). With the daemon's state file the plan is the daemon's. Through a plain inject
proxy (the project's `inject_app` in front of a Central System) a new state blocked on several
stations gets the general hint; a single foreign cap with a state that owns profiles gets none."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import pytest

from reconciler.api.auth import Credentials
from reconciler.api.inject import inject_app
from reconciler.api.server import HttpServer
from reconciler.simulator.fleet import Fleet
from reconciler.transport.central_system import CentralSystem
from tests.daemon.kit import AUTH, running
from tests.daemon.test_watch import IDS, fleet_files
from tests.engine.fleetkit import PASSWORD, WAIT, write
from tests.transport.conftest import cp_max

pytestmark = pytest.mark.slow


async def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "RECONCILER_INJECT_USER": AUTH[0], "RECONCILER_INJECT_PASSWORD": AUTH[1], **(env or {})}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reconciler.cli.main", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_plan_via_a_daemon_with_a_fresh_state_says_whose_caps_they_are(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        url, daemon_db = run.daemon.http.url, str(run.daemon.settings.db)
        assert run.daemon.central is not None
        listen = f"--listen 127.0.0.1:{run.daemon.central.port}"
        # the daemon says what it is; its state file and how it reaches its chargers only to a caller
        # with its credentials
        assert (await run.http.get("/healthz")).json() == {"status": "ok", "service": "reconciler",
                                                            "state_file": daemon_db, "chargers": listen}  # fmt: skip
        async with httpx.AsyncClient(base_url=url, timeout=WAIT) as anonymous:
            assert (await anonymous.get("/healthz")).json() == {"status": "ok", "service": "reconciler"}
        fresh = str(tmp_path / "cli" / "state.db")
        code, out, err = await cli("plan", "--policies", str(run.policies), "--via", url, "--db", fresh)
        text = out + err
        assert code == 0, text
        assert out.count("BLOCKED") == len(IDS), out  # ownership is not weakened: nothing planned to send
        assert "is a reconciler daemon" in text and f"--db {daemon_db}" in text and f"{url}/plan" in text, text
        assert "do not set `prune: foreign`" in text, text
        assert AUTH[1] not in text
        # once the daemon is stopped it no longer answers at its URL: the hint reaches its chargers as it did
        again = next(line.strip() for line in err.splitlines() if line.strip().startswith("reconciler plan "))
        assert again == f"reconciler plan {listen} --db {daemon_db}", err

        code, out, _ = await cli("plan", "--policies", str(run.policies), "--via", url, "--db", fresh, "--json")
        stations = json.loads(out)["stations"]
        assert all("blocked" in s["reason"] and f"--db {daemon_db}" in s["reason"] for s in stations), stations
        assert all(s["status"] == "OutOfSync" and "prune: foreign" in s["blocked"] for s in stations), stations

        # with the daemon's state file: the daemon's plan (in sync), no hint
        code, out, err = await cli("plan", "--policies", str(run.policies), "--via", url, "--db", daemon_db)
        assert code == 0 and "BLOCKED" not in out and "reconciler daemon" not in out + err, out + err

        # the hint followed once the daemon is stopped: its chargers reconnect to the CLI's Central System
        # on the daemon's address, and the plan with its state is the daemon's (in sync, nothing blocked)
        await run.daemon.stop()
        args = again.split()[2:]
        code, out, err = await cli("plan", "--policies", str(run.policies), *args, "--wait", str(WAIT),
                                   env={"RECONCILER_STATION_PASSWORD": PASSWORD})  # fmt: skip
        assert code == 0 and "BLOCKED" not in out and "offline" not in out.lower(), out + err
        assert all(s in out for s in IDS), out


async def test_plan_via_a_plain_proxy_with_a_new_state_gives_the_general_hint(tmp_path: Path) -> None:
    ids = ["PY-SIM-0001", "PY-SIM-0002"]
    files = {k: v.replace("CP-000", "PY-SIM-000") for k, v in fleet_files().items()}
    files["stations.yaml"] = "---\n".join(d for d in files["stations.yaml"].split("---\n") if "PY-SIM-0003" not in d)
    files.pop("b.yaml")
    policies = write(tmp_path / "policies", files)
    async with CentralSystem(port=0, allow_unknown=True) as cs, Fleet(cs.url, 2, backoff_initial=0.05) as fleet:
        assert await cs.wait_for_stations(fleet.stations, WAIT) == set(ids)
        for station in ids:  # someone else's caps
            assert (await cs.call(station, "SetChargingProfile", cp_max(10))).status == "Accepted"
        async with HttpServer(inject_app(cs, Credentials(*AUTH))) as proxy:
            fresh = str(tmp_path / "cli" / "state.db")
            code, out, err = await cli("plan", "--policies", str(policies), "--via", proxy.url, "--db", fresh)
    text = out + err
    assert code == 0 and out.count("BLOCKED") == len(ids), text
    assert "holds no profile yet" in text and "reconciler watch" in text and "reconciler daemon" not in text, text
