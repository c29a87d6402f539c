"""What the API shows: stations, their desired and observed state, schedules, as JSON-ready dicts.

Flow: a GET route -> these functions read the daemon (policies, store, latest outcomes, the
Central System's registry) -> dicts. They compute nothing the engine decides; the expected
schedule is the core's composite of the desired state, exactly as `plan` judges it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reconciler.api.control_source import control_source, profiles_held
from reconciler.core.actions import LedgerState
from reconciler.core.composite import compute_composite
from reconciler.core.context import Uncovered
from reconciler.core.diff import Normaliser
from reconciler.core.explain import explain_composite
from reconciler.core.physical import physical_limits
from reconciler.core.profiles import RateUnit, epoch_seconds, format_time, from_epoch, profile_to_ocpp
from reconciler.core.wire import composite_to_ocpp
from reconciler.daemon.in_force import in_force
from reconciler.daemon.power import drawn_w
from reconciler.daemon.service import Daemon
from reconciler.policy.model import labels_match


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def _info(daemon: Daemon, station_id: str) -> Any:
    gateway = daemon.gateway
    station = getattr(gateway, "station", None)
    return station(station_id) if callable(station) else None


LOOKAHEAD = 86_400  # how long a listed limit without a read-back holds (something else changes it first)
NOT_OURS = "charger"  # `source` of a limit the charger enforces that none of our profiles explains


def limit_in_force(daemon: Daemon, station_id: str, ledger: list[Any] | None = None) -> dict[str, Any]:
    """The limit in force now, in W, as the charger's latest read-back shows it (`daemon.in_force`: the
    after-state of an apply): the station's physical total (each connector's limit summed, capped by
    the ChargePointMaxProfile) and per connector (None: no limit there). `source`: override or policy
    (our profiles, by the ledger, explain the limit read back), charger (a limit none of ours
    explains), hardware (the read-back shows no limit), unknown (nothing read back: offline,
    suspended, not reconciled yet)."""
    return _limit(daemon, station_id, ledger)[0]


def _believed(daemon: Daemon, station_id: str, ledger: list[Any]) -> tuple[float | None, str | None]:
    """What the profiles the ledger records (but those a read-back showed not enforced) would enforce
    now on the station's total (physical, in W; None: no limit), and the profile that governs it: the
    ledger's account, to name where a limit read back comes from, never to stand in for it."""
    assert daemon.engine is not None
    station = daemon.policies.stations[station_id]
    installed = [(e.connector_id, e.profile) for e in ledger if e.state is not LedgerState.NOT_ENFORCED]
    if not installed:
        return None, None
    now = daemon.now()
    transactions = daemon.engine.transactions(station_id)
    normaliser = Normaliser(voltage=station.voltage, phases=station.phases, max_current_a=station.max_current_a,
                            connectors=station.connectors)  # fmt: skip
    _, total = physical_limits(installed, context=station.context, now=now, horizon=60, transactions=transactions,
                               normaliser=normaliser)  # fmt: skip
    context = station.context.with_(uncovered=Uncovered.NO_LIMIT, limit_step=None)
    composite = compute_composite(installed, connector_id=0, now=now, duration=60, unit=RateUnit.W, context=context,
                                  transactions=transactions)  # fmt: skip
    governing = composite.periods[0].governor if composite.periods else None
    return total.at(epoch_seconds(now)), governing.describe() if governing is not None else None


def _limit(daemon: Daemon, station_id: str, ledger: list[Any] | None = None) -> tuple[dict[str, Any], float]:
    """`limit_in_force`, and the epoch second until which it holds (a step of the read-back, or its end)."""
    assert daemon.store is not None and daemon.state is not None and daemon.engine is not None
    station = daemon.policies.stations[station_id]
    hardware = station.max_power_w * station.connectors
    now_s = epoch_seconds(daemon.now())
    found = in_force(daemon, station_id)
    connectors = [str(c) for c in range(1, station.connectors + 1)]
    limit: dict[str, Any] = {
        "value_w": None,
        "unit": "W",
        "connectors": dict.fromkeys(connectors),
        "source": "unknown",
        "hardware_w": hardware,
        "governed_by": None,
        "read_back_at": None,
        "evidence": "nothing read back from the charger yet (offline, suspended or not reconciled)",
    }
    if found is None or now_s >= found.total.end:
        return limit, float(now_s + LOOKAHEAD)
    total = found.connector_w(0, now_s)
    value = hardware if total is None else min(total, hardware)
    when = "after the last apply" if found.after_apply else "at the last check"
    per = {c: found.connector_w(int(c), now_s) for c in connectors}
    limit.update(value_w=value, read_back_at=format_time(from_epoch(found.at)), connectors=per)
    if value >= hardware - 1:
        limit.update(source="hardware", evidence=f"the charger read back no limit {when}")
        return limit, found.until(now_s)
    ledger = daemon.store.ledger(station_id) if ledger is None else ledger
    believed, governing = _believed(daemon, station_id, ledger)
    tolerance = Normaliser(voltage=station.voltage, phases=station.phases).tolerance(RateUnit.W, value)
    if believed is None or abs(believed - value) > tolerance:
        limit.update(source=NOT_OURS, evidence=f"the charger read back {value / 1000:.1f} kW {when}; none of the "
                     "profiles the reconciler installed explains it (a foreign profile?)")  # fmt: skip
        return limit, found.until(now_s)
    overrides = {int(o.profile.get("chargingProfileId", 0)) for o in daemon.state.overrides(station_id)}
    ours = "override" if overrides and any(e.profile.charging_profile_id in overrides for e in ledger) else "policy"
    limit.update(source=ours, governed_by=governing, evidence=f"the charger read back {value / 1000:.1f} kW {when}")
    return limit, found.until(now_s)


def connected(daemon: Daemon, station_id: str) -> bool:
    """Whether the station is connected: to the embedded Central System, or with `--via`, as the
    proxy answered the last call to it (a "not connected", a timeout, an unreachable proxy: False;
    before the first call: False)."""
    if daemon.inject is not None:
        seen = daemon.inject.reached(station_id)
        return seen is not None and seen[0]
    return bool(daemon.gateway is not None and daemon.gateway.is_connected(station_id))


def station_summary(daemon: Daemon, station_id: str, conditions: dict[str, Any]) -> dict[str, Any]:
    return summary_until(daemon, station_id, conditions.get(station_id))[0]


def summary_until(daemon: Daemon, station_id: str, condition: Any) -> tuple[dict[str, Any], float]:
    """A station's entry of `GET /stations`, and the epoch second until which it holds unless
    something it shows changes (its limits are time-dependent; `next_check_s` is always)."""
    station = daemon.policies.stations[station_id]
    state = daemon.policies.desired[station_id]
    info = _info(daemon, station_id)
    assert daemon.store is not None and daemon.state is not None
    ledger = daemon.store.ledger(station_id)  # read once: the limit in force and the profile count
    limit, until = _limit(daemon, station_id, ledger)
    overrides = daemon.state.overrides(station_id)
    profile_count = profiles_held(ledger)
    power = drawn_w(info.meter_values) if info is not None else None
    read = daemon.store.configuration(station_id) if limit["source"] == "hardware" else None  # only then it matters
    control = control_source(limit, profile_count, info, read[0] if read else None)
    last = daemon.last_reconcile.get(station_id)
    summary = {
        "id": station_id,
        "connected": connected(daemon, station_id),
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
    return summary, until


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
