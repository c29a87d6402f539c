"""Desired beside observed, per connector: the data of the dashboard's station view, as a public API.

Flow: HTTP -> these routes (auth by `Guard`) ->
- `GET /stations/{id}/schedules`: for connector 0 (the station's total) and each connector, the
  expected composite of the desired state (git + overrides + session intents) with the profile that
  governs each period (the `explain` data), the charger's live GetCompositeSchedule answer, and where
  they differ. Both sides are normalised and judged exactly as `plan` judges (`core.diff`: the
  station's units, "no limit" forms and tolerances), so a drift interval here is drift there.
- `GET /stations/{id}/connectors`: what the station itself reported per connector (StatusNotification,
  the latest MeterValues, its transaction), the limit in force, and the control source with its
  evidence (`control_source.py`).

Reads only: nothing here changes a charger or the store. Limits are in W; `null` means no limit.
A station that is not connected still gets its expected schedules, with `observed: null` and why.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from reconciler.api.auth import Guard
from reconciler.api.control_source import connector_statuses, control_source, profiles_held
from reconciler.api.errors import require_declared
from reconciler.api.views import connected, limit_in_force
from reconciler.core.composite import compute_composite
from reconciler.core.diff import (
    ConnectorDrift,
    Normaliser,
    ObservationError,
    compare_connector,
    expected_timeline,
    observed_from_ocpp,
)
from reconciler.core.explain import explain_composite
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import RateUnit, epoch_seconds, format_time
from reconciler.core.safety import Window
from reconciler.core.timeline import Timeline
from reconciler.daemon.service import Daemon
from reconciler.engine.observe import normaliser_for
from reconciler.policy import DesiredState
from reconciler.transport.gateway import ReplyKind

UNIT = RateUnit.W


def _steps(timeline: Timeline, start: int) -> list[dict[str, Any]]:
    return [{"start_s": b - start, "end_s": e - start, "limit_w": v} for b, e, v in timeline.segments()]


def _drift(drift: ConnectorDrift, start: int) -> dict[str, Any]:
    return {"in_sync": drift.in_sync, "classes": [c.value for c in drift.classes], "summary": drift.describe(),
            "mismatches": [{"start_s": m.start - start, "end_s": m.end - start, "expected_w": m.expected,
                            "observed_w": m.observed, "drift": m.drift.value} for m in drift.mismatches]}  # fmt: skip


def _sources(state: DesiredState) -> dict[int, dict[str, Any]]:
    """profile id -> where it comes from: a policy file:line, an override, a session intent."""
    out = {}
    for item in state.profiles:
        where = item.location.file
        from_git = not (where.startswith("override #") or where.startswith("session "))
        out[item.profile.charging_profile_id] = {"source": item.policy, "template": item.template,
                                                 "location": str(item.location) if from_git else None}  # fmt: skip
    return out


class Schedules:
    """One station's expected and observed schedules over one window, judged per connector."""

    def __init__(self, daemon: Daemon, station_id: str, duration: int) -> None:
        assert daemon.engine is not None
        self.daemon = daemon
        self.station_id = station_id
        self.duration = duration
        self.state = daemon.engine.desired_state(station_id)
        self.station = self.state.station
        self.context = self.station.context
        self.now = daemon.now()
        self.start = epoch_seconds(self.now)
        self.transactions = daemon.engine.transactions(station_id)
        self.installed = [(p.connector_id, p.profile) for p in self.state.profiles]
        self.normaliser = normaliser_for(self.context, self.station.max_current_a)
        self.window = Window(self.context, self.now, duration, UNIT, self.normaliser, self.transactions)

    def normaliser_of(self, connector: int) -> Normaliser:
        if connector == 0:  # the station's total: "no limit" means at or above every connector's maximum
            return replace(self.normaliser, max_current_a=self.station.max_current_a * self.station.connectors)
        return self.normaliser

    def hardware_w(self, connector: int) -> float:
        return self.station.max_power_w * (self.station.connectors if connector == 0 else 1)

    def expected(self, connector: int) -> Timeline:
        if connector > 0:
            return self.window.reported(InstalledProfiles.of(self.installed))[connector - 1]
        context = self.context.with_(limit_step=None)
        composite = compute_composite(self.installed, connector_id=0, now=self.now, duration=self.duration, unit=UNIT,
                                      context=context, transactions=self.transactions)  # fmt: skip
        return expected_timeline(composite, self.normaliser_of(0))

    def governing(self, connector: int) -> list[dict[str, Any]]:
        _, explanations = explain_composite(self.installed, connector_id=connector, now=self.now,
                                            duration=self.duration, unit=UNIT, context=self.context,
                                            transactions=self.transactions)  # fmt: skip
        sources = _sources(self.state)
        out = []
        for item in explanations:
            governor = item.period.governor
            profile_id = None if governor is None or governor.summed else governor.profile_id
            origin = sources.get(profile_id, {}) if profile_id is not None else {}
            out.append({"start_s": item.period.start_period, "limit_w": item.period.limit,
                        "profile": governor.describe() if governor is not None else None, "why": item.reason,
                        "source": origin.get("source"), "location": origin.get("location"),
                        "template": origin.get("template")})  # fmt: skip
        return out

    async def observed(self, connector: int) -> Timeline | str:
        gateway = self.daemon.gateway
        if gateway is None or not gateway.is_connected(self.station_id):
            return f"Station {self.station_id} not found or not connected"
        payload = {"connectorId": connector, "duration": self.duration, "chargingRateUnit": UNIT.value}
        reply = await gateway.call(self.station_id, "GetCompositeSchedule", payload)
        if reply.kind is not ReplyKind.ANSWERED or reply.payload is None:
            return f"GetCompositeSchedule connector {connector}: {reply.describe()}"
        try:
            return observed_from_ocpp(reply.payload, requested=UNIT, duration=self.duration,
                                      normaliser=self.normaliser_of(connector), asked_at=self.start)  # fmt: skip
        except ObservationError as exc:
            return f"GetCompositeSchedule connector {connector}: {exc}"

    async def connector(self, connector: int) -> dict[str, Any]:
        expected = self.expected(connector)
        observed = await self.observed(connector)
        out: dict[str, Any] = {"connector_id": connector, "hardware_w": self.hardware_w(connector),
                               "expected": _steps(expected, self.start), "governing": self.governing(connector),
                               "observed": None, "observed_error": None, "drift": None}  # fmt: skip
        if isinstance(observed, str):
            out["observed_error"] = observed
            return out
        out["observed"] = _steps(observed, self.start)
        out["drift"] = _drift(compare_connector(connector, expected, observed, self.normaliser_of(connector)),
                              self.start)  # fmt: skip
        return out


