"""Issue 9 item 4: a transaction the command did not see start must not turn our cap into a foreign one.

Each command runs its own Central System, so a transaction that started under an earlier command
(or while nobody listened) is unknown to a later one unless it is remembered (the store's journal)
or learnt on connect (StatusNotification via TriggerMessage; MeterValues carry the transactionId).
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler.cli.render import outcome_json, render_text
from reconciler.core.status import Status
from reconciler.engine.reconcile import Reconciler
from reconciler.simulator.fleet import Fleet
from reconciler.simulator.quirks import Quirks
from reconciler.store.sqlite import Store
from reconciler.transport.central_system import CentralSystem
from tests.engine.fleetkit import FAST, PASSWORD, WAIT, load, rig, station_doc, write
from tests.engine.test_cli_apply import free_port

STATION = "CP-0001"


def default_policy(*, kind: str = "Absolute", periods: str = "[{startPeriod: 0, limit: 10}]") -> str:
    start = "" if kind == "Relative" else 'startSchedule: "2024-01-01T00:00:00Z", '
    return textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: ChargingPolicy
        metadata: {{name: tx-default}}
        spec:
          selector: {{stations: [{STATION}]}}
          profiles:
            - connectorId: 0
              chargingProfileId: 5
              stackLevel: 1
              chargingProfilePurpose: TxDefaultProfile
              chargingProfileKind: {kind}
              chargingSchedule: {{{start}chargingRateUnit: A, chargingSchedulePeriod: {periods}}}
        """)


def micro_ocpp_station() -> str:
    declared = "voltage: 230, conventions: {simulateTransactionActive: false}}"
    return station_doc(STATION, "x").replace("voltage: 230}", declared)


class Commands:
    """One simulated station and a state file; each `command()` is a Central System of its own on
    the same port, as each `reconciler plan`/`apply` process is."""

    def __init__(self, tmp: Path, fleet: Fleet, port: int) -> None:
        self.tmp, self.fleet, self.port = tmp, fleet, port

    @asynccontextmanager
    async def command(self) -> AsyncIterator[tuple[CentralSystem, Store]]:
        store = Store(self.tmp / "state.db")
        cs = CentralSystem(port=self.port, passwords={"*": PASSWORD}, known_stations=[STATION])
        async with cs:
            assert await cs.wait_for_stations([STATION], WAIT, booted=False) == {STATION}
            try:
                yield cs, store
            finally:
                store.close()
        client = self.fleet.clients[STATION]
        for _ in range(int(WAIT / 0.02)):  # the station notices the Central System went away
            if not client.connected.is_set():
                break
            await asyncio.sleep(0.02)


@asynccontextmanager
async def station(tmp: Path, quirks: Quirks) -> AsyncIterator[Commands]:
    port = free_port()
    fleet = Fleet(f"ws://127.0.0.1:{port}", 1, prefix="CP-", password=PASSWORD, quirks=quirks,
                  backoff_initial=0.05, backoff_max=0.2)  # fmt: skip
    async with fleet:
        yield Commands(tmp, fleet, port)


async def test_a_transaction_started_under_an_earlier_command_is_remembered(tmp_path: Path):
    """MicroOcpp counts a TxDefaultProfile only during a transaction: a later command that thinks the
    connector idle expects no limit, sees 10 A, and (on main) blocked every plan as a foreign cap."""
    policies = load(write(tmp_path / "p", {"s.yaml": micro_ocpp_station(), "d.yaml": default_policy()}))
    async with station(tmp_path, Quirks(tx_default_when_idle=False)) as commands:
        cp = commands.fleet[STATION]
        async with commands.command() as (cs, store):
            outcome = await Reconciler(cs, store, policies, FAST).reconcile_station(STATION)
            assert outcome.status is Status.SYNCED, outcome.reason
            transaction_id = await cp.start_transaction(1)
            assert transaction_id is not None
        async with commands.command() as (cs, store):
            planned = (await Reconciler(cs, store, policies, FAST).plan([STATION]))[0]
            assert planned.status is Status.SYNCED, planned.reason
            assert planned.plan is not None and not planned.plan.blocked and not planned.plan.foreign
            [running] = store.journal.running(STATION)
            assert (running.transaction_id, running.connector_id) == (transaction_id, 1)
            assert running.started_at == cp.transactions[1].start
            await cp.stop_transaction(1)
            for _ in range(int(WAIT / 0.02)):
                if not store.journal.running(STATION):
                    break
                await asyncio.sleep(0.02)
            [done] = store.journal.history(STATION, limit=1)
            assert done.transaction_id == transaction_id and done.stopped_at is not None


