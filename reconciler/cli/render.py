"""Plans and outcomes for people (Terraform-style text) and for programs (JSON).

Flow: engine `Outcome`s -> `render_text` / `outcomes_json` -> stdout; `saved_plan` -> `--out FILE`.
Rendering only formats data the engine computed; it decides nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from reconciler.core.diff import ConnectorDrift
from reconciler.core.plan import ActionKind
from reconciler.core.profiles import RateUnit, format_time, from_epoch
from reconciler.core.status import Status
from reconciler.core.timeline import Limit, walk
from reconciler.engine.reconcile import Outcome, action_digest, observed_json

STATUS_MARK = {
    Status.SYNCED: "ok",
    Status.OUT_OF_SYNC: "changes",
    Status.PROGRESSING: "...",
    Status.DEGRADED: "DEGRADED",
    Status.OFFLINE: "OFFLINE",
    Status.SUSPENDED: "suspended",
}


def _clock(moment: int, origin: int) -> str:
    """UTC wall-clock time of an instant, with a day offset from the read-back when not the same day."""
    days = (moment // 86_400) - (origin // 86_400)
    text = format_time(from_epoch(moment))[11:]
    return text if days == 0 else f"{text}+{days}d"


def _limit(value: Limit, unit: RateUnit) -> str:
    if value is None:
        return "no limit"
    return f"{value:.0f} {unit.value}" if abs(value - round(value)) < 0.05 else f"{value:.1f} {unit.value}"


def drift_lines(drift: ConnectorDrift, indent: str = "      ") -> list[str]:
    """Expected vs observed for one connector, stretch by stretch, relative to the read-back."""
    unit = drift.expected.unit
    origin = drift.observed.start
    lines = [f"{indent[:-2]}connector {drift.connector_id}: {drift.describe()}"]
    segments = list(walk(drift.expected, drift.observed))
    for begin, end, (value, observed) in segments[:12]:
        bad = next((m for m in drift.mismatches if m.start < end and begin < m.end), None)
        mark = f"<- {bad.drift.value}" if bad else ""
        lines.append(
            f"{indent}{_clock(begin, origin):>12} .. {_clock(end, origin):<12} "
            f"expected {_limit(value, unit):>10}   observed {_limit(observed, unit):>10}   {mark}".rstrip()
        )
    if len(segments) > 12:
        lines.append(f"{indent}... {len(segments) - 12} more")
    return lines


def station_block(outcome: Outcome, *, verbose: bool = False) -> list[str]:
    head = f"{outcome.station_id}  {outcome.status.value}"
    if outcome.reason:
        head += f"  ({outcome.reason})"
    lines = [head]
    plan = outcome.plan
    if plan is None:
        return lines
    for drift in plan.drift:
        if not drift.in_sync or verbose:
            lines.extend(drift_lines(drift))
    for action in plan.actions:
        lines.append(f"  {action.kind.symbol} {action.kind.value:<9} {action.describe()}   ({action.reason})")
        source = outcome.sources.get(action.profile.charging_profile_id) if action.profile else None
        if source:
            lines.append(f"      from {source}")
    if plan.actions:
        lines.append(f"    invariant: {plan.invariant}")
    if plan.refused:
        lines.append(f"    REFUSED: {plan.refused}")
    for note in plan.notes:
        lines.append(f"    note: {note}")
    if plan.blocked:
        lines.append(f"    BLOCKED: {plan.blocked}")
    return lines


def summary(outcomes: Sequence[Outcome], *, applied: bool = False) -> str:
    kinds: Counter[ActionKind] = Counter(a.kind for o in outcomes if o.plan for a in o.plan.actions)
    statuses = Counter(o.status for o in outcomes)
    if applied:
        parts = [f"{statuses[s]} {s.value}" for s in Status if statuses[s]]
        sent = sum((o.sent for o in outcomes), Counter[str]())
        calls = ", ".join(f"{n} {k}" for k, n in sorted(sent.items())) or "no changes sent"
        return f"Apply: {', '.join(parts) or 'nothing selected'} of {len(outcomes)} station(s); {calls}."
    changes = (
        f"{kinds[ActionKind.SET]} to set, {kinds[ActionKind.REPLACE]} to replace, {kinds[ActionKind.CLEAR]} to clear, "
        f"{kinds[ActionKind.CONFIGURE]} configuration, {kinds[ActionKind.PRUNE]} to prune"
    )
    in_sync = statuses[Status.SYNCED]
    to_change = sum(1 for o in outcomes if o.status is Status.OUT_OF_SYNC)
    trouble = [f"{statuses[s]} {s.value.lower()}" for s in (Status.DEGRADED, Status.OFFLINE) if statuses[s]]
    return f"Plan: {changes}. {in_sync} in sync, {to_change} to change" + (
        f", {', '.join(trouble)}." if trouble else "."
    )


def render_text(outcomes: Sequence[Outcome], *, verbose: bool = False, applied: bool = False) -> str:
    blocks = []
    for outcome in sorted(outcomes, key=lambda o: o.station_id):
        noted = outcome.limitations or (outcome.plan and outcome.plan.notes)
        if outcome.status is Status.SYNCED and not verbose and not noted:
            continue
        blocks.append("\n".join(station_block(outcome, verbose=verbose)))
    synced = [o.station_id for o in outcomes if o.status is Status.SYNCED]
    if synced and not verbose:
        blocks.append(f"in sync: {', '.join(sorted(synced))}")
    return "\n\n".join([*blocks, summary(outcomes, applied=applied)])


def _drift_json(drift: ConnectorDrift) -> dict[str, Any]:
    return {
        "connectorId": drift.connector_id,
        "inSync": drift.in_sync,
        "classes": [c.value for c in drift.classes],
        "expected": drift.expected.to_json(),
        "observed": drift.observed.to_json(),
        "unit": drift.expected.unit.value,
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    plan = outcome.plan
    out: dict[str, Any] = {"station": outcome.station_id, "status": outcome.status.value, "reason": outcome.reason}
    if plan is not None:
        actions = []
        for action in plan.actions:
            name, payload = action.ocpp()
            source = outcome.sources.get(action.profile.charging_profile_id) if action.profile else None
            actions.append({"kind": action.kind.value, "symbol": action.kind.symbol, "source": source,
                            "description": action.describe(), "reason": action.reason,
                            "ocpp": {"action": name, "payload": payload}})  # fmt: skip
        out.update(
            actions=actions,
            drift=[_drift_json(d) for d in plan.drift],
            invariant=plan.invariant,
            refused=plan.refused,
            notes=list(plan.notes),
            blocked=plan.blocked,
        )
    if outcome.sent:
        out["sent"] = dict(outcome.sent)
    if outcome.observation is not None and outcome.observation.charger_model is not None:
        out["chargerModel"] = outcome.observation.charger_model
    if outcome.clock_skew is not None:
        out["clockSkewSeconds"] = round(outcome.clock_skew, 3)
    out["limitations"] = [item.to_json() for item in outcome.limitations]
    return out


def outcomes_json(outcomes: Sequence[Outcome], revision: str | None) -> dict[str, Any]:
    statuses = Counter(o.status.value for o in outcomes)
    return {
        "revision": revision,
        "stations": [outcome_json(o) for o in sorted(outcomes, key=lambda o: o.station_id)],
        "summary": {
            "stations": len(outcomes),
            **statuses,
            "actions": sum(len(o.plan.actions) for o in outcomes if o.plan),
        },
    }


def saved_plan(
    outcomes: Sequence[Outcome], *, revision: str | None, digests: dict[str, str], horizon: int, at: int,
    policies: Sequence[str],
) -> dict[str, Any]:  # fmt: skip
    """The `--out` file: what was seen and decided, so `apply PLAN` can refuse if it changed."""
    stations = {}
    for outcome in outcomes:
        entry: dict[str, Any] = {"status": outcome.status.value, "desired": digests.get(outcome.station_id)}
        if outcome.observation is not None:
            entry["observed"] = observed_json(outcome.observation)
            entry["configuration"] = {k: v.value for k, v in outcome.observation.configuration.items()}
        if outcome.plan is not None:
            entry["actions"] = action_digest(outcome.plan.actions)
        stations[outcome.station_id] = entry
    return {
        "format": "reconciler-plan/v1",
        "createdAt": format_time(from_epoch(at)),
        "revision": revision,
        "policies": list(policies),
        "horizon": horizon,
        "stations": stations,
        "plan": outcomes_json(outcomes, revision),
    }
