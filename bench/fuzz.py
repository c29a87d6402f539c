#!/usr/bin/env python3
"""Policy fuzzing figures: inputs tried, tracebacks, slowest run, largest memory (issue 8).

Runs the seeded corpus of tests/policy/fuzz_corpus.py (mutated policy sets: hostile scalars,
explicit tags, alias bombs, deep nesting, bad bytes; valid sets also go through the expected
composite) in a worker process whose address space is capped, so a blow-up is a finding, not a
frozen machine. Each run is timed; with --memory (default) its peak Python allocation is traced
(tracemalloc, which slows the runs about 2.5x); the worker's peak RSS bounds every run from above.

    python bench/fuzz.py [--count 2000] [--seed 1] [--no-memory] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1 << 20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="mutated policy sets to try")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-memory", action="store_true", help="skip tracemalloc (faster; RSS bound only)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds after which a run counts as hung")
    parser.add_argument("--address-space", type=int, default=2048, help="MB of address space for the worker")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    worker = [sys.executable, "-m", "tests.policy.fuzz_corpus", "--seed", str(args.seed), "--count", str(args.count),
              "--time-limit", str(args.time_limit), "--address-space", str(args.address_space)]  # fmt: skip
    if not args.no_memory:
        worker.append("--memory")
    started = time.perf_counter()
    done = subprocess.run(worker, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        print(f"error: the fuzz worker died (exit {done.returncode}): that itself is a finding", file=sys.stderr)
        return 1
    figures = json.loads(done.stdout)
    traced = figures["largest_traced_bytes"]
    print(f"policy fuzz: {figures['inputs']} mutated policy sets (seed {args.seed}), {figures['valid']} valid, "
          f"{figures['codes']} distinct diagnostic codes")  # fmt: skip
    print(f"  tracebacks:       {figures['tracebacks']}")
    print(f"  slowest run:      {figures['slowest_seconds'] * 1000:.0f} ms ({figures['slowest_input']})")
    if traced is not None:
        print(f"  largest memory:   {traced / MB:.1f} MB traced in one run ({figures['largest_input']})")
    print(f"  worker peak RSS:  {figures['max_rss_bytes'] / MB:.0f} MB (bounds every run)")
    print(f"  time:             {figures['seconds']:.1f} s for the runs, {wall:.1f} s with start-up")
    for finding in figures["findings"]:
        print(f"\nFINDING {finding['input']}: {finding['mutations']}\n{finding['traceback']}")
    if args.json:
        payload = {"benchmark": "fuzz", **figures, "wall_seconds": round(wall, 2), "python": platform.python_version()}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if figures["tracebacks"] else 0


if __name__ == "__main__":
    sys.exit(main())
