"""`reconciler plan/apply` as processes, against simulated chargers on loopback (issue 5 acceptance):
saved plans, all-or-nothing on invalid policies, and SIGKILL mid-apply."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from reconciler.api.auth import Credentials
from reconciler.api.inject import inject_app
from reconciler.api.server import HttpServer
from reconciler.simulator.fleet import Fleet
from reconciler.store.sqlite import Store
from reconciler.transport.central_system import CentralSystem
from tests.engine.fleetkit import PASSWORD, WAIT, cap_policy, station_doc, write

pytestmark = pytest.mark.slow

IDS = ["CP-0001", "CP-0002", "CP-0003"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def policy_files(stations=IDS) -> dict[str, str]:
    tx = cap_policy("defaults", stations, 10, profile_id=5, stack=1).replace(
        "ChargePointMaxProfile", "TxDefaultProfile"
    )
    return {
        "stations.yaml": "---\n".join(station_doc(s, "x") for s in stations),
        "cap.yaml": cap_policy("cap", stations, 16),
        "tx.yaml": tx,
        "tx2.yaml": tx.replace("chargingProfileId: 5", "chargingProfileId: 6")
        .replace("stackLevel: 1", "stackLevel: 2")
        .replace("name: defaults", "name: defaults-2")
        .replace("limit: 10}", "limit: 12}"),
    }


class Cli:
    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp, self.port = tmp, port
        self.db = tmp / "state.db"

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reconciler.cli.main", *args, "--policies", str(self.tmp / "p"),
            "--listen", f"127.0.0.1:{self.port}", "--station-password", PASSWORD, "--db", str(self.db),
            "--wait", str(WAIT), "--horizon", "21600",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def run(self, *args: str) -> tuple[int, str, str]:
        process = await self.start(*args)
        out, err = await asyncio.wait_for(process.communicate(), 90)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()


@asynccontextmanager
async def setup(tmp: Path, stations=IDS) -> AsyncIterator[tuple[Cli, Fleet]]:
    write(tmp / "p", policy_files(stations))
    port = free_port()
    fleet = Fleet(f"ws://127.0.0.1:{port}", len(stations), prefix="CP-", password=PASSWORD, backoff_initial=0.05,
                  backoff_max=0.2)  # fmt: skip
    async with fleet:
        yield Cli(tmp, port), fleet


def received(fleet: Fleet, action: str | None = None) -> int:
    return sum(sum(cp.calls.values()) if action is None else cp.calls[action] for cp in fleet.stations.values())


async def test_saved_plan_applies_and_is_refused_after_the_charger_changed(tmp_path: Path):
    async with setup(tmp_path, IDS[:1]) as (cli, fleet):
        code, out, err = await cli.run("plan", "--out", str(tmp_path / "plan.json"), "--detailed-exitcode")
        assert code == 2, err
        assert "+ set" in out and "Plan: 3 to set" in out
        saved = json.loads((tmp_path / "plan.json").read_text())
        assert saved["format"] == "reconciler-plan/v1" and saved["stations"]["CP-0001"]["actions"]

        fleet["CP-0001"].handle("SetChargingProfile", {"connectorId": 0, "csChargingProfiles": {
            "chargingProfileId": 777, "stackLevel": 9, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": {"chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}]}}})  # fmt: skip
        sets = received(fleet, "SetChargingProfile")
        code, out, err = await cli.run("apply", str(tmp_path / "plan.json"))
        assert code == 1
        assert "saved plan refused: the charger changed since the plan was saved" in err
        assert "nothing was sent" in err
        assert received(fleet, "SetChargingProfile") == sets  # nothing was applied

        fleet["CP-0001"].handle("ClearChargingProfile", {"id": 777})
        code, out, err = await cli.run("apply", str(tmp_path / "plan.json"))
        assert code == 0, out + err
        assert "1 Synced" in out


async def test_an_invalid_policy_file_anywhere_means_nothing_is_applied(tmp_path: Path):
    async with setup(tmp_path) as (cli, fleet):
        (tmp_path / "p" / "zz-broken.yaml").write_text(
            "apiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {name: broken}\nspec:\n"
            "  selector: {stations: [CP-0001]}\n"
            "  profiles:\n    - {connectorId: 1, chargingProfileId: 9, stackLevel: 0,\n"
            "       chargingProfilePurpose: ChargePointMaxProfile, chargingProfileKind: Absolute,\n"
            "       chargingSchedule: {startSchedule: '2024-01-01T00:00:00Z', chargingRateUnit: A,\n"
            "                          chargingSchedulePeriod: [{startPeriod: 0, limit: 10}]}}\n"
        )  # fmt: skip
        code, _, err = await cli.run("apply", "--auto-approve")
        assert code == 1
        assert "zz-broken.yaml:7:" in err and "nothing was planned or applied" in err
        assert "Traceback" not in err
        assert received(fleet) == 0


async def test_sigkill_at_a_random_call_then_rerun_converges_with_the_ledger_intact(tmp_path: Path):
    rng = random.Random(int.from_bytes(os.urandom(2), "big"))
    kill_at = rng.randint(1, 8)  # of 9 SetChargingProfile calls (3 stations x 3 profiles)
    async with setup(tmp_path) as (cli, fleet):
        process = await cli.start("apply", "--auto-approve", "--concurrency", "1")
        seen = {"sets": 0}

        def maybe_kill(station, action):
            if action == "SetChargingProfile":
                seen["sets"] += 1
                if seen["sets"] == kill_at and process.returncode is None:
                    os.kill(process.pid, signal.SIGKILL)

        for cp in fleet.stations.values():
            cp.on_change = maybe_kill
        await asyncio.wait_for(process.communicate(), 90)
        assert process.returncode == -signal.SIGKILL, f"killed at set {kill_at}"
        for cp in fleet.stations.values():
            cp.on_change = None

        with sqlite3.connect(cli.db) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

        code, out, err = await cli.run("apply", "--auto-approve")
        assert code == 0, f"killed at set {kill_at}: {out}{err}"
        store = Store(cli.db)
        try:
            for station in IDS:
                assert sorted(e.profile.charging_profile_id for e in store.ledger(station)) == [1, 5, 6]
            assert store.pending() == []
            assert any(e.kind == "status.Synced" for e in store.events(limit=50))
        finally:
            store.close()
        code, out, err = await cli.run("plan", "--detailed-exitcode")
        assert code == 0, out + err
        assert received(fleet, "SetChargingProfile") <= 9 + 1  # at most the interrupted call is repeated


async def test_apply_and_plan_through_an_inject_api(tmp_path: Path):
    """--via: the same client code reaches chargers through an OCPP proxy's (here: our own) inject API."""
    write(tmp_path / "p", policy_files(IDS[:2]))
    async with CentralSystem(port=0, passwords={"*": PASSWORD}, known_stations=IDS[:2]) as cs:
        fleet = Fleet(cs.url, 2, prefix="CP-", password=PASSWORD, backoff_initial=0.05, backoff_max=0.2)
        async with fleet:
            assert await cs.wait_for_stations(IDS[:2], WAIT, booted=False) == set(IDS[:2])
            server = HttpServer(inject_app(cs, Credentials("ops", "proxy-secret")))
            await server.start()
            try:

                async def cli(*args: str, password: str = "proxy-secret") -> tuple[int, str, str]:
                    process = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "reconciler.cli.main", *args, "--policies", str(tmp_path / "p"),
                        "--via", server.url, "--user", "ops", "--password", password,
                        "--db", str(tmp_path / "state.db"),
                        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                    )  # fmt: skip
                    out, err = await asyncio.wait_for(process.communicate(), 90)
                    assert process.returncode is not None
                    return process.returncode, out.decode(), err.decode()

                code, out, _ = await cli("plan", "--detailed-exitcode", password="wrong")
                assert code == 1 and "Unauthorized" in out and received(fleet) == 0
                code, out, err = await cli("apply", "--auto-approve")
                assert code == 0, out + err
                assert "2 Synced" in out and received(fleet, "SetChargingProfile") == 6
                code, out, err = await cli("plan", "--detailed-exitcode")
                assert code == 0, out + err
            finally:
                await server.stop()


async def test_apply_without_a_terminal_refuses_to_prompt(tmp_path: Path):
    async with setup(tmp_path, IDS[:1]) as (cli, fleet):
        code, out, err = await cli.run("apply")
        assert code == 1
        assert "+ set" in out  # the plan is shown first
        assert "there is no terminal; pass --auto-approve" in err
        assert received(fleet, "SetChargingProfile") == 0
