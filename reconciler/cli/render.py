"""Plans and outcomes for people (Terraform-style text) and for programs (JSON).

Flow: engine `Outcome`s -> `render_text` / `outcomes_json` -> stdout (`saved_plan.py` writes
`--out FILE`). Rendering only formats data the engine computed; it decides nothing. At fleet
scale the text stays readable: stations in sync are counted, not listed (beyond `LIST_MAX`), and
stations offline for the same reason share one line. After an apply, each station shows what was
sent (`calls`) and, with --verbose, the verified read-back (the after-state), never the drift
seen before the apply. Everything is printed as plain text: station ids, reasons and diagnostics
come from policy files and chargers, so no rich markup, emoji codes (`p.yaml:100:1` is not
`p.yaml💯1`) or highlighting is applied (`plain_console`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from reconciler.core.diff import ConnectorDrift
from reconciler.core.plan import ActionKind
from reconciler.core.profiles import RateUnit, format_time, from_epoch
from reconciler.core.status import Status
from reconciler.core.timeline import Limit, walk
from reconciler.engine.outcome import Outcome

STATUS_MARK = {
    Status.SYNCED: "ok",
    Status.OUT_OF_SYNC: "changes",
    Status.PROGRESSING: "...",
    Status.DEGRADED: "DEGRADED",
    Status.OFFLINE: "OFFLINE",
    Status.SUSPENDED: "suspended",
}


def plain_console(*, stderr: bool = True) -> Console:
    """A rich console that prints text as given: no markup, no `:emoji:` codes, no highlighting."""
    return Console(stderr=stderr, soft_wrap=True, markup=False, emoji=False, highlight=False)


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


LIST_MAX = 20  # stations named on one summary line; more are counted (--verbose lists every one)


def station_block(
    outcome: Outcome, *, verbose: bool = False, applied: bool = False, calls: Sequence[str] = ()
) -> list[str]:
    head = f"{outcome.station_id}  {outcome.status.value}"
    if outcome.reason:
        head += f"  ({outcome.reason})"
    lines = [head]
    plan = outcome.plan
    if plan is None:
        return lines
    if applied:
        return lines + _applied_lines(outcome, plan, verbose, calls)
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


def _applied_lines(outcome: Outcome, plan: Any, verbose: bool, calls: Sequence[str]) -> list[str]:
    """After an apply: what was sent (and answered), then the verified after-state with --verbose."""
    lines = [f"  sent: {call}" for call in calls]
    if verbose and outcome.verified:
        lines.append("    verified read-back (after the apply):")
        for drift in outcome.verified:
            lines.extend(drift_lines(drift, indent="        "))
    for note in plan.notes:
        lines.append(f"    note: {note}")
    if plan.refused:
        lines.append(f"    REFUSED: {plan.refused}")
    if plan.blocked:
        lines.append(f"    BLOCKED: {plan.blocked}")
    return lines


def _to_change(outcome: Outcome) -> bool:
    """Counted as a change: a reachable station whose plan apply would execute (not blocked/refused)."""
    return outcome.status is Status.OUT_OF_SYNC and outcome.plan is not None and outcome.plan.executable


def summary(outcomes: Sequence[Outcome], *, applied: bool = False) -> str:
    kinds: Counter[ActionKind] = Counter(a.kind for o in outcomes if o.plan and _to_change(o) for a in o.plan.actions)
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
    to_change = sum(1 for o in outcomes if _to_change(o))
    blocked = sum(1 for o in outcomes if o.status is Status.OUT_OF_SYNC and not _to_change(o))
    trouble = [f"{blocked} blocked"] if blocked else []
    trouble += [f"{statuses[s]} {s.value.lower()}" for s in (Status.DEGRADED, Status.OFFLINE) if statuses[s]]
    orphans = [o for o in outcomes if o.removed and o.status is Status.OFFLINE and o.plan and o.plan.actions]
    if orphans:
        owned = sum(len(o.plan.actions) for o in orphans if o.plan)
        trouble.append(f"{owned} orphaned profile(s) on {len(orphans)} removed station(s) not reachable")
    return f"Plan: {changes}. {in_sync} in sync, {to_change} to change" + (
        f", {', '.join(trouble)}." if trouble else "."
    )


def _names(ids: Sequence[str], verbose: bool) -> str:
    ordered = sorted(ids)
    if verbose or len(ordered) <= LIST_MAX:
        return ", ".join(ordered)
    return f"{len(ordered)} stations ({ordered[0]} ... {ordered[-1]}; --verbose lists them)"


def render_text(
    outcomes: Sequence[Outcome], *, verbose: bool = False, applied: bool = False,
    calls: Mapping[str, Sequence[str]] | None = None,
) -> str:  # fmt: skip
    blocks = []
    offline: dict[str, list[str]] = {}
    for outcome in sorted(outcomes, key=lambda o: o.station_id):
        quiet = not (outcome.plan and outcome.plan.notes) and not (calls or {}).get(outcome.station_id)
        if outcome.status is Status.SYNCED and not verbose and quiet and not outcome.limitations:
            continue
        if outcome.status is Status.OFFLINE and outcome.plan is None and not verbose:
            offline.setdefault(outcome.reason or "offline", []).append(outcome.station_id)
            continue
        sent = (calls or {}).get(outcome.station_id, ())
        lines = station_block(outcome, verbose=verbose, applied=applied, calls=sent)
        blocks.append("\n".join(lines))
    for reason, ids in sorted(offline.items()):
        if len(ids) <= 3:
            blocks.extend(f"{s}  Offline  ({reason})" for s in ids)
        else:
            blocks.append(f"offline ({reason}): {_names(ids, verbose)}")
    synced = [o.station_id for o in outcomes if o.status is Status.SYNCED]
    if synced and not verbose:
        blocks.append(f"in sync: {_names(synced, verbose)}")
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


def outcome_json(outcome: Outcome, calls: Sequence[str] = ()) -> dict[str, Any]:
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
    if calls:
        out["calls"] = list(calls)
    if outcome.verified:
        out["verified"] = [_drift_json(d) for d in outcome.verified]
    if outcome.removed:
        out["removed"] = True
    if outcome.observation is not None and outcome.observation.charger_model is not None:
        out["chargerModel"] = outcome.observation.charger_model
    if outcome.clock_skew is not None:
        out["clockSkewSeconds"] = round(outcome.clock_skew, 3)
    out["limitations"] = [item.to_json() for item in outcome.limitations]
    return out


def outcomes_json(
    outcomes: Sequence[Outcome], revision: str | None, calls: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    statuses = Counter(o.status.value for o in outcomes)
    ordered = sorted(outcomes, key=lambda o: o.station_id)
    return {
        "revision": revision,
        "stations": [outcome_json(o, (calls or {}).get(o.station_id, ())) for o in ordered],
        "summary": {
            "stations": len(outcomes),
            **statuses,
            "actions": sum(len(o.plan.actions) for o in outcomes if o.plan and _to_change(o)),
            "toChange": sum(1 for o in outcomes if _to_change(o)),
            "blocked": sum(1 for o in outcomes if o.status is Status.OUT_OF_SYNC and not _to_change(o)),
            "offlineStations": [o.station_id for o in ordered if o.status is Status.OFFLINE],
        },
    }
