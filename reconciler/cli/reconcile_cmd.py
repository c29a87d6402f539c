"""`reconciler plan` and `reconciler apply`: Terraform-style convergence from the command line.

Edge of the reconcile flow: loads the policies (all or nothing: one invalid file and nothing is
planned), takes the state lock and opens the store (both in `common.py`, shared with the daemon
commands), opens a gateway (`connect.py`), runs the engine (declared stations) and `engine/orphans.py` (stations
removed from the policies whose profiles the ledger still owns), renders the outcome.

Exit codes at fleet scale: 1 is for errors (invalid policies, usage, the state locked, nothing
reachable, a Degraded station, a refused saved plan); stations offline are reported, not errors,
unless `--offline-is-error`; `plan --detailed-exitcode` exits 2 when the reachable stations need
changes. A saved plan (`saved_plan.py`) is checked as a whole before anything is sent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from reconciler import clock
from reconciler.cli.common import (
    Common,
    exit_code,
    load_checked,
    offline,
    open_store,
    parse_selector,
    removed_in_scope,
    run_async,
    select,
    settings,
    state_lock,
    store_path,
)
from reconciler.cli.connect import Connection, open_gateway
from reconciler.cli.foreign_owner import explain_foreign_caps
from reconciler.cli.options import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_HORIZON,
    DEFAULT_WAIT,
    ConcurrencyOpt,
    DbOpt,
    HorizonOpt,
    JsonOpt,
    ListenOpt,
    LockTimeoutOpt,
    NoAuthNetworkOpt,
    NoAuthOpt,
    OfflineOpt,
    OutOpt,
    PasswordFileOpt,
    PasswordOpt,
    PasswordsOpt,
    PathPrefixOpt,
    PlanArg,
    PoliciesOpt,
    RateOpt,
    SelectorOpt,
    StationOpt,
    StationPasswordFileOpt,
    StationPasswordOpt,
    TimeoutOpt,
    TlsCertOpt,
    TlsKeyOpt,
    UserOpt,
    VerboseOpt,
    ViaOpt,
    WaitOpt,
)
from reconciler.cli.progress import FleetProgress
from reconciler.cli.render import outcomes_json, plain_console, render_text
from reconciler.cli.saved_plan import (
    PlanFileError,
    SavedPlan,
    read_saved_plan,
    saved_plan,
    stale_checker,
    stale_problems,
)
from reconciler.core.profiles import epoch_seconds
from reconciler.core.status import Status
from reconciler.engine.orphans import apply_all_removed, plan_removed
from reconciler.engine.outcome import Outcome, desired_digest
from reconciler.engine.reconcile import Reconciler
from reconciler.policy import PolicySet
from reconciler.store.sqlite import Store


class _Session:
    """One run's gateway, engine and the stations it reaches (plan and apply share it)."""

    def __init__(self, common: Common, err: Console, policies: PolicySet, store: Store) -> None:
        self.common, self.err, self.policies, self.store = common, err, policies, store
        self.removed = removed_in_scope(common, policies, store)
        self.selected = select(common, policies, err, self.removed)

    async def plan(self, engine: Reconciler, reachable: set[str]) -> list[Outcome]:
        targets = [s for s in self.selected if s in reachable]
        with FleetProgress(self.err, "reading", len(targets)) as progress:
            outcomes = await engine.plan(targets, progress=progress)
        outcomes += [plan_removed(engine, s) for s in self.removed]
        note = await explain_foreign_caps(outcomes, engine.gateway, self.store, store_path(self.common))
        if note:
            self.err.print(note, markup=False, highlight=False)
        return outcomes + offline([s for s in self.selected if s not in reachable], "did not connect")


