"""load_policies: layout, claims across files, site caps, selection, revision, output formats."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from reconciler.cli.main import app
from reconciler.core.profiles import Purpose, RateUnit
from reconciler.policy import Diagnostic, Location, load_policies
from reconciler.policy.templates import derived_id

NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)
STATIONS = """apiVersion: reconciler/v1
kind: Station
metadata: {name: A-1, labels: {site: a, row: "1"}}
spec: {connectors: 2, maxCurrentA: 32, configuration: {MeterValueSampleInterval: 60, SmartChargingEnabled: true}}
---
apiVersion: reconciler/v1
kind: Station
metadata: {name: A-2, labels: {site: a, row: "2"}}
spec: {connectors: 1, maxCurrentA: 16, phases: 1}
"""
SITE = """apiVersion: reconciler/v1
kind: Site
metadata: {name: a}
spec:
  selector: {matchLabels: {site: a}}
  maxPowerW: 20000
  timezone: Europe/Berlin
  stationCap: {chargingProfileId: 100, stackLevel: 2}
"""
POLICY = """apiVersion: reconciler/v1
kind: ChargingPolicy
metadata: {name: tou}
spec:
  selector: {stations: [A-1]}
  prune: foreign
  profiles:
    - template: time_of_use
      connectorId: 1
      with: {offPeakW: 11000, peakW: 4200, peakStartHour: 17, peakEndHour: 21}
