"""Small but real (issue 12 item 9): each finding as a test that failed before its fix."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from reconciler.policy.diagnostics import Diagnostic, Location
from reconciler.transport.gateway import Reply
from tests.cli.clikit import policy_files
from tests.engine.fleetkit import write

CLI = [sys.executable, "-m", "reconciler.cli.main"]


def run(*args: str, cwd: Path | None = None, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env,
                          **kwargs)  # type: ignore[call-overload]  # fmt: skip


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(repo), *args],
                          capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    return done.stdout


def test_composite_station_without_policies_says_what_it_needs_instead_of_waiting_on_a_terminal():
    controller, terminal = pty.openpty()
    try:
        done = run("composite", "--station", "CP-0001", stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode != 0
    assert "--station needs --policies" in done.stderr


def test_composite_on_a_terminal_says_what_it_reads():
    controller, terminal = pty.openpty()
    os.write(controller, b"\x04")  # Ctrl-D: end of input, as a person would type it
    try:
        done = run("composite", stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert "reading composite requests (JSON, one per line) from the terminal; end with Ctrl-D" in done.stderr


def test_the_clock_time_hint_does_not_talk_about_quotes(tmp_path: Path):
    (tmp_path / "tou.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {name: x}\nspec:\n  selector: {stations: [A]}\n"
        "  profiles:\n    - template: time_of_use\n      connectorId: 0\n      chargingProfileId: 3\n"
        "      stackLevel: 1\n      with: {offPeakW: 22000, peakW: 7000, peakStartHour: 18:00, peakEndHour: 22}\n"
    )  # fmt: skip
    done = run("validate", str(tmp_path / "tou.yaml"))
    assert done.returncode == 1
    assert "quotes" not in done.stdout and "write the hour as a whole number, e.g. 18" in done.stdout


def test_github_annotation_properties_are_escaped():
    line = Diagnostic("error", Location("site:a,b.yaml", 3, 1), "bad", None, "some-code").format_github()
    assert line.startswith("::error file=site%3Aa%2Cb.yaml,line=3,col=1,title=some-code::")


def test_the_default_state_directory_stays_out_of_git_and_the_revision_clean(tmp_path: Path):
    repo = tmp_path / "repo"
    write(repo / "policies", policy_files(["CP-0001"]))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "policies")
    done = run("plan", "-p", "policies", "--listen", "127.0.0.1:0", "--wait", "0", "--station-password", "x",
               cwd=repo)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr  # nothing connected
    assert (repo / ".reconciler" / "state.db").exists()
    assert git(repo, "status", "--porcelain") == ""
    done = run("validate", ".", "--format", "json", cwd=repo)
    assert "+dirty" not in done.stdout


def test_a_chargers_multi_line_error_text_becomes_one_bounded_line():
    reply = Reply.call_error("InternalError", "Traceback (most recent call last):\n  File x\n" + "y" * 5000)
    text = reply.describe()
    assert "\n" not in text and len(text) <= 300


def test_a_schema_error_does_not_hide_the_documents_semantic_errors(tmp_path: Path):
    profile = (
        "{{connectorId: 0, chargingProfileId: {id}, stackLevel: {stack}, chargingProfilePurpose: "
        "ChargePointMaxProfile, chargingProfileKind: Absolute, chargingSchedule: {{startSchedule: "
        "'2024-01-01T00:00:00Z', chargingRateUnit: A, "
        "chargingSchedulePeriod: [{{startPeriod: 0, limit: 16}}]}}}}"
    )
    (tmp_path / "a.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Station\nmetadata: {name: A}\nspec: {connectors: 1, maxCurrentA: 32}\n"
        "---\napiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {name: one}\nspec:\n"
        "  selector: {stations: [A]}\n  colour: red\n  profiles:\n"
        f"    - {profile.format(id=1, stack=0)}\n    - {profile.format(id=2, stack='x')}\n"
        "---\napiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {name: two}\nspec:\n"
        f"  selector: {{stations: [A]}}\n  profiles:\n    - {profile.format(id=1, stack=3)}\n"
    )  # fmt: skip
    done = run("validate", str(tmp_path))
    assert done.returncode == 1
    assert "[schema-unknown-field]" in done.stdout and "[schema-type]" in done.stdout
    assert "[duplicate-profile-id]" in done.stdout  # hidden before: policy `one` was dropped whole


def test_version_and_shell_completion():
    done = run("--version")
    assert done.returncode == 0 and done.stdout.startswith("reconciler ") and "(ocpp-reconciler)" in done.stdout
    assert "unknown" not in done.stdout  # the installed distribution is found under its name
    script = Path(sys.executable).parent / "reconciler"  # the installed command, as a shell would run it
    # The shell is named, not detected from the process tree: detection fails without a shell among the
    # ancestors (a test run started in the background, cron), and the option then prints nothing.
    named = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    done = subprocess.run([str(script), "--show-completion", "bash"], capture_output=True, text=True, timeout=60,
                          env=named)  # fmt: skip
    assert done.returncode == 0 and "_RECONCILER_COMPLETE" in done.stdout and "complete -o default" in done.stdout


def test_tls_files_with_via_are_a_usage_error(tmp_path: Path):
    write(tmp_path / "p", policy_files(["CP-0001"]))
    done = run("plan", "-p", str(tmp_path / "p"), "--db", str(tmp_path / "s.db"), "--via", "https://proxy.example/",
               "--tls-cert", str(tmp_path / "c.pem"))  # fmt: skip
    assert done.returncode == 1 and "serve wss:// for --listen" in done.stderr
