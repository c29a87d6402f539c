"""`reconciler watch --notify URL --pull SECONDS` as a real process (issue 10): events POSTed to real
HTTP receivers on 127.0.0.1 on condition changes, retried after a 500, a hanging receiver delays no
reconcile and no other receiver; `git pull --ff-only` from a real bare repository converges the
stations, and a failed pull is an event, a notification, a log line and an API field, while the last
good state stays enforced."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from reconciler.simulator.fleet import Fleet
from reconciler.simulator.quirks import Quirks
from tests.daemon.kit import limit_a
from tests.daemon.prockit import environment, receiver, watch_process
from tests.engine.fleetkit import PASSWORD, WAIT, cap_policy, station_doc, until, write

pytestmark = pytest.mark.slow
AUTH = ("admin", "notify-api-pw")
IDS = ["CP-0001", "CP-0002", "CP-0003"]


def files(limit: float = 20) -> dict[str, str]:
    return {
        "stations.yaml": "---\n".join(station_doc(s, "depot") for s in IDS),
        "caps.yaml": cap_policy("caps", IDS, limit),
    }


async def test_notifications_reach_every_receiver_retry_after_500_and_never_wait_on_a_hanging_one(
    tmp_path: Path,
) -> None:
    policies = write(tmp_path / "policies", files())
    with receiver() as recorder, receiver(fail_first=2) as flaky, receiver(hang=True) as hanging:
        args = ["-p", str(policies), "--db", str(tmp_path / "state.db"), "--drift-interval", "600"]
        for url in (hanging.url, recorder.url, flaky.url):
            args += ["--notify", url]
        async with watch_process(tmp_path, args, environment(PASSWORD, AUTH[1]), AUTH) as daemon:
            good = Fleet(daemon.ws, 2, prefix="CP-", password=PASSWORD, backoff_initial=0.05, backoff_max=0.3)
            # CP-0003 answers Accepted but enforces nothing: the read-back never matches (Degraded)
            bad = Fleet(daemon.ws, 1, prefix="CP-", start=3, password=PASSWORD, backoff_initial=0.05,
                        backoff_max=0.3, quirks=Quirks(accepted_not_enforced=True))  # fmt: skip
            async with good:
                async with bad:
                    await daemon.conditions(IDS[:2])
                    await until(lambda: "condition.Degraded" in recorder.kinds(), "Degraded notified")
                # CP-0003 gone: Offline
                await until(lambda: "condition.Offline" in recorder.kinds(), "Offline notified")

                # drift behind the daemon's back, healed by a reconcile
                async with httpx.AsyncClient(base_url=daemon.api, auth=AUTH, timeout=WAIT) as http:
                    raw = {"action": "ClearChargingProfile", "payload": {"id": 1}}
                    assert (await http.post("/api/inject/CP-0001", json=raw)).json() == {"status": "Accepted"}
                    reply = await http.post("/reconcile", json={"station_id": "CP-0001"})
                    assert reply.status_code == 200, reply.text
                await until(lambda: "drift.healed" in recorder.kinds(), "healed drift notified")

                # an invalid policy commit
                (policies / "caps.yaml").write_text("kind: ChargingPolicy\nmetadata: {name: x\n")
                await until(lambda: "policy.invalid" in recorder.kinds(), "invalid policy notified")
                invalid = next(b for b in recorder.bodies if b["kind"] == "policy.invalid")
                assert "caps.yaml:" in invalid["errors"][0] and "last good state" in invalid["reason"]

                # while the hanging receiver still holds its first request, a policy fix converges
                assert hanging.attempts >= 1 and not hanging.bodies
                (policies / "caps.yaml").write_text(cap_policy("caps", IDS, 14))
                await until(lambda: limit_a(good["CP-0002"], 0) == 14, "CP-0002 re-capped to 14 A")
                await daemon.conditions(IDS[:2])

            # the flaky receiver answered 500 twice, then took the same events
            await until(lambda: len(flaky.bodies) >= 4, "the flaky receiver caught up")
            assert flaky.attempts >= len(flaky.bodies) + 2
            assert set(flaky.kinds()) >= {"condition.Degraded", "condition.Offline", "drift.healed"}
            for body in recorder.bodies:
                assert set(body) >= {"kind", "station_id", "condition", "reason", "revision", "at"}
            metrics = (await daemon.get("/metrics")).text
            assert 'reconciler_notifications_total{result="delivered"}' in metrics
        assert "Traceback" not in daemon.output()


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd),
                               "PATH": "/usr/bin:/bin", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "--short", "HEAD", cwd=repo)


async def test_pull_brings_upstream_commits_and_a_failed_pull_is_reported(tmp_path: Path) -> None:
    upstream, author, clone = tmp_path / "upstream.git", tmp_path / "author", tmp_path / "clone"
    git("init", "-q", "--bare", "-b", "main", str(upstream), cwd=tmp_path)
    git("clone", "-q", str(upstream), str(author), cwd=tmp_path)
    write(author / "policies", files(20))
    commit(author, "caps 20 A")
    git("push", "-q", "origin", "HEAD:main", cwd=author)
    git("clone", "-q", str(upstream), str(clone), cwd=tmp_path)

    with receiver() as recorder:
        args = ["-p", str(clone / "policies"), "--db", str(tmp_path / "state.db"), "--pull", "5",
                "--notify", recorder.url]  # fmt: skip
        async with watch_process(tmp_path, args, environment(PASSWORD, AUTH[1]), AUTH) as daemon:
            fleet = Fleet(daemon.ws, 3, prefix="CP-", password=PASSWORD, backoff_initial=0.05, backoff_max=0.3)
            async with fleet:
                await daemon.conditions(IDS)
                assert all(limit_a(fleet[s], 0) == 20 for s in IDS)

                # a commit pushed upstream converges the stations, with its revision recorded
                write(author / "policies", files(12))
                revision = commit(author, "caps 12 A")
                git("push", "-q", "origin", "HEAD:main", cwd=author)
                await until(lambda: all(limit_a(fleet[s], 0) == 12 for s in IDS), "the pushed caps", 40)
                ready = await daemon.poll("/readyz", lambda b: b["revision"] == revision, "the new revision")
                assert ready["policy_errors"] == 0

                # upstream rewritten (not a fast-forward): reported, the last good state stays enforced
                write(author / "policies", files(6))
                git("commit", "-q", "--amend", "-a", "-m", "caps 6 A, rewritten", cwd=author)
                git("push", "-q", "--force", "origin", "HEAD:main", cwd=author)
                failed = await daemon.poll(
                    "/events?kind=policy.pull_failed", lambda b: bool(b["events"]), "the failed pull reported", 40
                )
                message = failed["events"][-1]["message"]
                assert "git pull --ff-only" in message and "fast-forward" in message, message
                assert failed["pull_error"] and "fast-forward" in failed["pull_error"]
                await until(lambda: "policy.pull_failed" in recorder.kinds(), "the failed pull notified")
                assert all(limit_a(fleet[s], 0) == 12 for s in IDS)
                assert (await daemon.get("/readyz")).json()["revision"] == revision

                # upstream gone: reported with git's reason
                subprocess.run(["rm", "-rf", str(upstream)], check=True)
                await daemon.poll(
                    "/events?kind=policy.pull_failed",
                    lambda b: any("does not appear to be a git repository" in e["message"] or
                                  "not found" in e["message"].lower() for e in b["events"]),
                    "the vanished upstream reported", 40,
                )  # fmt: skip
                await daemon.conditions(IDS)
                assert all(limit_a(fleet[s], 0) == 12 for s in IDS)
        log = daemon.output()
        assert "git pull --ff-only" in log and "fast-forward" in log and "Traceback" not in log


def test_a_pull_failure_names_no_credentials(tmp_path: Path) -> None:
    from reconciler.daemon.policywatch import pull_failure

    said = b"fatal: unable to access 'https://bot:ghp_s3cret@git.example/p.git/': 403\n"
    message = pull_failure(tmp_path, 128, said)
    assert "ghp_s3cret" not in message and "bot:" not in message
    assert "https://***@git.example/p.git/" in message and "403" in message
