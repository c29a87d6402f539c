"""Sending one OCPP call the way the engine always does: rate-limited, timed out, retried.

Flow: engine -> `Caller.call` -> `Gateway.call` -> `Reply`. Temporary failures (timeout, offline)
are retried with exponential backoff and full jitter, a bounded number of times (a final reply
after an unanswered attempt is `ambiguous`: that attempt may have been carried out); answers and
CallErrors are returned at once (STYLE.md rule 5: Rejected and NotSupported are permanent for the
plan, so retrying them only hammers the charger). Every call is counted per action, so a run can
report how many SetChargingProfile calls it sent.

Restarts: inside a station's run (`watching_restarts`), the run registers a check (`watch_restarts`:
did the charger restart since the run observed it?). Before every ClearChargingProfile, and before
every retry of any call, the caller asks it; on a restart nothing more is sent and the call raises
`ChargerRestarted`: the plan was made for a charger that may no longer hold what it relied on (a
Set the restart lost), so the run stops there and the next one re-plans.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from reconciler import clock
from reconciler.transport.gateway import Gateway, Reply

# (attempt about to be sent, the previous attempt's reply or None) -> did the charger restart?
RestartCheck = Callable[[int, Reply | None], Awaitable[bool]]
_CHECKS: contextvars.ContextVar[dict[str, RestartCheck] | None] = contextvars.ContextVar("restart_checks", default=None)


class ChargerRestarted(Exception):
    """The charger restarted since the run observed it: `action` was not sent (again). `sent`: an
    earlier attempt of it went out unanswered (it may have been carried out)."""

    def __init__(self, station_id: str, action: str, payload: dict[str, Any], *, sent: bool) -> None:
        super().__init__(f"{station_id} restarted before {action}")
        self.station_id = station_id
        self.action = action
        self.payload = payload
        self.sent = sent


@contextlib.contextmanager
def watching_restarts() -> Iterator[None]:
    """A scope (one station's run, in its own task) whose calls ask the checks `watch_restarts` registers."""
    token = _CHECKS.set(dict(_CHECKS.get() or {}))
    try:
        yield
    finally:
        _CHECKS.reset(token)


def watch_restarts(station_id: str, check: RestartCheck) -> None:
    """From now on in this scope, ask `check` before each Clear and each retry of a call to the station."""
    checks = _CHECKS.get()
    if checks is not None:
        checks[station_id] = check


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3  # tries per call, the first included
    base_delay: float = 0.25  # seconds before the first retry; doubles each time
    max_delay: float = 5.0
    call_timeout: float = 10.0


class RateLimit:
    """A token bucket shared by every call of a run: at most `per_second` calls, bursts of `burst`."""

    def __init__(
        self,
        per_second: float | None,
        burst: int | None = None,
        *,
        monotonic: Callable[[], float] = clock.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = per_second
        self.capacity = float(burst or max(1, int(per_second or 1)))
        self.tokens = self.capacity
        self.monotonic = monotonic
        self.sleep = sleep
        self.updated = monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.rate is None:
            return
        async with self.lock:
            while True:
                now = self.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await self.sleep((1 - self.tokens) / self.rate)


class Caller:
    """The engine's one way to reach a charger."""

    def __init__(
        self,
        gateway: Gateway,
        retry: RetryPolicy | None = None,
        rate_limit: RateLimit | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.gateway = gateway
        self.retry = retry or RetryPolicy()
        self.rate_limit = rate_limit or RateLimit(None)
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.sent: Counter[str] = Counter()
        self.retried = 0

    async def call(self, station_id: str, action: str, payload: dict[str, Any]) -> Reply:
        reply: Reply | None = None
        unanswered = False  # an earlier attempt may have reached the charger and been carried out
        check = (_CHECKS.get() or {}).get(station_id)
        for attempt in range(self.retry.attempts):
            if attempt:
                self.retried += 1
                ceiling = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
                await self.sleep(self.rng.uniform(ceiling / 2, ceiling))
            await self.rate_limit.acquire()
            if check is not None and (attempt or action == "ClearChargingProfile") and await check(attempt, reply):
                raise ChargerRestarted(station_id, action, payload, sent=unanswered)
            self.sent[action] += 1
            reply = await self.gateway.call(station_id, action, payload, timeout=self.retry.call_timeout)
            if not reply.temporary:
                return replace(reply, unsure=True) if unanswered and not reply.unsure else reply
            unanswered = True
        assert reply is not None
        return reply
