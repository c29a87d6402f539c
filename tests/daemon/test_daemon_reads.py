"""What the daemon reads from a charger, and when: a drift check of a station in sync costs its
composites only (the capability keys are cached), a BootNotification makes the daemon read the
keys again (a reset or a firmware update may change them), and a rebooted station that lost its
profiles is re-applied with one read-back round (no fixed settle wait before it)."""

from __future__ import annotations

from pathlib import Path

from reconciler.engine.reconcile import Settings
from reconciler.simulator.quirks import Quirks
from reconciler.transport.gateway import ReplyKind
from tests.daemon.kit import FAST_ENGINE, running
from tests.daemon.test_watch import IDS, fleet_files


def calls(run: object, station: str, action: str) -> int:
    return int(run.fleet[station].calls[action])  # type: ignore[attr-defined]


async def test_drift_check_in_sync_reads_composites_only(tmp_path: Path) -> None:
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        before = {a: calls(run, "CP-0001", a) for a in ("GetConfiguration", "GetCompositeSchedule")}
        outcome = await run.daemon.queue.request("CP-0001", "test: periodic check")
        assert outcome is None
        assert calls(run, "CP-0001", "GetConfiguration") == before["GetConfiguration"]
        # the station's total (connector 0) and each of its 2 connectors
        assert calls(run, "CP-0001", "GetCompositeSchedule") == before["GetCompositeSchedule"] + 3
        assert run.sets("CP-0001") == 1


async def test_boot_notification_reads_the_capabilities_again(tmp_path: Path) -> None:
    # A settle of an hour: the re-apply after the reboot must not sleep before its read-back.
    engine = Settings(horizon=FAST_ENGINE.horizon, settle=3600.0, verify_attempts=3, retry=FAST_ENGINE.retry)
    async with running(tmp_path, fleet_files(), IDS, quirks=Quirks(lose_profiles_on_reboot=True), engine=engine) as run:
        await run.synced()
        configuration = calls(run, "CP-0002", "GetConfiguration")
        assert run.daemon.gateway is not None
        reply = await run.daemon.gateway.call("CP-0002", "Reset", {"type": "Soft"})
        assert reply.kind is ReplyKind.ANSWERED
        await run.until(lambda: run.sets("CP-0002") == 2, "CP-0002 re-applied after its reboot")
        await run.synced(["CP-0002"])
        assert calls(run, "CP-0002", "GetConfiguration") == configuration + 1


async def test_the_settled_fleet_is_frozen_out_of_the_garbage_collector(tmp_path: Path) -> None:
    import gc

    from reconciler.daemon.settings import FULL_COLLECTION_EVERY

    gc.unfreeze()
    before = gc.get_threshold()
    try:
        async with running(tmp_path, fleet_files(), IDS, freeze_check=0.05) as run:
            await run.synced()
            await run.until(lambda: gc.get_freeze_count() > 0, "gc.freeze once the fleet settled")
            # full collections are spaced out from then on (each round of drift checks promotes every
            # station's outcome to the oldest generation), and the default comes back at stop
            assert gc.get_threshold()[2] == FULL_COLLECTION_EVERY > before[2]
        assert gc.get_threshold() == before
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_drift_check_reads_the_layers_at_most_once_and_overrides_still_apply_at_once(tmp_path: Path) -> None:
    """The layered desired state (git + overrides + session intents) is asked for five times a
    reconcile; it is kept until the station's layers or the policies change (it was read from the
    overrides and intents tables each time: 10 queries a drift check)."""
    from tests.daemon.kit import limit_a
    from tests.transport.conftest import cp_max

    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        assert run.daemon.store is not None
        statements: list[str] = []
        run.daemon.store.db.set_trace_callback(statements.append)
        try:
            await run.daemon.queue.request("CP-0001", "test: periodic check")
        finally:
            run.daemon.store.db.set_trace_callback(None)
        layer_reads = [s for s in statements if "FROM overrides" in s or "FROM intents" in s]
        assert len(layer_reads) <= 2, layer_reads
        # an override changes the desired state at once, and so does its removal
        body = {"connector_id": 0, "profile": cp_max(8, profile_id=50, stack_level=2)["csChargingProfiles"]}
        answer = (await run.http.post("/stations/CP-0001/charging_profile", json=body)).json()
        assert answer["csms_status"] == "Accepted" and limit_a(run.fleet["CP-0001"]) == 8
        (override,) = (await run.http.get("/overrides")).json()["overrides"]
        removed = await run.http.delete(f"/overrides/{override['id']}")
        assert removed.status_code == 200
        await run.until(lambda: limit_a(run.fleet["CP-0001"]) == 20, "git's cap back after the removal")
        await run.synced(["CP-0001"])


