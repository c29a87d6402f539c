"""`reconciler composite` as a user runs it: a real subprocess, JSON lines in, JSON lines out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REQUEST = {
    "now": "2024-01-17T18:00:00Z",
    "connectorId": 1,
    "duration": 600,
    "chargingRateUnit": "A",
    "profiles": [
        {
            "connectorId": 0,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargePointMaxProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "startSchedule": "2024-01-17T18:00:00Z",
                    "chargingRateUnit": "A",
                    "duration": 300,
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
                },
            },
        }
    ],
    "transaction": None,
    "context": {"numberOfConnectors": 1},
}


def reconciler(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler.cli.main", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_json_lines_in_one_reply_per_line_out():
    run = reconciler("composite", "-", stdin=json.dumps(REQUEST) + "\n" + json.dumps({**REQUEST, "connectorId": 5}))
    replies = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 0, run.stderr
    assert replies[0]["status"] == "Accepted"
    assert replies[0]["scheduleStart"] == "2024-01-17T18:00:00Z"
    assert replies[0]["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 16.0},
        {"startPeriod": 300, "limit": 48.0},
    ]
    assert replies[1] == {"status": "Rejected", "reason": "connector 5 does not exist (the station has 0..1)"}


def test_bad_requests_get_an_error_line_and_the_rest_go_on():
    broken_profile = json.loads(json.dumps(REQUEST))
    broken_profile["profiles"][0]["csChargingProfiles"]["chargingProfileKind"] = "Sometimes"
    lines = ["{not json", json.dumps({"now": "2024-01-17T18:00:00Z"}), json.dumps(broken_profile), json.dumps(REQUEST)]
    run = reconciler("composite", "-", stdin="\n".join(lines))
    replies = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert [r["status"] for r in replies] == ["Rejected", "Rejected", "Rejected", "Accepted"]
    assert "line 1: not valid JSON" in replies[0]["error"]
    assert "missing connectorId, duration" in replies[1]["error"]
    assert "profiles[0].csChargingProfiles.chargingProfileKind: 'Sometimes' is not one of" in replies[2]["error"]


def test_a_pretty_printed_file_and_the_table_format(tmp_path: Path):
    source = tmp_path / "request.json"
    source.write_text(json.dumps(REQUEST, indent=2))
    run = reconciler("composite", str(source), "--format", "table")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("connector 1, 600 s from 2024-01-17 18:00:00Z")
    assert "16.0 A" in lines[2] and "#1 ChargePointMaxProfile stack 0" in lines[2]
    assert "48.0 A" in lines[3] and "no profile (uncovered)" in lines[3]


def test_missing_file_is_a_clear_error(tmp_path: Path):
    run = reconciler("composite", str(tmp_path / "nope.json"))
    assert run.returncode == 2
    assert "no such file" in run.stderr


def test_help_explains_the_request_format():
    run = reconciler("composite", "--help")
    assert run.returncode == 0
    for word in ("connectorId", "csChargingProfiles", "uncoveredTime", "installedDirectly", "--format"):
        assert word in run.stdout