async def run_plan(common: Common, err: Console, policies: PolicySet) -> tuple[list[Outcome], int]:
    store = open_store(common, err)
    try:
        session = _Session(common, err, policies, store)
        async with open_gateway(common.connection, [*session.selected, *session.removed],
                                admit=policies.stations) as (gateway, reachable):  # fmt: skip
            engine = Reconciler(gateway, store, policies, settings(common))
            at = epoch_seconds(clock.now())
            return await session.plan(engine, reachable), at
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    def common_of(
        policies: list[Path] | None, station: list[str] | None, selector: list[str] | None, via: str | None,
        listen: str | None, wait: float | None, user: str | None, password: str | None,
        station_password: str | None, passwords: Path | None, db: Path | None, horizon: int | None,
        call_timeout: float | None, concurrency: int, rate_limit: float | None, lock_timeout: float,
        offline_is_error: bool, tls_cert: Path | None, tls_key: Path | None,
        secret_files: tuple[Path | None, Path | None, str | None] = (None, None, None),
        no_station_auth: bool = False, auth_off_loopback: bool = False,
    ) -> Common:  # fmt: skip
        station_password_file, password_file, path_prefix = secret_files
        connection = Connection(
            via, listen, DEFAULT_WAIT if wait is None else wait, user, password, station_password, passwords,
            DEFAULT_CALL_TIMEOUT if call_timeout is None else call_timeout, tls_cert, tls_key,
            station_password_file=station_password_file, password_file=password_file, path_prefix=path_prefix or "/",
            no_station_auth=no_station_auth, auth_off_loopback=auth_off_loopback,
        )  # fmt: skip
        return Common(
            policies or [], station or [], parse_selector(selector or []), connection, db,
            DEFAULT_HORIZON if horizon is None else horizon, concurrency, rate_limit, lock_timeout, offline_is_error,
        )  # fmt: skip

    @app.command("plan")
    def plan(
        policies: PoliciesOpt = None, station: StationOpt = None, selector: SelectorOpt = None, via: ViaOpt = None,
        listen: ListenOpt = None, wait: WaitOpt = None, user: UserOpt = None, password: PasswordOpt = None,
        station_password: StationPasswordOpt = None, passwords: PasswordsOpt = None, tls_cert: TlsCertOpt = None,
        tls_key: TlsKeyOpt = None, db: DbOpt = None, horizon: HorizonOpt = None, call_timeout: TimeoutOpt = None,
        concurrency: ConcurrencyOpt = 64, rate_limit: RateOpt = None, lock_timeout: LockTimeoutOpt = 0.0,
        as_json: JsonOpt = False, verbose: VerboseOpt = False, out: OutOpt = None,
        detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", help="exit 0 in sync, 2 changes, 1 error")] = False,  # noqa: E501
        offline_is_error: OfflineOpt = False, station_password_file: StationPasswordFileOpt = None,
        password_file: PasswordFileOpt = None, path_prefix: PathPrefixOpt = None,
        no_station_auth: NoAuthOpt = False, auth_off_loopback: NoAuthNetworkOpt = False,
    ) -> None:  # fmt: skip
        """Show, per station, what differs between the policies and the chargers, and what apply would do.

        Reads the chargers only (GetConfiguration, GetCompositeSchedule). A station removed from the
        policies whose profiles the ledger still owns shows as `- clear` of each. Stations that do not
        connect are reported (offline), not errors, unless --offline-is-error.

        Exit status: 0, or 1 on errors (invalid policies, the state locked, a Degraded station, no
        station reachable); with --detailed-exitcode 0 in sync, 2 changes among the reachable
        stations, 1 error (every error, usage errors too).
        """
        common = common_of(policies, station, selector, via, listen, wait, user, password, station_password,
                           passwords, db, horizon, call_timeout, concurrency, rate_limit, lock_timeout,
                           offline_is_error, tls_cert, tls_key,
                           (station_password_file, password_file, path_prefix), no_station_auth,
                           auth_off_loopback)  # fmt: skip
        err = plain_console()
        loaded = load_checked(common, err)
        with state_lock(store_path(common), common.lock_timeout, err, "reconciler plan"):
            outcomes, at = run_async(run_plan(common, err, loaded), err, "nothing was changed (plan only reads)")
        if as_json:
            typer.echo(json.dumps(outcomes_json(outcomes, loaded.revision), indent=2))
        else:
            typer.echo(render_text(outcomes, verbose=verbose))
        if out is not None:
            digests = {s: desired_digest(loaded.desired[s]) for s in loaded.desired}
            document = saved_plan(
                outcomes, revision=loaded.revision, digests=digests, horizon=common.horizon, at=at,
                policies=[str(p) for p in common.policies or [Path("policies")]], connection=common.connection,
                db=store_path(common), selector=common.selector,
            )  # fmt: skip
            try:
                out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
            except OSError as exc:
                err.print(f"error: cannot write {out}: {exc.strerror or exc}", markup=False)
                raise typer.Exit(1) from None
            err.print(f"plan saved to {out}; apply it with: reconciler apply {out}", markup=False)
        raise typer.Exit(exit_code(outcomes, detailed=detailed_exitcode, offline_is_error=offline_is_error))

    @app.command("apply")
    def apply(
        plan_file: PlanArg = None,
        policies: PoliciesOpt = None, station: StationOpt = None, selector: SelectorOpt = None, via: ViaOpt = None,
        listen: ListenOpt = None, wait: WaitOpt = None, user: UserOpt = None, password: PasswordOpt = None,
        station_password: StationPasswordOpt = None, passwords: PasswordsOpt = None, tls_cert: TlsCertOpt = None,
        tls_key: TlsKeyOpt = None, db: DbOpt = None, horizon: HorizonOpt = None, call_timeout: TimeoutOpt = None,
        concurrency: ConcurrencyOpt = 64, rate_limit: RateOpt = None, lock_timeout: LockTimeoutOpt = 0.0,
        as_json: JsonOpt = False, verbose: VerboseOpt = False,
        auto_approve: Annotated[bool, typer.Option("--auto-approve", help="do not ask for confirmation")] = False,
        offline_is_error: OfflineOpt = False, station_password_file: StationPasswordFileOpt = None,
        password_file: PasswordFileOpt = None, path_prefix: PathPrefixOpt = None,
        no_station_auth: NoAuthOpt = False, auth_off_loopback: NoAuthNetworkOpt = False,
    ) -> None:  # fmt: skip
        """Bring the chargers to the policies: plan (printed first), confirm, apply, verify by read-back.

        With PLAN (saved by plan --out) no connection flags are needed: the plan says how to reach
        the chargers (secrets come from the environment or the flags). Every station is observed
        again first; if any station's charger, policies or needed actions changed since, the whole
        plan is refused and nothing is sent. Stations removed from the policies get their owned
        profiles cleared, then are forgotten.

        Exit status 0 when every reachable station ends Synced (offline ones are reported, and are
        errors only with --offline-is-error), else 1.
        """
        err = plain_console()
        saved: SavedPlan | None = None
        if plan_file is not None:
            try:
                saved = read_saved_plan(plan_file)
            except PlanFileError as exc:
                err.print(f"error: {exc}", markup=False, highlight=False)
                raise typer.Exit(1) from None
            if station or selector:
                err.print("error: a saved plan applies as a whole; run plan again with --station/--selector")
                raise typer.Exit(1)
            if horizon is not None and horizon != saved.horizon:
                err.print(f"error: the plan was made with --horizon {saved.horizon}; drop --horizon")
                raise typer.Exit(1)
            policies, station, db = policies or saved.policies, list(saved.stations), db or saved.db
            horizon = saved.horizon
            via, listen, wait, call_timeout, user, passwords, tls_cert, tls_key = _saved_connection(
                saved, via, listen, wait, call_timeout, user, passwords, tls_cert, tls_key
            )
            station_password_file, password_file, path_prefix = _saved_secret_files(
                saved, station_password_file, password_file, path_prefix
            )
        common = common_of(policies, station, selector, via, listen, wait, user, password, station_password,
                           passwords, db, horizon, call_timeout, concurrency, rate_limit, lock_timeout,
                           offline_is_error, tls_cert, tls_key,
                           (station_password_file, password_file, path_prefix), no_station_auth,
                           auth_off_loopback)  # fmt: skip
        loaded = load_checked(common, err)
        stopped = (f"every call that completed is recorded in {store_path(common)}; "
                   "run apply again to finish (a call in flight is accounted for by the next run)")  # fmt: skip
        with state_lock(store_path(common), common.lock_timeout, err, "reconciler apply"):
            outcomes = run_async(run_apply(common, err, loaded, saved=saved, auto_approve=auto_approve,
                                           as_json=as_json, verbose=verbose), err, stopped)  # fmt: skip
        raise typer.Exit(exit_code(outcomes, offline_is_error=offline_is_error, applied=True))