async def test_drift_check_in_sync_writes_nothing_at_once_and_its_times_stay_answerable(tmp_path: Path) -> None:
    """A drift check that finds the station in sync refreshes three times (condition updated_at,
    last_seen, clock skew): they wait in memory and are written in one batch (`store/touches.py`),
    while the daemon, its API and the store's reads answer with them at once."""
    from reconciler.store.queries import StateReader

    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        store = run.daemon.store
        assert store is not None
        await run.daemon.queue.request("CP-0001", "test: periodic check")  # the first check after the apply
        before = store.condition("CP-0001")
        assert before is not None
        statements: list[str] = []
        store.db.set_trace_callback(statements.append)
        try:
            await run.daemon.queue.request("CP-0001", "test: periodic check")
        finally:
            store.db.set_trace_callback(None)
        writes = [s for s in statements if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "BEGIN", "COMMIT")]
        assert writes == [], writes
        after = store.condition("CP-0001")
        assert after is not None and after.status is before.status and after.since == before.since
        assert after.updated_at >= before.updated_at and after.updated_at == store.conditions()["CP-0001"].updated_at
        skew_at = store.clock_skew("CP-0001")[1]
        assert skew_at is not None and before.updated_at <= skew_at <= after.updated_at
        station = (await run.http.get("/stations/CP-0001")).json()
        assert station["last_reconcile"] is not None
        # written in one batch (every FLUSH_SECONDS, and at stop): another process reads them from the file
        store.flush_touches()
        store.commit()
        with StateReader(tmp_path / "state.db") as reader:
            assert reader.conditions()["CP-0001"].updated_at == after.updated_at
            last_seen = reader.stations()["CP-0001"].last_seen
            assert last_seen is not None and before.updated_at <= last_seen <= after.updated_at


async def test_the_outcome_kept_per_station_holds_what_the_api_reads_and_not_the_drift(tmp_path: Path) -> None:
    """`Daemon.latest` keeps one outcome per station until its next reconcile (10,000 of them): the
    plan's drift and the configuration read (~2 KiB a station) are dropped; what the API shows (status,
    reason, actions, notes, the observed timelines, the after-apply read-back) stays."""
    async with running(tmp_path, fleet_files(), IDS) as run:
        await run.synced()
        await run.daemon.queue.request("CP-0001", "test: periodic check")
        outcome = run.daemon.latest["CP-0001"]
        assert outcome.plan is not None and outcome.plan.drift == () and outcome.plan.actions == ()
        assert outcome.observation is not None and set(outcome.observation.timelines) == {0, 1, 2}
        assert dict(outcome.observation.configuration) == {}
        detail = (await run.http.get("/stations/CP-0001")).json()
        assert detail["last_plan"] == {"actions": [], "blocked": None, "refused": None, "notes": []}
        assert detail["limit"]["value_w"] is not None


async def test_what_a_disconnected_station_left_frozen_is_collected(tmp_path: Path) -> None:
    """gc.freeze keeps every object alive at the time out of the collector's reach for good: the
    transport of a station's connection that ended (a cycle: asyncio's socket transport) was never
    collected. A refreeze (unfreeze, collect, freeze) follows once a tenth of the frozen fleet's
    connections ended."""
    import gc
    import weakref

    gc.unfreeze()
    before = gc.get_threshold()
    try:
        async with running(tmp_path, fleet_files(), IDS, freeze_check=0.05) as run:
            await run.synced()
            await run.until(lambda: gc.get_freeze_count() > 0, "gc.freeze once the fleet settled")
            central = run.daemon.central
            assert central is not None
            ws = central._connections["CP-0001"].ws
            old, transport = weakref.ref(ws), weakref.ref(ws.transport)
            del ws
            await run.fleet.clients["CP-0001"].disconnect()
            await run.until(
                lambda: "CP-0001" in central._connections and central._connections["CP-0001"].ws is not old(),
                "CP-0001 reconnected",
            )
            await run.synced()
            await run.until(lambda: transport() is None, "the old connection's transport collected")
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
