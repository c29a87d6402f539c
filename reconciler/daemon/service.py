"""`reconciler watch`: one asyncio process that keeps every charger at its desired state.

Flow: `Daemon.start()` opens the store, the gateway (embedded Central System, or the inject client
with `--via`), the engine (with `Layers` as its desired-state provider) and the HTTP API on one
loop -> triggers feed the per-station `WorkQueue`: policy files changed (`policywatch`), a station
connected or booted, a transaction started or stopped (per-session intents), an override expired,
the periodic drift check, API requests -> `reconcile_one` runs the engine's reconcile (or only its
plan for `reportOnly` stations; nothing for Suspended ones), records the condition with its reason
and git revision, logs one line (station, outcome, duration, next check), updates the metrics and
notifies on changes that need a person -> `stop()` (SIGTERM/SIGINT) stops the triggers, lets
in-flight reconciles finish within `shutdown_timeout` (then cancels them: the store's pending rows
account for any call in flight, and a restart converges), closes connections and the store.

Seams for scale-out: chargers only through the `Gateway`, state only through the `Store`; nothing
here is a module-level singleton.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from reconciler import clock
from reconciler.core.profiles import format_time
from reconciler.core.status import Status
from reconciler.daemon.heap import HeapFreezer
from reconciler.daemon.layers import Layers
from reconciler.daemon.logs import kept, log_outcome
from reconciler.daemon.metrics import DaemonMetrics, MeteredGateway
from reconciler.daemon.notify import Notifier
from reconciler.daemon.policywatch import compare, digests, load, pull_forever, watch
from reconciler.daemon.retention import retain_events
from reconciler.daemon.sessions import session_started, session_stopped
from reconciler.daemon.settings import DaemonSettings, host_port
from reconciler.daemon.workqueue import WorkQueue
from reconciler.engine.outcome import Outcome
from reconciler.engine.reconcile import Reconciler
from reconciler.policy import Diagnostic, PolicySet
from reconciler.policy.loader import FileCache
from reconciler.store.daemon_state import DaemonState
from reconciler.store.sqlite import Store
from reconciler.transport.central_system import CentralSystem
from reconciler.transport.gateway import Gateway, StationEvent, StationEventKind
from reconciler.transport.inject import InjectGateway

log = logging.getLogger("reconciler.daemon")


class Daemon:
    def __init__(
        self, settings: DaemonSettings, policies: PolicySet, *, now: Callable[[], datetime] = clock.now
    ) -> None:
        if not policies.ok:
            raise ValueError("the daemon starts only with valid policies")
        self.settings = settings
        self.policies = policies
        self.now = now
        self.store: Store | None = None
        self.state: DaemonState | None = None
        self.central: CentralSystem | None = None
        self.inject: InjectGateway | None = None
        self.gateway: Gateway | None = None
        self.engine: Reconciler | None = None
        self.metrics = DaemonMetrics(self._condition_counts, self._clock_skews, settings.engine.clock_tolerance)
        self.notifier = Notifier(settings.notify, counted=lambda r: self.metrics.notifications.labels(r).inc())
        self.queue = WorkQueue(self._work, settings.queue, on_give_up=self._gave_up)
        self.latest: dict[str, Outcome] = {}  # each station's last outcome, as `kept` (no drift kept)
        self.last_reconcile: dict[str, datetime] = {}
        self.policy_errors: tuple[Diagnostic, ...] = ()
        self.policy_error_at: datetime | None = None
        self.pull_error: str | None = None  # why the last `--pull` failed (None: it worked or never ran)
        self.generation = 0  # bumped on every change a reader of the API could see
        self.listeners: list[Callable[[str], None]] = []  # told a station id when what it shows changed
        self.http: Any = None  # api.server.HttpServer, set by start()
        self.fleet: Any = None  # demo.DemoFleet in demo mode
        self.ready = False
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._boot_at: dict[str, float] = {}
        self._stopped = False
        self._files = FileCache()  # parsed policy files, reused by reloads while their bytes do not change
        self._digests: dict[str, str] | None = None  # per station, of `policies` (None: not computed yet)
        self._loading = asyncio.Lock()  # one load at a time uses `_files`
        self.heap = HeapFreezer(self)  # gc.freeze once the fleet has settled

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        # TODO(state lock): take the store's state lock here (reconciler/store/lock.py, built by the `cli`
        # helper for plan/apply) before opening it, and hold it until stop(): a daemon and an apply must
        # never write the same ledger at once.
        self.store = Store(s.db)
        self.state = DaemonState(self.store)
        self.gateway = await self._open_gateway()
        self.engine = Reconciler(
            self.gateway,
            self.store,
            self.policies,
            s.engine,
            now=self.now,
            desired=Layers(lambda: self.policies, self.state).desired,
        )
        from reconciler.api.app import create_app
        from reconciler.api.server import HttpServer

        host, port = host_port(s.http, 8000)
        self.http = HttpServer(
            create_app(self), host, port, read_timeout=s.read_timeout, shutdown_timeout=min(5.0, s.shutdown_timeout)
        )
        await self.http.start()
        self.queue.start()
        self.notifier.start()
        hub = self.gateway.subscribe()
        self._spawn(self._events(hub), "station events")
        self._spawn(self._warm_reloads(), "policy cache")
        self._spawn(watch(list(s.policies), self.reload, self._stop, debounce_ms=s.debounce_ms), "policy watch")
        self._spawn(self._expire_overrides(), "override expiry")
        self._spawn(self.heap.run(), "gc freeze")
        self._spawn(retain_events(self.store, s.events, self.now), "event retention")
        if s.pull:
            directory = s.policies[0] if s.policies[0].is_dir() else s.policies[0].parent
            self._spawn(pull_forever(directory, s.pull, self._stop, self._pulled), "git pull")
        for station_id in self.policies.desired:
            if self.gateway.is_connected(station_id):
                self.queue.request(station_id, "start")
            else:
                self._record(station_id, Status.OFFLINE, "not connected yet")
        self.ready = True
        log.info(
            "reconciler watch ready: API %s, %s, %d station(s), revision %s",
            self.http.url,
            self.transport_url,
            len(self.policies.desired),
            self.policies.revision or "not in git",
        )

    @property
    def charger_flags(self) -> str:
        """How a CLI reaches this daemon's chargers once the daemon is stopped: the address they connect
        to (`--listen`, the embedded Central System's), or the proxy it reaches them through (`--via`,
        without credentials)."""
        if self.central is not None:
            prefix = self.settings.path_prefix
            extra = f" --path-prefix {prefix}" if prefix not in ("", "/") else ""
            return f"--listen {self.central.host}:{self.central.port}{extra}"
        return f"--via {self.inject.base_url}" if self.inject is not None else ""

    @property
    def transport_url(self) -> str:
        if self.central is not None:
            return f"Central System {self.central.url}/{{stationId}}"
        return f"inject API {self.inject.base_url if self.inject else '?'}"

    async def _open_gateway(self) -> Gateway:
        s = self.settings
        if s.via:
            self.inject = InjectGateway(s.via, username=s.via_user, password=s.via_password, timeout=s.call_timeout)
            return MeteredGateway(self.inject, self.metrics)
        host, port = host_port(s.listen or "127.0.0.1:9000", 9000)
        self.central = CentralSystem(
            host=host,
            port=port,
            passwords=s.station_passwords,
            path_prefix=s.path_prefix,
            known_stations=list(self.policies.stations),
            call_timeout=s.call_timeout,
            ping_interval=s.ping_interval,
            heartbeat_interval=s.heartbeat_interval,
        )
        await self.central.start()
        return MeteredGateway(self.central, self.metrics)

    def _spawn(self, coroutine: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def stop(self) -> None:
        """Graceful: triggers stop, in-flight reconciles finish (bounded), then everything closes."""
        if self._stopped:
            return
        self._stopped = True
        self.ready = False
        self._stop.set()
        cancelled = await self.queue.close(self.settings.shutdown_timeout)
        if cancelled:
            log.warning(
                "%d reconcile(s) did not finish within %gs and were cancelled; their calls in flight are "
                "recorded as pending and accounted for at the next start",
                cancelled,
                self.settings.shutdown_timeout,
            )
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.heap.restore()
        if self.fleet is not None:
            await self.fleet.stop()
        if self.http is not None:
            await self.http.stop()
        await self.notifier.stop()
        if self.central is not None:
            await self.central.stop()
        if self.inject is not None:
            await self.inject.aclose()
        if self.store is not None:
            self.store.close()
        log.info("reconciler watch stopped")

    async def run(self) -> None:
        """Start, run until `request_stop()` (the CLI wires SIGINT/SIGTERM to it), stop."""
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop()

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stop.wait()

    # --- triggers -----------------------------------------------------------------------------------

    async def _warm_reloads(self) -> None:
        """Parse the policy files into the cache and digest the desired states once, in a worker thread,
        so that the first save is as quick to apply as the ones after it."""
        policies = self.policies
        async with self._loading:
            await load(self.settings.policies, self._files)
            known = await asyncio.to_thread(digests, policies)
        if self.policies is policies and self._digests is None:
            self._digests = known

    async def reload(self) -> None:
        """Re-read the policies; apply the difference, or report why not."""
        async with self._loading:
            loaded = await load(self.settings.policies, self._files)
        now = self.now()
        if not loaded.ok:
            self.metrics.reloads.labels("invalid").inc()
            self.policy_errors, self.policy_error_at = loaded.errors, now
            lines = [d.format_text() for d in loaded.errors]
            for line in lines:
                log.error("policy error: %s", line)
            message = f"{len(lines)} error(s) in the policies; nothing applied, the last good state stays enforced"
            assert self.store is not None
            self.store.event("policy.invalid", message, now, revision=loaded.revision, data={"errors": lines[:100]})
            self.notifier.send(
                {
                    "kind": "policy.invalid",
                    "station_id": None,
                    "condition": None,
                    "reason": message,
                    "errors": lines[:20],
                    "revision": loaded.revision,
                    "at": format_time(now),
                }
            )
            self.generation += 1
            return
        change = compare(self.policies, loaded, self._digests)
        self._digests = change.digests
        self.metrics.reloads.labels("ok").inc()
        self.policy_errors, self.policy_error_at = (), None
        self.policies = loaded
        if self.engine is not None:
            self.engine.policies = loaded
        if self.central is not None:
            for name in loaded.stations:
                self.central.add_station(name)
        assert self.store is not None
        self.store.event(
            "policy.loaded",
            f"policies reloaded: {len(change.changed)} station(s) changed, {len(change.removed)} removed",
            now,
            revision=loaded.revision,
            data={"changed": list(change.changed[:200]), "removed": list(change.removed[:200])},
        )
        log.info(
            "policies reloaded (revision %s): %d station(s) to reconcile", loaded.revision or "-", len(change.changed)
        )
        for name in change.removed:
            self.queue.forget(name)
        for name in change.changed:
            self.queue.request(name, "policy changed")
        self.generation += 1

    def _pulled(self, problem: str | None) -> None:
        """A `--pull` outcome: a new failure is logged, recorded as an event and notified (once, not
        at every interval); the next success says so."""
        previous, self.pull_error = self.pull_error, problem
        if problem == previous:
            return
        assert self.store is not None
        now = self.now()
        if problem is None:
            log.info("git pull works again")
            self.store.event("policy.pull_recovered", "git pull --ff-only works again", now,
                             revision=self.policies.revision)  # fmt: skip
        else:
            log.warning("%s", problem)
            self.store.event("policy.pull_failed", problem, now, revision=self.policies.revision)
            self.notifier.send(
                {"kind": "policy.pull_failed", "station_id": None, "condition": None, "reason": problem,
                 "revision": self.policies.revision, "at": format_time(now)}
            )  # fmt: skip
        self.generation += 1

    async def _events(self, hub: asyncio.Queue[StationEvent]) -> None:
        while True:
            event = await hub.get()
            try:
                self._on_event(event)
            except Exception:
                log.exception("handling %s of %s failed", event.kind.value, event.station_id)

    def _on_event(self, event: StationEvent) -> None:
        sid = event.station_id
        if sid not in self.policies.desired:
            return
        kind = event.kind
        # connection, boot info, connector status (the control source's Policy: Blocked), meter values,
        # transactions: the API shows them
        self.touched(sid)
        if kind is StationEventKind.CONNECTED:
            self.queue.request(sid, "connected", delay=self.settings.connect_grace)
            self.generation += 1
        elif kind is StationEventKind.BOOTED:
            self._boot_at[sid] = clock.monotonic()
            if self.store is not None:
                self.store.forget_configuration(sid)  # read again: the reboot may have changed it
            self.queue.request(sid, "booted")
            self.generation += 1
        elif kind is StationEventKind.DISCONNECTED:
            self._record(sid, Status.OFFLINE, f"disconnected ({event.data.get('reason') or 'closed'})")
        elif kind is StationEventKind.TRANSACTION_STARTED:
            session_started(self, sid, event)
        elif kind is StationEventKind.TRANSACTION_STOPPED:
            session_stopped(self, sid, event)
        elif kind is StationEventKind.METER_VALUES:
            self._meter(sid, event.data)

    def _meter(self, station_id: str, data: dict[str, Any]) -> None:
        from reconciler.daemon.in_force import judged_samples

        for within in judged_samples(self, station_id, data):  # against the limit in force when taken
            self.metrics.sample(within)

    async def _expire_overrides(self) -> None:
        assert self.state is not None
        while True:
            await asyncio.sleep(1.0)
            now = self.now()
            for override in self.state.expired_overrides(now):
                self.state.remove_override(override.id, now, "expired")
                assert self.store is not None
                self.store.event(
                    "override.expired",
                    f"override #{override.id} expired; git's state returns",
                    now,
                    station_id=override.station_id,
                    revision=self.policies.revision,
                )
                self.queue.request(override.station_id, f"override #{override.id} expired")
                self.generation += 1

    def _gave_up(self, station_id: str, failures: int, wait: float) -> None:
        reason = f"{failures} failed reconciles in a row; retrying every {wait:.0f}s until a trigger says otherwise"
        assert self.store is not None
        self.store.event(
            "reconcile.backoff", reason, self.now(), station_id=station_id, revision=self.policies.revision
        )
        log.warning("%s: giving up for now: %s", station_id, reason)
        self.notifier.send(self._notice("station.gave_up", station_id, None, reason))

    # --- one station ----------------------------------------------------------------------------------

    async def _work(self, station_id: str, reasons: frozenset[str]) -> bool:
        assert self.engine is not None and self.state is not None and self.gateway is not None
        if station_id not in self.policies.desired:
            return True
        started = clock.monotonic()
        before = self.condition(station_id)
        suspension = self.state.suspension(station_id)
        desired = self.policies.desired[station_id]
        if suspension is not None:
            why = f": {suspension.why}" if suspension.why else ""
            self._record(station_id, Status.SUSPENDED, f"suspended by {suspension.who}{why}")
            outcome = Outcome(station_id, Status.SUSPENDED, None)
        elif not self.gateway.is_connected(station_id):
            self._record(station_id, Status.OFFLINE, "not connected")
            outcome = Outcome(station_id, Status.OFFLINE, "not connected")
        elif desired.sync == "reportOnly":
            outcome = (await self.engine.plan([station_id]))[0]
            if outcome.status is Status.OUT_OF_SYNC:
                outcome.reason = f"report-only: {outcome.reason}"
            self._record(station_id, outcome.status, outcome.reason)
        else:
            outcome = await self.engine.reconcile_station(station_id)
        outcome.seconds = clock.monotonic() - started
        self.latest[station_id] = kept(outcome)
        self.last_reconcile[station_id] = self.now()
        self.generation += 1
        self.touched(station_id)
        self.metrics.reconciles.labels(outcome.status.value).inc()
        self.metrics.duration.observe(outcome.seconds)
        if outcome.status is Status.SYNCED and station_id in self._boot_at:
            self.metrics.boot_to_reapplied.observe(clock.monotonic() - self._boot_at.pop(station_id))
        self._notify_change(station_id, before, outcome)
        ok = outcome.status in (Status.SYNCED, Status.OUT_OF_SYNC, Status.SUSPENDED) or (
            outcome.status is Status.OFFLINE and (outcome.reason == "not connected" or self._away(station_id))
        )
        log_outcome(station_id, outcome, reasons, self.settings.queue.interval if ok else None, self.policies.revision)
        return ok

    def _away(self, station_id: str) -> bool:
        """Through a proxy, a station the proxy does not hold is away, not failing: checked again at
        the drift interval (no connect event comes through a proxy), no backoff, no "gave up". A
        proxy that is down or refuses us is a failure (backoff: it is not hammered)."""
        return self.inject is not None and self.inject.absent(station_id)

    def touched(self, station_id: str) -> None:
        for listener in self.listeners:
            listener(station_id)

    def _record(self, station_id: str, status: Status, reason: str | None) -> None:
        assert self.store is not None
        before = self.condition(station_id)
        self.store.set_condition(station_id, status, reason, self.policies.revision, self.now())
        self.generation += 1
        if status is Status.OFFLINE and before is not None and before.status is not Status.OFFLINE:
            self.notifier.send(self._notice("condition.Offline", station_id, status, reason))

    def _notice(self, kind: str, station_id: str | None, status: Status | None, reason: str | None) -> dict[str, Any]:
        return {
            "kind": kind,
            "station_id": station_id,
            "condition": status.value if status else None,
            "reason": reason,
            "revision": self.policies.revision,
            "at": format_time(self.now()),
        }

    def _notify_change(self, station_id: str, before: Any, outcome: Outcome) -> None:
        previous = before.status if before is not None else None
        if outcome.status is Status.DEGRADED and previous is not Status.DEGRADED:
            self.notifier.send(self._notice("condition.Degraded", station_id, outcome.status, outcome.reason))
        elif outcome.status is Status.OFFLINE and previous not in (None, Status.OFFLINE) and self.inject is not None:
            # with --via no disconnect event comes (`_record` notifies those): the proxy's answer is the news
            self.notifier.send(self._notice("condition.Offline", station_id, outcome.status, outcome.reason))
        elif (
            outcome.status is Status.SYNCED
            and outcome.sent
            and outcome.plan is not None
            and not outcome.plan.as_recorded
        ):
            self.notifier.send(
                self._notice(
                    "drift.healed",
                    station_id,
                    outcome.status,
                    f"drift healed: {sum(outcome.sent.values())} call(s) sent",
                )
            )

    # --- views for the API ------------------------------------------------------------------------------

    def conditions(self) -> dict[str, Any]:
        return self.store.conditions() if self.store is not None else {}

    def condition(self, station_id: str) -> Any:
        """One station's recorded condition (None: none yet); one row, not the whole table."""
        return self.store.condition(station_id) if self.store is not None else None

    def _condition_counts(self) -> Counter[str]:
        conditions = self.conditions()
        return Counter(conditions[n].status.value for n in self.policies.desired if n in conditions)

    def _clock_skews(self) -> dict[str, float]:
        skews = self.store.clock_skews() if self.store is not None else {}
        return {n: skew for n, skew in skews.items() if n in self.policies.desired}

    def override_expiry(self, ttl: float | None) -> datetime:
        return self.now() + timedelta(seconds=self.settings.override_ttl if ttl is None else ttl)
