#!/usr/bin/env python3
"""Event log retention cost: one prune of the watch daemon (`daemon/retention.py`) on a real file.

Writes ROWS events into a temporary state file (EXPIRED of them older than the age bound, the rest
recent), then times (a) the prune that deletes what lies outside the window (the expired events
and those beyond the newest KEEP) and (b) the next prune, which finds nothing to delete (the hourly
cost in steady state), and the longest single batch (how long the write lock is held at most).

    python bench/events_retention.py [--rows 200000] [--expired 50000] [--keep 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler.daemon import retention
from reconciler.daemon.retention import EventRetention, prune_once
from reconciler.store.sqlite import Store

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def fill(store: Store, rows: int, expired: int) -> None:
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=1)
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO events (at, station_id, kind, message, revision, data_json) VALUES (?,?,?,?,?,?)",
            (((old if i < expired else recent).strftime("%Y-%m-%dT%H:%M:%SZ"), f"CP-{i % 1000:04d}",
              "action.set", f"+ profile #{i % 50} on connector 1: Accepted", "abc1234", '{"action": "x"}')
             for i in range(rows)),
        )  # fmt: skip
    store.commit()


async def timed_prune(store: Store, window: EventRetention) -> tuple[int, float, float]:
    longest = 0.0
    original = store.prune_events

    def batch(**kwargs: object) -> int:
        nonlocal longest
        started = time.perf_counter()
        deleted = original(**kwargs)  # type: ignore[arg-type]
        store.commit()
        longest = max(longest, time.perf_counter() - started)
        return deleted

    store.prune_events = batch  # type: ignore[method-assign]
    started = time.perf_counter()
    deleted = await prune_once(store, window, NOW)
    return deleted, time.perf_counter() - started, longest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--expired", type=int, default=50_000)
    parser.add_argument("--keep", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    window = EventRetention(max_age_days=30, max_rows=args.keep)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "state.db")
        fill(store, args.rows, args.expired)
        deleted, first_s, longest_s = asyncio.run(timed_prune(store, window))
        again, steady_s, _ = asyncio.run(timed_prune(store, window))
        left = store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        store.close()
    figures = {
        "rows": args.rows, "expired": args.expired, "keep": args.keep, "batch": retention.BATCH,
        "deleted": deleted, "left": left, "prune_s": round(first_s, 4), "longest_batch_s": round(longest_s, 4),
        "steady_prune_s": round(steady_s, 4), "steady_deleted": again,
        "python": sys.version.split()[0], "machine": platform.machine(),
    }  # fmt: skip
    print(f"{args.rows} events, {args.expired} expired, keep {args.keep}: deleted {deleted} in {first_s:.3f} s "
          f"(longest batch of {retention.BATCH}: {longest_s * 1000:.1f} ms); left {left}")  # fmt: skip
    print(f"steady state (nothing to delete): {steady_s * 1000:.1f} ms per prune")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
