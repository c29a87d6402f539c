"""Station ids are named one way everywhere (issue 12 item 9): `bench/fleet.py --stations 10000`
never started because it named its stations with 4 digits (PY-SIM-0001) while the simulator uses
5 from 10,000 stations on, so no declared station ever connected."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from reconciler.simulator.fleet import station_ids

ROOT = Path(__file__).resolve().parents[2]


def bench_fleet():
    spec = importlib.util.spec_from_file_location("bench_fleet", ROOT / "bench" / "fleet.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fleet_bench_declares_the_ids_the_simulator_connects_with():
    bench = bench_fleet()
    for n in (1, 9999, 10000, 12345):
        assert bench.ids(n) == station_ids(n), n
    big = station_ids(10000)
    assert big[-1] == "PY-SIM-10000" and len(set(map(len, big))) == 1  # one width per run: sorted = numbered
    assert station_ids(3) == ["PY-SIM-0001", "PY-SIM-0002", "PY-SIM-0003"]  # the documented 4 digits below 10,000
