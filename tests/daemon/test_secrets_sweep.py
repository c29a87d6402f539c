"""Secrets sweep (issue 10): real daemons with station passwords (a file), API credentials (a file and
the environment) and a `--via` URL carrying credentials, driven through reconciles, a failed station
login, an invalid policy edit and failed `git pull`s; then every secret is looked for in the logs
(text and JSON), `GET /events`, every GET endpoint's body, the SQLite files, and the command line of
each daemon and of every child it started."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.fleet import Fleet
from tests.daemon.prockit import Watch, watch_process
from tests.engine.fleetkit import WAIT, cap_policy, station_doc, write

pytestmark = pytest.mark.slow
IDS = ["CP-0001", "CP-0002", "CP-0003"]
STATION_PW = {"CP-0001": "st-pw-one-8c1f2a", "CP-0002": "st-pw-two-77d0e4", "CP-0003": "st-pw-three-5b9e11"}
WRONG_PW = "wrong-station-pw-3e7a"
API_PW, API_TOKEN = "api-pw-a41f9d0c", "api-token-e2b7c913"
B_PW, B_TOKEN = "b-api-pw-0f6c5a", "b-api-token-9d4e21"
SECRETS = [*STATION_PW.values(), WRONG_PW, API_PW, API_TOKEN, B_PW, B_TOKEN]


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo and len(found) < 100:
        found += (more := children(todo.pop()))
        todo += more
    return found


async def watch_command_lines(pids: list[int], seen: dict[int, bytes], stop: asyncio.Event) -> None:
    """Record the command line of the daemons and of every process they start (git pull, ...)."""
    while not stop.is_set():
        for pid in pids:
            for one in [pid, *descendants(pid)]:
                with contextlib.suppress(OSError):
                    seen.setdefault(one, Path(f"/proc/{one}/cmdline").read_bytes())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


def leaks(text: str | bytes, allowed: tuple[str, ...] = ()) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode(errors="replace")
    return [s for s in SECRETS if s not in allowed and s.encode() in data]


async def every_get_body(daemon: Watch, auth: httpx.Auth | tuple[str, str]) -> str:
    """The bodies of every GET endpoint of the spec (station ids filled in), `/events` included."""
    bodies = []
    async with httpx.AsyncClient(base_url=daemon.api, auth=auth, timeout=WAIT) as http:
        spec = (await http.get("/openapi.json")).json()
        paths = [p for p, ops in spec["paths"].items() if "get" in ops and not p.endswith("/stream")]
        for template in paths:
            for station in IDS if "{" in template else [""]:
                url = template.replace("{station_id}", station)
                response = await http.get(url)
                assert response.status_code < 500, (url, response.text)
                bodies.append(response.text)
        bodies.append((await http.get("/events", params={"limit": 1000})).text)
        for page in ("/", "/dashboard/config"):
            bodies.append((await http.get(page)).text)
    assert len(bodies) > 20
    return "\n".join(bodies)


async def test_no_secret_in_logs_events_api_database_or_command_lines(tmp_path: Path) -> None:
    # the policy directory is a git clone whose remote never answers: each `--pull` child lives a while
    held: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda _r, w: held.append(w), "127.0.0.1", 0)
    remote = f"http://127.0.0.1:{silent.sockets[0].getsockname()[1]}/policies.git"
    subprocess.run(["git", "init", "-q", str(tmp_path / "policies")], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "policies"), "remote", "add", "origin", remote], check=True)
    policies = write(tmp_path / "policies", {"s.yaml": "---\n".join(station_doc(s, "depot") for s in IDS),
                                             "c.yaml": cap_policy("caps", IDS, 16)})  # fmt: skip
    (tmp_path / "passwords.yaml").write_text("".join(f"{k}: {v}\n" for k, v in STATION_PW.items()))
    (tmp_path / "api.yaml").write_text(f"user: ops\npassword: {API_PW}\ntoken: {API_TOKEN}\n")
    a_args = ["-p", str(policies), "--db", str(tmp_path / "a.db"), "--passwords", str(tmp_path / "passwords.yaml"),
              "--credentials", str(tmp_path / "api.yaml"), "--log-format", "json", "--pull", "5"]  # fmt: skip
    clean_env = {k: "" for k in ("RECONCILER_STATION_PASSWORD", "RECONCILER_API_PASSWORD", "RECONCILER_API_TOKEN")}
    seen: dict[int, bytes] = {}
    stop = asyncio.Event()
    async with watch_process(tmp_path, a_args, clean_env, ("ops", API_PW)) as a:
        fleet = Fleet(a.ws, 0, backoff_initial=0.05, backoff_max=0.3)
        for station, password in STATION_PW.items():
            fleet.add(SimulatedChargePoint(station, connectors=2, max_current=32),
                      password=password if station != "CP-0003" else WRONG_PW, backoff_initial=0.5)  # fmt: skip
        b_env = {"RECONCILER_API_PASSWORD": B_PW, "RECONCILER_API_TOKEN": B_TOKEN, "RECONCILER_STATION_PASSWORD": ""}
        b_args = ["-p", str(policies), "--db", str(tmp_path / "b.db"), "--via", f"http://ops:{API_PW}@{a.api[7:]}/"]
        async with fleet:
            await a.conditions(IDS[:2])
            await a.poll("/events", lambda _: "CP-0003" in a.output(), "the refused login logged")
            async with watch_process(tmp_path, b_args, b_env, ("admin", B_PW), listen=False) as b:
                sweeper = asyncio.create_task(watch_command_lines([a.process.pid, b.process.pid], seen, stop))
                # b reaches the stations through a's inject API; a's profiles are foreign to b's ledger
                await b.conditions(IDS[:2], "OutOfSync")
                for daemon, auth in ((a, ("ops", API_PW)), (b, ("admin", B_PW))):
                    async with httpx.AsyncClient(base_url=daemon.api, auth=auth, timeout=WAIT) as http:
                        reply = await http.post("/reconcile", json={"selector": "site=depot"})
                        assert reply.status_code == 200, reply.text
                (policies / "c.yaml").write_text(f"kind: ChargingPolicy\nmetadata: {{name: {API_PW[:4]}\n")
                await a.poll("/events", lambda body: bool(body["policy_errors"]), "the invalid edit on a")
                await b.poll("/events", lambda body: bool(body["policy_errors"]), "the invalid edit on b")
                bodies_a = await every_get_body(a, httpx.BasicAuth("ops", API_PW))
                bodies_b = await every_get_body(b, ("admin", B_PW))
                await a.poll("/readyz", lambda _: len(seen) >= 3, "a git pull child seen")
                stop.set()
                await sweeper
        assert "warning: a password in the --via URL" in b.output()
    for writer in held:
        writer.close()
    silent.close()
    await silent.wait_closed()

    assert not leaks(bodies_a), "a's API"
    assert not leaks(bodies_b), "b's API"
    assert not leaks(a.output()), f"a's log (JSON): {leaks(a.output())}"
    assert not leaks(b.output()), f"b's log (text): {leaks(b.output())}"
    for line in a.out.read_text().splitlines() + a.err.read_text().splitlines():
        if line.startswith("{"):
            json.loads(line)
    for name in os.listdir(tmp_path):
        if name.startswith(("a.db", "b.db")):
            assert not leaks((tmp_path / name).read_bytes()), name
    assert len(seen) >= 3, seen  # both daemons and at least one git pull
    for pid, cmdline in seen.items():
        allowed = (API_PW,) if pid == b.process.pid else ()  # b was given it in --via (and warned)
        assert not leaks(cmdline, allowed), (pid, cmdline.replace(b"\0", b" "))
