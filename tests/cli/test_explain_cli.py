"""`reconciler explain` on the repository's own policies/ at a fixed instant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def explain(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "reconciler.cli.main", "explain", "--policies", str(ROOT / "policies"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_cap_that_governs_is_named_with_its_source_and_reason():
    # Monday 12:00Z: office-weekly gives 16 A, the 11 kW peak-shaving cap (15.9 A at 3 x 230 V) is lower.
    run = explain("--station", "PY-SIM-0006", "--connector", "1", "--at", "2026-11-23T12:00:00Z", "--duration", "3600")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "15.9 A" in lines[1] and "#30 ChargePointMaxProfile stack 1" in lines[1]
    assert "office-peak-shaving.yaml:" in lines[2]
    assert "over #100 stack 0" in lines[3] and "caps #20's 16.0" in lines[3]


def test_unknown_station_and_bad_instant_are_clear_errors():
    run = explain("--station", "NOPE")
    assert run.returncode == 2 and "NOPE is not a declared station" in run.stderr
    run = explain("--station", "PY-SIM-0001", "--at", "tomorrow")
    assert run.returncode == 2 and "not an ISO 8601 date-time" in run.stderr
