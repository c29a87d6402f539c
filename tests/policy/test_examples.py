"""Every example and the demo fleet validate; each seed example's composite at a fixed instant."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.main import app
from reconciler.core.composite import compute_composite
from reconciler.core.context import Transaction
from reconciler.core.profiles import RateUnit
from reconciler.policy import DesiredState, load_policies
from reconciler.policy.diagnostics import Collector
from reconciler.policy.schema import validator
from reconciler.policy.source import read_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POLICIES = ROOT / "policies"
WINTER = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)  # Berlin is UTC+1
SUMMER = datetime(2025, 7, 15, 12, 0, tzinfo=UTC)  # Berlin is UTC+2


def state(name: str, at: datetime = WINTER) -> DesiredState:
    policies = load_policies([EXAMPLES, POLICIES], now=at)
    assert policies.ok, [d.format_text() for d in policies.diagnostics]
    return policies.desired[name]


def timeline(name: str, connector: int, at: datetime, duration: int, unit: RateUnit, **kw: object) -> list[tuple]:
    desired = state(name, at)
    composite = compute_composite(
        desired.installed().pairs(),
        connector_id=connector,
        now=at,
        duration=duration,
        unit=unit,
        context=desired.station.context,
        **kw,  # type: ignore[arg-type]
    )
    assert composite.accepted
    return [(p.start_period, p.limit) for p in composite.periods]


def test_validate_examples_and_policies_exits_0() -> None:
    result = CliRunner().invoke(app, ["validate", str(POLICIES), str(EXAMPLES), "--strict"])
    assert result.exit_code == 0, result.output
    assert "0 errors, 0 warnings" in result.output


def test_policies_fleet_matches_the_demo_stations() -> None:
    policies = load_policies([POLICIES], now=WINTER)
    assert policies.ok
    names = sorted(policies.stations)
    assert names == [f"PY-SIM-{i:04d}" for i in range(1, 7)]
    for name in names:
        desired = policies.desired[name]
        station = desired.station
        assert (station.connectors, station.max_current_a, station.phases, station.voltage) == (2, 32, 3, 230)
        for item in desired.profiles:
            assert item.profile.stack_level <= 8
            assert len(item.profile.schedule.periods) <= 24
            assert item.profile.purpose.value != "TxProfile"
            if item.profile.purpose.value == "ChargePointMaxProfile":
                assert item.connector_id == 0
        # a default simulated charger accepts every desired profile
        installed = desired.installed()
        replayed = type(installed)()
        for connector, profile in installed.pairs():
            replayed, verdict = replayed.set_profile(connector, profile, context=station.context, now=WINTER)
            assert verdict.accepted, verdict.reason
    assert len({policies.desired[n].station.labels["site"] for n in names}) == 2


@pytest.mark.parametrize("path", sorted(EXAMPLES.rglob("*.yaml")) + sorted(POLICIES.rglob("*.yaml")), ids=str)
def test_schema_accepts_every_policy_document(path: Path) -> None:
    docs = read_file(path, path.name, Collector())
    ours = [d for d in docs if isinstance(d.data, dict) and "kind" in d.data]
    for doc in ours:
        errors = [e.message for e in validator().iter_errors(doc.data)]
        assert not errors, errors


def test_grid_limit_caps_the_whole_charger_at_32_amps() -> None:
    assert timeline("EX-GRID-1", 0, WINTER, 3600, RateUnit.A) == [(0, 32.0)]


def test_time_of_use_default_6_amps_for_8_hours_then_32() -> None:
    session = Transaction(1, 7, WINTER - timedelta(hours=2))
    periods = timeline("EX-TOUDEF-1", 1, WINTER, 86_400, RateUnit.A, transactions={1: session})
    assert periods == [(0, 6.0), (6 * 3600, 32.0)]


def test_peak_shaving_7_4_kw() -> None:
    assert timeline("EX-PEAK-1", 0, WINTER, 3600, RateUnit.W) == [(0, 7400.0)]


@pytest.mark.parametrize("at, offset", [(WINTER, 1), (SUMMER, 2)])
def test_time_of_use_7_kw_from_18_to_22_local_else_22_kw(at: datetime, offset: int) -> None:
    midnight_utc = at.replace(hour=0) - timedelta(hours=offset)  # local midnight of that day, in UTC
    start = midnight_utc + timedelta(days=1)
    periods = timeline("EX-TOU-1", 1, start, 86_400, RateUnit.W)
    assert periods == [(0, 22000.0), (18 * 3600, 7000.0), (22 * 3600, 22000.0)]
    # and at one fixed instant: 19:30 local is peak, 22:00 local is off-peak again
    evening = start + timedelta(hours=19, minutes=30)
    assert timeline("EX-TOU-1", 1, evening, 60, RateUnit.W) == [(0, 7000.0)]
    assert timeline("EX-TOU-1", 1, start + timedelta(hours=22), 60, RateUnit.W) == [(0, 22000.0)]


def test_energy_cap_ends_at_2h43m38s() -> None:
    session = Transaction(1, 9, WINTER)
    periods = timeline("EX-ENERGY-1", 1, WINTER, 4 * 3600, RateUnit.W, transactions={1: session})
    assert periods == [(0, 11000.0), (2 * 3600 + 43 * 60 + 38, 0.0)]


def test_stacked_evening_override_wins_then_base_returns() -> None:
    day = datetime(2025, 1, 15, 16, 0, tzinfo=UTC)
    periods = timeline("EX-STACK-1", 1, day, 5 * 3600, RateUnit.A)
    assert periods == [(0, 16.0), (3600, 10.0), (4 * 3600, 16.0)]


def test_profile_expires_after_one_hour() -> None:
    session = Transaction(1, 3, WINTER)
    periods = timeline("EX-EXPIRE-1", 1, WINTER, 2 * 3600, RateUnit.A, transactions={1: session})
    assert periods[0] == (0, 10.0)
    assert periods[1][0] == 3600 and periods[1][1] == 32.0  # the station's default limit after expiry


def test_composite_cli_from_policies_json() -> None:
    args = ["composite", "--policies", str(EXAMPLES), "--station", "EX-TOU-1", "--connector", "1"]
    args += ["--at", "2025-01-15T23:00:00Z", "--duration", "86400", "--unit", "W", "--format", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    periods = payload["composite"]["chargingSchedule"]["chargingSchedulePeriod"]
    assert [(p["startPeriod"], p["limit"]) for p in periods] == [(0, 22000.0), (64800, 7000.0), (79200, 22000.0)]
    assert payload["profiles"][0]["template"] == "time_of_use"
    assert payload["profiles"][0]["location"].endswith("time-of-use.yaml:23:7")


def test_composite_cli_from_policies_table_and_errors() -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["composite", "--policies", str(EXAMPLES), "--station", "EX-PEAK-1", "--format", "table"])
    assert ok.exit_code == 0 and "peak_shaving" in ok.output and "ChargePointMaxProfile" in ok.output
    missing = runner.invoke(app, ["composite", "--policies", str(EXAMPLES), "--station", "NOPE"])
    assert missing.exit_code == 1
    broken = runner.invoke(
        app, ["composite", "--policies", str(ROOT / "tests/policy/broken/negative-limit.yaml"), "--station", "BR-1"]
    )
    assert broken.exit_code == 1