async def test_a_transaction_started_while_nobody_listened_is_learnt_on_connect(tmp_path: Path):
    """A Relative TxDefaultProfile is anchored at the transaction start, which nobody saw: the
    charger's answer must not be blamed on a foreign profile (its start is inferred from it)."""
    relative = default_policy(kind="Relative", periods="[{startPeriod: 0, limit: 16}, {startPeriod: 3600, limit: 8}]")
    policies = load(write(tmp_path / "p", {"s.yaml": station_doc(STATION, "x"), "d.yaml": relative}))
    async with station(tmp_path, Quirks()) as commands:
        cp = commands.fleet[STATION]
        async with commands.command() as (cs, store):
            outcome = await Reconciler(cs, store, policies, FAST).reconcile_station(STATION)
            assert outcome.status is Status.SYNCED, outcome.reason
        transaction_id = await cp.start_transaction(1)  # offline: the StartTransaction reaches nobody
        assert transaction_id is not None and cp.sent["StartTransaction"] == 1
        started = cp.transactions[1]  # it started ten minutes ago, while nobody listened
        cp.transactions[1] = replace(started, start=started.start - timedelta(minutes=10))
        async with commands.command() as (cs, store):
            planned = (await Reconciler(cs, store, policies, FAST).plan([STATION]))[0]
            assert planned.plan is not None and not planned.plan.blocked, planned.reason
            assert planned.status is Status.SYNCED, planned.reason
            [running] = store.journal.running(STATION)
            assert running.connector_id == 1 and running.transaction_id == transaction_id  # from MeterValues
            assert running.started_at is None
            assert any("start was not seen" in item.message for item in planned.limitations), planned.limitations


async def test_journal_survives_the_process_and_hands_out_fresh_ids(tmp_path: Path):
    store = Store(tmp_path / "state.db")
    t0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
    store.journal.transaction_started("CP-1", 1, 7, t0, meter_start=120, id_tag="TAG", at=t0)
    store.journal.transaction_seen("CP-1", 2, None, t0)  # a Charging status: runs, start and id unknown
    store.journal.transaction_seen("CP-1", 2, 41, t0)  # then its MeterValues: the id
    store.close()
    again = Store(tmp_path / "state.db")
    running = again.journal.running("CP-1")
    assert [(r.connector_id, r.transaction_id, r.started_at, r.meter_start) for r in running] == [
        (1, 7, t0, 120), (2, 41, None, None)]  # fmt: skip
    assert again.journal.next_transaction_id() == 42
    again.journal.connector_free("CP-1", 2, t0)  # it reports Available: that transaction ended unseen
    again.journal.transaction_stopped("CP-1", 7, t0, meter_stop=900, reason="EVDisconnected")
    assert again.journal.running("CP-1") == []
    assert {r.transaction_id: r.stop_reason for r in again.journal.history("CP-1")} == {
        7: "EVDisconnected", 41: "ended unseen (the connector is free)"}  # fmt: skip
    again.close()


async def test_synced_says_a_tx_default_is_not_verifiable_while_idle(tmp_path: Path):
    """Item 7: a charger that counts TxDefaultProfile only during a transaction cannot show one lost
    while idle; Synced says so (reason and JSON), and the loss shows once a transaction runs."""
    policies = load(write(tmp_path / "p", {"s.yaml": micro_ocpp_station(), "d.yaml": default_policy()}))
    async with rig(tmp_path, 1, quirks=Quirks(tx_default_when_idle=False)) as r:
        outcome = (await r.reconciler(policies).apply([STATION]))[0]
        assert outcome.status is Status.SYNCED
        cp = r.fleet[STATION]
        cp.installed, _ = cp.installed.clear(profile_id=5)  # lost behind our back, invisible while idle
        planned = (await r.reconciler(policies).plan([STATION]))[0]
        assert planned.status is Status.SYNCED
        assert "TxDefaultProfile not verifiable while idle (connectors 1, 2)" in (planned.reason or "")
        document = outcome_json(planned)
        assert [item["code"] for item in document["limitations"]] == ["tx-default-idle"]
        assert document["limitations"][0]["connectors"] == [1, 2]
        assert "TxDefaultProfile not verifiable while idle" in render_text([planned])
        await cp.start_transaction(1)
        during = (await r.reconciler(policies).plan([STATION]))[0]
        assert during.status is Status.OUT_OF_SYNC, during.reason  # verified now: the loss shows
        assert during.plan is not None and [a.profile.charging_profile_id for a in during.plan.actions] == [5]
