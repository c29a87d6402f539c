"""Saved plans are hostile input too (issue 8 item 10): every mutated file is a clear error naming
the file and the place, never a traceback, a hang or gigabytes; the horizon is bounded."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli.saved_plan import HORIZON_MAX, PlanFileError, read_saved_plan, station_stale
from reconciler.cli.state_cmd import render_saved
from reconciler.core.profiles import RateUnit
from reconciler.core.timeline import Timeline
from reconciler.engine.observe import Observation

FIXTURE = Path(__file__).parent / "data" / "saved-plan.json"
S1 = "CP-0001"


def base() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def station(d: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = d["stations"][S1]
    return entry


def observed(d: dict[str, Any]) -> dict[str, Any]:
    timeline: dict[str, Any] = station(d)["observed"]["1"]
    return timeline


MUTATIONS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "no stations": lambda d: d.pop("stations"),
    "horizon abc": lambda d: d.update(horizon="abc"),
    "horizon 10**30": lambda d: d.update(horizon=10**30),
    "horizon negative": lambda d: d.update(horizon=-5),
    "horizon above the bound": lambda d: d.update(horizon=HORIZON_MAX + 1),
    "stations a list": lambda d: d.update(stations=[]),
    "stations empty": lambda d: d.update(stations={}),
    "station a string": lambda d: d["stations"].update({S1: "x"}),
    "observed a list": lambda d: station(d).update(observed=[]),
    "observed timeline a list": lambda d: station(d)["observed"].update({"1": []}),
    "steps a string": lambda d: observed(d).update(steps="abc"),
    "step too short": lambda d: observed(d).update(steps=[[1]]),
    "step start a string": lambda d: observed(d).update(steps=[["a", 1]]),
    "step limit a string": lambda d: observed(d).update(steps=[[1, "x"]]),
    "unit kW": lambda d: observed(d).update(unit="kW"),
    "connector not a number": lambda d: station(d)["observed"].update({"x": observed(d)}),
    "start in year 10**20": lambda d: observed(d).update(start=10**30),
    "actions a string": lambda d: station(d).update(actions="x"),
    "actions numbers": lambda d: station(d).update(actions=[1, 2]),
    "desired a number": lambda d: station(d).update(desired=5),
    "status bogus": lambda d: station(d).update(status="Bogus"),
    "policies empty": lambda d: d.update(policies=[]),
    "policies a string": lambda d: d.update(policies="p"),
    "connection a list": lambda d: d.update(connection=[]),
    "connection wait a string": lambda d: d["connection"].update(wait="a"),
    "unknown connection key": lambda d: d["connection"].update(password="secret"),
    "plan a list": lambda d: d.update(plan=[]),
    "plan action a string": lambda d: d["plan"]["stations"][0].update(actions=["x"]),
    "format other": lambda d: d.update(format="terraform/v4"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_mutated_saved_plan_is_a_clear_error(tmp_path: Path, name: str):
    data = base()
    MUTATIONS[name](data)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanFileError) as refused:
        read_saved_plan(path)
    assert str(refused.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "text",
    ["", "[]", "{", '{"format": "reconciler-plan/v1", "horizon": NaN}', "[" * 20_000 + "]" * 20_000,
     '{"format": "reconciler-plan/v1", "stations": ' + "[" * 20_000 + "]" * 20_000 + "}", "\udcff"],
    ids=["empty", "list", "truncated", "nan", "deep list", "deep inside", "not utf-8"],
)  # fmt: skip
def test_unreadable_saved_plans_are_clear_errors(tmp_path: Path, text: str):
    path = tmp_path / "p.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(PlanFileError):
        read_saved_plan(path)


def test_the_unmutated_plan_reads_and_renders():
    saved = read_saved_plan(FIXTURE)
    text = render_saved(saved.data, FIXTURE)
    assert "+ set       profile #1 ChargePointMaxProfile" in text and "Plan: 6 to set" in text


def test_odd_but_schema_valid_observations_make_the_plan_stale_without_crashing():
    data = base()
    entry = station(data)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    now = Observation(S1, at, timelines={1: Timeline(0, 100, RateUnit.A, ((0, 16.0),))})
    odd = copy.deepcopy(entry)
    odd["observed"] = {"99": {"start": 50, "end": 10, "unit": "W", "steps": [[70, 3.0], [60, None]]}}
    assert "connector 99" in (station_stale(odd, entry["desired"], now, None) or "")
    odd["observed"] = {"1": {"start": 50, "end": 10, "unit": "W", "steps": [[70, 3.0], [60, None]]}}
    assert station_stale(odd, entry["desired"], now, None) is not None


@pytest.mark.parametrize("command", ["apply", "show"])
def test_the_cli_refuses_a_mutated_plan_without_a_traceback(tmp_path: Path, command: str):
    data = base()
    data["horizon"] = 10**30
    station(data)["observed"]["1"]["steps"] = [[1]]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    done = subprocess.run([sys.executable, "-m", "reconciler.cli.main", command, str(path)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and f"error: {path}: " in done.stderr and "run plan again" in done.stderr
