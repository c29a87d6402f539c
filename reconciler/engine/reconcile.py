"""Reconcile stations: observe, plan, apply, verify, record. The heart of plan/apply/watch.

Flow per station (the kustomize-controller shape): skip if unknown or offline -> observe
(GetConfiguration, GetCompositeSchedule per connector) -> plan (core, pure) -> execute the actions
in order, writing the ledger and an event as each call completes -> read back until the composite
matches (at once, then a few attempts a settle delay apart) -> record the condition with its reason and the policies'
git revision. A fleet runs with bounded concurrency; every call goes through one `Caller` (rate
limit, timeouts, retries with backoff and jitter).

Safety: execution stops at the first refusal, CallError or lost connection, so a clear never runs
after the set it depends on failed (make-before-break holds on the charger, not just in the plan).
A charger that restarts after the observation stops the run before its next Clear or retry
(`calls.ChargerRestarted`): the plan was made for what it held before; the next run re-plans.
Only "Synced" is a verified statement; everything else carries a reason a person can act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reconciler import clock
from reconciler.core.context import ReplyUnit, StationContext, Transaction
from reconciler.core.diff import ConnectorDrift
from reconciler.core.installed import InstalledProfiles
from reconciler.core.plan import (
    Action,
    ActionKind,
    StationPlan,
    Window,
)
from reconciler.core.profiles import format_time
from reconciler.core.readback import Limitation
from reconciler.core.status import Status
from reconciler.core.timeline import Timeline
from reconciler.engine.calls import (
    Caller,
    ChargerRestarted,
    RateLimit,
    RestartCheck,
    RetryPolicy,
    watch_restarts,
    watching_restarts,
)
from reconciler.engine.execute import Run, execute_plan
from reconciler.engine.judge import (
    explain,
    explained_plan,
    judged_plan,
    station_drift,
    station_limitations,
    with_limitations,
)
from reconciler.engine.observe import Failure, Observation, observe_station
from reconciler.engine.outcome import (
    Outcome,
    Progress,
    Verdict,
    desired_of,
    overridden_reason,
    pending_reason,
    report,
    stopped_before,
)
from reconciler.engine.prune import foreign_fingerprint, held_back, prune_station
from reconciler.engine.readback import ReadBack, verify_station
from reconciler.engine.readiness import (
    ContextCache,
    Epoch,
    attach_journal,
    booted,
    learn_connectors,
    restart_epoch,
    restarted_since,
    running_transactions,
    station_context,
)
from reconciler.policy import DesiredState, PolicySet
from reconciler.policy.library import context_with
from reconciler.store.sqlite import Store, StoreError
from reconciler.transport.gateway import Gateway, Reply, ReplyKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    horizon: int = 86_400
    concurrency: int = 64
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: float | None = None  # calls per second across the run; None: unlimited
    settle: float = 0.2  # read back at once; when it does not match yet, again after this many seconds
    verify_attempts: int = 3
    config_ttl: float = 300.0
    boot_timeout: float = 10.0  # seconds a connected station has to boot before it is called
    status_timeout: float = 3.0  # seconds to learn each connector's state (transactions) before observing
    clock_tolerance: float = 30.0  # seconds a charger's clock may be off before its answers are not judged


DesiredProvider = Callable[[str], DesiredState]  # station id -> its whole desired state (git + other layers)
# (engine, station) -> the desired state a run in flight judges by (None until its first ask); per task
_RUN_DESIRED: contextvars.ContextVar[dict[tuple[int, str], DesiredState | None] | None] = contextvars.ContextVar(
    "run_desired", default=None
)


class Reconciler:
    """Brings stations to their desired state through a Gateway, remembering in a Store.

    `desired`, when given, is asked for each station's desired state instead of reading
    `policies.desired` directly: the daemon layers overrides and per-session intents on git's."""

    def __init__(
        self,
        gateway: Gateway,
        store: Store,
        policies: PolicySet,
        settings: Settings | None = None,
        *,
        now: Callable[[], datetime] = clock.now,
        desired: DesiredProvider | None = None,
    ) -> None:
        self.gateway = gateway
        self.desired_provider = desired
        self.store = store
        self.policies = policies
        self.settings = settings or Settings()
        self.now = now
        self.caller = Caller(gateway, self.settings.retry, RateLimit(self.settings.rate_limit))
        self.limit = asyncio.Semaphore(self.settings.concurrency)
        s = self.settings
        self.readback = ReadBack(self.caller, store, self.drift, s.horizon, s.settle, s.verify_attempts, now)
        self._verified: dict[str, list[ConnectorDrift]] = {}  # station -> last read-back drift (after-state)
        self._contexts: ContextCache = {}  # station -> its context under the model its boot chose, reused
        attach_journal(gateway, store)  # what the Central System sees of transactions outlives this run

    @property
    def revision(self) -> str | None:
        return self.policies.revision

    def desired_state(self, station_id: str) -> DesiredState:
        """What the station should be: git's desired state, or the provider's layered one. Inside a
        run of this station, the one the run's first ask returned (`_one_desired`)."""
        pins = _RUN_DESIRED.get()
        key = (id(self), station_id)
        pinned = pins.get(key) if pins is not None else None
        if pinned is not None:
            return pinned
        if self.desired_provider is not None:
            state = self.desired_provider(station_id)
        else:
            state = self.policies.desired[station_id]
        if pins is not None and key in pins:
            pins[key] = state
        return state

    @contextlib.contextmanager
    def _one_desired(self, station_id: str) -> Iterator[None]:
        """One run plans, applies and verifies against one desired state: an override that expires
        (or a session that ends) mid-run is the next run's business, never a read-back judged
        against a state the plan did not aim at (a false "foreign profile"). Only the run's own
        task sees the pinned state (a context variable); the API and other runs ask afresh."""
        pins = _RUN_DESIRED.get()
        if pins is not None and (id(self), station_id) in pins:
            yield
            return
        token = _RUN_DESIRED.set({**(pins or {}), (id(self), station_id): None})  # pinned at the first ask
        try:
            with watching_restarts():  # the run's restart check (`_plan_station`) ends with the run
                yield
        finally:
            _RUN_DESIRED.reset(token)

    # --- observe and plan ----------------------------------------------------------------------------

    def _info(self, station_id: str) -> Any:
        """What the gateway knows of a station (the embedded Central System does; an inject API not)."""
        station = getattr(self.gateway, "station", None)
        return station(station_id) if callable(station) else None

    def transactions(self, station_id: str) -> dict[int, Transaction]:
        return running_transactions(self.store, station_id, self.now, self._info(station_id))

    def _register(self, station_id: str) -> None:
        """Keep the station registry current: last seen, and boot info when the gateway knows it."""
        info = self._info(station_id)
        boot = None
        if info is not None and getattr(info, "booted_at", None) is not None:
            boot = {"vendor": info.vendor, "model": info.model, "firmware": info.firmware, "serial": info.serial,
                    "bootedAt": format_time(info.booted_at)}  # fmt: skip
        self.store.seen(station_id, self.now(), boot)

    async def observe(self, station_id: str) -> Observation:
        state = self.desired_state(station_id)
        context, model = station_context(
            state.station,
            self.policies.models,
            self._info(station_id),
            lambda: self.store.boot(station_id),
            self._contexts,
        )
        observation = await observe_station(
            self.caller,
            self.store,
            station_id,
            context=context,
            max_current_a=state.station.max_current_a,
            desired_keys=list(state.configuration),
            transactions=self.transactions(station_id),
            now=self.now(),
            horizon=self.settings.horizon,
            config_ttl=self.settings.config_ttl,
            clock_now=self.now,
            clock_tolerance=self.settings.clock_tolerance,
        )
        return replace(observation, charger_model=model)

    def window(self, observation: Observation, at: datetime | None = None) -> Window:
        return Window(
            observation.context.with_(reply_unit=ReplyUnit.REQUESTED),  # the reader converts any unit
            at or observation.at,
            self.settings.horizon,
            observation.unit,
            observation.normaliser,
            observation.transactions,
        )

    def drift(
        self, observation: Observation, installed: InstalledProfiles, known: tuple[int, list[Timeline]] | None = None
    ) -> list[ConnectorDrift]:
        """Each observed connector against what a charger holding `installed` reports (`judge.py`)."""
        return station_drift(observation, installed, self.window, known)

    def plan_for(self, station_id: str, observation: Observation) -> StationPlan:
        return judged_plan(
            station_id, desired_of(self.desired_state(station_id)), self.store.ledger(station_id), observation,
            self.window,
        )  # fmt: skip

    async def plan(self, station_ids: Sequence[str], progress: Progress | None = None) -> list[Outcome]:
        """Observe and plan every station; nothing is sent but reads."""

        async def one(station_id: str) -> Outcome:
            async with self.limit:
                started = clock.monotonic()
                with self._one_desired(station_id):
                    outcome = await self._guarded(station_id, self._plan_one(station_id))
                outcome.seconds = clock.monotonic() - started
                await report(progress, station_id, "planned")
                return outcome

        return list(await asyncio.gather(*(one(s) for s in station_ids)))

    async def _plan_one(self, station_id: str) -> Outcome:
        # Calls an earlier run sent without recording the answer become Unconfirmed ledger entries.
        self.store.absorb_pending(station_id, self.now())
        outcome = await self._plan_station(station_id)
        outcome.sources = self.sources(station_id)
        self._limit(station_id, outcome)
        if outcome.observation is not None and outcome.observation.clock_skew is not None:
            outcome.clock_skew = outcome.observation.clock_skew
            self.store.save_clock_skew(station_id, outcome.clock_skew, self.now())
        return outcome

    def _presets(self, station_id: str) -> dict[str, StationContext]:
        """The station's context under each known ChargerModel (to recognise one in its answers)."""
        station = self.desired_state(station_id).station
        return {m.name: context_with(station, m) for m in self.policies.models}

    def _held(self, station_id: str) -> InstalledProfiles:
        """What the ledger says the charger holds."""
        return InstalledProfiles.of([(e.connector_id, e.profile) for e in self.store.ledger(station_id)])

    def _limit(self, station_id: str, outcome: Outcome) -> None:
        """Say what the read-back could not verify; a Synced says it in its reason too."""
        if outcome.observation is not None and outcome.observation.ok:
            desired = self.desired_state(station_id).installed()
            drift = outcome.plan.drift if outcome.plan is not None else ()
            outcome.limitations = station_limitations(outcome.observation, desired, drift, outcome.limitations)
            if outcome.status is Status.SYNCED:
                outcome.reason = with_limitations(outcome.reason, outcome.limitations)

    def sources(self, station_id: str) -> dict[int, str]:
        """Where each desired profile of a station was declared (templates named)."""
        out = {}
        for item in self.desired_state(station_id).profiles:
            template = f", template {item.template}" if item.template else ""
            out[item.profile.charging_profile_id] = f"{item.policy}{template}, {item.location}"
        return out

    async def _plan_station(self, station_id: str) -> Outcome:
        if not self.gateway.is_connected(station_id):
            return Outcome(station_id, Status.OFFLINE, "not connected")
        boot = await booted(self.gateway, station_id, self.settings.boot_timeout)
        if not boot.ok:
            return Outcome(station_id, Status.OFFLINE, f"not booted: {boot.note}")
        epoch = restart_epoch(self.gateway, station_id)
        if epoch is not None:  # from here on, a restart stops the run before a Clear or a retry
            watch_restarts(station_id, self._restart_check(station_id, epoch))
        outcome = await self._judge_station(station_id)
        if boot.note:
            outcome.limitations = (Limitation("no-boot", boot.note), *outcome.limitations)
        return outcome

    def _restart_check(self, station_id: str, epoch: Epoch) -> RestartCheck:
        """Did the charger restart since `epoch` (the run's observation)? Asked by the caller."""

        async def check(attempt: int, last: Reply | None) -> bool:
            reconnect = attempt == 1 and last is not None and last.kind is ReplyKind.OFFLINE
            return await restarted_since(self.gateway, station_id, epoch, timeout=self.settings.boot_timeout,
                                         reconnect=reconnect)  # fmt: skip

        return check

    def _stopped(self, stop: ChargerRestarted, outcome: Outcome) -> Outcome:
        """The charger restarted during the run: what was not sent, recorded; the next run re-plans."""
        reason = f"the charger restarted during the run: stopped {stopped_before(stop)}; the next run re-plans"
        self._log(stop.station_id, ("reconcile.restarted", reason, None))
        outcome.status, outcome.reason = Status.OUT_OF_SYNC, reason
        return outcome

    async def _judge_station(self, station_id: str) -> Outcome:
        connectors = self.desired_state(station_id).station.connectors
        await learn_connectors(self.gateway, station_id, connectors, self.settings.status_timeout)
        observation = await self.observe(station_id)
        self._register(station_id)
        if observation.failure is not None:
            return Outcome(station_id, observation.failure.status, observation.failure.reason, observation=observation)
        plan = self.plan_for(station_id, observation)
        if not plan.as_recorded and plan.owned:  # it does not report what the ledger says it holds: why?
            diagnosis = explain(station_id, observation, self._held(station_id), self.window,
                                presets=self._presets(station_id))  # fmt: skip
            plan = explained_plan(plan, diagnosis)
            if diagnosis.convention:
                return Outcome(station_id, Status.DEGRADED, diagnosis.text(), plan, observation)
        if any(a.kind is ActionKind.PRUNE for a in plan.actions):  # not again if it changed nothing last time
            fingerprint = foreign_fingerprint(self.drift(observation, self._held(station_id)))
            plan, why = held_back(plan, self.store.prunes.last(station_id), fingerprint, self.now())
            if why is not None and not plan.actions:
                return Outcome(station_id, Status.DEGRADED, why, plan, observation)
        if plan.refused:
            return Outcome(station_id, Status.DEGRADED, f"plan refused: {plan.refused}", plan, observation)
        if plan.blocked:
            return Outcome(station_id, Status.OUT_OF_SYNC, f"blocked: {plan.blocked}", plan, observation)
        pruning = any(a.kind is ActionKind.PRUNE for a in plan.actions)
        if plan.not_enforced:
            ids = ", ".join(f"#{i}" for i in plan.not_enforced)
            reason = (f"accepted but not enforced: the charger accepted {ids} before but its composite did not "
                      f"show it; apply sends it again ({len(plan.actions)} action(s))")  # fmt: skip
            if plan.overridden and not pruning:
                reason += f"; {overridden_reason(plan)}"
            return Outcome(station_id, Status.DEGRADED, reason, plan, observation)
        if plan.overridden and not pruning:
            resent = ", ".join(f"#{a.profile.charging_profile_id}" for a in plan.actions if a.profile is not None)
            reason = f"{overridden_reason(plan)}; apply sends {resent} again"
            return Outcome(station_id, Status.DEGRADED, reason, plan, observation)
        if plan.in_sync:
            note = "; ".join(plan.notes) or None
            return Outcome(station_id, Status.SYNCED, note, plan, observation)
        first = next((d for d in plan.drift if not d.in_sync), None)
        if first is None or plan.as_recorded:
            reason = pending_reason(plan)
        else:
            where = "connector 0 (the station total)" if first.connector_id == 0 else f"connector {first.connector_id}"
            reason = f"drift: {where} {first.describe()}"
        return Outcome(station_id, Status.OUT_OF_SYNC, reason, plan, observation)

    # --- apply -----------------------------------------------------------------------------------------

    async def apply(
        self,
        station_ids: Sequence[str],
        progress: Progress | None = None,
        stale_check: Callable[[str, Observation, StationPlan], str | None] | None = None,
    ) -> list[Outcome]:
        """Reconcile every station (bounded concurrency); each ends with a recorded condition."""

        async def one(station_id: str) -> Outcome:
            async with self.limit:
                await report(progress, station_id, "started")
                outcome = await self.reconcile_station(station_id, stale_check=stale_check)
                await report(progress, station_id, outcome.status.value)
                return outcome

        return list(await asyncio.gather(*(one(s) for s in station_ids)))

    async def reconcile_station(
        self,
        station_id: str,
        *,
        stale_check: Callable[[str, Observation, StationPlan], str | None] | None = None,
    ) -> Outcome:
        started = clock.monotonic()
        with self._one_desired(station_id):
            outcome = await self._guarded(station_id, self._reconcile(station_id, stale_check))
        outcome.seconds = clock.monotonic() - started
        outcome.verified = tuple(self._verified.pop(station_id, ()))
        progressed = bool(outcome.plan and outcome.plan.actions and not outcome.refused_stale)
        self.store.set_condition(station_id, outcome.status, outcome.reason, self.revision, self.now(),
                                 changed=True if progressed else None)  # fmt: skip
        return outcome

    async def _reconcile(
        self, station_id: str, stale_check: Callable[[str, Observation, StationPlan], str | None] | None
    ) -> Outcome:
        planned = await self._plan_one(station_id)
        plan, observation = planned.plan, planned.observation
        if plan is None or observation is None or plan.refused:
            return planned
        if stale_check is not None:
            stale = stale_check(station_id, observation, plan)
            if stale:
                return Outcome(station_id, Status.OUT_OF_SYNC, f"saved plan refused: {stale}", plan, observation,
                               refused_stale=True)  # fmt: skip
        if plan.blocked:
            return planned  # a person decides first; nothing is sent
        if plan.in_sync:
            if plan.uncertain:  # this observation is a read-back: record what it proves
                self.readback.settle_ledger(station_id, observation, trust_nominal=True)
            return planned
        self.store.set_condition(
            station_id, Status.PROGRESSING, f"applying {len(plan.actions)} action(s)", self.revision, self.now(),
            event=False,
        )  # fmt: skip
        sent: Counter[str] = Counter()  # not Counter[str](): that keeps the alias on each instance
        prunes = tuple(a for a in plan.actions if a.kind is ActionKind.PRUNE)
        rest = replace(plan, actions=tuple(a for a in plan.actions if a.kind is not ActionKind.PRUNE))
        try:
            failure, accepted_sets, notes = await execute_plan(
                self._run(), station_id, rest if prunes else plan, observation, sent
            )
            if failure is None and prunes:
                failure = await self._prune(station_id, observation, prunes, sent)
            if failure is not None:
                return Outcome(station_id, failure.status, failure.reason, plan, observation, sent)
            verdict = await self._verify(station_id, observation, plan, accepted_sets)
        except ChargerRestarted as stop:  # the plan relied on a charger that may have lost what it was sent
            return self._stopped(stop, Outcome(station_id, Status.OUT_OF_SYNC, None, plan, observation, sent))
        reason = "; ".join(x for x in (verdict.reason, *notes) if x) or None
        if verdict.status is Status.SYNCED:
            reason = with_limitations(reason, planned.limitations)
        return Outcome(station_id, verdict.status, reason, plan, observation, sent, limitations=planned.limitations)

    async def _prune(
        self, station_id: str, before: Observation, prunes: Sequence[Action], sent: Counter[str]
    ) -> Failure | None:
        """Send the prune clears until the foreign cap is gone, remember one that changed nothing."""

        def record(action: Action, reply: Reply) -> None:
            sent["ClearChargingProfile"] += 1
            name, payload = action.ocpp()
            self._log(station_id, ("action.prune", f"! {action.describe()}: {reply.describe()}",
                                   json.dumps({"action": name, "payload": payload})))  # fmt: skip

        return await prune_station(
            self.caller, self.store, station_id, before, prunes, held=lambda: self._held(station_id),
            drift=self.drift, window=self.window(before), horizon=self.settings.horizon, now=self.now, record=record,
        )  # fmt: skip

    async def _guarded(self, station_id: str, work: Awaitable[Outcome]) -> Outcome:
        """One station's unexpected failure is that station's Degraded outcome, never the run's."""
        try:
            return await work
        except ChargerRestarted as stop:  # while observing: its answers may straddle the restart
            return self._stopped(stop, Outcome(station_id, Status.OUT_OF_SYNC, None))
        except StoreError:
            raise  # the state file failed: the whole run must stop and say so
        except Exception as exc:  # a hostile or broken charger must not end the fleet's run
            log.debug("station %s: unexpected error", station_id, exc_info=True)
            text = " ".join(str(exc).split())[:200]
            reason = f"internal error while reconciling: {type(exc).__name__}" + (f": {text}" if text else "")
            return Outcome(station_id, Status.DEGRADED, reason)

    def _run(self) -> Run:
        return Run(self.caller, self.store, self.readback, self.now, self.revision, self.window)

    def _log(self, station_id: str, event: tuple[str, str, str | None]) -> None:
        self._run().log(station_id, event)

    async def _verify(self, station_id: str, before: Observation, plan: StationPlan, accepted_sets: int) -> Verdict:
        """Read the composites back until they match; say what is wrong when they do not."""
        state = self.desired_state(station_id)
        verdict, drift = await verify_station(
            self.readback, station_id, before, plan, accepted_sets, state, self.window, self._presets(station_id)
        )
        if drift is not None:
            self._verified[station_id] = drift
        return verdict
