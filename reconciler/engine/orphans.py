"""Stations removed from the policies: clear what the reconciler installed on them, then forget them.

Flow: (cli) ledger stations minus declared stations -> `plan_removed` -> a `- clear` per profile the
ledger owns on the station -> (apply) `apply_removed` sends the clears by id (each recorded as it
is answered, as any clear) -> once the ledger holds nothing for the station, the station's
condition and registry row are forgotten (its events stay in the log).

Terraform destroys a resource removed from the configuration; this is the same for a Station
removed from git. Nothing is observed (the station's shape is no longer declared), so the plan is
just the ledger's inventory. A removed station that is not reachable keeps its ledger entries and
is reported as an orphan (Offline, with how many profiles it still holds), never forgotten.
Only what we own: a profile the ledger does not list is never touched.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Sequence

from reconciler.core.plan import Action, ActionKind, StationPlan
from reconciler.core.status import Status
from reconciler.engine.observe import failure_of
from reconciler.engine.outcome import Outcome
from reconciler.engine.reconcile import Reconciler
from reconciler.transport.gateway import ReplyKind

REMOVED = "station removed from the policies"


def removed_stations(ledger_stations: Iterable[str], declared: Iterable[str]) -> list[str]:
    """Stations the ledger holds profiles for that no policy declares any more."""
    known = set(declared)
    return sorted(s for s in set(ledger_stations) if s not in known)


def removal_plan(engine: Reconciler, station_id: str) -> StationPlan:
    # One Clear per profile id (the ledger may log an id twice: a replacement whose arrival was uncertain).
    ledger = list({e.profile.charging_profile_id: e for e in engine.store.ledger(station_id)}.values())
    actions = tuple(
        Action(
            ActionKind.CLEAR, REMOVED, e.connector_id, profile_id=e.profile.charging_profile_id,
            purpose=e.profile.purpose, stack_level=e.profile.stack_level,
        )
        for e in ledger
    )  # fmt: skip
    invariant = f"{REMOVED}: every profile the ledger owns on it is cleared, then the station is forgotten"
    return StationPlan(station_id, actions, (), invariant, owned=len(ledger))


def plan_removed(engine: Reconciler, station_id: str) -> Outcome:
    """What apply would do for a removed station (reads the ledger only; nothing is sent)."""
    engine.store.absorb_pending(station_id, engine.now())
    plan = removal_plan(engine, station_id)
    count = len(plan.actions)
    if not engine.gateway.is_connected(station_id):
        reason = f"{REMOVED}; not reachable: the ledger still owns {count} profile(s) on it (orphans)"
        return Outcome(station_id, Status.OFFLINE, reason, plan, removed=True)
    return Outcome(station_id, Status.OUT_OF_SYNC, f"{REMOVED}: {count} profile(s) to clear", plan, removed=True)


async def apply_removed(engine: Reconciler, station_id: str) -> Outcome:
    """Clear every owned profile of a removed station, then forget it (only when all clears were
    answered). Stops at the first call that fails; what was cleared stays recorded."""
    planned = plan_removed(engine, station_id)
    plan = planned.plan
    assert plan is not None
    if planned.status is Status.OFFLINE:
        return planned
    sent = Counter[str]()
    for action in plan.actions:
        name, payload = action.ocpp()
        body = json.dumps(payload)
        pending = engine.store.begin_call(station_id, name, body, engine.now(), revision=engine.revision)
        await engine.store.durable()
        reply = await engine.caller.call(station_id, name, payload)
        sent[name] += 1
        event = (f"action.{action.kind.value}", f"{action.kind.symbol} {action.describe()}: {reply.describe()}",
                 f'{{"action": "{name}", "payload": {body}}}')  # fmt: skip
        if reply.kind is not ReplyKind.ANSWERED:
            engine.store.event(event[0], event[1], engine.now(), station_id=station_id, revision=engine.revision,
                               data=event[2])  # fmt: skip
            if not reply.ambiguous:
                engine.store.settle(pending)
            failure = failure_of(reply, f"{name} ({action.describe()})")
            return Outcome(station_id, failure.status, f"{REMOVED}: {failure.reason}", plan, sent=sent, removed=True)
        engine.store.record_clear(pending, station_id, action.profile_id, engine.now(), engine.revision, event)
    engine.store.forget_station(station_id, engine.now(), engine.revision, f"{REMOVED}: {len(plan.actions)} "
                                "profile(s) cleared; forgotten")  # fmt: skip
    reason = f"{REMOVED}: {len(plan.actions)} profile(s) cleared, station forgotten"
    return Outcome(station_id, Status.SYNCED, reason, plan, sent=sent, removed=True)


async def apply_all_removed(engine: Reconciler, station_ids: Sequence[str]) -> list[Outcome]:
    async def one(station_id: str) -> Outcome:
        async with engine.limit:
            return await apply_removed(engine, station_id)

    return list(await asyncio.gather(*(one(s) for s in station_ids)))
