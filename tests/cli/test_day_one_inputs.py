"""A new user's mistakes on the command line: each is a clear error naming the flag, exit 2 (or 1 for
a request line), never a traceback, a hang or a silent wrong port. Real processes, the repository's
own policies/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.core.wire import MAX_DURATION
from reconciler.daemon.settings import host_port

ROOT = Path(__file__).resolve().parents[2]
POLICIES = str(ROOT / "policies")


def reconciler(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"RECONCILER_STATION_PASSWORD": "day-one-secret", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "reconciler.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT, env=env, input=stdin)


def no_traceback(run: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in run.stderr + run.stdout, run.stderr


@pytest.mark.parametrize(
    ("args", "flag", "port", "code"),
    [  # the exit code each command gives any bad --listen (plan and doctor: 1, as for 'abc')
        (["plan", "--policies", POLICIES, "--listen", "127.0.0.1:99999"], "--listen", 99999, 1),
        (["watch", "--policies", POLICIES, "--listen", "127.0.0.1:99999"], "--listen", 99999, 2),
        (["watch", "--policies", POLICIES, "--http", "127.0.0.1:70000"], "--http", 70000, 2),
        (["demo", "--policies", POLICIES, "--http", "127.0.0.1:99999"], "--http", 99999, 2),
        (["doctor", "CP-1", "--policies", POLICIES, "--listen", "127.0.0.1:70000"], "--listen", 70000, 1),
    ],
)
def test_a_port_above_65535_is_refused_before_anything_starts(args, flag, port, code):
    # before: an OverflowError traceback from bind(), or (watch --listen) a Central System on port % 65536
    run = reconciler(*args)
    no_traceback(run)
    assert run.returncode == code, run.stderr
    assert flag in run.stderr and f"port {port} is not a TCP port (0-65535" in run.stderr
    assert "listening" not in run.stderr


def test_host_port_reads_the_address_or_says_what_is_wrong():
    assert host_port("127.0.0.1:0", 9000) == ("127.0.0.1", 0)
    assert host_port("[::1]:65535", 9000) == ("::1", 65535)
    assert host_port("127.0.0.1", 9000) == ("127.0.0.1", 9000)
    with pytest.raises(ValueError, match="port 65536 is not a TCP port"):
        host_port("127.0.0.1:65536", 9000)
    with pytest.raises(ValueError, match=re.escape("is not HOST:PORT, e.g. 127.0.0.1:8000")):
        host_port("127.0.0.1:http", 8000)


@pytest.mark.parametrize("url", ["127.0.0.1:9000", "http://127.0.0.1:19000", "ws://"])
def test_simulate_refuses_a_url_that_is_not_a_websocket_url(url):
    # before: "simulating 1 station(s) ... -> URL", then nothing (the station task died of InvalidURI)
    run = reconciler("simulate", "--stations", "1", "--url", url)
    no_traceback(run)
    assert run.returncode == 2, run.stdout
    assert "--url" in run.stderr and "is not a websocket URL: use ws://HOST:PORT or wss://HOST:PORT" in run.stderr
    assert "simulating" not in run.stdout


def test_composite_and_explain_durations_are_bounded():
    # before: --duration 99999999999 ran for minutes and took gigabytes
    too_long = str(MAX_DURATION + 1)
    for args in (
        ["composite", "--policies", POLICIES, "--station", "PY-SIM-0001", "--duration", too_long],
        ["explain", "--policies", POLICIES, "--station", "PY-SIM-0006", "--duration", too_long],
        ["explain", "--policies", POLICIES, "--station", "PY-SIM-0006", "--duration", "-5"],
    ):
        run = reconciler(*args)
        no_traceback(run)
        assert run.returncode == 2 and "--duration" in run.stderr, (args, run.stderr)
    case = json.loads((ROOT / "tests/conformance/cases.jsonl").read_text().splitlines()[0])
    request = {k: case[k] for k in ("now", "connectorId", "chargingRateUnit", "profiles")}
    lines = [json.dumps({**request, "duration": MAX_DURATION + 1}), json.dumps({**request, "duration": 3600})]
    run = reconciler("composite", "-", stdin="\n".join(lines) + "\n")
    no_traceback(run)
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 1 and len(answers) == 2
    assert answers[0] == {
        "status": "Rejected",
        "error": f"duration {MAX_DURATION + 1} is longer than {MAX_DURATION} s (31 days); ask for a shorter window",
    }
    assert answers[1]["status"] == "Accepted" and answers[1]["chargingSchedule"]["duration"] == 3600


def test_explain_of_a_connector_that_does_not_exist_is_an_error():
    # before: the message on stdout and exit 0
    run = reconciler("explain", "--policies", POLICIES, "--station", "PY-SIM-0006", "--connector", "9")
    no_traceback(run)
    assert run.returncode == 2
    assert "--connector" in run.stderr and "connector 9 does not exist: PY-SIM-0006 has 0..2" in run.stderr


def test_show_of_a_file_that_is_not_a_plan_does_not_advise_overwriting_it():
    # before: "save a plan with: reconciler plan --out policies/sites.yaml", over the user's policy file
    policy = ROOT / "policies" / "sites.yaml"
    run = reconciler("show", str(policy))
    no_traceback(run)
    assert run.returncode != 0
    assert f"{policy}: not JSON" in run.stderr and "not a saved plan" in run.stderr
    assert f"--out {policy}" not in run.stderr
