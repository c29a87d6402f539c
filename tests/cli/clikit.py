"""Test kit for the CLI as processes: `python -m reconciler.cli.main ...` against simulated chargers
on a loopback port, with a real state file. Every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from reconciler.simulator.fleet import Fleet
from tests.engine.fleetkit import PASSWORD, cap_policy, station_doc, write

IDS = ["CP-0001", "CP-0002", "CP-0003"]
RUN_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def policy_files(stations: Sequence[str] = IDS, declared_only: Sequence[str] = ()) -> dict[str, str]:
    """Three profiles per station: a cap (#1) and two TxDefault (#5, #6); `declared_only` are
    further declared stations no policy targets beyond the cap (e.g. one that never connects)."""
    everyone = [*stations, *declared_only]
    tx = cap_policy("defaults", stations, 10, profile_id=5, stack=1)
    tx = tx.replace("ChargePointMaxProfile", "TxDefaultProfile")
    return {
        "stations.yaml": "---\n".join(station_doc(s, "x") for s in everyone),
        "cap.yaml": cap_policy("cap", everyone, 16),
        "tx.yaml": tx,
        "tx2.yaml": tx.replace("chargingProfileId: 5", "chargingProfileId: 6")
        .replace("stackLevel: 1", "stackLevel: 2")
        .replace("name: defaults", "name: defaults-2")
        .replace("limit: 10}", "limit: 12}"),
    }


class Cli:
    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp, self.port = tmp, port
        self.policies = tmp / "p"
        self.db = tmp / "state.db"

    def connect_flags(self, wait: float = 15.0) -> list[str]:
        return ["--listen", f"127.0.0.1:{self.port}", "--station-password", PASSWORD, "--wait", str(wait)]

    async def start(
        self, *args: str, connect: bool = True, wait: float = 15.0, env: dict[str, str] | None = None,
        common: bool = True,
    ) -> asyncio.subprocess.Process:  # fmt: skip
        argv = [*args]
        if common:
            argv += ["--policies", str(self.policies), "--db", str(self.db), "--horizon", "21600"]
        if connect:
            argv += self.connect_flags(wait)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        environment.update(env or {})
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reconciler.cli.main", *argv, env=environment,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    async def run(self, *args: str, **kwargs: object) -> tuple[int, str, str]:
        process = await self.start(*args, **kwargs)  # type: ignore[arg-type]
        out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()


@asynccontextmanager
async def setup(
    tmp: Path, stations: Sequence[str] = IDS, *, declared_only: Sequence[str] = (), fleet_size: int | None = None
) -> AsyncIterator[tuple[Cli, Fleet]]:
    write(tmp / "p", policy_files(stations, declared_only))
    port = free_port()
    fleet = Fleet(f"ws://127.0.0.1:{port}", fleet_size or len(stations), prefix="CP-", password=PASSWORD,
                  backoff_initial=0.05, backoff_max=0.2)  # fmt: skip
    async with fleet:
        yield Cli(tmp, port), fleet


def received(fleet: Fleet, action: str | None = None) -> int:
    return sum(sum(cp.calls.values()) if action is None else cp.calls[action] for cp in fleet.stations.values())


async def until(condition: object, timeout: float = 15.0) -> None:
    """Wait (bounded) until `condition()` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
