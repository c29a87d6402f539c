"""`reconciler demo`: the whole loop on one machine, with nothing to set up.

Starts N simulated charge points in a separate process (as real chargers would be), runs the
embedded Central System on a free loopback port, and with the example policies shows `plan`,
`apply` (progress and verified result) and a second `plan` that finds everything in sync. State
(the ledger, the simulators' stored profiles) lives in a temporary directory unless `--state-dir`
is given, and everything started is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from reconciler.cli.connect import Connection, open_gateway
from reconciler.cli.credentials import STATION_ENV
from reconciler.cli.reconcile_cmd import Common, load, run_async, settings
from reconciler.cli.render import plain_console, render_text
from reconciler.core.status import Status
from reconciler.engine.reconcile import Reconciler
from reconciler.store.sqlite import Store

STOPPED = "the demo stopped its simulated chargers and Central System"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_simulators(url: str, count: int, password: str, state: Path) -> subprocess.Popen[bytes]:
    """The simulator process; its password travels in its environment, never on its command line
    (which every user sees in `ps`)."""
    command = [sys.executable, "-m", "reconciler.cli.main", "simulate", "--stations", str(count), "--url", url,
               "--state-dir", str(state / "simulators")]  # fmt: skip
    environment = {**os.environ, STATION_ENV: password}
    with (state / "simulators.log").open("wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=environment)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


async def run_demo(policies: Path, stations: int, state: Path, out: Console, *, keep: bool) -> int:
    password = secrets.token_urlsafe(12)
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    connection = Connection(None, f"127.0.0.1:{port}", 30.0, None, None, password, None, 10.0)
    common = Common([policies], [], {}, connection, state / "state.db", 86_400, 64, None)
    loaded, selected = load(common, out)
    out.rule("1. simulated chargers")
    out.print(f"starting {stations} simulated charge points (a separate process) -> {url}/PY-SIM-000N")
    simulators = start_simulators(url, stations, password, state)
    store = Store(state / "state.db")
    try:
        async with open_gateway(connection, selected) as (gateway, reachable):
            if simulators.poll() is not None:
                out.print(f"the simulators exited early; see {state / 'simulators.log'}")
                return 1
            engine = Reconciler(gateway, store, loaded, settings(common))
            targets = [s for s in selected if s in reachable]
            out.rule(f"2. reconciler plan   (policies {policies}, revision {loaded.revision or 'not in git'})")
            out.print(render_text(await engine.plan(targets)))
            out.rule("3. reconciler apply --auto-approve")

            def progress(station_id: str, phase: str) -> None:
                if phase != "started":
                    out.print(f"  {station_id}: {phase}")

            applied = await engine.apply(targets, progress=progress)
            out.print(render_text(applied, applied=True))
            out.rule("4. reconciler plan   (again: nothing left to do)")
            again = await engine.plan(targets)
            out.print(render_text(again))
            synced = all(o.status is Status.SYNCED for o in again) and len(again) == len(selected)
            out.rule("done" if synced else "NOT converged")
            if keep:
                out.print(f"ledger and events: {state / 'state.db'}; simulator log: {state / 'simulators.log'}")
            return 0 if synced else 1
    finally:
        store.close()
        stop(simulators)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        policies: Annotated[Path, typer.Option("--policies", "-p", metavar="DIR", help="policy directory")] = Path(
            "policies"
        ),
        stations: Annotated[
            int, typer.Option("--stations", metavar="N", help="simulated charge points (PY-SIM-0001...)")
        ] = 6,
        state_dir: Annotated[
            Path | None, typer.Option("--state-dir", metavar="DIR", help="keep state here (default: a temp dir)")
        ] = None,
    ) -> None:
        """Run the whole loop locally: simulated chargers, embedded Central System, plan, apply, plan.

        Exit status 0 when every station ends verified in sync.
        """
        out = plain_console(stderr=False)
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            raise typer.Exit(run_async(run_demo(policies, stations, state_dir, out, keep=True), out, STOPPED))
        with tempfile.TemporaryDirectory(prefix="reconciler-demo-") as tmp:
            raise typer.Exit(run_async(run_demo(policies, stations, Path(tmp), out, keep=False), out, STOPPED))
