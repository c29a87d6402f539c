"""Read a station's composites back, and record in the ledger what the read-back proves.

Flow: (reconcile) after the sets and before a clear that relies on them (a *checkpoint* of the
plan), and after the last action -> `ReadBack.until` (at once, then a few attempts a settle delay
apart until the answer is the expected one) -> `ReadBack.settle_ledger`: the states the ledger allows (`core.holdings`)
that the read-back agrees with -> `Store.record_verdicts` (entries confirmed, marked NotEnforced,
or forgotten) -> what the engine tells the operator.

After the last action, `verify_station` reads back until the desired state shows, records what
that proves, and gives the verdict: Synced, or why not (accepted but not enforced, another
reporting convention, a foreign profile: `judge.explain`).

A checkpoint that does not see the sets in force stops the station before the clear: the charger
keeps the caps it had, the ledger keeps every entry that may still be there, and the station ends
Degraded with what was observed ("accepted but not enforced").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.core.actions import Action, ActionKind, LedgerState
from reconciler.core.context import StationContext
from reconciler.core.diff import ConnectorDrift, timelines_agree
from reconciler.core.holdings import Holding, possible_holdings, verdicts
from reconciler.core.installed import InstalledProfiles
from reconciler.core.plan import StationPlan, Window, content_hash
from reconciler.core.safety import apply_action
from reconciler.core.status import Status
from reconciler.engine.calls import Caller
from reconciler.engine.judge import WindowAt, explain
from reconciler.engine.observe import Failure, Observation, read_answers
from reconciler.engine.outcome import Verdict
from reconciler.policy import DesiredState
from reconciler.store.sqlite import Store

DriftOf = Callable[[Observation, InstalledProfiles], list[ConnectorDrift]]


def agrees(drift: Sequence[ConnectorDrift]) -> bool:
    return all(d.in_sync for d in drift)


@dataclass(frozen=True, slots=True)
class ReadBack:
    """Reads one engine's stations back: its caller, store, drift judgement and settings."""

    caller: Caller
    store: Store
    drift_of: DriftOf
    horizon: int
    settle: float
    attempts: int
    now: Callable[[], datetime]

    async def until(
        self, station_id: str, before: Observation, done: Callable[[Observation], bool], *, total: bool = False
    ) -> Observation | Failure:
        """Read the composites of the connectors `before` observed (and connector 0, the station's
        total, when `total`) until `done`: at once (a charger that answered Accepted holds the
        profile), then up to `attempts` more times `settle` seconds apart (one that applies it
        asynchronously); the last read, or why none worked."""
        after = before
        connectors = [c for c in sorted(before.timelines) if c != 0]
        if total or 0 in before.timelines:
            connectors.insert(0, 0)  # read as observe reads it: the hardware maximum of all connectors together
        for attempt in range(max(1, self.attempts) + 1):
            if attempt:
                await asyncio.sleep(self.settle)
            readings = await read_answers(
                self.caller, station_id, connectors, unit=before.unit, horizon=self.horizon,
                normaliser=before.normaliser, now=self.now(),
            )  # fmt: skip
            if isinstance(readings, Failure):
                return readings
            after = replace(before, timelines=readings.timelines, reply_units=readings.units, at=self.now())
            if done(after):
                break
        return after

    def settle_ledger(
        self, station_id: str, observation: Observation, *, trust_nominal: bool,
        agreed: frozenset[tuple[int, str]] | None = None,
    ) -> list[Holding]:  # fmt: skip
        """Record what `observation` proves about the station's ledger; the states it agrees with.
        `agreed`: (profile id, content hash) of profiles the observation is already known to agree
        with (the desired state, when the station verified Synced): a nominal state holding exactly
        those needs no composite computed."""
        ledger = self.store.ledger(station_id)
        if all(e.state.certain for e in ledger):
            return []  # nothing uncertain to settle
        holdings = possible_holdings(ledger)
        nominal = holdings[0]
        if agreed is not None and {(e.profile.charging_profile_id, e.content_hash) for e in nominal.entries} == agreed:
            explained = [nominal]  # the common case after an apply: what was sent is what was verified
        else:
            explained = [h for h in holdings if agrees(self.drift_of(observation, h.installed))]
        self.store.record_verdicts(station_id, verdicts(ledger, explained, trust_nominal=trust_nominal))
        return explained

    async def checkpoint(
        self, station_id: str, plan: StationPlan, before: Observation, done: Sequence[Action], window: Window,
        *, total: bool,
    ) -> Failure | None:  # fmt: skip
        """Set, verify, then clear: read back (connector 0 too when `total`); None if the charger
        shows what the sets done so far should give from a state the plan started from, else why
        not (the ledger then records what the read-back proves)."""
        expected = predicted(plan, done, window)

        def matches(observed: Observation) -> bool:
            return any(agrees(self.drift_of(observed, state)) for state in expected)

        after = await self.until(station_id, before, matches, total=total)
        if isinstance(after, Failure):
            return after
        if matches(after):
            return None  # the verification after the last action settles the ledger
        self.settle_ledger(station_id, after, trust_nominal=False)
        sets = [a for a in done if a.kind in (ActionKind.SET, ActionKind.REPLACE)]
        return not_enforced_reason(self.store, station_id, self.drift_of(after, expected[0]), sets)


