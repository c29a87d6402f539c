"""The work queue alone: one run per station at a time, triggers coalesce into one follow-up,
bounded concurrency, exponential backoff after failures, a give-up event, urgent triggers cut
backoff short."""

from __future__ import annotations

import asyncio
import random

import pytest

from reconciler.daemon.workqueue import QueueSettings, WorkQueue


async def test_triggers_coalesce_and_concurrency_is_bounded() -> None:
    runs: list[tuple[str, frozenset[str]]] = []
    release = asyncio.Event()
    active, peak = 0, 0

    async def work(station: str, reasons: frozenset[str]) -> bool:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        runs.append((station, reasons))
        await release.wait()
        active -= 1
        return True

    queue = WorkQueue(work, QueueSettings(concurrency=2, interval=3600), rng=random.Random(1))
    queue.start()
    first = [queue.request(f"S{i}", "start") for i in range(4)]
    await asyncio.sleep(0.05)
    assert len(runs) == 2 and peak == 2
    for reason in ("file", "boot", "api"):  # arrive while S0 runs: one follow-up with every reason
        queue.request("S0", reason)
    release.set()
    await asyncio.wait_for(asyncio.gather(*first), 5)
    await asyncio.sleep(0.05)
    follow_ups = [r for s, r in runs if s == "S0"]
    assert follow_ups == [frozenset({"start"}), frozenset({"file", "boot", "api"})]
    assert peak == 2
    await queue.close(1)


async def test_failures_back_off_then_give_up_and_urgent_cuts_short() -> None:
    now = [0.0]
    calls: list[float] = []
    gave_up: list[tuple[str, int]] = []

    async def work(station: str, reasons: frozenset[str]) -> bool:
        calls.append(now[0])
        return False

    settings = QueueSettings(concurrency=1, interval=60, backoff_base=1, backoff_cap=8, give_up_after=4)
    queue = WorkQueue(
        work,
        settings,
        rng=random.Random(2),
        monotonic=lambda: now[0],
        on_give_up=lambda s, n, w: gave_up.append((s, n)),
    )
    queue.start()
    await queue.request("S", "start")
    waits = []
    for _ in range(5):
        due = queue.next_check("S")
        assert due is not None
        waits.append(due)
        now[0] += due
        queue._wake.set()  # the fake clock moved: let the dispatcher look again
        await asyncio.sleep(0.02)
    assert len(calls) == 6
    assert 0.5 <= waits[0] <= 1 and 1 <= waits[1] <= 2 and 2 <= waits[2] <= 4  # doubling, jittered
    assert waits[3] == pytest.approx(8) and waits[4] == pytest.approx(8)  # given up for now: only at the cap
    assert gave_up == [("S", 4)]
    queue.request("S", "periodic", urgent=False)
    assert queue.next_check("S") == pytest.approx(8)  # a periodic check never cuts a backoff short
    queue.request("S", "booted")
    assert queue.next_check("S") == 0
    await queue.close(1)


async def test_periodic_checks_due_close_together_start_together() -> None:
    # Drift checks in small bursts: a check due within `gather` seconds of the one due now starts with
    # it (one wake-up, one commit); a trigger's delay (the connect grace) and a backoff keep their time.
    now = [0.0]
    runs: list[tuple[str, float, frozenset[str]]] = []

    async def work(station: str, reasons: frozenset[str]) -> bool:
        runs.append((station, now[0], reasons))
        return station != "F"

    settings = QueueSettings(concurrency=8, interval=10, jitter=0, gather=1.0, backoff_base=21, backoff_cap=21)
    queue = WorkQueue(work, settings, rng=random.Random(3), monotonic=lambda: now[0])
    queue.start()
    for station, at in (("A", 0.0), ("B", 0.5), ("C", 2.0)):
        now[0] = at
        await asyncio.wait_for(queue.request(station, "start"), 5)
    now[0] = 0.0
    await asyncio.wait_for(queue.request("F", "start"), 5)  # fails: retried after a backoff of 10.5-21 s
    now[0] = 10.0
    queue.request("D", "connected", delay=0.7)
    queue._wake.set()  # the fake clock moved: let the dispatcher look again
    for _ in range(100):  # bounded: the dispatcher starts A and B within a few loop turns
        if len(runs) >= 6:
            break
        await asyncio.sleep(0.01)
    later = [(s, t, r) for s, t, r in runs if t == 10.0]
    assert sorted(s for s, _, _ in later) == ["A", "B"]
    assert all(not r for _, _, r in later)  # periodic checks
    assert queue.next_check("C") == pytest.approx(2.0)  # due 2 s later: not pulled forward
    assert queue.next_check("D") == pytest.approx(0.7)  # the connect grace keeps its time
    backoff = queue.next_check("F")
    assert backoff is not None and backoff >= 0.5  # so does a backoff
    await queue.close(1)
