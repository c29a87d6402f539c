"""Retries with exponential backoff and jitter, and the global rate limit (no real time passes)."""

from __future__ import annotations

import random

from reconciler.engine.calls import Caller, RateLimit, RetryPolicy
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.transport.gateway import Reply, ReplyKind
from reconciler.transport.memory import MemoryGateway


class Sleeps:
    """Records what the code under test asked to sleep, and returns at once."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def gateway() -> MemoryGateway:
    memory = MemoryGateway()
    memory.add(SimulatedChargePoint("CP-1"))
    return memory


async def test_temporary_failures_are_retried_with_growing_jittered_backoff():
    memory, sleeps = gateway(), Sleeps()
    memory.fail("CP-1", "GetConfiguration", Reply.offline("gone"), times=2)
    caller = Caller(memory, RetryPolicy(attempts=3, base_delay=0.5, max_delay=5), rng=random.Random(7), sleep=sleeps)
    reply = await caller.call("CP-1", "GetConfiguration", {"key": ["ChargeProfileMaxStackLevel"]})
    assert reply.ok and caller.retried == 2 and caller.sent["GetConfiguration"] == 3
    assert 0.25 <= sleeps.asked[0] <= 0.5 and 0.5 <= sleeps.asked[1] <= 1.0  # full jitter in [ceiling/2, ceiling]


async def test_retries_are_bounded_and_the_last_failure_is_returned():
    memory, sleeps = gateway(), Sleeps()
    memory.fail("CP-1", "GetConfiguration", Reply.timeout("slow"), times=10)
    caller = Caller(memory, RetryPolicy(attempts=4, base_delay=1, max_delay=2), sleep=sleeps)
    reply = await caller.call("CP-1", "GetConfiguration", {})
    assert reply.kind is ReplyKind.TIMEOUT and caller.sent["GetConfiguration"] == 4
    assert max(sleeps.asked) <= 2  # capped at max_delay


async def test_refusals_are_never_retried():
    memory, sleeps = gateway(), Sleeps()
    memory.fail("CP-1", "SetChargingProfile", Reply.call_error("NotSupported", "no smart charging"), times=5)
    caller = Caller(memory, RetryPolicy(attempts=5), sleep=sleeps)
    reply = await caller.call("CP-1", "SetChargingProfile", {})
    assert reply.kind is ReplyKind.CALL_ERROR and reply.error_code == "NotSupported"
    assert caller.sent["SetChargingProfile"] == 1 and sleeps.asked == []


async def test_a_final_reply_after_an_unanswered_attempt_is_ambiguous():
    memory, sleeps = gateway(), Sleeps()
    memory.fail("CP-1", "SetChargingProfile", Reply.timeout("lost"), times=1)
    memory.fail("CP-1", "ClearChargingProfile", Reply.call_error("InternalError", "busy"), times=1)
    caller = Caller(memory, RetryPolicy(attempts=3), sleep=sleeps)
    first_lost = await caller.call("CP-1", "SetChargingProfile", {"connectorId": 9})
    assert first_lost.kind is ReplyKind.CALL_ERROR and first_lost.ambiguous  # the lost attempt may have worked
    plain = await caller.call("CP-1", "ClearChargingProfile", {"id": 1})
    assert plain.kind is ReplyKind.CALL_ERROR and not plain.ambiguous  # the charger's own answer to the only try
    assert Reply.timeout().ambiguous and not Reply.answered({"status": "Accepted"}).ambiguous


async def test_rate_limit_spaces_calls_beyond_the_burst():
    now = [100.0]
    sleeps = Sleeps()

    async def sleep(seconds: float) -> None:
        await sleeps(seconds)
        now[0] += seconds

    limit = RateLimit(2.0, burst=2, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(5):
        await limit.acquire()
    assert sleeps.asked == [0.5, 0.5, 0.5]  # two at once, then one every 1/2 s
    assert now[0] == 101.5
    await RateLimit(None).acquire()  # no limit: never waits
