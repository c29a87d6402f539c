"""`reconciler watch`: run the self-healing daemon (see `reconciler/daemon/service.py`).

Edge of the daemon: options -> `DaemonSettings` (secrets from files or the environment only, never
from flag values, which `ps` shows) -> policies loaded (all or nothing: the daemon does not start on
invalid policies) -> `Daemon.run()` on one event loop (uvloop when installed), SIGINT/SIGTERM wired
to a graceful stop.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from reconciler import clock
from reconciler.api.auth import Credentials, CredentialsError
from reconciler.cli.common import state_lock
from reconciler.cli.connect import Connection, station_passwords
from reconciler.cli.credentials import warn
from reconciler.cli.options import PathPrefixOpt
from reconciler.cli.render import plain_console
from reconciler.daemon.logs import setup_logging
from reconciler.daemon.retention import MIN_ROWS, EventRetention
from reconciler.daemon.service import Daemon
from reconciler.daemon.settings import CONFIG_TTL, DaemonSettings, host_port
from reconciler.daemon.workqueue import QueueSettings
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Settings
from reconciler.policy import PolicySet, load_policies
from reconciler.transport.inject import split_credentials

T = TypeVar("T")

HELP = """Run the daemon: hold the charger connections (or reach them through an inject API), watch
the policy directory, heal drift when a charger reboots or someone clears its profiles, and serve
the REST API (OpenAPI at http://HOST:PORT/docs) and Prometheus metrics.

\b
Triggers: policy files changed (debounced; an invalid edit is reported with file:line and nothing
is applied), a station connected or booted, a transaction started or stopped (per-session
profiles), a periodic drift check per station (--drift-interval, with jitter), API requests.

\b
Secrets never come from flag values (ps shows them):
  API:       --credentials FILE (user/password/token) or RECONCILER_API_USER,
             RECONCILER_API_PASSWORD, RECONCILER_API_TOKEN
  stations:  --passwords FILE (id -> password) or RECONCILER_STATION_PASSWORD (shared)
  --via:     RECONCILER_INJECT_USER / RECONCILER_INJECT_PASSWORD

\b
Examples:
  RECONCILER_STATION_PASSWORD=... RECONCILER_API_PASSWORD=... reconciler watch -p policies/
  reconciler watch -p policies/ --via https://proxy.example/ --http 0.0.0.0:8000 --credentials api.yaml

Stops on SIGINT/SIGTERM: in-flight reconciles finish (bounded by --shutdown-timeout), pending
intents stay recorded, connections close; a restart converges.
"""


def api_credentials(path: Path | None) -> Credentials:
    try:
        credentials = Credentials.from_file(path) if path is not None else Credentials.from_env()
    except CredentialsError as exc:
        raise typer.BadParameter(str(exc), param_hint="--credentials") from None
    if not credentials.configured:
        raise typer.BadParameter(
            "the API needs credentials: --credentials FILE, or RECONCILER_API_PASSWORD / RECONCILER_API_TOKEN",
            param_hint="--credentials",
        )
    return credentials


def check_address(value: str | None, flag: str, default_port: int) -> None:
    """A HOST:PORT option, checked before anything starts (a port above 65535 is an error, not a wrap)."""
    if value is not None:
        try:
            host_port(value, default_port)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=flag) from None


def load_valid(paths: list[Path], err: Console) -> PolicySet:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        err.print(f"error: {', '.join(missing)}: no such file or directory (pass --policies DIR)")
        raise typer.Exit(1)
    policies = load_policies(paths, now=clock.now())
    for diagnostic in policies.diagnostics:
        err.print(diagnostic.format_text(), markup=False, highlight=False)
    if not policies.ok:
        err.print(f"error: {len(policies.errors)} error(s) in the policies; the daemon did not start")
        raise typer.Exit(1)
    return policies


async def run_daemon(daemon: Daemon, on_ready: Callable[[Daemon], Awaitable[None]] | None = None) -> None:
    """Run until SIGINT/SIGTERM; `on_ready` runs once the daemon serves (e.g. the demo's greeting)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, daemon.request_stop)
    try:
        await daemon.start()
        if on_ready is not None:
            await on_ready(daemon)
        await daemon.wait_stopped()
    finally:
        await daemon.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def event_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the daemon's event loop: uvloop when installed (its transports write large HTTP responses
    and OCPP frames in C, at a fraction of asyncio's CPU), else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def register(app: typer.Typer) -> None:
    @app.command("watch", help=HELP)
    def watch(
        policies: Annotated[
            list[Path] | None,
            typer.Option(
                "--policies", "-p", metavar="DIR", help="policy directory or file (repeatable); default policies/"
            ),
        ] = None,
        listen: Annotated[
            str | None,
            typer.Option("--listen", metavar="HOST:PORT", help="embedded Central System (default 127.0.0.1:9000)"),
        ] = None,
        path_prefix: PathPrefixOpt = None,
        via: Annotated[
            str | None, typer.Option("--via", metavar="URL", help="reach chargers through this inject API")
        ] = None,
        http: Annotated[str, typer.Option("--http", metavar="HOST:PORT", help="REST API address")] = "127.0.0.1:8000",
        db: Annotated[
            Path | None,
            typer.Option("--db", metavar="FILE", help="state file; default .reconciler/state.db beside the policies"),
        ] = None,
        passwords: Annotated[
            Path | None, typer.Option("--passwords", metavar="FILE", help="YAML/JSON file: station id -> password")
        ] = None,
        credentials: Annotated[
            Path | None,
            typer.Option("--credentials", metavar="FILE", help="API credentials file (user, password, token)"),
        ] = None,
        open_reads: Annotated[
            bool, typer.Option("--open-reads", help="serve read-only endpoints without credentials")
        ] = False,
        drift_interval: Annotated[
            float, typer.Option("--drift-interval", metavar="SECONDS", min=1.0, help="periodic drift check per station")
        ] = 300.0,
        jitter: Annotated[
            float, typer.Option("--jitter", metavar="SHARE", min=0.0, max=0.9, help="+- share of the interval")
        ] = 0.1,
        concurrency: Annotated[
            int, typer.Option("--concurrency", metavar="N", min=1, help="stations reconciled at once")
        ] = 32,
        debounce: Annotated[int, typer.Option("--debounce", metavar="MS", min=1, help="file-change debounce")] = 50,
        override_ttl: Annotated[
            float, typer.Option("--override-ttl", metavar="SECONDS", min=1.0, help="default lifetime of an override")
        ] = 3600.0,
        pull: Annotated[
            float | None,
            typer.Option(
                "--pull", metavar="SECONDS", min=5.0, help="git pull --ff-only the policy repository this often"
            ),
        ] = None,
        notify: Annotated[
            list[str] | None,
            typer.Option("--notify", metavar="URL", help="POST a JSON event here on condition changes (repeatable)"),
        ] = None,
        call_timeout: Annotated[
            float, typer.Option("--call-timeout", metavar="SECONDS", help="per charger call")
        ] = 10.0,
        shutdown_timeout: Annotated[
            float,
            typer.Option(
                "--shutdown-timeout", metavar="SECONDS", help="how long in-flight reconciles may take at shutdown"
            ),
        ] = 10.0,
        ping_interval: Annotated[
            float,
            typer.Option(
                "--ping-interval",
                metavar="SECONDS",
                help="websocket keepalive: a station that sent nothing for this long is pinged, and disconnected "
                "without a pong in 20 s (0: off; charge points ping on their own)",
            ),
        ] = 300.0,
        heartbeat_interval: Annotated[
            int,
            typer.Option(
                "--heartbeat-interval",
                metavar="SECONDS",
                min=1,
                help="the HeartbeatInterval BootNotification answers hand out (OCPP-J needs no heartbeat "
                "for liveness; the spec advises one a day at least, for the charger's clock)",
            ),
        ] = 300,
        events_retention_days: Annotated[
            float,
            typer.Option(
                "--events-retention-days",
                metavar="DAYS",
                min=0.0,
                help="prune events older than this, every hour (0: keep them whatever their age)",
            ),
        ] = 30.0,
        events_max_rows: Annotated[
            int,
            typer.Option(
                "--events-max-rows",
                metavar="N",
                min=0,
                help=f"keep at most the newest N events, pruned every hour (at least {MIN_ROWS}; 0: no limit)",
            ),
        ] = 100_000,
        log_format: Annotated[str, typer.Option("--log-format", metavar="text|json", help="log line format")] = "text",
        via_user: Annotated[
            str | None, typer.Option("--user", metavar="USER", help="inject API user (or RECONCILER_INJECT_USER)")
        ] = None,
    ) -> None:
        err = plain_console()
        if log_format not in ("text", "json"):
            raise typer.BadParameter("use text or json", param_hint="--log-format")
        if via and listen:
            raise typer.BadParameter("use either --via or --listen, not both")
        check_address(listen, "--listen", 9000)
        check_address(http, "--http", 8000)
        if via and split_credentials(via)[2] is not None:  # used (InjectGateway takes it out of the URL it keeps)
            warn("a password in the --via URL is visible in ps for as long as the daemon runs; use "
                 "RECONCILER_INJECT_USER / RECONCILER_INJECT_PASSWORD")  # fmt: skip
        if via and path_prefix:
            raise typer.BadParameter("--path-prefix is for the embedded Central System (--listen), not --via")
        try:
            retention = EventRetention(events_retention_days or None, events_max_rows or None)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--events-max-rows") from None
        paths = policies or [Path("policies")]
        loaded = load_valid(paths, err)
        station_secrets = station_passwords(Connection(None, None, 0, None, None, None, passwords, call_timeout))
        if not via and not station_secrets:
            raise typer.BadParameter(
                "stations must authenticate: RECONCILER_STATION_PASSWORD or --passwords FILE", param_hint="--passwords"
            )
        first = paths[0].resolve()
        settings = DaemonSettings(
            policies=tuple(paths),
            db=db or (first if first.is_dir() else first.parent).parent / ".reconciler" / "state.db",
            credentials=api_credentials(credentials),
            listen=listen or ("127.0.0.1:9000" if not via else None),
            path_prefix=path_prefix or "/",
            via=via,
            via_user=via_user or os.environ.get("RECONCILER_INJECT_USER"),
            via_password=os.environ.get("RECONCILER_INJECT_PASSWORD"),
            station_passwords=station_secrets,
            http=http,
            open_reads=open_reads,
            queue=QueueSettings(concurrency=concurrency, interval=drift_interval, jitter=jitter),
            engine=Settings(
                concurrency=concurrency,
                retry=RetryPolicy(attempts=2, call_timeout=call_timeout),
                config_ttl=CONFIG_TTL,
            ),
            call_timeout=call_timeout,
            debounce_ms=debounce,
            override_ttl=override_ttl,
            pull=pull,
            notify=tuple(notify or ()),
            shutdown_timeout=shutdown_timeout,
            ping_interval=ping_interval or None,
            heartbeat_interval=heartbeat_interval,
            events=retention,
        )
        setup_logging(log_format)
        daemon = Daemon(settings, loaded)
        # one writer per state file: the daemon holds the state lock while it runs (store/lock.py)
        with state_lock(settings.db, 0.0, err, "reconciler watch"):
            try:
                event_loop(run_daemon(daemon))
            except OSError as exc:
                err.print(f"error: cannot start: {exc.strerror or exc}")
                raise typer.Exit(1) from None
