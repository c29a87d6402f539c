"""`reconciler demo`: the whole product on one machine, with nothing to set up.

Default (what `make demo` runs): the `watch` daemon with its embedded Central System on a free
loopback port, one simulated charge point per Station the policy directory declares (same
connectors and maximum current, in-process over real websockets, with simulated EVs charging on
them unless `--no-sessions`), the REST API on
127.0.0.1:8000 (or the next free port). It waits until every station is Synced, prints the
API/dashboard URLs, the credentials it generated (once, to this terminal; never in `ps` or a file)
and three curl examples, and runs until Ctrl-C, then stops everything it started.

`--once`: the earlier one-shot loop that exits: plan -> apply -> plan (CI uses it).

State (the ledger, the simulators' profiles) lives in a temporary directory unless `--state-dir`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from reconciler.api.auth import Credentials
from reconciler.cli.common import Common, load, run_async, settings, state_lock
from reconciler.cli.connect import Connection
from reconciler.cli.render import plain_console, render_text
from reconciler.cli.watch_cmd import check_address, event_loop, load_valid, run_daemon
from reconciler.core.status import Status
from reconciler.daemon.demo import DEMO_SESSIONS, DemoFleet
from reconciler.daemon.logs import setup_logging
from reconciler.daemon.service import Daemon
from reconciler.daemon.settings import DaemonSettings
from reconciler.daemon.workqueue import QueueSettings
from reconciler.engine.reconcile import Reconciler
from reconciler.store.sqlite import Store
from reconciler.transport.central_system import CentralSystem

STOPPED = "the demo stopped its simulated chargers and Central System"


def free_port(preferred: int = 0) -> int:
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port")


# --- the daemon demo ------------------------------------------------------------------------------


def greeting(daemon: Daemon, credentials: Credentials, out: Console) -> None:
    url = daemon.http.url
    user, password = credentials.user, credentials.password
    first = sorted(daemon.policies.stations)[0]
    out.rule("reconciler demo: every station Synced")
    out.print(f"dashboard:            {url}/      (sign in with the credentials below)", highlight=False)
    out.print(f"API and OpenAPI docs: {url}/docs", highlight=False)
    out.print(f"chargers connect to:  {daemon.transport_url}", highlight=False)
    out.print(f"state file:           {daemon.settings.db}  (reconciler status --db FILE reads it)", highlight=False)
    out.print(
        f"credentials (generated for this run, shown only here): user {user}  password {password}", highlight=False
    )
    out.print("\ntry:", highlight=False)
    out.print(f"  curl -s -u {user}:{password} {url}/stations", highlight=False, markup=False)
    out.print(
        f"  curl -s -u {user}:{password} -X POST {url}/stations/{first}/test_profiles "
        '-H \'Content-Type: application/json\' -d \'{"scenario": "peak_shaving", "max_power_w": 7400}\'',
        highlight=False,
        markup=False,
    )
    out.print(
        f"  curl -s -u {user}:{password} '{url}/stations/{first}/composite_schedule?connector_id=0&duration=3600'",
        highlight=False,
        markup=False,
    )
    out.print(
        "\nedit a file under the policy directory and watch the daemon converge; Ctrl-C stops everything.",
        highlight=False,
    )


async def wait_synced(daemon: Daemon, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        conditions = daemon.conditions()
        if all(
            conditions.get(s) is not None and conditions[s].status is Status.SYNCED for s in daemon.policies.stations
        ):
            return True
        await asyncio.sleep(0.2)
    return False


def demo_daemon(
    policies: Path, state: Path, http: str | None, out: Console, synced_timeout: float, sessions: bool = True
) -> int:
    loaded = load_valid([policies], out)
    station_password = secrets.token_urlsafe(12)
    credentials = Credentials.generate()
    http = http or f"127.0.0.1:{free_port(8000)}"
    settings = DaemonSettings(
        policies=(policies,),
        db=state / "state.db",
        credentials=credentials,
        listen=f"127.0.0.1:{free_port()}",
        station_passwords={"*": station_password},
        http=http,
        queue=QueueSettings(interval=60.0),
        demo=True,
        shutdown_timeout=5.0,
    )
    setup_logging("text", logging.WARNING)
    daemon = Daemon(settings, loaded)

    async def ready(running: Daemon) -> None:
        assert running.central is not None
        central = running.central
        running.fleet = DemoFleet(
            central.url,
            loaded,
            station_password,
            state_dir=state / "simulators",
            admit=lambda s: central.add_station(s),
            sessions=DEMO_SESSIONS if sessions else None,
        )
        out.print(
            f"starting {len(loaded.stations)} simulated charge points for {policies} -> {central.url}/...",
            highlight=False,
        )
        await running.fleet.start()
        if await wait_synced(running, synced_timeout):
            greeting(running, credentials, out)
        else:
            not_yet = {
                s: (c.status.value, c.reason) for s, c in running.conditions().items() if c.status is not Status.SYNCED
            }
            out.print(f"not every station is Synced after {synced_timeout:g}s: {not_yet}", highlight=False)
            greeting(running, credentials, out)

    # one writer per state file: the demo's daemon holds the state lock while it runs, as `watch` does
    with state_lock(settings.db, 0.0, out, "reconciler demo"):
        try:
            event_loop(run_daemon(daemon, ready))
        except OSError as exc:
            out.print(f"error: cannot start: {exc.strerror or exc}")
            return 1
    out.print(STOPPED)
    return 0


# --- the one-shot demo ------------------------------------------------------------------------------


async def run_once(policies: Path, state: Path, out: Console, *, keep: bool) -> int:
    password = secrets.token_urlsafe(12)
    port = free_port()
    connection = Connection(None, f"127.0.0.1:{port}", 30.0, None, None, password, None, 10.0)
    common = Common([policies], [], {}, connection, state / "state.db", 86_400, 64, None)
    loaded, selected = load(common, out)
    store = Store(state / "state.db")
    async with CentralSystem(port=port, passwords={"*": password}, known_stations=selected) as central:
        fleet = DemoFleet(central.url, loaded, password, state_dir=state / "simulators", sessions=None)
        out.rule("1. simulated chargers")
        out.print(
            f"starting {len(selected)} simulated charge points for the stations of {policies} -> {central.url}/...",
            highlight=False,
        )
        try:
            await fleet.start()
            reachable = await central.wait_for_stations(selected, 30.0)
            engine = Reconciler(central, store, loaded, settings(common))
            targets = [s for s in selected if s in reachable]
            out.rule(f"2. reconciler plan   (policies {policies}, revision {loaded.revision or 'not in git'})")
            out.print(render_text(await engine.plan(targets)), markup=False, highlight=False)
            out.rule("3. reconciler apply --auto-approve")

            def progress(station_id: str, phase: str) -> None:
                if phase != "started":
                    out.print(f"  {station_id}: {phase}", highlight=False)

            applied = await engine.apply(targets, progress=progress)
            out.print(render_text(applied, applied=True), markup=False, highlight=False)
            out.rule("4. reconciler plan   (again: nothing left to do)")
            again = await engine.plan(targets)
            out.print(render_text(again), markup=False, highlight=False)
            synced = all(o.status is Status.SYNCED for o in again) and len(again) == len(selected)
            out.rule("done" if synced else "NOT converged")
            if keep:
                out.print(f"ledger and events: {state / 'state.db'}")
            return 0 if synced else 1
        finally:
            await fleet.stop()
            store.close()


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        policies: Annotated[
            Path,
            typer.Option(
                "--policies",
                "-p",
                metavar="DIR",
                help="policy directory; one simulated charge point per Station it declares",
            ),
        ] = Path("policies"),
        once: Annotated[bool, typer.Option("--once", help="plan -> apply -> plan, then exit (no daemon)")] = False,
        http: Annotated[
            str | None,
            typer.Option("--http", metavar="HOST:PORT", help="API address (default 127.0.0.1:8000, or a free port)"),
        ] = None,
        state_dir: Annotated[
            Path | None, typer.Option("--state-dir", metavar="DIR", help="keep state here (default: a temp dir)")
        ] = None,
        synced_timeout: Annotated[
            float,
            typer.Option("--synced-timeout", metavar="SECONDS", help="how long to wait for every station to be Synced"),
        ] = 60.0,
        sessions: Annotated[
            bool,
            typer.Option(
                "--sessions/--no-sessions",
                help="simulated EVs charge on the stations (MeterValues: power drawn under the limit each enforces)",
            ),
        ] = True,
    ) -> None:
        """Run the product locally: the watch daemon, its API and simulated chargers for the policies' stations.

        Waits until every station is Synced, prints the API URL, generated credentials and curl examples,
        and runs until Ctrl-C. With --once: plan, apply, plan again and exit 0 when all ended Synced.
        """
        out = plain_console(stderr=False)  # policy paths and station ids printed as they are
        check_address(http, "--http", 8000)
        with contextlib.ExitStack() as stack:
            if state_dir is not None:
                state_dir.mkdir(parents=True, exist_ok=True)
                state = state_dir
            else:
                state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="reconciler-demo-")))
            if once:
                raise typer.Exit(run_async(run_once(policies, state, out, keep=state_dir is not None), out, STOPPED))
            raise typer.Exit(demo_daemon(policies, state, http, out, synced_timeout, sessions))
