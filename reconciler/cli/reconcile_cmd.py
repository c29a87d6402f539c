"""`reconciler plan` and `reconciler apply`: Terraform-style convergence from the command line.

Edge of the reconcile flow: loads the policies (all or nothing: one invalid file and nothing is
planned), opens the store and a gateway (`connect.py`), runs the engine, renders the outcome.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reconciler import clock
from reconciler.cli.connect import Connection, open_gateway
from reconciler.cli.render import outcomes_json, render_text, saved_plan
from reconciler.core.diff import timelines_agree
from reconciler.core.plan import StationPlan
from reconciler.core.profiles import RateUnit, epoch_seconds
from reconciler.core.status import Status
from reconciler.core.timeline import Timeline
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.observe import Observation
from reconciler.engine.reconcile import Outcome, Reconciler, Settings, action_digest, desired_digest
from reconciler.policy import PolicySet, load_policies
from reconciler.store.sqlite import Store, StoreError

T = TypeVar("T")

PoliciesOpt = Annotated[
    list[Path] | None,
    typer.Option("--policies", "-p", metavar="PATH", help="policy file or directory (repeatable); default policies/"),
]
StationOpt = Annotated[
    list[str] | None, typer.Option("--station", "-s", metavar="ID", help="only this station (repeatable)")
]
SelectorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--selector", "-l", metavar="KEY=VALUE", help="only stations with this label, KEY=VALUE (repeatable, ANDed)"
    ),
]
ViaOpt = Annotated[
    str | None,
    typer.Option("--via", metavar="URL", help="inject API base URL of an OCPP proxy (POST URL/api/inject/{id})"),
]
ListenOpt = Annotated[
    str | None, typer.Option("--listen", metavar="HOST:PORT", help="run the embedded Central System on HOST:PORT")
]
WaitOpt = Annotated[
    float, typer.Option("--wait", metavar="SECONDS", help="seconds to wait for the stations to connect (--listen)")
]
UserOpt = Annotated[
    str | None, typer.Option("--user", metavar="USER", help="inject API user (or RECONCILER_INJECT_USER)")
]
PasswordOpt = Annotated[
    str | None,
    typer.Option("--password", metavar="PASSWORD", help="inject API password (or RECONCILER_INJECT_PASSWORD)"),
]
StationPasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--station-password", metavar="PASSWORD", help="password every station uses (or RECONCILER_STATION_PASSWORD)"
    ),
]
NoAuthOpt = Annotated[
    bool,
    typer.Option("--no-station-auth", help="LAB ONLY: accept the declared stations without a password (--listen)"),
]
NoAuthNetworkOpt = Annotated[
    bool,
    typer.Option(
        "--allow-no-auth-off-loopback", help="with --no-station-auth: also on a non-loopback --listen address"
    ),
]
PasswordsOpt = Annotated[
    Path | None, typer.Option("--passwords", metavar="FILE", help="YAML/JSON file: station id -> password")
]
DbOpt = Annotated[
    Path | None,
    typer.Option("--db", metavar="FILE", help="state file; default .reconciler/state.db beside the policies"),
]
HorizonOpt = Annotated[int, typer.Option("--horizon", metavar="SECONDS", help="seconds of schedule to compare")]
TimeoutOpt = Annotated[
    float, typer.Option("--call-timeout", metavar="SECONDS", help="seconds to wait for each charger answer")
]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", metavar="N", help="stations worked on at once")]
RateOpt = Annotated[
    float | None, typer.Option("--rate-limit", metavar="CALLS_PER_S", help="at most this many calls per second in all")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
OutOpt = Annotated[Path | None, typer.Option("--out", metavar="FILE", help="save the plan to apply it later")]
PlanArg = Annotated[Path | None, typer.Argument(help="a plan saved with plan --out (optional)", metavar="[PLAN]")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="show stations in sync and every connector")]


@dataclass(frozen=True, slots=True)
class Common:
    policies: list[Path]
    stations: list[str]
    selector: dict[str, str]
    connection: Connection
    db: Path | None
    horizon: int
    concurrency: int
    rate_limit: float | None


def _selector(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--selector")
        out[key] = value
    return out


def load(common: Common, err: Console) -> tuple[PolicySet, list[str]]:
    """All or nothing: any error in any policy file stops here, before a charger is contacted."""
    paths = common.policies or [Path("policies")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        err.print(f"error: {', '.join(missing)}: no such file or directory (pass --policies DIR)")
        raise typer.Exit(1)
    policies = load_policies(paths, now=clock.now())
    for diagnostic in policies.diagnostics:
        err.print(diagnostic.format_text(), markup=False, highlight=False)
    if not policies.ok:
        err.print(f"error: {len(policies.errors)} error(s) in the policies; nothing was planned or applied")
        raise typer.Exit(1)
    unknown = [s for s in common.stations if s not in policies.stations]
    if unknown:
        err.print(f"error: {', '.join(unknown)}: not declared in the policies (kind: Station)")
        raise typer.Exit(1)
    selected = policies.select(common.stations, common.selector or None)
    if not selected:
        err.print("error: no station matches the selection")
        raise typer.Exit(1)
    return policies, selected


def store_path(common: Common) -> Path:
    if common.db is not None:
        return common.db
    first = (common.policies or [Path("policies")])[0].resolve()
    base = first.parent if first.is_dir() or first.suffix else first
    return base / ".reconciler" / "state.db"


def open_store(common: Common, err: Console) -> Store:
    try:
        return Store(store_path(common))
    except StoreError as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(1) from None


def settings(common: Common) -> Settings:
    return Settings(
        horizon=common.horizon,
        concurrency=common.concurrency,
        rate_limit=common.rate_limit,
        retry=RetryPolicy(call_timeout=common.connection.call_timeout),
    )


def offline(station_ids: Sequence[str], reason: str) -> list[Outcome]:
    return [Outcome(s, Status.OFFLINE, reason) for s in station_ids]


async def run_plan(common: Common, err: Console) -> tuple[PolicySet, list[Outcome], int]:
    policies, selected = load(common, err)
    store = open_store(common, err)
    try:
        async with open_gateway(common.connection, selected) as (gateway, reachable):
            engine = Reconciler(gateway, store, policies, settings(common))
            at = epoch_seconds(clock.now())
            outcomes = await engine.plan([s for s in selected if s in reachable])
            outcomes += offline([s for s in selected if s not in reachable], "did not connect")
            return policies, outcomes, at
    finally:
        store.close()


def run_async(coroutine: Coroutine[Any, Any, T], err: Console, what: str) -> T:
    """Run the command's event loop; Ctrl-C ends it with a word on what state things are in."""
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        err.print(f"interrupted: {what}")
        raise typer.Exit(130) from None


