#!/usr/bin/env python3
"""Composite engine throughput: composites per second, single process, pure core.

Two request mixes, each timed over several rounds (the median is reported):
- conformance: every request of tests/conformance/cases.jsonl, pre-parsed (engine time only),
  plus the same end to end (JSON text in -> GetCompositeSchedule.conf JSON text out);
- random: a seeded mix of 1-6 random profiles (all kinds and purposes, 1-2 connectors).
A plain straightforward engine reaches about 27,000 composites/s on this class of machine; the
target for reconciler.core.composite is >= 50,000/s.

    python bench/composite.py [--rounds 5] [--seconds 1.0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler.core.composite import compute_composite
from reconciler.core.context import StationContext, Transaction
from reconciler.core.profiles import (
    ChargingProfile,
    ChargingSchedule,
    Kind,
    Purpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
)
from reconciler.core.wire import answer, composite_to_ocpp, request_from_json

HERE = Path(__file__).resolve().parent
CASES = HERE.parent / "tests" / "conformance" / "cases.jsonl"
NOW = datetime(2026, 3, 1, 12, 0, 7, tzinfo=UTC)


def random_profile(rng: random.Random, profile_id: int) -> tuple[int, ChargingProfile]:
    purpose = rng.choice([Purpose.CHARGE_POINT_MAX, Purpose.TX_DEFAULT, Purpose.TX_DEFAULT, Purpose.TX])
    kind = (
        rng.choice([Kind.ABSOLUTE, Kind.RECURRING, Kind.RELATIVE])
        if purpose is not Purpose.CHARGE_POINT_MAX
        else rng.choice([Kind.ABSOLUTE, Kind.RECURRING])
    )
    unit = rng.choice([RateUnit.A, RateUnit.W])
    starts = sorted(rng.sample(range(1, 20_000), rng.randint(0, 5)))
    periods = tuple(
        SchedulePeriod(
            s,
            round(rng.uniform(6, 32) if unit is RateUnit.A else rng.uniform(1400, 22000), 1),
            rng.choice([None, 1, 3]),
        )
        for s in [0, *starts]
    )
    start = NOW + timedelta(seconds=rng.randint(-40_000, 20_000)) if kind is not Kind.RELATIVE else None
    schedule = ChargingSchedule(
        unit, periods, duration=rng.choice([None, rng.randint(600, 80_000)]), start_schedule=start
    )
    profile = ChargingProfile(
        charging_profile_id=profile_id,
        stack_level=rng.randint(0, 5),
        purpose=purpose,
        kind=kind,
        schedule=schedule,
        recurrency_kind=rng.choice([Recurrency.DAILY, Recurrency.WEEKLY]) if kind is Kind.RECURRING else None,
        valid_from=NOW + timedelta(seconds=rng.randint(-5000, 5000)) if rng.random() < 0.2 else None,
        valid_to=NOW + timedelta(seconds=rng.randint(5000, 90_000)) if rng.random() < 0.2 else None,
    )
    connector = (
        0
        if purpose is Purpose.CHARGE_POINT_MAX
        else rng.choice([0, 1, 2])
        if purpose is Purpose.TX_DEFAULT
        else rng.choice([1, 2])
    )
    return connector, profile


def random_mix(count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    ctx = StationContext(number_of_connectors=2)
    calls = []
    for _ in range(count):
        installed = [random_profile(rng, i + 1) for i in range(rng.randint(1, 6))]
        tx = {1: Transaction(1, 7, NOW - timedelta(seconds=rng.randint(0, 3600)))} if rng.random() < 0.5 else {}
        calls.append(
            {
                "installed": installed,
                "connector_id": rng.choice([0, 1, 1, 2]),
                "now": NOW,
                "duration": rng.choice([3600, 86_400]),
                "unit": rng.choice([RateUnit.A, RateUnit.W]),
                "context": ctx,
                "transactions": tx,
            }
        )
    return calls


def rate(work: Any, items: int, seconds: float, rounds: int) -> list[float]:
    """Composites per second of each round (each round repeats `work` until `seconds` elapse)."""
    results = []
    for _ in range(rounds):
        done = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline and done < 10_000_000:
            work()
            done += items
        results.append(done / (time.perf_counter() - started))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one round")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rounds": args.rounds,
    }
    if CASES.is_file():
        lines = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
        keys = ("now", "connectorId", "duration", "chargingRateUnit", "profiles", "transaction", "context")
        raw = [{k: case.get(k) for k in keys} for case in lines]
        parsed = [request_from_json(r) for r in raw]
        texts = [json.dumps(r) for r in raw]

        def engine_only() -> None:
            for request in parsed:
                answer(request)

        def end_to_end() -> None:
            for text in texts:
                json.dumps(composite_to_ocpp(answer(request_from_json(json.loads(text)))))

        figures["conformance_engine_per_s"] = statistics.median(
            rate(engine_only, len(parsed), args.seconds, args.rounds)
        )
        figures["conformance_end_to_end_per_s"] = statistics.median(
            rate(end_to_end, len(texts), args.seconds, args.rounds)
        )
    else:
        print(f"note: {CASES} not found; conformance mix skipped", file=sys.stderr)

    calls = random_mix(2000)

    def random_work() -> None:
        for call in calls:
            compute_composite(**call)

    figures["random_1_6_profiles_per_s"] = statistics.median(rate(random_work, len(calls), args.seconds, args.rounds))
    figures["target_per_s"] = 50_000
    figures["plain_reference_per_s"] = 27_000
    for key, value in figures.items():
        if key.endswith("_per_s"):
            print(f"{key:32} {value:>10,.0f}   ({value / 27_000:.2f}x the plain reference)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
