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