def _saved_connection(
    saved: SavedPlan, via: str | None, listen: str | None, wait: float | None, call_timeout: float | None,
    user: str | None, passwords: Path | None, tls_cert: Path | None, tls_key: Path | None,
) -> tuple[str | None, str | None, float | None, float | None, str | None, Path | None, Path | None,
           Path | None]:  # fmt: skip
    """How to reach the chargers: the flags when given, else what the saved plan recorded."""
    c = saved.connection

    def path(value: Path | None, key: str) -> Path | None:
        return value if value is not None else (Path(c[key]) if c.get(key) else None)

    if via is None and listen is None:
        via, listen = c.get("via"), c.get("listen")
    wait = wait if wait is not None else c.get("wait")
    call_timeout = call_timeout if call_timeout is not None else c.get("callTimeout")
    return (via, listen, wait, call_timeout, user or c.get("user"), path(passwords, "passwordsFile"),
            path(tls_cert, "tlsCert"), path(tls_key, "tlsKey"))  # fmt: skip


def _saved_secret_files(
    saved: SavedPlan, station_password_file: Path | None, password_file: Path | None, path_prefix: str | None
) -> tuple[Path | None, Path | None, str | None]:
    """Where the secrets are (files, never the secrets) and the path prefix: flags first, then the plan."""
    c = saved.connection
    station_file = c.get("stationPasswordFile")
    inject_file = c.get("passwordFile")
    return (
        station_password_file or (Path(station_file) if station_file else None),
        password_file or (Path(inject_file) if inject_file else None),
        path_prefix or c.get("pathPrefix"),
    )


