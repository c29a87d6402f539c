"""Issue 9 at the command line: `plan`/`apply` as processes against simulated chargers on loopback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from reconciler import clock
from reconciler.policy import load_policies
from reconciler.simulator.fleet import Fleet
from reconciler.simulator.quirks import Quirks, UncoveredReport
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


async def test_a_lab_without_station_passwords_says_so_loudly(tmp_path: Path):
    write(tmp_path / "p", site_files())
    port = free_port()
    fleet = Fleet(f"ws://127.0.0.1:{port}", 3, prefix="CP-", backoff_initial=0.05, backoff_max=0.2)  # no password
    async with fleet:
        base = ["--policies", str(tmp_path / "p"), "--db", str(tmp_path / "state.db"), "--wait", "15"]

        async def cli(*args: str) -> tuple[int, str, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "reconciler.cli.main", *args, *base,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 90)
            assert process.returncode is not None
            return process.returncode, out.decode(), err.decode()

        code, _, err = await cli("plan", "--listen", f"127.0.0.1:{port}")
        assert code != 0 and "stations must authenticate" in err
        code, _, err = await cli("plan", "--listen", f"0.0.0.0:{port}", "--no-station-auth")
        assert code != 0 and "not a loopback address" in err  # refused before listening anywhere
        code, out, err = await cli("plan", "--listen", f"127.0.0.1:{port}", "--no-station-auth", "--detailed-exitcode")
        assert code == 2, out + err
        assert "WARNING: station authentication is OFF" in err and "3 of 3 station(s) connected" in err


async def test_doctor_prints_a_charger_model_to_commit(tmp_path: Path):
    write(tmp_path / "p", site_files())  # CP-0001: two connectors, 32 A
    port = free_port()
    fleet = Fleet(f"ws://127.0.0.1:{port}", 1, prefix="CP-", password=PASSWORD, backoff_initial=0.05, backoff_max=0.2,
                  quirks=Quirks(tx_default_when_idle=False, uncovered=UncoveredReport.MINUS_ONE))  # fmt: skip
    async with fleet:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reconciler.cli.main", "doctor", "CP-0001", "--active", "--policies",
            str(tmp_path / "p"), "--listen", f"127.0.0.1:{port}", "--station-password", PASSWORD, "--wait", "15",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 90)
        assert process.returncode == 0, err.decode()
        text = out.decode()
        assert "kind: ChargerModel" in text and "# 2 connector(s), 32 A" in text
        assert "simulateTransactionActive: false" in text and "# connector 1 did not report the probe" in text
        assert fleet["CP-0001"].installed.by_id(2_000_000_001) is None
        document = "\n".join(line.split("  #")[0] for line in text.splitlines() if not line.startswith("#"))
        (tmp_path / "p" / "model.yaml").write_text(document.replace("reconciler-pysim", "my-charger"))
        loaded = load_policies([tmp_path / "p"], now=clock.now())
        assert loaded.ok, [d.format_text() for d in loaded.diagnostics]  # what it prints validates
