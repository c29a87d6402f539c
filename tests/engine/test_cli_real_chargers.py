"""Issue 9 at the command line: `plan`/`apply` as processes against simulated chargers on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.simulator.fleet import Fleet
from tests.engine.fleetkit import PASSWORD, write
from tests.engine.test_cli_apply import Cli, free_port
from tests.engine.test_station_total import site_files

pytestmark = pytest.mark.slow


async def test_plan_names_a_lost_station_cap_and_apply_reinstalls_it(tmp_path: Path):
    write(tmp_path / "p", site_files())
    port = free_port()
    fleet = Fleet(f"ws://127.0.0.1:{port}", 3, prefix="CP-", password=PASSWORD, backoff_initial=0.05, backoff_max=0.2)
    async with fleet:
        cli = Cli(tmp_path, port)
        code, out, err = await cli.run("apply", "--auto-approve")
        assert code == 0, out + err
        code, out, err = await cli.run("plan", "--detailed-exitcode")
        assert code == 0, out + err
        station = fleet["CP-0002"]
        station.installed, cleared = station.installed.clear(profile_id=100)  # someone's raw "clear #100"
        assert cleared.status == "Accepted"

        code, out, err = await cli.run("plan", "--detailed-exitcode")
        assert code == 2, out + err
        assert "CP-0002  OutOfSync  (drift: connector 0 (the station total) missing" in out
        assert "+ set       profile #100 ChargePointMaxProfile" in out
        code, out, err = await cli.run("apply", "--auto-approve")
        assert code == 0, out + err
        assert station.installed.by_id(100) is not None
        code, out, err = await cli.run("plan", "--detailed-exitcode")
        assert code == 0, out + err