def _last_event(store: Store) -> int:
    newest = store.events(limit=1)
    return newest[-1].id if newest else 0


def _calls_since(store: Store, mark: int) -> dict[str, list[str]]:
    """Per station, what was sent during the apply and what the charger answered (from the event log)."""
    calls: dict[str, list[str]] = {}
    for event in store.events(after=mark, limit=1_000_000):
        if event.kind.startswith("action.") and event.station_id is not None:
            symbol, _, rest = event.message.partition(" ")
            calls.setdefault(event.station_id, []).append(f"{symbol} {event.kind.split('.', 1)[1]} {rest}")
    return calls


async def run_apply(
    common: Common, err: Console, policies: PolicySet, *, saved: SavedPlan | None, auto_approve: bool,
    as_json: bool, verbose: bool,
) -> list[Outcome]:  # fmt: skip
    store = open_store(common, err)
    try:
        session = _Session(common, err, policies, store)
        async with open_gateway(common.connection, [*session.selected, *session.removed],
                                admit=policies.stations) as (gateway, reachable):  # fmt: skip
            engine = Reconciler(gateway, store, policies, settings(common))
            planned = await session.plan(engine, reachable)
            stale = None
            if saved is not None:
                problems = stale_problems(saved, policies, planned)
                if problems:
                    for station_id, why in problems:
                        err.print(f"{station_id}: saved plan refused: {why}", markup=False, highlight=False)
                    err.print(f"error: the saved plan {saved.path} is stale for {len(problems)} station(s); "
                              "nothing was sent. Run plan again.", markup=False)  # fmt: skip
                    if as_json:
                        typer.echo(json.dumps({"refused": [{"station": s, "reason": w} for s, w in problems]}))
                    raise typer.Exit(1)
                stale = stale_checker(saved, policies)
            if not as_json:
                typer.echo(render_text(planned, verbose=verbose))
            if not any(o.plan is not None and o.plan.executable and o.status is Status.OUT_OF_SYNC for o in planned):
                if not as_json:
                    typer.echo("Nothing to apply.")
                else:
                    typer.echo(json.dumps(outcomes_json(planned, policies.revision), indent=2))
                return planned
            if saved is None and not auto_approve:
                if not sys.stdin.isatty():
                    err.print("error: apply needs confirmation and there is no terminal; pass --auto-approve")
                    raise typer.Exit(1)
                if not typer.confirm("Apply these changes?", default=False):
                    err.print("Apply cancelled; nothing was changed.")
                    raise typer.Exit(1)
            mark = _last_event(store)
            targets = [s for s in session.selected if s in reachable]
            with FleetProgress(err, "applying", len(targets), print_phases=True) as progress:
                outcomes = await engine.apply(targets, progress=progress, stale_check=stale)
            outcomes += await apply_all_removed(engine, [o.station_id for o in planned
                                                         if o.removed and o.status is not Status.OFFLINE])  # fmt: skip
            outcomes += [o for o in planned if o.status is Status.OFFLINE]
            calls = _calls_since(store, mark)
            if as_json:
                typer.echo(json.dumps(outcomes_json(outcomes, policies.revision, calls), indent=2))
            else:
                typer.echo("")
                typer.echo(render_text(outcomes, verbose=verbose, applied=True, calls=calls))
            return outcomes
    finally:
        store.close()
