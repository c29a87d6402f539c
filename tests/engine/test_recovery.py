"""Recovery and judgement cases from review: lost answers, interrupted runs, a charger's own default
limit, a foreign override. In-process (MemoryGateway + simulated charge points), real SQLite."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from reconciler import clock
from reconciler.core.actions import content_hash
from reconciler.core.context import StationContext, Uncovered
from reconciler.core.profiles import profile_to_ocpp
from reconciler.core.status import Status
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Reconciler, Settings
from reconciler.policy import load_policies
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.store.sqlite import Store
from reconciler.transport.gateway import Reply
from reconciler.transport.memory import MemoryGateway

FAST = Settings(horizon=6 * 3600, settle=0.0, verify_attempts=2, retry=RetryPolicy(attempts=1))


def profile_yaml(
    pid: int, limit: float, purpose: str = "ChargePointMaxProfile", connector: int = 0, stack: int = 0
) -> str:
    return textwrap.indent(
        textwrap.dedent(f"""
        - connectorId: {connector}
          chargingProfileId: {pid}
          stackLevel: {stack}
          chargingProfilePurpose: {purpose}
          chargingProfileKind: Absolute
          chargingSchedule:
            startSchedule: "2024-01-01T00:00:00Z"
            chargingRateUnit: A
            chargingSchedulePeriod: [{{startPeriod: 0, limit: {limit}}}]"""),
        "    ",
    )


def policies(tmp: Path, *profiles: str, station_spec: str = "connectors: 2, maxCurrentA: 32, phases: 3, voltage: 230"):
    folder = tmp / "p"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "station.yaml").write_text(
        f"apiVersion: reconciler/v1\nkind: Station\nmetadata: {{name: CP-1}}\nspec: {{{station_spec}}}\n"
    )
    (folder / "policy.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {name: p}\nspec:\n"
        "  selector: {stations: [CP-1]}\n  profiles:" + "".join(profiles) + "\n"
    )
    loaded = load_policies([folder], now=clock.now())
    assert loaded.ok, [d.format_text() for d in loaded.diagnostics]
    return loaded


def held(cp: SimulatedChargePoint) -> list[int]:
    return sorted(e.profile.charging_profile_id for e in cp.installed)


class LossyGateway(MemoryGateway):
    """Delivers SetChargingProfile of profile `lose` to the charger, then loses the answer."""

    lose: int | None = None

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Reply:
        if action == "SetChargingProfile" and payload["csChargingProfiles"]["chargingProfileId"] == self.lose:
            self.stations[station_id].handle(action, payload)
            return Reply.timeout("the answer was lost")
        return await super().call(station_id, action, payload, timeout=timeout)


async def test_a_lost_answer_after_an_accepted_set_is_not_forgotten(tmp_path: Path):
    cp = SimulatedChargePoint("CP-1")
    gateway = LossyGateway([cp])
    gateway.lose = 7
    store = Store(tmp_path / "s.db")
    both = policies(tmp_path, profile_yaml(1, 16), profile_yaml(7, 10, "TxDefaultProfile", 1, 3))
    first = await Reconciler(gateway, store, both, FAST).reconcile_station("CP-1")
    assert first.status is Status.OFFLINE and held(cp) == [1, 7]
    gateway.lose = None
    only_cap = policies(tmp_path, profile_yaml(1, 16))
    second = await Reconciler(gateway, store, only_cap, FAST).reconcile_station("CP-1")
    assert second.status is Status.SYNCED, second.reason
    assert held(cp) == [1] and [e.profile.id for e in store.ledger("CP-1")] == [1]
    store.close()


async def test_an_interrupted_set_is_cleared_even_when_the_next_run_fails_first(tmp_path: Path):
    cp = SimulatedChargePoint("CP-1")
    gateway = MemoryGateway([cp])
    store = Store(tmp_path / "s.db")
    old = policies(tmp_path, profile_yaml(1, 16), profile_yaml(7, 10, "TxDefaultProfile", 1, 3))
    item = next(p for p in old.desired["CP-1"].profiles if p.profile.id == 7)
    payload = {"connectorId": 1, "csChargingProfiles": profile_to_ocpp(item.profile)}
    store.begin_call(
        "CP-1", "SetChargingProfile", json.dumps(payload), clock.now(), content_hash=content_hash(1, item.profile)
    )
    cp.handle("SetChargingProfile", payload)  # it reached the charger; then the process died
    new = policies(tmp_path, profile_yaml(2, 12, stack=1))
    gateway.fail("CP-1", "SetChargingProfile", Reply.call_error("InternalError", "busy"), times=1)
    failed = await Reconciler(gateway, store, new, FAST).reconcile_station("CP-1")
    assert failed.status is Status.DEGRADED
    assert [(e.profile.id, e.confirmed) for e in store.ledger("CP-1")] == [(7, False)]  # still known to be ours
    healed = await Reconciler(gateway, store, new, FAST).reconcile_station("CP-1")
    assert healed.status is Status.SYNCED, healed.reason
    assert held(cp) == [2] and [e.profile.id for e in store.ledger("CP-1")] == [2]
    store.close()


async def test_a_charger_reporting_its_own_default_limit_is_in_sync(tmp_path: Path):
    # EVerest-like: 48 A reported where no profile applies, on a 63 A charger.
    spec = ("connectors: 2, maxCurrentA: 63, phases: 3, voltage: 230, "
            "conventions: {uncoveredTime: default_limit, defaultLimitA: 48, defaultLimitW: 33120}")  # fmt: skip
    loaded = policies(tmp_path, profile_yaml(5, 16, "TxDefaultProfile", 1, 1), station_spec=spec)
    ctx = StationContext(number_of_connectors=2, default_limit_a=48, default_limit_w=33120,
                         uncovered=Uncovered.DEFAULT_LIMIT, limit_step=0.1)  # fmt: skip
    cp = SimulatedChargePoint("CP-1", max_current=63, context=ctx)
    store = Store(tmp_path / "s.db")
    outcome = await Reconciler(MemoryGateway([cp]), store, loaded, FAST).reconcile_station("CP-1")
    assert outcome.status is Status.SYNCED, outcome.reason
    again = await Reconciler(MemoryGateway([cp]), store, loaded, FAST).reconcile_station("CP-1")
    assert again.status is Status.SYNCED and not again.plan.actions
    store.close()


async def test_a_foreign_override_is_named_as_a_possible_cause(tmp_path: Path):
    cp = SimulatedChargePoint("CP-1")
    gateway = MemoryGateway([cp])
    store = Store(tmp_path / "s.db")
    loaded = policies(tmp_path, profile_yaml(5, 10, "TxDefaultProfile", 0, 1))
    assert (await Reconciler(gateway, store, loaded, FAST).reconcile_station("CP-1")).status is Status.SYNCED
    override = {"connectorId": 0, "csChargingProfiles": {
        "chargingProfileId": 900, "stackLevel": 10, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {"startSchedule": "2024-01-01T00:00:00Z",
        "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 30}]}}}  # fmt: skip
    cp.handle("SetChargingProfile", override)
    outcome = await Reconciler(gateway, store, loaded, FAST).reconcile_station("CP-1")
    assert outcome.status is Status.DEGRADED
    # Two explanations, both named; `prune: foreign` is advised only when a foreign profile is the only one.
    assert "caps or overrides its own" in outcome.reason and "does not enforce them" in outcome.reason
    assert "prune: foreign" not in outcome.reason
    assert 900 in held(cp)  # never cleared without `prune: foreign`
    store.close()
