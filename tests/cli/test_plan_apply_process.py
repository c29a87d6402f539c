"""`plan`/`apply` as real processes against simulated chargers (issue 12 items 1-4, 7, 9): whole-plan
staleness, saved plans that need no flags, the state lock with two applies at once, removed
stations, what apply prints, and exit codes when some chargers are offline."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from pathlib import Path

import pytest

from reconciler.api.auth import Credentials
from reconciler.api.inject import inject_app
from reconciler.api.server import HttpServer
from reconciler.simulator.fleet import Fleet
from reconciler.store.lock import lock_path, read_holder
from reconciler.store.sqlite import Store
from reconciler.transport.central_system import CentralSystem
from tests.cli.clikit import IDS, Cli, free_port, policy_files, received, setup, until
from tests.engine.fleetkit import PASSWORD, WAIT, cap_policy, write

pytestmark = pytest.mark.slow

ENV = {"RECONCILER_STATION_PASSWORD": PASSWORD}


async def test_a_stale_saved_plan_is_refused_as_a_whole_before_anything_is_sent(tmp_path: Path):
    async with setup(tmp_path) as (cli, fleet):
        (cli.policies / "only3.yaml").write_text(cap_policy("only-3", ["CP-0003"], 8, profile_id=9, stack=3))
        code, out, err = await cli.run("plan", "--out", str(tmp_path / "p.json"))
        assert code == 0, err
        (cli.policies / "only3.yaml").write_text(cap_policy("only-3", ["CP-0003"], 7, profile_id=9, stack=3))
        code, out, err = await cli.run("apply", str(tmp_path / "p.json"), common=False, connect=False, env=ENV)
        assert code == 1, out + err
        assert "CP-0003: saved plan refused: the policies changed since the plan was saved" in err
        assert "nothing was sent" in err
        assert received(fleet, "SetChargingProfile") == 0  # not one station applied in part


async def test_a_saved_plan_carries_how_to_reach_the_chargers_but_no_secret(tmp_path: Path):
    async with setup(tmp_path) as (cli, fleet):
        code, _, err = await cli.run("plan", "--out", str(tmp_path / "p.json"))
        assert code == 0, err
        text = (tmp_path / "p.json").read_text()
        saved = json.loads(text)
        assert saved["connection"]["listen"] == f"127.0.0.1:{cli.port}"
        assert saved["db"] == str(cli.db.resolve())
        assert PASSWORD not in text
        code, out, err = await cli.run("apply", str(tmp_path / "p.json"), common=False, connect=False, env=ENV)
        assert code == 0, out + err
        assert "3 Synced of 3 station(s)" in out
        assert received(fleet, "SetChargingProfile") == 9


async def test_two_applies_at_once_the_second_is_refused_naming_the_holder(tmp_path: Path):
    """Both reach the same chargers through one inject API (as a proxy would let them)."""
    write(tmp_path / "p", policy_files(IDS))
    cli = Cli(tmp_path, 0)
    async with CentralSystem(port=0, passwords={"*": PASSWORD}, known_stations=IDS) as cs:
        fleet = Fleet(cs.url, 3, prefix="CP-", password=PASSWORD, backoff_initial=0.05, backoff_max=0.2)
        async with fleet:
            assert await cs.wait_for_stations(IDS, WAIT, booted=False) == set(IDS)
            server = HttpServer(inject_app(cs, Credentials("ops", "proxy-secret")))
            await server.start()
            via = ["--via", server.url, "--user", "ops", "--password", "proxy-secret"]
            try:
                # a rate limit keeps the first apply (and its lock) busy for a few seconds
                first = await cli.start("apply", "--auto-approve", "--rate-limit", "3", *via, connect=False)
                await until(lambda: read_holder(cli.db) is not None)
                waiter = await cli.start("apply", "--auto-approve", "--lock-timeout", "60", *via, connect=False)
                code, _, err2 = await cli.run("apply", "--auto-approve", *via, connect=False)
                out, err = await first.communicate()
                assert f"the state is locked by reconciler apply (pid {first.pid} on {socket.gethostname()}" in err2
                assert code == 1 and "--lock-timeout" in err2
                assert received(fleet, "SetChargingProfile") == 9  # only one apply sent anything
                assert first.returncode == 0, (out + err).decode()
                out3, err3 = await waiter.communicate()
                assert waiter.returncode == 0, (out3 + err3).decode()
                assert b"waiting up to 60 s for the state lock held by reconciler apply" in err3
                assert b"Nothing to apply." in out3
                assert received(fleet, "SetChargingProfile") == 9
                assert not lock_path(cli.db).exists()
            finally:
                await server.stop()


async def test_a_removed_station_is_cleared_then_forgotten(tmp_path: Path):
    async with setup(tmp_path) as (cli, fleet):
        code, out, err = await cli.run("apply", "--auto-approve")
        assert code == 0, out + err
        write(cli.policies, policy_files(IDS[:2]))
        code, out, err = await cli.run("plan", "--detailed-exitcode")
        assert code == 2, out + err
        block = out.split("CP-0003  OutOfSync", 1)[1].split("\n\n", 1)[0]
        assert "station removed from the policies: 3 profile(s) to clear" in block
        assert block.count("- clear") == 3
        assert "Plan: 0 to set, 0 to replace, 3 to clear" in out
        code, out, err = await cli.run("plan", "--station", "CP-0003")
        assert code == 0 and "not declared" not in err
        code, out, err = await cli.run("apply", "--auto-approve")
        assert code == 0, out + err
        assert fleet["CP-0003"].calls["ClearChargingProfile"] == 3
        assert len(fleet["CP-0003"].installed) == 0
        store = Store(cli.db)
        try:
            assert store.ledger("CP-0003") == [] and "CP-0003" not in store.conditions()
            assert any(e.kind == "station.forgotten" for e in store.events(station_id="CP-0003"))
        finally:
            store.close()
        code, out, err = await cli.run("plan", "--detailed-exitcode")
        assert code == 0, out + err
        assert "CP-0003" not in out


async def test_a_removed_station_that_is_unreachable_is_reported_as_orphans(tmp_path: Path):
    write(tmp_path / "p", policy_files(IDS))
    cli = Cli(tmp_path, free_port())
    url = f"ws://127.0.0.1:{cli.port}"
    kept = {
        "prefix": "CP-",
        "password": PASSWORD,
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
        "state_dir": tmp_path / "chargers",
    }  # the chargers keep their profiles across the two fleets
    async with Fleet(url, 3, **kept):
        code, out, err = await cli.run("apply", "--auto-approve")
        assert code == 0, out + err
    write(cli.policies, policy_files(IDS[:2]))
    async with Fleet(url, 2, **kept):
        code, out, err = await cli.run("plan", "--detailed-exitcode", wait=2)
        assert code == 0, out + err  # the reachable stations are in sync; orphans are reported
        assert "CP-0003  Offline  (station removed from the policies; not reachable: the ledger still owns 3" in out
        assert "3 orphaned profile(s) on 1 removed station(s) not reachable" in out
        code, out, err = await cli.run("plan", "--json", wait=2)
        stations = {s["station"]: s for s in json.loads(out)["stations"]}
        assert stations["CP-0003"]["removed"] is True and stations["CP-0003"]["status"] == "Offline"
        code, out, err = await cli.run("apply", "--auto-approve", wait=2)
        assert code == 0, out + err
    store = Store(cli.db)
    try:
        assert len(store.ledger("CP-0003")) == 3  # never forgotten while unreachable
    finally:
        store.close()


async def test_apply_prints_the_plan_then_what_was_sent_and_verbose_shows_the_after_state(tmp_path: Path):
    async with setup(tmp_path, IDS[:1]) as (cli, _fleet):
        code, out, err = await cli.run("apply", "--auto-approve", "--verbose")
        assert code == 0, out + err
        planned, applied = out.split("Plan: 3 to set", 1)
        assert "+ set       profile #1" in planned
        assert applied.count("sent: + set profile") == 3
        assert "answered Accepted" in applied
        after = applied.split("verified read-back (after the apply):", 1)[1]
        assert "<- missing" not in after and "expected       12 A   observed       12 A" in after
        assert "Apply: 1 Synced of 1 station(s)" in applied


async def test_exit_codes_when_some_stations_are_offline(tmp_path: Path):
    async with setup(tmp_path, declared_only=["CP-0009"]) as (cli, _fleet):
        code, out, err = await cli.run("plan", "--detailed-exitcode", wait=6)
        assert code == 2, out + err  # changes among the reachable ones; CP-0009 offline is no error
        assert "CP-0009  Offline  (did not connect)" in out and "1 offline" in out
        assert "waiting: 3 of 4 station(s) connected (5 of 6 s)" in err  # progress while it waits
        code, out, err = await cli.run("apply", "--auto-approve", wait=2)
        assert code == 0, out + err
        code, out, err = await cli.run("plan", "--detailed-exitcode", "--json", wait=2)
        assert code == 0, out + err
        assert json.loads(out)["summary"]["offlineStations"] == ["CP-0009"]
        code, out, err = await cli.run("plan", "--detailed-exitcode", "--offline-is-error", wait=2)
        assert code == 1


async def test_with_detailed_exitcode_every_error_is_1(tmp_path: Path):
    write(tmp_path / "p", policy_files(IDS[:1]))
    cli = Cli(tmp_path, free_port())
    base = ["plan", "--detailed-exitcode", "--policies", str(cli.policies), "--db", str(cli.db)]
    code, _, err = await cli.run(*base, "--listen", "127.0.0.1:0", common=False, connect=False)
    assert code == 1 and "--station-password" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = await cli.run(*base, "--listen", f"127.0.0.1:{port}", common=False, connect=False, env=ENV)
    assert code == 1 and "cannot listen" in err and "Traceback" not in err
    code, _, err = await cli.run(*base, "--horizon", "1000000000000", common=False, connect=False, env=ENV)
    assert code == 1 and "2678400" in err
    code, _, err = await cli.run(*base, "--no-such-flag", common=False, connect=False)
    assert code == 1


async def test_via_an_unsupported_scheme_is_one_usage_error(tmp_path: Path):
    write(tmp_path / "p", policy_files(IDS))
    cli = Cli(tmp_path, free_port())
    code, out, err = await cli.run("plan", "--via", "ftp://proxy.example/", connect=False)
    assert code == 1
    assert err.count("ftp://") == 1 and "http:// or https://" in err
    assert "Degraded" not in out + err and "Traceback" not in err


async def test_plan_shows_the_code_of_each_policy_error(tmp_path: Path):
    write(tmp_path / "p", policy_files(IDS[:1]))
    (tmp_path / "p" / "dup.yaml").write_text(cap_policy("dup", ["CP-0001"], 8, profile_id=1, stack=4))
    cli = Cli(tmp_path, free_port())
    code, _out, err = await cli.run("plan", connect=False)
    assert code == 1
    assert "dup.yaml:" in err and "[duplicate-profile-id]" in err


async def test_status_history_show_and_state_read_what_apply_recorded(tmp_path: Path):
    async with setup(tmp_path, IDS[:1]) as (cli, _fleet):
        code, planned, err = await cli.run("plan", "--out", str(tmp_path / "p.json"))
        assert code == 0, err
        code, out, err = await cli.run("show", str(tmp_path / "p.json"), common=False, connect=False)
        assert code == 0, err
        assert "+ set       profile #1 ChargePointMaxProfile" in out and "Plan: 3 to set" in out
        summary = [line for line in planned.splitlines() if line.startswith("Plan: ")]
        assert summary and summary[-1] in out.splitlines()  # the same summary line as the plan that saved it
        code, out, err = await cli.run("apply", str(tmp_path / "p.json"), common=False, connect=False, env=ENV)
        assert code == 0, out + err
        db = ["--db", str(cli.db)]
        code, out, err = await cli.run("status", "--json", *db, common=False, connect=False)
        assert code == 0, err
        (station,) = json.loads(out)["stations"]
        assert station["station"] == "CP-0001" and station["status"] == "Synced" and station["profiles"] == 3
        assert station["lastReconcile"] and station["lastSeen"]
        code, out, err = await cli.run("status", *db, common=False, connect=False)
        assert "CP-0001" in out and "Synced" in out and "1 station(s): 1 Synced" in out
        code, out, err = await cli.run("history", "--station", "CP-0001", "--since", "1h", *db, common=False,
                                       connect=False)  # fmt: skip
        assert code == 0 and out.count("action.set") == 3 and "status.Synced" in out
        code, out, err = await cli.run("history", "--since", "2999-01-01T00:00:00Z", *db, common=False, connect=False)
        assert code == 0 and "no events" in out
        code, out, err = await cli.run("state", "list", *db, common=False, connect=False)
        assert code == 0 and "3 ledger entries" in out and "#5" in out
        code, out, err = await cli.run("state", "rm", "CP-0001", "5", "--yes", *db, common=False, connect=False)
        assert code == 0 and "forgot CP-0001 #5" in out
        code, out, err = await cli.run("state", "list", "--json", *db, common=False, connect=False)
        assert sorted(e["profileId"] for e in json.loads(out)) == [1, 6]
        code, out, err = await cli.run("state", "rm", "CP-0001", "77", "--yes", *db, common=False, connect=False)
        assert code == 1 and "#77" in err


async def test_the_watch_daemon_holds_the_state_lock_while_it_runs(tmp_path: Path):
    write(tmp_path / "p", policy_files(IDS[:1]))
    cli = Cli(tmp_path, free_port())
    watch = await cli.start("watch", "--http", f"127.0.0.1:{free_port()}", "--listen", f"127.0.0.1:{cli.port}",
                            "-p", str(cli.policies), "--db", str(cli.db), common=False, connect=False,
                            env={**ENV, "RECONCILER_API_PASSWORD": "pw"})  # fmt: skip
    try:
        await until(lambda: read_holder(cli.db) is not None, timeout=30)
        code, _, err = await cli.run("apply", "--auto-approve")
        assert code == 1 and f"the state is locked by reconciler watch (pid {watch.pid}" in err
    finally:
        watch.send_signal(signal.SIGTERM)
        _, werr = await asyncio.wait_for(watch.communicate(), 30)
    assert watch.returncode == 0, werr.decode()
    assert not lock_path(cli.db).exists()
