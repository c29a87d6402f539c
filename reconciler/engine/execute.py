"""Send a plan's actions in order, recording each in the state file as it completes.

Flow: `reconcile.Reconciler._reconcile` -> `execute_plan` -> for each action: at a checkpoint, a
read-back first (`readback.checkpoint`: set, verify, then clear) -> the intent written durably
(`store.begin_call`) -> the call -> the ledger and an event. It stops at the first action that did
not work (a refusal, a CallError, a lost connection), so a clear never runs after the set it depends
on failed: make-before-break holds on the charger, not just in the plan. A restart of the charger
mid-run (`calls.ChargerRestarted`) goes up to the caller, with what was sent accounted for.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from reconciler.core.plan import ActionKind, StationPlan, Window
from reconciler.core.status import Status
from reconciler.engine.calls import Caller, ChargerRestarted
from reconciler.engine.observe import Failure, Observation, failure_of
from reconciler.engine.readback import ReadBack
from reconciler.store.sqlite import UNVERIFIED, Store
from reconciler.transport.gateway import ReplyKind


@dataclass(frozen=True, slots=True)
class Run:
    """What sending a plan needs of the reconciler: its calls, state file, read-back and clock, the
    policies' revision (recorded with each call) and the judging window of an observation."""

    caller: Caller
    store: Store
    readback: ReadBack
    now: Callable[[], datetime]
    revision: str | None
    window: Callable[[Observation], Window]

    def log(self, station_id: str, event: tuple[str, str, str | None]) -> None:
        kind, message, data = event
        self.store.event(kind, message, self.now(), station_id=station_id, revision=self.revision, data=data)


async def execute_plan(
    run: Run, station_id: str, plan: StationPlan, observation: Observation, sent: Counter[str]
) -> tuple[Failure | None, int, list[str]]:
    """Send the plan's actions in order; stop at the first one that did not work, and before a
    clear whose sets a read-back does not show in force (the plan's checkpoints). Returns the
    failure (None: all sent), how many Sets were accepted, and notes for the outcome."""
    accepted_sets = 0
    notes: list[str] = []
    checkpoints = {c.index: c for c in plan.checkpoints}
    for index, action in enumerate(plan.actions):
        if index in checkpoints:
            failure = await run.readback.checkpoint(
                station_id, plan, observation, plan.actions[:index], run.window(observation),
                total=checkpoints[index].total,
            )  # fmt: skip
            if failure is not None:
                run.log(station_id, ("verify.checkpoint", failure.reason, None))
                return failure, accepted_sets, notes
        name, payload = action.ocpp()
        body = json.dumps(payload)
        tracked = action.kind in (ActionKind.SET, ActionKind.REPLACE, ActionKind.CLEAR)
        pending = run.store.begin_call(station_id, name, body, run.now(), content_hash=action.digest,
                                        revision=run.revision) if tracked else None  # fmt: skip
        if pending is not None:
            await run.store.durable()  # the intent is on disk before the charger can act on it
        try:
            reply = await run.caller.call(station_id, name, payload)
        except ChargerRestarted as stop:
            if stop.sent:
                sent[name] += 1
            elif pending is not None:  # never sent: nothing to account for
                run.store.settle(pending)
            raise
        sent[name] += 1
        status = reply.status if reply.kind is ReplyKind.ANSWERED else None
        event = (f"action.{action.kind.value}", f"{action.kind.symbol} {action.describe()}: {reply.describe()}",
                 f'{{"action": "{name}", "payload": {body}}}')  # fmt: skip
        if reply.kind is not ReplyKind.ANSWERED:
            run.log(station_id, event)
            if pending is not None and not reply.ambiguous:  # else it may have been carried out
                run.store.settle(pending)
            return failure_of(reply, f"{name} ({action.describe()})"), accepted_sets, notes
        if action.kind in (ActionKind.SET, ActionKind.REPLACE):
            if status != "Accepted":
                run.log(station_id, event)
                if pending is not None and not reply.ambiguous:  # a retry's answer; the first may have worked
                    run.store.settle(pending)
                failure = Failure(Status.DEGRADED, f"charger answered {status} to {action.describe()}")
                return failure, accepted_sets, notes
            assert action.connector_id is not None and action.digest is not None
            run.store.record_set(pending, station_id, action.connector_id, payload["csChargingProfiles"],
                                  action.digest, run.revision, run.now(), UNVERIFIED, event)  # fmt: skip
            accepted_sets += 1
        elif action.kind is ActionKind.CLEAR:
            run.store.record_clear(pending, station_id, action.profile_id, run.now(), run.revision, event)
        elif action.kind is ActionKind.CONFIGURE:
            run.log(station_id, event)
            if status == "RebootRequired":
                notes.append(f"{action.key} applies after the station reboots (not rebooted automatically)")
            elif status != "Accepted":
                return Failure(Status.DEGRADED, f"charger answered {status} to {action.describe()}"), 0, notes
            run.store.forget_configuration(station_id)
        else:
            run.log(station_id, event)
    return None, accepted_sets, notes