def router(daemon: Daemon, guard: Guard) -> APIRouter:
    api = APIRouter(tags=["stations"])
    read = [Depends(guard.reader)]

    @api.get("/stations/{station_id}/schedules", dependencies=read)
    async def schedules(
        station_id: str,
        duration: Annotated[int, Query(gt=0, le=7 * 86_400, description="window in seconds, from now")] = 86_400,
        connector_id: Annotated[int | None, Query(ge=0, le=64, description="one connector (default: all)")] = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Per connector (0 = the station's total): the expected composite with the profile that governs each
        period, the charger's live composite, and the intervals where they differ, judged as `plan` judges.
        Offsets `start_s`/`end_s` are seconds from `start`; limits in W, `null` = no limit."""
        require_declared(daemon.policies.stations, station_id)
        station = daemon.policies.stations[station_id]
        if connector_id is not None and connector_id > station.connectors:
            raise HTTPException(400, f"connector_id {connector_id} does not exist on {station_id}")
        view = Schedules(daemon, station_id, duration)
        ids = [connector_id] if connector_id is not None else list(range(station.connectors + 1))
        return {"station_id": station_id, "unit": UNIT.value, "start": format_time(view.now), "duration": duration,
                "connectors": [await view.connector(c) for c in ids]}  # fmt: skip

    @api.get("/stations/{station_id}/connectors", dependencies=read)
    async def connectors(station_id: str) -> dict[str, Any]:
        """What the station reported per connector (status, transaction, latest MeterValues), the limit in
        force, and what controls its power (OCPP limit, its local policy, or its hardware) with the evidence."""
        require_declared(daemon.policies.stations, station_id)
        assert daemon.store is not None
        info = getattr(daemon.gateway, "station", lambda _s: None)(station_id)
        limit = limit_in_force(daemon, station_id)
        configuration = daemon.store.configuration(station_id)
        source = control_source(limit, profiles_held(daemon.store.ledger(station_id)), info,
                                configuration[0] if configuration else None)  # fmt: skip
        statuses = connector_statuses(info)
        meters = getattr(info, "meter_values", None) or {}
        transactions = getattr(info, "transactions", None) or {}
        station = daemon.policies.stations[station_id]
        rows = []
        for c in range(station.connectors + 1):
            values = meters.get(c, {})
            running = transactions.get(c)
            rows.append({
                "connector_id": c, "status": statuses.get(c), "transaction_id": running[0] if running else None,
                "power_w": values.get("Power.Active.Import"), "offered_a": values.get("Current.Offered"),
                "energy_wh": values.get("Energy.Active.Import.Register"),
                "limit_w": limit["value_w"] if c == 0 else limit["connectors"].get(str(c)),
            })  # fmt: skip
        return {"station_id": station_id, "connected": connected(daemon, station_id),
                "control": source.to_json(), "limit": limit, "connectors": rows}  # fmt: skip

    return api
