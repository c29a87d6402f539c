"""The daemon's per-station work queue: one reconcile per station at a time, triggers coalesced.

Flow: triggers (file change, connect, boot, transaction, periodic check, API) -> `request()` ->
a heap of due times -> the dispatcher starts `work(station, reasons)` under a global concurrency
bound -> the result schedules what comes next:
- a trigger that arrives while the station is being reconciled becomes one follow-up run, however
  many arrive (their reasons are merged);
- after a success the next periodic drift check is due in `interval` +- `jitter`;
- after a failure the station waits an exponential backoff with full jitter (base * 2^n, capped);
  after `give_up_after` failures in a row `on_give_up` is told once and the station is retried only
  at the cap (it is not hammered). An urgent trigger (a reboot, a policy change, an operator's
  request) cuts a backoff short; a periodic check never does.
Time comes from `monotonic` and randomness from `rng` (both injectable for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from reconciler import clock

log = logging.getLogger(__name__)

Work = Callable[[str, frozenset[str]], Awaitable[bool]]  # returns True on success


@dataclass(frozen=True, slots=True)
class QueueSettings:
    concurrency: int = 32
    interval: float = 300.0  # periodic drift check per station
    jitter: float = 0.1  # +- share of the interval
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    give_up_after: int = 6


@dataclass(slots=True)
class _Slot:
    due: float | None = None
    reasons: set[str] = field(default_factory=set)
    running: bool = False
    failures: int = 0
    gave_up: bool = False
    backoff_until: float = 0.0
    urgent: bool = False  # an urgent trigger arrived while running
    done: list[asyncio.Future[None]] = field(default_factory=list)


class WorkQueue:
    def __init__(
        self,
        work: Work,
        settings: QueueSettings | None = None,
        *,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = clock.monotonic,
        on_give_up: Callable[[str, int, float], None] | None = None,
    ) -> None:
        self.work = work
        self.settings = settings or QueueSettings()
        self.rng = rng or random.Random()
        self.monotonic = monotonic
        self.on_give_up = on_give_up
        self._slots: dict[str, _Slot] = {}
        self._heap: list[tuple[float, str]] = []
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._limit = asyncio.Semaphore(self.settings.concurrency)
        self._closed = False
        self._dispatcher: asyncio.Task[None] | None = None

    # --- triggers -----------------------------------------------------------------------------------

    def request(self, station_id: str, reason: str, *, delay: float = 0.0, urgent: bool = True) -> asyncio.Future[None]:
        """Ask for a reconcile of `station_id`; returns a future done when a run that includes this
        request has finished. A run already due sooner keeps its time; reasons are merged."""
        slot = self._slots.setdefault(station_id, _Slot())
        now = self.monotonic()
        at = now + max(0.0, delay)
        if urgent:
            slot.backoff_until = 0.0
            slot.gave_up = False
            slot.urgent = slot.running
        else:
            at = max(at, slot.backoff_until)
        slot.reasons.add(reason)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        slot.done.append(future)
        if slot.due is None or at < slot.due:
            slot.due = at
            if not slot.running:
                heapq.heappush(self._heap, (at, station_id))
                self._wake.set()
        return future

    def forget(self, station_id: str) -> None:
        """The station is no longer declared: drop what is queued for it."""
        slot = self._slots.pop(station_id, None)
        if slot is not None:
            for future in slot.done:
                if not future.done():
                    future.set_result(None)

    def next_check(self, station_id: str) -> float | None:
        """Seconds until the station's next scheduled run (None when nothing is scheduled)."""
        slot = self._slots.get(station_id)
        if slot is None or slot.due is None:
            return None
        return max(0.0, slot.due - self.monotonic())

    def failures(self, station_id: str) -> int:
        slot = self._slots.get(station_id)
        return slot.failures if slot else 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        now = self.monotonic()
        return sum(1 for s in self._slots.values() if s.due is not None and s.due <= now and not s.running)

    # --- running ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="workqueue")

    async def _dispatch(self) -> None:
        while not self._closed:
            now = self.monotonic()
            while self._heap and self._heap[0][0] <= now:
                at, station_id = heapq.heappop(self._heap)
                slot = self._slots.get(station_id)
                if slot is None or slot.running or slot.due is None or slot.due != at:
                    continue  # stale entry: rescheduled, running or forgotten
                await self._limit.acquire()
                if self.closed:
                    self._limit.release()
                    return
                self._start(station_id, slot)
                now = self.monotonic()
            timeout = None if not self._heap else max(0.0, self._heap[0][0] - now)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _start(self, station_id: str, slot: _Slot) -> None:
        reasons = frozenset(slot.reasons)
        waiting, slot.done = slot.done, []
        slot.reasons = set()
        slot.due = None
        slot.running = True
        task = asyncio.create_task(self._run(station_id, slot, reasons, waiting), name=f"reconcile {station_id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(
        self, station_id: str, slot: _Slot, reasons: frozenset[str], waiting: list[asyncio.Future[None]]
    ) -> None:
        ok = False
        try:
            ok = await self.work(station_id, reasons)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconcile of %s failed unexpectedly", station_id)
        finally:
            self._limit.release()
            slot.running = False
            for future in waiting:
                if not future.done():
                    future.set_result(None)
        if self._closed or self._slots.get(station_id) is not slot:
            return
        now = self.monotonic()
        s = self.settings
        if ok:
            slot.failures = 0
            slot.gave_up = False
            slot.backoff_until = 0.0
            spread = s.interval * s.jitter
            following = now + s.interval + self.rng.uniform(-spread, spread)
        else:
            slot.failures += 1
            ceiling = min(s.backoff_cap, s.backoff_base * 2 ** (slot.failures - 1))
            wait = self.rng.uniform(ceiling / 2, ceiling)
            if slot.failures >= s.give_up_after:
                wait = s.backoff_cap
                if not slot.gave_up and self.on_give_up is not None:
                    self.on_give_up(station_id, slot.failures, wait)
                slot.gave_up = True
            slot.backoff_until = now + wait
            following = slot.backoff_until
        if slot.due is not None:  # triggers arrived meanwhile: one follow-up (after a failure, only urgent
            # ones come before the backoff ends)
            following = min(following, slot.due if ok or slot.urgent else max(slot.due, slot.backoff_until))
        slot.urgent = False
        slot.due = following
        heapq.heappush(self._heap, (following, station_id))
        self._wake.set()

    async def close(self, timeout: float) -> int:
        """Stop starting runs; wait up to `timeout` s for those in flight, then cancel them.
        Returns how many had to be cancelled."""
        self._closed = True
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        running = list(self._running)
        if not running:
            return 0
        _, pending = await asyncio.wait(running, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        return len(pending)
