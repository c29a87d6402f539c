"""OCPP 1.6 integers are 32-bit: the schema and the semantic checks both say so (issue 8 item 8).

A chargingProfileId of 2^64 once passed `validate`, was installed by `apply`, then crashed the
SQLite ledger (and every later apply). The schema now bounds every integer field; the semantic
check bounds the profiles the policy room builds itself (templates, site caps) as well.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.main import app
from reconciler.core.profiles import ChargingProfile, ChargingSchedule, Kind, Purpose, RateUnit, SchedulePeriod
from reconciler.policy import load_policies
from reconciler.policy.checks import Findings, check_profile, now_seconds
from reconciler.policy.diagnostics import Collector
from reconciler.policy.documents import Origin
from reconciler.policy.source import parse_text

NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)
BROKEN = Path(__file__).parent / "broken"
STATION = "apiVersion: reconciler/v1\nkind: Station\nmetadata: {name: CP-1}\nspec: {connectors: 2, maxCurrentA: 32}\n"
CAP = ChargingProfile(
    1, 0, Purpose.CHARGE_POINT_MAX, Kind.ABSOLUTE,
    ChargingSchedule(RateUnit.A, (SchedulePeriod(0, 16.0),), start_schedule=datetime(2024, 1, 1, tzinfo=UTC)),
)  # fmt: skip


def semantic_findings(profile: ChargingProfile, folder: Path) -> list[str]:
    (folder / "s.yaml").write_text(STATION)
    station = load_policies([folder], now=NOW).stations["CP-1"]
    doc = parse_text("profile: {}\n", "inline.yaml", Collector())[0]
    findings, out = Findings(), Collector()
    check_profile(findings, station, 0, profile, Origin(doc, ("profile",)), now_seconds(NOW))
    findings.flush(out)
    return [f"{d.code}: {d.format_text()}" for d in out.items]


@pytest.mark.parametrize(
    "profile",
    [
        replace(CAP, charging_profile_id=2**64),
        replace(CAP, stack_level=2**31),
        replace(CAP, transaction_id=-(2**31) - 1),
        replace(CAP, schedule=replace(CAP.schedule, duration=2**40, compiled=())),
        replace(CAP, schedule=ChargingSchedule(RateUnit.A, (SchedulePeriod(0, 16.0), SchedulePeriod(2**31, 8.0)))),
    ],
    ids=["id-2^64", "stack-2^31", "transaction-below-int32", "duration-2^40", "start-period-2^31"],
)
def test_the_semantic_check_bounds_every_integer_to_int32(profile: ChargingProfile, tmp_path: Path) -> None:
    found = semantic_findings(profile, tmp_path)
    assert any(f.startswith("integer-out-of-range:") and "32-bit" in f and "2147483647" in f for f in found), found


def test_an_int32_profile_passes_the_bound(tmp_path: Path) -> None:
    found = semantic_findings(replace(CAP, charging_profile_id=2**31 - 1, stack_level=0), tmp_path)
    assert not any(f.startswith("integer-out-of-range") for f in found), found


def test_validate_says_ids_are_32_bit() -> None:
    result = CliRunner().invoke(app, ["validate", str(BROKEN / "schema-range-profile-id-2-64.yaml")])
    assert result.exit_code == 1
    assert "chargingProfileId is an integer of about 20 digits, out of range" in result.output, result.output
    assert "OCPP 1.6 integers are 32-bit: use a value <= 2147483647" in result.output


def test_plan_refuses_a_profile_id_beyond_int32_before_contacting_a_charger(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "p.yaml").write_bytes((BROKEN / "schema-range-profile-id-2-64.yaml").read_bytes())
    result = CliRunner().invoke(
        app,
        ["plan", "--policies", str(folder), "--listen", "127.0.0.1:0", "--wait", "1", "--db", str(tmp_path / "s.db")],
        env={"RECONCILER_STATION_PASSWORD": "x"},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "nothing was planned or applied" in result.output
    assert not (tmp_path / "s.db").exists()
