"""Prune foreign profiles (`prune: foreign`) with a bound, an early stop and a memory.

Flow: (reconcile) the plan's `!` prune actions, after its sets and clears -> `run_prunes` sends
them in the plan's order (the groups that can explain the foreign cap first) and, after every
Clear the charger answers Accepted, reads the station back: once it reports what the ledger says
it holds, the rest is not sent. A prune whose every Clear answered Unknown while the cap stayed
changed nothing; it is remembered (`store.prunes`) with a fingerprint of what the charger showed,
reported once, and not repeated before a back-off (1 h, doubling to a day) unless the charger
shows something else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from reconciler.core.actions import Action, ActionKind
from reconciler.core.diff import ConnectorDrift, DriftClass
from reconciler.core.installed import InstalledProfiles
from reconciler.core.plan import StationPlan, prune_bound
from reconciler.core.profiles import format_time
from reconciler.core.safety import Window
from reconciler.core.status import Status
from reconciler.engine.calls import Caller
from reconciler.engine.observe import Failure, Observation, failure_of, read_answers
from reconciler.store.prunes import FruitlessPrune
from reconciler.store.sqlite import Store
from reconciler.transport.gateway import Reply, ReplyKind

BACKOFF = timedelta(hours=1)
BACKOFF_MAX = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class PruneRun:
    sent: int  # ClearChargingProfile calls
    cleared: int  # answered Accepted: something was there
    gone: bool  # the charger reports what the ledger says it holds (no foreign cap left)
    left: int  # prune actions not sent because the cap was gone


def foreign_fingerprint(drift: Sequence[ConnectorDrift]) -> str:
    """What a foreign cap looks like, independent of when it was seen: where, what kind, how much."""
    parts = sorted(
        f"{d.connector_id}:{m.drift.value}:{'none' if m.observed is None else round(m.observed, 1)}"
        for d in drift
        for m in d.mismatches
        if m.drift in (DriftClass.EXTRA, DriftClass.SHADOWED)
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def retry_after(at: datetime, attempts: int) -> datetime:
    return at + min(BACKOFF * (1 << min(max(0, attempts - 1), 8)), BACKOFF_MAX)


def held_back(
    plan: StationPlan, memory: FruitlessPrune | None, fingerprint: str, now: datetime
) -> tuple[StationPlan, str | None]:
    """The plan without its prunes, and why, when the same prune changed nothing last time and
    its back-off has not passed (then the plan is blocked if nothing else is left to do)."""
    if memory is None or memory.fingerprint != fingerprint or now >= memory.retry_after:
        return plan, None
    why = (
        f"prune: foreign is not repeated: the last one ({format_time(memory.attempted_at)}) sent {memory.calls} "
        f"ClearChargingProfile, every one answered Unknown, and the charger still shows the same cap; next try "
        f"after {format_time(memory.retry_after)}, or as soon as the charger shows something else"
    )
    rest = tuple(a for a in plan.actions if a.kind is not ActionKind.PRUNE)
    return replace(plan, actions=rest, notes=(*plan.notes, why), blocked=None if rest else why), why


async def run_prunes(
    caller: Caller, station_id: str, actions: Sequence[Action], *,
    gone: Callable[[], Awaitable[bool | Failure]], record: Callable[[Action, Reply], None],
) -> PruneRun | Failure:  # fmt: skip
    """Send the prune clears in order; stop once `gone()` says the foreign cap is gone."""
    sent = cleared = 0
    for index, action in enumerate(actions):
        name, payload = action.ocpp()
        reply = await caller.call(station_id, name, payload)
        sent += 1
        record(action, reply)
        if reply.kind is not ReplyKind.ANSWERED:
            return failure_of(reply, f"{name} ({action.describe()})")
        if reply.status == "Accepted":
            cleared += 1
            done = await gone()
            if isinstance(done, Failure):
                return done
            if done:
                return PruneRun(sent, cleared, True, len(actions) - index - 1)
    return PruneRun(sent, cleared, False, 0)


def fruitless_reason(run: PruneRun, bound_note: str | None, until: datetime) -> str:
    bound = f" ({bound_note})" if bound_note else ""
    return (
        f"prune: foreign cleared nothing: {run.sent} ClearChargingProfile answered Unknown{bound}, and the cap the "
        f"reconciler did not install remains; it is not a profile these clears reach. Not repeated before "
        f"{format_time(until)} unless the charger shows something else"
    )


async def prune_station(
    caller: Caller, store: Store, station_id: str, before: Observation, prunes: Sequence[Action], *,
    held: Callable[[], InstalledProfiles], drift: Callable[[Observation, InstalledProfiles], list[ConnectorDrift]],
    window: Window, horizon: int, now: Callable[[], datetime], record: Callable[[Action, Reply], None],
) -> Failure | None:  # fmt: skip
    """Run the prunes of one station (after its sets and clears), reading it back after each Clear
    that removed something; None when done, a Failure (Degraded) when they changed nothing."""

    async def gone() -> bool | Failure:
        readings = await read_answers(
            caller, station_id, sorted(before.timelines), unit=before.unit, horizon=horizon,
            normaliser=before.normaliser, now=now(),
        )  # fmt: skip
        if isinstance(readings, Failure):
            return readings
        after = replace(before, timelines=readings.timelines, at=now())
        return all(d.in_sync for d in drift(after, held()))

    run = await run_prunes(caller, station_id, prunes, gone=gone, record=record)
    if isinstance(run, Failure):
        return run
    if run.cleared:
        store.prunes.forget(station_id)
        return None
    fingerprint = foreign_fingerprint(drift(before, held()))
    at = now()
    last = store.prunes.last(station_id)
    attempts = last.attempts + 1 if last is not None and last.fingerprint == fingerprint else 1
    until = retry_after(at, attempts)
    store.prunes.fruitless(station_id, fingerprint, at, run.sent, until)
    bound = None if window.context.capabilities.max_stack_level_known else (
        f"stack levels 0..{prune_bound(window)}: the charger does not report ChargeProfileMaxStackLevel; "
        "declare it in its ChargerModel to prune higher")  # fmt: skip
    return Failure(Status.DEGRADED, fruitless_reason(run, bound, until))