def predicted(plan: StationPlan, done: Sequence[Action], window: Window) -> list[InstalledProfiles]:
    """What the charger should hold after `done`, from each state the plan started from."""
    out = []
    for start in plan.starts or (InstalledProfiles(),):
        state = start
        for action in done:
            state, _ = apply_action(state, action, window)
        out.append(state)
    return out


def not_enforced_reason(
    store: Store, station_id: str, expected: Sequence[ConnectorDrift], sets: Sequence[Action]
) -> Failure:
    """The checkpoint did not see the sets in force: what was sent, what was observed, what stays."""
    ledger = store.ledger(station_id)
    doubted = sorted({e.profile.charging_profile_id for e in ledger if e.state is LedgerState.NOT_ENFORCED})
    sent = ", ".join(f"#{a.profile.charging_profile_id}" for a in sets if a.profile is not None)
    wrong = next((d for d in expected if not d.in_sync), None)
    seen = f"; connector {wrong.connector_id} {wrong.describe()}" if wrong else ""
    if doubted:
        what = (
            f"accepted but not enforced: the charger accepted {sent} but its composite does not show "
            f"{'them' if len(doubted) > 1 else 'it'}{seen}"
        )
    else:
        what = f"the read-back after setting {sent} is not what the charger should report{seen}"
    return Failure(Status.DEGRADED, f"{what}; no clear that relies on them was sent: the caps it had stay")


async def verify_station(
    readback: ReadBack, station_id: str, before: Observation, plan: StationPlan, accepted_sets: int,
    state: DesiredState, window_at: WindowAt, presets: dict[str, StationContext],
) -> tuple[Verdict, list[ConnectorDrift] | None]:  # fmt: skip
    """After an apply: read the composites back until they match the desired state, record what the
    read-back proves in the ledger, and say what is wrong when they do not match (accepted but not
    enforced, another convention, a foreign profile). The verdict, and the read-back's drift (the
    after-state; None when nothing could be read back)."""
    desired = InstalledProfiles.of([(p.connector_id, p.profile) for p in state.profiles])
    after = await readback.until(station_id, before, lambda seen: agrees(readback.drift_of(seen, desired)))
    if isinstance(after, Failure):
        return Verdict(after.status, after.reason), None
    drift = readback.drift_of(after, desired)
    synced = agrees(drift)
    wanted = frozenset((p.profile.charging_profile_id, content_hash(p.connector_id, p.profile)) for p in state.profiles)
    explained = readback.settle_ledger(station_id, after, trust_nominal=synced, agreed=wanted if synced else None)
    if synced:
        return Verdict(Status.SYNCED, "; ".join(plan.notes) or None), drift
    unchanged = all(
        timelines_agree(before.timelines[c], after.timelines[c], before.normaliser) for c in before.timelines
    )
    wrong = next(d for d in drift if not d.in_sync)
    doubted = any(e.state is LedgerState.NOT_ENFORCED for e in readback.store.ledger(station_id))
    if accepted_sets and explained and doubted:
        # The ledger explains the read-back without the profiles just sent: nothing foreign.
        return Verdict(
            Status.DEGRADED,
            f"the charger accepted {accepted_sets} profile(s) but its composite does not show them "
            f"(accepted but not enforced); connector {wrong.connector_id} {wrong.describe()}",
        ), drift
    untouched = bool(accepted_sets) and unchanged
    diagnosis = explain(station_id, after, desired, window_at, accepted_unchanged=untouched,
                        just_applied=bool(accepted_sets), presets=presets)  # fmt: skip
    if untouched and not diagnosis.convention:
        return Verdict(
            Status.DEGRADED,
            f"the charger accepted {accepted_sets} profile(s) but its composite did not change (accepted but not "
            f"enforced); {diagnosis.text()}",
        ), drift
    if diagnosis.foreign_only and not state.prune_foreign:
        return Verdict(Status.OUT_OF_SYNC, diagnosis.text()), drift
    return Verdict(Status.DEGRADED, f"read-back still differs: {diagnosis.text()}"), drift