"""


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return tmp_path


def test_any_layout_desired_state_and_site_share(tmp_path: Path) -> None:
    root = write(tmp_path, {"a/stations.yaml": STATIONS, "b/c/site.yml": SITE, "tou.yaml": POLICY})
    result = load_policies([root], now=NOW)
    assert result.ok, [d.format_text() for d in result.diagnostics]
    assert len(result.files) == 3
    one = result.desired["A-1"]
    assert one.prune_foreign and not result.desired["A-2"].prune_foreign
    assert one.configuration == {"MeterValueSampleInterval": "60", "SmartChargingEnabled": "true"}
    by_id = {d.profile.charging_profile_id: d for d in one.profiles}
    tou = by_id[derived_id("tou", 0)]
    assert tou.template == "time_of_use" and tou.policy == "tou" and tou.location.line == 8
    cap = by_id[100]
    assert cap.profile.purpose is Purpose.CHARGE_POINT_MAX and cap.connector_id == 0
    assert cap.profile.schedule.periods[0].limit == 10000.0 and cap.profile.stack_level == 2
    assert cap.policy == "a" and cap.template == "stationCap"
    assert len(one.installed()) == 2
    station = result.stations["A-2"]
    assert station.context.default_limit_w == 16 * 230 * 1 and station.context.number_of_connectors == 1
    assert station.context.default_limit_a == 16


def test_select_by_ids_and_labels(tmp_path: Path) -> None:
    result = load_policies([write(tmp_path, {"s.yaml": STATIONS})], now=NOW)
    assert result.select() == ["A-1", "A-2"]
    assert result.select(["A-2", "ZZ"]) == ["A-2"]
    assert result.select(selector={"row": "1"}) == ["A-1"]
    assert result.select(["A-2"], {"row": "1"}) == []


def test_claims_across_files_name_both_places(tmp_path: Path) -> None:
    clash = POLICY.replace("name: tou", "name: tou-2").replace("  prune: foreign\n", "")
    clash = clash.replace(
        "      connectorId: 1\n", f"      connectorId: 2\n      chargingProfileId: {derived_id('tou', 0)}\n"
    )
    root = write(tmp_path, {"s.yaml": STATIONS, "p1.yaml": POLICY, "p2.yaml": clash})
    result = load_policies([root], now=NOW)
    [hit] = [d for d in result.diagnostics if d.code == "duplicate-profile-id"]
    assert hit.location is not None and hit.location.file.endswith("p2.yaml") and hit.location.line == 7
    assert "p1.yaml:8:7" in hit.message and "A-1" in hit.message


def test_findings_for_many_stations_are_grouped(tmp_path: Path) -> None:
    stations = "---\n".join(STATIONS.split("---\n")[0].replace("A-1", f"S-{i}") for i in range(6))
    policy = POLICY.replace("{stations: [A-1]}", "{matchLabels: {site: a}}").replace("peakW: 4200", "peakW: 4200.05")
    result = load_policies([write(tmp_path, {"s.yaml": stations, "p.yaml": policy})], now=NOW)
    [hit] = [d for d in result.diagnostics if d.code == "limit-not-multiple"]
    assert "stations S-0, S-1, S-2 and 3 more" in hit.message


def test_foreign_yaml_is_skipped_and_missing_paths_reported(tmp_path: Path) -> None:
    root = write(tmp_path, {"s.yaml": STATIONS, "ci.yml": "name: ci\non: [push]\njobs: {}\n", ".hidden/x.yaml": "- 1"})
    result = load_policies([root, tmp_path / "nope"], now=NOW)
    assert [Path(f).name for f in result.skipped] == ["ci.yml"]
    assert [d.code for d in result.diagnostics] == ["path-not-found"]


def test_strict_turns_warnings_into_errors(tmp_path: Path) -> None:
    root = write(tmp_path, {"p.yaml": POLICY})
    assert load_policies([root], now=NOW).ok
    strict = load_policies([root], now=NOW, strict=True)
    assert not strict.ok and strict.diagnostics[0].code == "selector-matches-nothing"


def test_revision_reads_git_and_fails_soft(tmp_path: Path) -> None:
    root = write(tmp_path, {"s.yaml": STATIONS})
    assert load_policies([root], now=NOW).revision is None
    git = ["git", "-C", str(root), "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    clean = load_policies([root], now=NOW).revision
    assert clean is not None and not clean.endswith("+dirty")
    (root / "s.yaml").write_text(STATIONS + "\n")
    assert load_policies([root], now=NOW).revision == clean + "+dirty"


def test_diagnostic_formats() -> None:
    d = Diagnostic("error", Location("p.yaml", 3, 7), "stackLevel 12 exceeds 8", "use 0..8", "stack-level-too-high")
    assert str(d.location) == "p.yaml:3:7"
    assert d.format_text() == "p.yaml:3:7: error: stackLevel 12 exceeds 8. use 0..8."
    assert (
        d.format_github()
        == "::error file=p.yaml,line=3,col=7,title=stack-level-too-high::stackLevel 12 exceeds 8. use 0..8."
    )


def test_validate_json_and_github_output(tmp_path: Path) -> None:
    bad = POLICY.replace("peakStartHour: 17", "peakStartHour: 26")
    root = write(tmp_path, {"s.yaml": STATIONS, "p.yaml": bad})
    runner = CliRunner()
    as_json = runner.invoke(app, ["validate", str(root), "--format", "json"])
    assert as_json.exit_code == 1
    payload = json.loads(as_json.output)
    assert payload["ok"] is False and payload["diagnostics"][0]["code"] == "schema-range"
    assert payload["diagnostics"][0]["line"] == 10
    github = runner.invoke(app, ["validate", str(root), "--format", "github"])
    assert github.exit_code == 1 and github.output.startswith("::error file=")
    assert ",line=10," in github.output
    unknown = runner.invoke(app, ["validate", str(root), "--format", "xml"])
    assert unknown.exit_code == 2


def test_amps_site_and_unit_checks(tmp_path: Path) -> None:
    site = SITE.replace("maxPowerW: 20000", "maxCurrentA: 40")
    result = load_policies([write(tmp_path, {"s.yaml": STATIONS, "site.yaml": site})], now=NOW)
    assert result.ok
    cap = next(d for d in result.desired["A-2"].profiles if d.profile.charging_profile_id == 100)
    assert (
        cap.profile.schedule.charging_rate_unit is RateUnit.A and cap.profile.schedule.periods[0].limit == 16.0
    )  # 40 A / 2, capped at its hardware


def test_a_bad_scalar_is_reported_once_not_again_as_a_missing_value(tmp_path: Path) -> None:
    # `limit: !!float abc` was reported twice: what is wrong ([yaml-bad-scalar]) and then, about the
    # None left in its place, "limit is None; expected a number" ([schema-type]), which is not true.
    profile = (
        "{connectorId: 1, chargingProfileId: 1, stackLevel: 0, chargingProfilePurpose: TxDefaultProfile, "
        "chargingProfileKind: Absolute, chargingSchedule: {startSchedule: '2025-01-01T00:00:00Z', "
        "chargingRateUnit: A, chargingSchedulePeriod: [{startPeriod: 0, limit: !!float abc}]}}"
    )
    folder = write(tmp_path, {
        "s.yaml": "apiVersion: reconciler/v1\nkind: Station\nmetadata: {name: CP-1}\n"
                  "spec: {connectors: 1, maxCurrentA: 32}\n",
        "p.yaml": "apiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {name: p}\nspec:\n"
                  f"  selector: {{stations: [CP-1]}}\n  profiles:\n    - {profile}\n",
    })  # fmt: skip
    result = load_policies([folder], now=NOW)
    codes = [d.code for d in result.diagnostics]
    assert codes == ["yaml-bad-scalar"], [d.format_text() for d in result.diagnostics]
