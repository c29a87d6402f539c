"""`plan --listen --path-prefix`: stations connect to PREFIX{stationId} and nowhere else (issue 8 item 12)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.simulator.fleet import Fleet
from tests.cli.test_secrets import SECRET, WAIT, free_port, policies, secret_file, spawn


async def test_plan_accepts_stations_on_the_configured_path_prefix_only(tmp_path: Path) -> None:
    port = free_port()
    args = ["plan", "--policies", str(policies(tmp_path)), "--db", str(tmp_path / "state.db"),
            "--listen", f"127.0.0.1:{port}", "--path-prefix", "/ocpp/",
            "--station-password-file", str(secret_file(tmp_path))]  # fmt: skip
    wrong = Fleet(f"ws://127.0.0.1:{port}/elsewhere", 1, prefix="SEC-", password=SECRET, backoff_initial=0.05)
    right = Fleet(f"ws://127.0.0.1:{port}/ocpp", 1, prefix="SEC-", password=SECRET, backoff_initial=0.05)
    async with wrong:
        process = await spawn(*args, "--wait", "3")
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert "0 of 1 station(s) connected" in err.decode()
    async with right:
        process = await spawn(*args, "--wait", str(WAIT))
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert "1 of 1 station(s) connected" in err.decode(), err.decode()
    assert "SEC-0001" in out.decode()
