"""`reconciler simulate`: help and option errors (running it is covered by the fleet tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.main import app
from reconciler.cli.simulate_cmd import parse_quirks
from reconciler.simulator.quirks import UncoveredReport


def test_help_lists_options_and_quirks() -> None:
    result = CliRunner().invoke(app, ["simulate", "--help"])
    assert result.exit_code == 0
    options = ["--stations", "--url", "--connectors", "--max-current", "--prefix", "--password", "--quirks"]
    for text in [*options, "--state-dir", "lose_profiles_on_reboot", "composite_unsupported"]:
        assert text in result.output


def test_bad_quirk_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["simulate", "--quirks", "colour=blue"])
    assert result.exit_code == 2
    assert "unknown quirk" in result.output


def test_quirks_file_then_pairs(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"uncovered": "rejected", "max_stack_level": 3}))
    quirks = parse_quirks([str(path), "whole_amps=true"])
    assert (quirks.uncovered, quirks.max_stack_level, quirks.whole_amps) == (UncoveredReport.REJECTED, 3, True)
    with pytest.raises(ValueError, match="no such quirks file"):
        parse_quirks([str(tmp_path / "missing.json")])


async def test_simulate_command_connects_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import asyncio
    import signal
    import sys

    from reconciler.transport.central_system import CentralSystem

    async with CentralSystem(port=0, allow_unknown=True) as cs:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reconciler.cli.main", "simulate", "--stations", "3", "--url", cs.url,
            "--prefix", "CLI-", "--quirks", "whole_amps=true", "--state-dir", str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            ids = {"CLI-0001", "CLI-0002", "CLI-0003"}
            assert await cs.wait_for_stations(ids, 20) == ids
            reply = await cs.call("CLI-0002", "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
                "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Absolute", "chargingSchedule": {"startSchedule": "2024-01-01T00:00:00Z",
                "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8000}]}}})  # fmt: skip
            assert reply.status == "Accepted"
            reply = await cs.call("CLI-0002", "GetCompositeSchedule", {"connectorId": 1, "duration": 60,
                                                                       "chargingRateUnit": "A"})  # fmt: skip
            assert reply.payload is not None
            assert reply.payload["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 12.0  # whole amps
            assert (tmp_path / "CLI-0002.json").is_file()
        finally:
            process.send_signal(signal.SIGINT)
            out, _ = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0
        assert b"stopped" in out


async def test_simulate_sessions_charge_evs_under_the_enforced_limit() -> None:
    """`--sessions`: an EV plugs into each connector within 20 s and draws under what the station enforces."""
    import asyncio
    import signal
    import sys

    from reconciler.transport.central_system import CentralSystem

    async with CentralSystem(port=0, allow_unknown=True) as cs:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reconciler.cli.main", "simulate", "--url", cs.url, "--prefix", "EV-",
            "--sessions", "--seed", "4", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert await cs.wait_for_stations({"EV-0001"}, 20) == {"EV-0001"}
            reply = await cs.call("EV-0001", "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
                "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Absolute", "chargingSchedule": {"startSchedule": "2024-01-01T00:00:00Z",
                "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 8000}]}}})  # fmt: skip
            assert reply.status == "Accepted"

            def drawn() -> list[float]:
                info = cs.station("EV-0001")
                if info is None:
                    return []
                values = info.meter_values
                return [v.get("Power.Active.Import", 0.0) for c, v in values.items() if c in info.transactions]

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 40
            while not (any(w > 0 for w in drawn()) and sum(drawn()) <= 8000 * 1.02) and loop.time() < deadline:
                await asyncio.sleep(0.2)
            assert any(w > 0 for w in drawn()) and sum(drawn()) <= 8000 * 1.02, drawn()
        finally:
            process.send_signal(signal.SIGINT)
            await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0
