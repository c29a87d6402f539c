"""What a reconcile says of one station: its `Outcome` (status, reason, plan, what was sent), and the
words and digests built from it (the reason of a pending plan, of a charger that restarted mid-run, of
one that allows more than the policy; the digests a saved plan is checked by).

Flow: `reconcile.Reconciler` -> `Outcome` -> (cli) render, saved plans; (daemon) the API, events.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.diff import ConnectorDrift
from reconciler.core.plan import Action, ActionKind, Desired, StationPlan, content_hash
from reconciler.core.readback import Limitation
from reconciler.core.status import Status
from reconciler.engine.calls import ChargerRestarted
from reconciler.engine.observe import Observation
from reconciler.policy import DesiredState


@dataclass(slots=True)
class Outcome:
    """How one station ended: a status, why, and what was planned and sent."""

    station_id: str
    status: Status
    reason: str | None
    plan: StationPlan | None = None
    observation: Observation | None = None
    sent: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    refused_stale: bool = False
    sources: dict[int, str] = field(default_factory=dict)  # profile id -> "policy (file:line:col)"
    verified: tuple[ConnectorDrift, ...] = ()  # the read-back that ended an apply (after-state)
    removed: bool = False  # the station is no longer declared: its owned profiles are cleared, then forgotten
    clock_skew: float | None = None  # seconds the charger's clock is ahead of ours (behind: negative)
    limitations: tuple[Limitation, ...] = ()  # what a Synced could not verify (e.g. TxDefault while idle)

    @property
    def changes(self) -> bool:
        return bool(self.plan and self.plan.actions)


Progress = Callable[[str, str], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    reason: str | None


def desired_of(state: DesiredState) -> Desired:
    return Desired(
        tuple((p.connector_id, p.profile) for p in state.profiles),
        dict(state.configuration),
        state.prune_foreign,
    )


def desired_digest(state: DesiredState) -> str:
    """What git asks of a station, as one digest (a saved plan is stale when it changes)."""
    parts = [content_hash(p.connector_id, p.profile) for p in state.profiles]
    parts += [f"{k}={v}" for k, v in sorted(state.configuration.items())]
    parts.append(f"prune={state.prune_foreign}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


async def report(progress: Progress | None, station_id: str, phase: str) -> None:
    if progress is None:
        return
    result = progress(station_id, phase)
    if result is not None:
        await result


def pending_reason(plan: StationPlan) -> str:
    """Why a station that reports what the ledger predicts still has actions: the actions' own
    reasons, counted (never "policy changed" when a Set merely failed before)."""
    if not plan.owned:
        return f"not reconciled yet: {len(plan.actions)} action(s) to apply"

    def why(action: Action) -> str:
        if action.kind is ActionKind.CONFIGURE:
            return "configuration"
        return action.reason if action.kind is ActionKind.PRUNE else action.reason.split(" (")[0].split(":")[0]

    reasons = Counter(why(a) for a in plan.actions)
    detail = ", ".join(f"{n} {why}" for why, n in reasons.items())
    return f"{len(plan.actions)} action(s) to apply: {detail}"


def overridden_reason(plan: StationPlan) -> str:
    """A charger that allows more than our profiles although it accepted them (`StationPlan.overridden`)."""
    first = plan.overridden[0]
    where = "connector 0 (the station total)" if first.connector_id == 0 else f"connector {first.connector_id}"
    return (
        f"the charger allows more than the policy ({where} {first.describe()}) although it accepted our "
        "profiles: one the reconciler did not install may override them (a higher stack level), or the charger "
        "does not enforce what it accepts; `prune: foreign` on the policy lets the reconciler remove profiles "
        "it did not install"
    )


def stopped_before(stop: ChargerRestarted) -> str:
    """What a run that saw the charger restart did not send: "before clearing #2", ..."""
    payload = stop.payload
    if stop.action == "ClearChargingProfile":
        if isinstance(payload.get("id"), int):
            what = f"clearing #{payload['id']}"
        else:
            what = "clearing " + ", ".join(f"{k} {v}" for k, v in sorted(payload.items())) if payload else "clearing"
    else:
        profile = payload.get("csChargingProfiles")
        pid = profile.get("chargingProfileId") if isinstance(profile, dict) else None
        what = f"sending {stop.action}" + (f" #{pid}" if isinstance(pid, int) else "")
    if stop.action != "ClearChargingProfile" or stop.sent:
        what += " again" + (" (an earlier attempt went unanswered: it may have been carried out)" if stop.sent else "")
    return f"before {what}"


def action_digest(actions: Sequence[Action]) -> list[str]:
    """A comparable description of a plan's actions (for saved plans)."""
    return [f"{a.kind.symbol} {a.describe()}" for a in actions]


def observed_json(observation: Observation) -> dict[str, Any]:
    return {str(c): {"start": t.start, "end": t.end, "unit": t.unit.value, "steps": [list(s) for s in t.steps]}
            for c, t in observation.timelines.items()}  # fmt: skip
