"""A final reply that does not settle whether the charger carried a Set or Clear out keeps it uncertain.

Three ways a run learned nothing certain although the charger did carry the call out:
- the first attempt's answer was lost and the retry was answered with a CallError (or Rejected):
  the retry's answer says nothing about the first attempt;
- the charger answered with something the OCPP 1.6 schema refuses (it processed the call);
- a proxy failed (HTTP 500) after forwarding the call.
Before, the engine took such a reply as "not carried out" and dropped the intent: a Set that
arrived became a foreign cap (blocked, never cleared: the reconciler disowned its own profile); a
Clear that arrived left its profile believed in force, and going back to it cleared the new cap
alone: the station uncapped. Real websockets, simulated chargers, SQLite (the proxy case through
a real HTTP inject API in front of the Central System)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.auth import Credentials
from reconciler.api.inject import inject_app
from reconciler.api.server import HttpServer
from reconciler.core.status import Status
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Reconciler, Settings
from reconciler.simulator.charge_point import SimCallError, SimulatedChargePoint
from reconciler.transport.inject import InjectGateway
from tests.engine.fleetkit import Rig, cap_policy, load, rig, station_doc, write

CP = "CP-0001"
RETRYING = Settings(horizon=6 * 3600, settle=0.02, verify_attempts=2,
                    retry=RetryPolicy(attempts=2, base_delay=0.01, call_timeout=0.5))  # fmt: skip
STEADY = Settings(horizon=6 * 3600, settle=0.02, verify_attempts=2)
OLD = {"station.yaml": station_doc(CP, "x"), "cap.yaml": cap_policy("cap", [CP], 16, profile_id=1, stack=0)}
NEW = {"station.yaml": station_doc(CP, "x"), "cap.yaml": cap_policy("cap", [CP], 12, profile_id=2, stack=1)}


def held(cp: SimulatedChargePoint) -> list[int]:
    return sorted(e.profile.charging_profile_id for e in cp.installed)


def uncapped(cp: SimulatedChargePoint) -> list[str]:
    return [s.action for s in cp.history if any(s.limit(c) is None for c in range(1, cp.connectors + 1))]


def misbehave(cp: SimulatedChargePoint, action: str, how: str) -> None:
    """The next `action` is carried out; then `how`: "retry error" (its answer is lost, the retry
    answered with a CallError), "retry rejected" (lost, the retry answered Rejected), "unreadable"
    (answered with a status OCPP does not know)."""
    handler = cp._handlers[action]
    seen = 0

    def wrapped(payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal seen
        seen += 1
        if seen == 1:
            answer = handler(payload)
            if how == "unreadable":
                cp._handlers[action] = handler
                return {"status": "Done"}
            cp.quirks = replace(cp.quirks, lose_answers=action)
            return answer
        cp.quirks = replace(cp.quirks, lose_answers="")
        cp._handlers[action] = handler
        if how == "retry rejected":
            return {"status": "Rejected"}
        raise SimCallError("InternalError", "busy")

    cp._handlers[action] = wrapped


async def converge_then_change(r: Rig, tmp: Path, action: str, how: str) -> SimulatedChargePoint:
    cp = r.fleet[CP]
    assert (await r.reconciler(load(write(tmp / "p", OLD))).reconcile_station(CP)).status is Status.SYNCED
    misbehave(cp, action, how)
    changed = await r.reconciler(load(write(tmp / "p", NEW)), RETRYING).reconcile_station(CP)
    assert changed.status is Status.DEGRADED, changed.reason
    assert held(cp) == ([1, 2] if action == "SetChargingProfile" else [2])  # the charger did carry it out
    return cp


async def back_to_old_cap(engine: Reconciler, cp: SimulatedChargePoint) -> None:
    cp.record_history = True
    planned = (await engine.plan([CP]))[0]
    assert planned.plan is not None and not planned.plan.blocked and not planned.plan.foreign, planned.reason
    back = await engine.reconcile_station(CP)
    assert uncapped(cp) == [], "the station was left without a cap"
    assert back.status is Status.SYNCED, back.reason
    assert held(cp) == [1] and [e.profile.id for e in engine.store.ledger(CP)] == [1]


CASES = [
    ("SetChargingProfile", "retry error"),
    ("SetChargingProfile", "retry rejected"),
    ("SetChargingProfile", "unreadable"),
    ("ClearChargingProfile", "retry error"),
    ("ClearChargingProfile", "unreadable"),
]


@pytest.mark.parametrize(("action", "how"), CASES)
async def test_a_call_carried_out_without_a_readable_answer_stays_uncertain(tmp_path: Path, action: str, how: str):
    async with rig(tmp_path, 1) as r:
        cp = await converge_then_change(r, tmp_path, action, how)
        await back_to_old_cap(r.reconciler(load(write(tmp_path / "p", OLD)), STEADY), cp)


@pytest.mark.parametrize("action", ["SetChargingProfile", "ClearChargingProfile"])
async def test_a_proxy_failing_after_forwarding_the_call_leaves_it_uncertain(tmp_path: Path, action: str):
    from fastapi.responses import JSONResponse

    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        assert (await r.reconciler(load(write(tmp_path / "p", OLD))).reconcile_station(CP)).status is Status.SYNCED
        app = inject_app(r.cs, Credentials("ops", "proxy-secret"))
        armed = {"on": True}

        @app.middleware("http")
        async def crash_after_forwarding(request: Any, call_next: Any) -> Any:
            body = await request.body()
            response = await call_next(request)
            if armed["on"] and action.encode() in body:
                armed["on"] = False
                return JSONResponse({"detail": "upstream handler crashed"}, 500)  # after the charger got it
            return response

        server = HttpServer(app)
        await server.start()
        try:
            async with InjectGateway(server.url, username="ops", password="proxy-secret") as proxy:
                changed = await Reconciler(proxy, r.store, load(write(tmp_path / "p", NEW)), STEADY).reconcile_station(
                    CP
                )
                assert changed.status is Status.DEGRADED, changed.reason
                assert held(cp) == ([1, 2] if action == "SetChargingProfile" else [2])
                await back_to_old_cap(Reconciler(proxy, r.store, load(write(tmp_path / "p", OLD)), STEADY), cp)
        finally:
            await server.stop()
