"""What the API shows: stations, their desired and observed state, schedules, as JSON-ready dicts.

Flow: a GET route -> these functions read the daemon (policies, store, latest outcomes, the
Central System's registry) -> dicts. They compute nothing the engine decides; the expected
schedule is the core's composite of the desired state, exactly as `plan` judges it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reconciler.api.control_source import control_source
from reconciler.core.composite import compute_composite
from reconciler.core.context import Uncovered
from reconciler.core.explain import explain_composite
from reconciler.core.profiles import RateUnit, format_time, profile_to_ocpp
from reconciler.core.wire import composite_to_ocpp
from reconciler.daemon.power import drawn_w
from reconciler.daemon.service import Daemon, limit_w
from reconciler.policy.model import labels_match


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def _info(daemon: Daemon, station_id: str) -> Any:
    gateway = daemon.gateway
    station = getattr(gateway, "station", None)
    return station(station_id) if callable(station) else None


def limit_in_force(daemon: Daemon, station_id: str, ledger: list[Any] | None = None) -> dict[str, Any]:
    """The limit in force now, in W: the station total (connector 0) the charger enforces with the
    profiles the ledger records (verified by read-back when Synced), and per connector from the last
    read-back. `source`: override, policy, or hardware (no profile limits the station)."""
    assert daemon.store is not None and daemon.state is not None and daemon.engine is not None
    station = daemon.policies.stations[station_id]
    hardware = station.max_power_w * station.connectors
    ledger = daemon.store.ledger(station_id) if ledger is None else ledger
    installed = [(e.connector_id, e.profile) for e in ledger]
    context = station.context.with_(uncovered=Uncovered.NO_LIMIT, limit_step=None)
    composite = compute_composite(
        installed,
        connector_id=0,
        now=daemon.now(),
        duration=1,
        unit=RateUnit.W,
        context=context,
        transactions=daemon.engine.transactions(station_id),
    )
    first = composite.periods[0].limit if composite.periods else None
    value = hardware if first is None else min(first, hardware)
    per = {str(c): limit_w(daemon, station_id, c) for c in range(1, station.connectors + 1)}
    overrides = {int(o.profile.get("chargingProfileId", 0)) for o in daemon.state.overrides(station_id)}
    governing = composite.periods[0].governor if composite.periods else None
    if value >= hardware - 1:
        source = "hardware"
    elif overrides and any(e.profile.charging_profile_id in overrides for e in ledger):
        source = "override"
    else:
        source = "policy"
    return {
        "value_w": value,
        "unit": "W",
        "connectors": per,
        "source": source,
        "hardware_w": hardware,
        "governed_by": governing.describe() if governing is not None else None,
    }


def station_summary(daemon: Daemon, station_id: str, conditions: dict[str, Any]) -> dict[str, Any]:
    station = daemon.policies.stations[station_id]
    state = daemon.policies.desired[station_id]
    condition = conditions.get(station_id)
    info = _info(daemon, station_id)
    gateway = daemon.gateway
    connected = bool(gateway is not None and gateway.is_connected(station_id))
    assert daemon.store is not None and daemon.state is not None
    ledger = daemon.store.ledger(station_id)  # read once: the limit in force and the profile count
    limit = limit_in_force(daemon, station_id, ledger)
    overrides = daemon.state.overrides(station_id)
    profile_count = len(ledger)
    power = drawn_w(info.meter_values) if info is not None else None
    read = daemon.store.configuration(station_id) if limit["source"] == "hardware" else None  # only then it matters
    control = control_source(limit, profile_count, info, read[0] if read else None)
    last = daemon.last_reconcile.get(station_id)
    return {
        "id": station_id,
        "connected": connected,
        "condition": condition.status.value if condition else None,
        "reason": condition.reason if condition else None,
        "since": _time(condition.since) if condition else None,
        "revision": condition.revision if condition else daemon.policies.revision,
        "last_reconcile": _time(last),
        "next_check_s": daemon.queue.next_check(station_id),
        "limit": limit,
        "control_source": control.text,
        "control": control.to_json(),
        "profile_count": profile_count,
        "power_w": power,
        "overrides": [o.id for o in overrides],
        "labels": dict(station.labels),
        "site": state.site,
        "sync": state.sync,
        "connectors": station.connectors,
        "model": getattr(info, "model", None),
        "vendor": getattr(info, "vendor", None),
    }


def parse_selector(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"selector {text!r}: expected KEY=VALUE[,KEY=VALUE]")
        out[key.strip()] = value.strip()
    return out


def stations(daemon: Daemon, condition: str | None, selector: dict[str, str] | None) -> list[dict[str, Any]]:
    conditions = daemon.conditions()
    out = []
    for name in sorted(daemon.policies.stations):
        if not labels_match(selector, daemon.policies.stations[name].labels):
            continue
        current = conditions.get(name)
        if condition is not None and (current is None or current.status.value.lower() != condition.lower()):
            continue
        out.append(station_summary(daemon, name, conditions))
    return out


def station_detail(daemon: Daemon, station_id: str) -> dict[str, Any]:
    assert daemon.engine is not None and daemon.store is not None and daemon.state is not None
    summary = station_summary(daemon, station_id, daemon.conditions())
    station = daemon.policies.stations[station_id]
    layered = daemon.engine.desired_state(station_id)
    desired = [
        {
            "connector_id": p.connector_id,
            "profile_id": p.profile.charging_profile_id,
            "source": p.policy,
            "location": str(p.location),
            "template": p.template,
            "profile": profile_to_ocpp(p.profile),
        }
        for p in layered.profiles
    ]
    ledger = [
        {
            "connector_id": e.connector_id,
            "profile_id": e.profile.charging_profile_id,
            "revision": e.revision,
            "confirmed": e.confirmed,
            "purpose": e.profile.purpose.value,
            "stack_level": e.profile.stack_level,
        }
        for e in daemon.store.ledger(station_id)
    ]
    configuration = daemon.store.configuration(station_id)
    caps = station.context.capabilities
    capabilities = {
        "ChargeProfileMaxStackLevel": caps.max_stack_level,
        "ChargingScheduleMaxPeriods": caps.max_periods,
        "MaxChargingProfilesInstalled": caps.max_profiles,
        "ChargingScheduleAllowedChargingRateUnit": [u.value for u in caps.allowed_units],
        "read_from_charger": {k: v.get("value") for k, v in configuration[0].items()} if configuration else None,
    }
    events = [_event(e) for e in daemon.store.events(station_id=station_id, limit=50)]
    outcome = daemon.latest.get(station_id)
    plan = None
    if outcome is not None and outcome.plan is not None:
        plan = {
            "actions": [f"{a.kind.symbol} {a.describe()}" for a in outcome.plan.actions],
            "blocked": outcome.plan.blocked,
            "refused": outcome.plan.refused,
            "notes": list(outcome.plan.notes),
        }
    return {
        **summary,
        "desired_profiles": desired,
        "ledger": ledger,
        "override_details": [o.to_json() for o in daemon.state.overrides(station_id)],
        "intents": [
            {"transaction_id": i.transaction_id, "connector_id": i.connector_id, "policy": i.policy}
            for i in daemon.state.intents(station_id)
        ],
        "capabilities": capabilities,
        "last_plan": plan,
        "events": events,
    }


def _event(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _time(event.at),
        "station_id": event.station_id,
        "kind": event.kind,
        "message": event.message,
        "revision": event.revision,
    }


def events(daemon: Daemon, station: str | None, kind: str | None, since: int, limit: int) -> list[dict[str, Any]]:
    assert daemon.store is not None
    found = daemon.store.events(station_id=station, after=since, limit=limit if kind is None else 5000)
    out = [_event(e) for e in found if kind is None or e.kind == kind or e.kind.startswith(kind + ".")]
    return out[-limit:]


def expected_schedule(
    daemon: Daemon, station_id: str, connector_id: int, duration: int, unit: RateUnit, *, explain: bool = False
) -> dict[str, Any]:
    """What the charger should answer to GetCompositeSchedule, from the desired state (with overrides)."""
    assert daemon.engine is not None
    state = daemon.engine.desired_state(station_id)
    installed = [(p.connector_id, p.profile) for p in state.profiles]
    context = state.station.context
    transactions = daemon.engine.transactions(station_id)
    now = daemon.now()
    if explain:
        composite, explanations = explain_composite(
            installed,
            connector_id=connector_id,
            now=now,
            duration=duration,
            unit=unit,
            context=context,
            transactions=transactions,
        )
    else:
        composite = compute_composite(
            installed,
            connector_id=connector_id,
            now=now,
            duration=duration,
            unit=unit,
            context=context,
            transactions=transactions,
        )
        explanations = []
    out = composite_to_ocpp(composite)
    if explain:
        out["explain"] = [
            {"startPeriod": e.period.start_period, "limit": e.period.limit, "why": e.reason} for e in explanations
        ]
    return out