def exit_code(outcomes: Sequence[Outcome], detailed: bool) -> int:
    if any(o.status in (Status.DEGRADED, Status.OFFLINE) for o in outcomes):
        return 1
    if detailed and any(o.status is not Status.SYNCED for o in outcomes):
        return 2
    return 0


def stale_checker(saved: dict[str, Any], policies: PolicySet) -> Any:
    """Why a saved plan no longer holds for a station (None when it does)."""

    def check(station_id: str, observation: Observation, plan: StationPlan) -> str | None:
        entry = saved["stations"].get(station_id)
        if entry is None:
            return "the station was not in the saved plan"
        if entry.get("desired") != desired_digest(policies.desired[station_id]):
            return "the policies changed since the plan was saved"
        if entry.get("actions") != action_digest(plan.actions):
            return "the actions needed changed since the plan was saved; run plan again"
        for connector, then in (entry.get("observed") or {}).items():
            now = observation.timelines.get(int(connector))
            old = Timeline(then["start"], then["end"], RateUnit(then["unit"]), tuple((s, v) for s, v in then["steps"]))
            if now is None or not timelines_agree(old, now, observation.normaliser):
                return f"the charger changed since the plan was saved (connector {connector}); run plan again"
        return None

    return check


def register(app: typer.Typer) -> None:
    def common_of(
        policies: list[Path] | None, station: list[str] | None, selector: list[str] | None, via: str | None,
        listen: str | None, wait: float, user: str | None, password: str | None, station_password: str | None,
        passwords: Path | None, db: Path | None, horizon: int, call_timeout: float, concurrency: int,
        rate_limit: float | None, no_station_auth: bool = False, auth_off_loopback: bool = False,
    ) -> Common:  # fmt: skip
        return Common(
            policies or [], station or [], _selector(selector or []),
            Connection(via, listen, wait, user, password, station_password, passwords, call_timeout,
                       no_station_auth, auth_off_loopback),
            db, horizon, concurrency, rate_limit,
        )  # fmt: skip

    @app.command("plan")
    def plan(
        policies: PoliciesOpt = None, station: StationOpt = None, selector: SelectorOpt = None, via: ViaOpt = None,
        listen: ListenOpt = None, wait: WaitOpt = 30.0, user: UserOpt = None, password: PasswordOpt = None,
        station_password: StationPasswordOpt = None, passwords: PasswordsOpt = None, db: DbOpt = None,
        horizon: HorizonOpt = 86_400, call_timeout: TimeoutOpt = 10.0, concurrency: ConcurrencyOpt = 64,
        rate_limit: RateOpt = None, as_json: JsonOpt = False, verbose: VerboseOpt = False,
        out: OutOpt = None, no_station_auth: NoAuthOpt = False, auth_off_loopback: NoAuthNetworkOpt = False,
        detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", help="exit 0 in sync, 2 changes, 1 error")] = False,  # noqa: E501
    ) -> None:  # fmt: skip
        """Show, per station, what differs between the policies and the chargers, and what apply would do.

        Reads only (GetConfiguration, GetCompositeSchedule). Exit status: 0, or 1 on errors (invalid
        policies, stations offline or degraded); with --detailed-exitcode 0 in sync, 2 changes, 1 error.
        """
        common = common_of(policies, station, selector, via, listen, wait, user, password, station_password,
                           passwords, db, horizon, call_timeout, concurrency, rate_limit, no_station_auth,
                           auth_off_loopback)  # fmt: skip
        err = Console(stderr=True, soft_wrap=True)
        loaded, outcomes, at = run_async(run_plan(common, err), err, "nothing was changed (plan only reads)")
        if as_json:
            typer.echo(json.dumps(outcomes_json(outcomes, loaded.revision), indent=2))
        else:
            typer.echo(render_text(outcomes, verbose=verbose))
        if out is not None:
            digests = {s: desired_digest(loaded.desired[s]) for s in loaded.desired}
            document = saved_plan(outcomes, revision=loaded.revision, digests=digests, horizon=common.horizon, at=at,
                                  policies=[str(p) for p in common.policies or [Path("policies")]])  # fmt: skip
            out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
            err.print(f"plan saved to {out}; apply it with: reconciler apply {out} ...")
        raise typer.Exit(exit_code(outcomes, detailed_exitcode))

    @app.command("apply")
    def apply(
        plan_file: PlanArg = None,
        policies: PoliciesOpt = None, station: StationOpt = None, selector: SelectorOpt = None, via: ViaOpt = None,
        listen: ListenOpt = None, wait: WaitOpt = 30.0, user: UserOpt = None, password: PasswordOpt = None,
        station_password: StationPasswordOpt = None, passwords: PasswordsOpt = None, db: DbOpt = None,
        horizon: HorizonOpt = 86_400, call_timeout: TimeoutOpt = 10.0, concurrency: ConcurrencyOpt = 64,
        rate_limit: RateOpt = None, as_json: JsonOpt = False, verbose: VerboseOpt = False,
        auto_approve: Annotated[bool, typer.Option("--auto-approve", help="do not ask for confirmation")] = False,
        no_station_auth: NoAuthOpt = False, auth_off_loopback: NoAuthNetworkOpt = False,
    ) -> None:  # fmt: skip
        """Bring the chargers to the policies: plan, confirm, apply, verify by read-back.

        With PLAN (saved by plan --out), stations are re-observed first and a station whose charger,
        policies or needed actions changed since is refused. Exit status 0 when every selected
        station ends Synced, else 1.
        """
        err = Console(stderr=True, soft_wrap=True)
        saved: dict[str, Any] | None = None
        if plan_file is not None:
            try:
                saved = json.loads(plan_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                err.print(f"error: {plan_file}: cannot read the saved plan ({exc})")
                raise typer.Exit(1) from None
            if not isinstance(saved, dict) or saved.get("format") != "reconciler-plan/v1":
                err.print(f"error: {plan_file}: not a plan saved by `reconciler plan --out`")
                raise typer.Exit(1)
            policies = policies or [Path(p) for p in saved.get("policies", [])]
            station = station or list(saved["stations"])
            horizon = int(saved.get("horizon", horizon))
        common = common_of(policies, station, selector, via, listen, wait, user, password, station_password,
                           passwords, db, horizon, call_timeout, concurrency, rate_limit, no_station_auth,
                           auth_off_loopback)  # fmt: skip
        stopped = (f"every call that completed is recorded in {store_path(common)}; "
                   "run apply again to finish (a call in flight is accounted for by the next run)")  # fmt: skip
        outcomes = run_async(run_apply(common, err, saved=saved, auto_approve=auto_approve, as_json=as_json,
                                       verbose=verbose), err, stopped)  # fmt: skip
        raise typer.Exit(0 if all(o.status is Status.SYNCED for o in outcomes) else 1)


async def run_apply(
    common: Common, err: Console, *, saved: dict[str, Any] | None, auto_approve: bool, as_json: bool, verbose: bool
) -> list[Outcome]:
    policies, selected = load(common, err)
    store = open_store(common, err)
    try:
        async with open_gateway(common.connection, selected) as (gateway, reachable):
            engine = Reconciler(gateway, store, policies, settings(common))
            targets = [s for s in selected if s in reachable]
            missing = offline([s for s in selected if s not in reachable], "did not connect")
            stale = None
            if saved is not None:
                stale = stale_checker(saved, policies)
            elif not auto_approve:
                planned = await engine.plan(targets)
                typer.echo(render_text([*planned, *missing], verbose=verbose))
                if not any(o.changes for o in planned):
                    typer.echo("Nothing to apply.")
                    return [*planned, *missing]
                if not sys.stdin.isatty():
                    err.print("error: apply needs confirmation and there is no terminal; pass --auto-approve")
                    raise typer.Exit(1)
                if not typer.confirm("Apply these changes?", default=False):
                    err.print("Apply cancelled; nothing was changed.")
                    raise typer.Exit(1)
            outcomes = await _apply_with_progress(engine, targets, err, stale)
            outcomes += missing
            if as_json:
                typer.echo(json.dumps(outcomes_json(outcomes, policies.revision), indent=2))
            else:
                typer.echo(render_text(outcomes, verbose=verbose, applied=True))
            return outcomes
    finally:
        store.close()


async def _apply_with_progress(engine: Reconciler, targets: list[str], err: Console, stale: Any) -> list[Outcome]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as bar:
        task = bar.add_task("applying", total=len(targets))

        def progress(station_id: str, phase: str) -> None:
            if phase != "started":
                bar.advance(task)
                bar.update(task, description=f"{station_id}: {phase}")
                if not err.is_terminal:
                    err.print(f"{station_id}: {phase}")

        return await engine.apply(targets, progress=progress, stale_check=stale)
