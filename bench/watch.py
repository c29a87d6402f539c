"""bench/watch.py: the watch daemon's figures (issue 10), side by side with the one-shot path.

The daemon runs in this process (as `reconciler watch` would: Central System, engine, uvicorn on one
loop); the simulated stations run in a child process (`reconciler simulate`), and the HTTP load of
(d) in another child, so the daemon's CPU is its own.

(a) policy file saved -> first SetChargingProfile to the affected station, p50/p95 over --samples
    edits (the debounce included); beside it the one-shot path: `reconciler apply --via <daemon>
    --station X --auto-approve` started -> its first SetChargingProfile.
(b) BootNotification -> re-applied and verified (stations that lose their profiles on reboot).
(c) the daemon idle with every station connected and Synced and drift checks running: a daemon of
    its own whose drift interval is --drift-interval, measured over a window that holds one full
    round of checks (1.15x the interval, from the moment every station is Synced): CPU (% of one
    core), checks/s, CPU per check, memory (RSS), and the CPU the same per-check cost makes at the
    default 300 s interval. The stations run in --sim-procs simulator processes (uvloop; 10,000
    need several).
(d) GET /stations latency under 50 concurrent clients (a child process, 100 requests each), p50/p95,
    while drift checks run at the default interval's steady rate (N / 300 s).
floor (--only floor, alone): what (c)'s checks cost in this design before the reconciler does anything:
    every station Synced, the daemon's own checks never due, and this script sending each station a
    check's three reads (GetCompositeSchedule for connectors 0, 1, 2, through the embedded Central
    System) at the rate of (c)'s checks, in batches once a second. (c) minus this is the reconciler's
    own work per check (judging, the store, the log line, metrics).
bound (--only bound, alone): (c) with the least a drift check that finds nothing changed can do in
    this design, the bound of any fast path for unchanged checks: the daemon's checks run as always
    (work queue, jitter, the log line, metrics, the outcome kept, the condition's time), but the
    engine's part of each is only the three reads through its caller and a comparison of the answers
    with the station's first ones. If this is above a target, no cleverer judging reaches it.
    Both floor and bound report the kernel's share of the CPU (system time).

The daemon runs on the event loop `reconciler watch` uses (`watch_cmd.event_loop`, asyncio when a
tree has none), so a baseline tree is measured as its CLI would run it:

    .venv/bin/python bench/watch.py --stations 1000 [--samples 10] [--only a,b,c,d] [--json FILE]
    .venv/bin/python bench/watch.py --stations 10000 --only c --drift-interval 120 --sim-procs 4
    .venv/bin/python bench/watch.py --stations 10000 --only floor --drift-interval 300 --window 150 --sim-procs 4
    .venv/bin/python bench/watch.py --stations 10000 --only bound --drift-interval 300 --sim-procs 4
    PYTHONPATH=/path/to/baseline/tree .venv/bin/python bench/watch.py ...   # the baseline column
    .venv/bin/python bench/watch.py --stations 1000 --only c --baseline /path/to/main/worktree
        # side by side: the baseline tree first (this script in a child process with PYTHONPATH set to the
        # tree), then this one, with the ratios (this version / baseline)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler import clock
from reconciler.api.auth import Credentials
from reconciler.core.status import Status
from reconciler.daemon.service import Daemon, DaemonSettings
from reconciler.daemon.workqueue import QueueSettings
from reconciler.engine.observe import clock_skew_of
from reconciler.engine.outcome import Outcome
from reconciler.policy import load_policies
from reconciler.simulator.fleet import station_ids
from reconciler.transport.central_system import CentralSystem

PASSWORD = "bench-secret"
CREDS = Credentials("bench", "bench-pw")
DAEMON_ENGINE = DaemonSettings(policies=(), db=Path(), credentials=CREDS).engine  # each tree's own defaults
# a drift check's reads of one of the bench's stations (2 connectors): connector 0, then 1 and 2
CHECK_READS = [{"connectorId": c, "duration": DAEMON_ENGINE.horizon, "chargingRateUnit": "A"} for c in (0, 1, 2)]


def policy_files(directory: Path, ids: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    docs = [
        f"apiVersion: reconciler/v1\nkind: Station\nmetadata: {{name: {s}, labels: {{site: s{i // 100}}}}}\n"
        "spec: {connectors: 2, maxCurrentA: 32, phases: 3, voltage: 230}\n"
        for i, s in enumerate(ids)
    ]
    (directory / "stations.yaml").write_text("---\n".join(docs))
    for group in range(0, len(ids), 100):
        cap_file(directory, ids[group : group + 100], group // 100, 20.0)


def cap_file(directory: Path, ids: list[str], group: int, limit: float) -> None:
    (directory / f"caps-{group:03d}.yaml").write_text(
        f"apiVersion: reconciler/v1\nkind: ChargingPolicy\nmetadata: {{name: caps-{group}}}\nspec:\n"
        f"  selector: {{stations: [{', '.join(ids)}]}}\n  profiles:\n    - connectorId: 0\n"
        "      chargingProfileId: 1\n      stackLevel: 0\n      chargingProfilePurpose: ChargePointMaxProfile\n"
        "      chargingProfileKind: Absolute\n      chargingSchedule:\n        startSchedule: '2024-01-01T00:00:00Z'\n"
        f"        chargingRateUnit: A\n        chargingSchedulePeriod: [{{startPeriod: 0, limit: {limit}}}]\n"
    )


class Report(dict[str, Any]):
    """Prints each figure as soon as it is measured (a long run that fails late keeps what it had)."""

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        print(f"{key:36} {value}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class SetWatch:
    """Wraps the daemon's gateway: the time of each SetChargingProfile per station."""

    def __init__(self, daemon: Daemon) -> None:
        self.sent: dict[str, list[float]] = {}
        gateway = daemon.gateway
        assert gateway is not None
        inner = gateway.call

        async def call(station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None) -> Any:
            if action == "SetChargingProfile":
                self.sent.setdefault(station_id, []).append(time.perf_counter())
            return await inner(station_id, action, payload, timeout=timeout)

        gateway.call = call  # type: ignore[method-assign]

    async def first_after(self, station: str, since: float, timeout: float = 30.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            times = [t for t in self.sent.get(station, []) if t > since]
            if times:
                return times[0] - since
            await asyncio.sleep(0.001)
        raise TimeoutError(f"no SetChargingProfile to {station} within {timeout}s")


async def wait_synced(daemon: Daemon, ids: list[str], timeout: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        conditions = daemon.conditions()
        if all(s in conditions and conditions[s].status is Status.SYNCED for s in ids):
            return time.perf_counter() - started
        await asyncio.sleep(0.1)
    bad = {s: conditions[s].status.value if s in conditions else None for s in ids}
    raise TimeoutError(f"not Synced after {timeout}s: {sum(1 for v in bad.values() if v != 'Synced')} stations")


LOAD = r"""
import asyncio, base64, gzip, json, sys, time
from urllib.parse import urlsplit
# A lean HTTP/1.1 keep-alive client (asyncio streams: the body is read in C, not parsed in Python), so
# what is measured is the daemon, not the load generator. It asks for gzip as httpx and browsers do.
async def main(url, clients, per):
    parts = urlsplit(url)
    auth = base64.b64encode(b"bench:bench-pw").decode()
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Basic {auth}\r\n"
        "Accept-Encoding: gzip, deflate\r\n\r\n"
    ).encode()
    lat, failed, entries = [], 0, None
    async def one_request_first():  # a warm-up, not measured
        await one(1)
        lat.clear()
    async def one(count=per):
        nonlocal failed, entries
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=2**22)
        try:
            for _ in range(count):
                t = time.perf_counter()
                writer.write(request)
                head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).lower()
                fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
                body = await asyncio.wait_for(reader.readexactly(int(fields[b"content-length"])), 30)
                if not head.startswith(b"http/1.1 200"):
                    failed += 1
                    continue
                lat.append(time.perf_counter() - t)
                if entries is None:  # the first answer is checked whole: a list of every station
                    gzipped = fields.get(b"content-encoding", b"").strip() == b"gzip"
                    entries = len(json.loads(gzip.decompress(body) if gzipped else body))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, KeyError, ValueError):
            failed += 1
        finally:
            writer.close()
    await one_request_first()
    await asyncio.gather(*(one() for _ in range(clients)))
    print(json.dumps({"latencies": lat, "failed": failed, "entries": entries}))
asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


async def start_daemon(tmp: Path, ids: list[str], drift_interval: float, **extra: Any) -> Daemon:
    policy_files(tmp / "policies", ids)
    policies = load_policies([tmp / "policies"], now=clock.now())
    assert policies.ok, [d.format_text() for d in policies.errors[:3]]
    settings = DaemonSettings(
        policies=(tmp / "policies",),
        db=tmp / "state.db",
        credentials=CREDS,
        listen="127.0.0.1:0",
        station_passwords={"*": PASSWORD},
        http="127.0.0.1:0",
        queue=QueueSettings(concurrency=64, interval=drift_interval),
        engine=replace(DAEMON_ENGINE, concurrency=64),
        debounce_ms=50,
    )
    settings = replace(settings, **extra)
    daemon = Daemon(settings, policies)
    await daemon.start()
    return daemon


def shares(n: int, processes: int) -> list[tuple[int, int]]:
    """(first number, count) of each simulator process."""
    share = -(-n // processes)
    return [(first + 1, min(share, n - first)) for first in range(0, n, share)]


def fleet_ids(n: int, processes: int) -> list[str]:
    """The ids the simulator processes use (each numbers its own share: PY-SIM-0001.., PY-SIM-10000..)."""
    return [s for first, count in shares(n, processes) for s in station_ids(count, start=first)]


def start_simulators(url: str, n: int, processes: int, quirks: list[str]) -> list[subprocess.Popen[bytes]]:
    """`reconciler simulate` children, each with its share of the station ids (uvloop in each)."""
    env = {**os.environ, "RECONCILER_STATION_PASSWORD": PASSWORD}
    children = []
    for first, count in shares(n, processes):
        command = [sys.executable, "-m", "reconciler.cli.main", "simulate", "--stations", str(count)]
        command += ["--start", str(first), "--url", url]
        for quirk in quirks:
            command += ["--quirks", quirk]
        children.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return children


def stop_simulators(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


def reconciles(daemon: Daemon) -> float:
    return sum(s.value for s in daemon.metrics.reconciles.collect()[0].samples if s.name.endswith("_total"))


async def save_to_set(daemon: Daemon, watch: SetWatch, tmp: Path, ids: list[str], samples: int) -> list[float]:
    n = len(ids)
    saves = []
    for k in range(samples):
        group = k % max(1, n // 100)
        members = ids[group * 100 : (group + 1) * 100]
        since = time.perf_counter()
        cap_file(tmp / "policies", members, group, 20.0 - (k + 1) * 0.5)
        saves.append(await watch.first_after(members[0], since))
        await wait_synced(daemon, members, 60)
    return saves


async def oneshot_to_set(daemon: Daemon, watch: SetWatch, tmp: Path, ids: list[str], samples: int) -> list[float]:
    """`reconciler apply --via <daemon> --station X --auto-approve` started -> its first Set to X."""
    n = len(ids)
    oneshot = []
    for k in range(samples):
        station = ids[-1 - k]
        env_cli = {**os.environ, "RECONCILER_INJECT_USER": "bench", "RECONCILER_INJECT_PASSWORD": "bench-pw"}
        copy = tmp / f"oneshot-{k}"
        policy_files(copy, ids)
        group = (n - 1 - k) // 100
        cap_file(copy, ids[group * 100 : (group + 1) * 100], group, 6.5)  # the same edit, applied to X only
        assert daemon.store is not None  # the CLI starts from the daemon's ledger (a copy), as an operator's would
        daemon.store.commit()
        with sqlite3.connect(tmp / f"oneshot-{k}.db") as target:
            daemon.store.db.backup(target)
        since = time.perf_counter()
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reconciler.cli.main",
            "apply",
            "--policies",
            str(copy),
            "--via",
            daemon.http.url,
            "--station",
            station,
            "--auto-approve",
            "--db",
            str(tmp / f"oneshot-{k}.db"),
            env=env_cli,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        oneshot.append(await watch.first_after(station, since, 120))
        await cli.wait()
    return oneshot


async def boot_to_reapplied(daemon: Daemon, rebooted: list[str]) -> list[float]:
    boots: list[float] = []
    histogram = daemon.metrics.boot_to_reapplied
    original = histogram.observe
    histogram.observe = lambda v, *a, **k: (boots.append(v), original(v))  # type: ignore[method-assign,func-returns-value]
    assert daemon.gateway is not None
    await asyncio.gather(*(daemon.gateway.call(s, "Reset", {"type": "Soft"}) for s in rebooted))
    deadline = time.perf_counter() + 120
    while len(boots) < len(rebooted) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    return boots


async def get_stations(daemon: Daemon, clients: int, per_client: int) -> tuple[list[float], float | None, int]:
    """Latencies seen by a load child process, the server-side mean from the API histogram, failures.
    Meanwhile drift checks run at the rate the default interval gives in steady state (N / 300 s)."""
    load = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOAD, f"{daemon.http.url}/stations", str(clients), str(per_client),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    ids = sorted(daemon.policies.stations)
    every = 300.0 / len(ids)

    async def drift_checks() -> None:
        for k in range(10**6):  # bounded; cancelled when the load ends
            daemon.queue.request(ids[k % len(ids)], "bench: periodic check", urgent=False)
            await asyncio.sleep(every)

    checks = asyncio.create_task(drift_checks())
    try:
        raw, _ = await load.communicate()
    finally:
        checks.cancel()
    answer = json.loads(raw)
    assert answer["entries"] == len(daemon.policies.stations), answer["entries"]
    latencies, failed = answer["latencies"] or [float("nan")], answer["failed"]
    served = [
        x
        for x in daemon.metrics.api_latency.collect()[0].samples
        if x.labels.get("route") == "/stations" and x.name.endswith(("_sum", "_count"))
    ]
    total = sum(x.value for x in served if x.name.endswith("_sum"))
    count = sum(x.value for x in served if x.name.endswith("_count"))
    return latencies, (round(total / count * 1000, 2) if count else None), failed


def spread(values: list[float], **extra: Any) -> dict[str, Any]:
    return {"p50": round(pct(values, 0.5) * 1000, 1), "p95": round(pct(values, 0.95) * 1000, 1),
            "samples": len(values), **extra}  # fmt: skip


async def bench(
    n: int, samples: int, phases: set[str], drift_interval: float, sim_procs: int, window: float | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = Report({"stations": n})
    ids = fleet_ids(n, sim_procs)
    if phases & {"a", "b", "d"}:
        tmp = Path(tempfile.mkdtemp(prefix="bench-watch-"))
        daemon = await start_daemon(tmp, ids, 300.0)
        assert daemon.central is not None
        sims = start_simulators(daemon.central.url, n, sim_procs, ["lose_profiles_on_reboot=true"])
        try:
            watch = SetWatch(daemon)
            out["initial_converge_s"] = round(await wait_synced(daemon, ids, 120 + n / 20), 2)
            if "a" in phases:
                out["a_save_to_first_set_ms"] = spread(await save_to_set(daemon, watch, tmp, ids, samples))
                oneshot = await oneshot_to_set(daemon, watch, tmp, ids, min(samples, 5))
                out["a_oneshot_apply_to_first_set_ms"] = spread(oneshot)
                # the one-shot runs changed a few stations behind the daemon's back: it sees a cap it did not
                # install there and (rightly) blocks; they are left out of what follows
                ids = ids[: -min(samples, 5)]
            if "b" in phases:
                out["b_boot_to_reapplied_ms"] = spread(await boot_to_reapplied(daemon, ids[: min(samples, n)]))
                await wait_synced(daemon, ids, 120)
            if "d" in phases:
                latencies, server_mean, failed = await get_stations(daemon, 50, 100)
                out["d_server_side_mean_ms"] = server_mean
                out["d_get_stations_ms"] = spread(
                    latencies, clients=50, failed=failed, mean=round(statistics.mean(latencies) * 1000, 1)
                )
        finally:
            stop_simulators(sims)
            await daemon.stop()
    if "c" in phases:
        out["c_idle"] = await idle(n, drift_interval, sim_procs, window)
    if "floor" in phases:
        out["c_floor"] = await floor(n, drift_interval, sim_procs, window)
    if "bound" in phases:
        out["c_bound"] = await idle(n, drift_interval, sim_procs, window, prepare=least_checks)
    return out


@contextlib.asynccontextmanager
async def synced_fleet(
    n: int, drift_interval: float, sim_procs: int, **extra: Any
) -> AsyncIterator[tuple[Daemon, list[str], float]]:
    """A daemon of its own (drift checks every `drift_interval`) and its simulated stations, until every
    station is Synced: (daemon, station ids, seconds to Synced); both stopped on the way out."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    ids = fleet_ids(n, sim_procs)
    daemon = await start_daemon(tmp, ids, drift_interval, **extra)
    assert daemon.central is not None
    sims = start_simulators(daemon.central.url, n, sim_procs, [])
    try:
        yield daemon, ids, await wait_synced(daemon, ids, 300 + n / 5)
    finally:
        stop_simulators(sims)
        await daemon.stop()


async def idle(
    n: int, drift_interval: float, sim_procs: int, window: float | None = None,
    prepare: Callable[[Daemon], dict[str, int]] | None = None, **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    """A daemon of its own, every station Synced, over a window that holds one full round of drift checks.
    `prepare` changes the daemon once every station is Synced and returns counters reported with it."""
    async with synced_fleet(n, drift_interval, sim_procs, **extra) as (daemon, _ids, converged):
        counters = prepare(daemon) if prepare is not None else None
        # Settled: the daemon freezes what lives as long as it does once the fleet has settled (a one-off
        # full collection, 0.7 s at 10,000 stations); the idle window starts after it, and its cost is
        # reported apart (a tree without the freeze is measured from the moment all are Synced).
        settling = GcClock()
        freeze_waited = await wait_frozen(daemon, 60)
        settling.stop()
        window = window or drift_interval * 1.15  # every station's first check falls in it (jitter is +-10%)
        collections = GcClock()
        profiler = None
        if os.environ.get("BENCH_PROFILE"):  # a cProfile of the window, to find where a check goes
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        kernel, cpu0, wall0, checks0 = KernelShare(), time.process_time(), time.perf_counter(), reconciles(daemon)
        await asyncio.sleep(window)
        cpu_s, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        kernel_share = kernel.share()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.environ["BENCH_PROFILE"])
        checks = int(reconciles(daemon) - checks0)
        collections.stop()
        per_check = cpu_s / checks if checks else None
        synced = sum(1 for c in daemon.conditions().values() if c.status is Status.SYNCED)
        return {
            "converge_s": round(converged, 1),
            "cpu_percent_of_one_core": round(cpu_s / wall * 100, 2),
            "kernel_share_of_cpu": kernel_share,
            "rss_mb": round(rss_mb(), 1),
            "seconds": round(wall, 1),
            "drift_interval_s": drift_interval,
            "drift_checks": checks,
            "checks_per_s": round(checks / wall, 1),
            "cpu_ms_per_check": round(per_check * 1000, 3) if per_check else None,
            "cpu_percent_at_300s_interval": round(per_check * n / 300 * 100, 2) if per_check else None,
            "synced_at_end": synced,
            "gc_seconds": round(collections.seconds, 3),
            "gc_full_collections": collections.full,
            "gc_longest_s": round(collections.longest, 3),
            "settle_freeze": {"waited_s": freeze_waited, "gc_seconds": round(settling.seconds, 3)},
            **({"checks_seen": dict(counters)} if counters is not None else {}),
        }


def least_checks(daemon: Daemon) -> dict[str, int]:
    """The least a drift check that finds nothing changed can do in this design (the bound of a fast
    path for unchanged checks, measured, not built): the daemon's checks run as always (work queue,
    jitter, the log line, metrics, the outcome kept), but the engine's part of each is only the three
    reads (through the engine's caller), the answers compared with the station's first ones (without
    scheduleStart), the clock skew taken from the first answer, last seen and the condition's time
    refreshed as a Synced check does. Returns how many checks found the answers the same or changed."""
    engine = daemon.engine
    assert engine is not None
    first: dict[str, list[Any]] = {}
    counters = {"same": 0, "changed": 0}

    async def check(station_id: str, **_: Any) -> Outcome:
        answers, skew = [], None
        for payload in CHECK_READS:
            asked = engine.now()
            reply = await engine.caller.call(station_id, "GetCompositeSchedule", payload)
            body = dict(reply.payload or {})
            if skew is None:
                skew = clock_skew_of(body, asked)
            body.pop("scheduleStart", None)
            schedule = body.get("chargingSchedule")
            if isinstance(schedule, dict):
                body["chargingSchedule"] = {k: v for k, v in schedule.items() if k != "startSchedule"}
            answers.append(body)
        counters["same" if first.setdefault(station_id, answers) == answers else "changed"] += 1
        prior = daemon.latest[station_id]
        engine._register(station_id)  # last seen, as a check does
        engine.store.set_condition(station_id, Status.SYNCED, prior.reason, engine.revision, engine.now())
        return Outcome(station_id, Status.SYNCED, prior.reason, prior.plan, prior.observation)

    engine.reconcile_station = check  # type: ignore[method-assign]
    return counters


async def floor(n: int, drift_interval: float, sim_procs: int, window: float | None = None) -> dict[str, Any]:
    """The floor of (c) in this design: a daemon whose own drift checks never fall due, every station
    Synced, and this bench sending each station only a check's reads (GetCompositeSchedule for
    connectors 0, 1 and 2 in turn, as a check asks them, through the embedded Central System) at the
    rate the daemon's checks run at `drift_interval`, in batches once a second: nothing judged,
    stored or logged. What a check costs beyond these figures is the reconciler's own work."""
    limit = asyncio.Semaphore(64)  # the concurrency start_daemon gives its engine

    async def reads(central: CentralSystem, station_id: str) -> int:
        async with limit:
            answered = 0
            for payload in CHECK_READS:
                reply = await central.call(station_id, "GetCompositeSchedule", payload)
                answered += reply.payload is not None
            return answered

    async with synced_fleet(n, 10 * 365 * 86400.0, sim_procs) as (daemon, ids, converged):
        central = daemon.central
        assert central is not None
        await wait_frozen(daemon, 60)
        window = window or drift_interval * 1.15
        per_second = n / drift_interval
        kernel, cpu0, wall0 = KernelShare(), time.process_time(), time.perf_counter()
        checks, answered, due, tasks = 0, 0, 0.0, set()
        for second in range(int(window)):  # bounded: one batch a second over the window
            due += per_second
            batch = [ids[(checks + k) % n] for k in range(int(due) - checks)]
            checks += len(batch)
            tasks |= {asyncio.ensure_future(reads(central, s)) for s in batch}
            await asyncio.sleep(max(0.0, wall0 + second + 1 - time.perf_counter()))
            done = {t for t in tasks if t.done()}
            answered += sum(t.result() for t in done)
            tasks -= done
        answered += sum(await asyncio.gather(*tasks))
        cpu_s, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        return {
            "converge_s": round(converged, 1),
            "cpu_percent_of_one_core": round(cpu_s / wall * 100, 2),
            "kernel_share_of_cpu": kernel.share(),
            "seconds": round(wall, 1),
            "drift_interval_s": drift_interval,
            "checks": checks,
            "answers": answered,
            "checks_per_s": round(checks / wall, 1),
            "cpu_ms_per_check": round(cpu_s / checks * 1000, 3) if checks else None,
            "rss_mb": round(rss_mb(), 1),
        }


async def wait_frozen(daemon: Daemon, timeout: float) -> float | None:
    """Seconds until the daemon's settle-time `gc.freeze` (it looks every `freeze_check` seconds);
    None when this tree does not freeze, or did not within `timeout`."""

    def threshold() -> Any:  # set at the daemon's first freeze (`daemon.heap`; older trees: `_gc_threshold`)
        heap = getattr(daemon, "heap", None)
        return heap.threshold if heap is not None else getattr(daemon, "_gc_threshold", None)

    if not hasattr(daemon, "heap") and not hasattr(daemon, "_gc_threshold"):
        return None
    started = time.perf_counter()
    while threshold() is None and time.perf_counter() - started < timeout:
        await asyncio.sleep(0.2)
    return round(time.perf_counter() - started, 1) if threshold() is not None else None


class KernelShare:
    """The share of this process's CPU time spent in the kernel (system time) since it was made: on
    loopback, a `write` to a station's socket also does the receiving side's TCP work."""

    def __init__(self) -> None:
        self._start = resource.getrusage(resource.RUSAGE_SELF)

    def share(self) -> float | None:
        now = resource.getrusage(resource.RUSAGE_SELF)
        system, user = now.ru_stime - self._start.ru_stime, now.ru_utime - self._start.ru_utime
        return round(system / (system + user), 3) if system + user > 0 else None


class GcClock:
    """Time spent in the garbage collector (and full collections) while it is installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self.longest = 0.0  # the longest single collection (the daemon's one-off freeze, when in the window)
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.seconds += took
        self.longest = max(self.longest, took)
        self.full += info.get("generation") == 2

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)


def event_loop_runner() -> Any:
    """How `reconciler watch` runs its loop (a baseline tree without `event_loop` ran asyncio's)."""
    try:
        from reconciler.cli.watch_cmd import event_loop  # type: ignore[attr-defined]
    except ImportError:
        return asyncio.run
    return event_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument(
        "--only",
        default="a,b,c,d",
        help="which figures, e.g. c or a,d; floor: (c)'s reads alone; bound: (c), a check doing the least it can",
    )
    parser.add_argument("--drift-interval", type=float, default=60.0, help="for (c): seconds between checks")
    parser.add_argument("--sim-procs", type=int, default=0, help="simulator processes (default: 1 per 2,500)")
    parser.add_argument("--window", type=float, help="for (c): seconds measured (default: 1.15x the interval)")
    parser.add_argument(
        "--baseline", type=Path, metavar="TREE", help="measure this tree (a worktree of main) first, same figures"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    phases = {p.strip() for p in args.only.split(",") if p.strip()}
    if phases & {"floor", "bound"} and len(phases) > 1:  # a daemon measured before it in this process distorts it
        parser.error("--only floor and --only bound run alone (a daemon measured before them leaves its heap)")
    procs = args.sim_procs or max(1, -(-args.stations // 2500))
    baseline = None
    if args.baseline is not None:
        print(f"--- baseline: {args.baseline}", flush=True)
        baseline = measure_tree(args.baseline, sys.argv[1:])
        print("--- this version", flush=True)
    daemon_logging()
    runner = event_loop_runner()
    result = runner(bench(args.stations, args.samples, phases, args.drift_interval, procs, args.window))
    if baseline is not None:
        result = {"baseline": {"tree": str(args.baseline), **baseline}, "this_version": result,
                  "ratios": ratios(baseline, result)}  # fmt: skip
        print(f"{'ratios (this / baseline)':36} {result['ratios']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def daemon_logging() -> None:
    """Log as `reconciler watch` does (its INFO line per reconcile, formatted and written), to /dev/null
    instead of stderr: the CPU of the daemon's logging is in the figures."""
    import logging

    from reconciler.daemon.logs import setup_logging

    setup_logging("text")
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life


def measure_tree(tree: Path, argv: list[str]) -> dict[str, Any]:
    """This script's figures for another source tree: a child process with PYTHONPATH set to it."""
    forwarded, skip = [], False
    for arg in argv:  # the child measures once, without --baseline or --json of its own
        if skip:
            skip = False
        elif arg in ("--baseline", "--json"):
            skip = True
        elif not arg.startswith(("--baseline=", "--json=")):
            forwarded.append(arg)
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        out = Path(tmp) / "baseline.json"
        env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
        subprocess.run([sys.executable, __file__, *forwarded, "--json", str(out)], env=env, check=True)
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


def ratios(baseline: dict[str, Any], mine: dict[str, Any]) -> dict[str, float]:
    """this version / baseline for the idle figures (c) both runs have."""
    before, after = baseline.get("c_idle") or {}, mine.get("c_idle") or {}
    keys = ("cpu_percent_of_one_core", "cpu_ms_per_check", "rss_mb", "gc_seconds", "converge_s")
    return {k: round(after[k] / before[k], 3) for k in keys if before.get(k) and after.get(k) is not None}


if __name__ == "__main__":
    main()
