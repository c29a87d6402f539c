"""What `plan`, `apply` and the daemon commands share at the command line's edge: the common
options of a run (`Common`), loading and selecting the policies (all or nothing), the state file
(kept out of git) and its lock (`store/lock.py`: one writer per state file), the engine's settings,
running a coroutine with a clear error, and the exit code at fleet scale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from reconciler import clock
from reconciler.cli.connect import Connection
from reconciler.core.status import Status
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.orphans import removed_stations
from reconciler.engine.outcome import Outcome
from reconciler.engine.reconcile import Settings
from reconciler.policy import PolicySet, load_policies
from reconciler.store.lock import LockError, LockHeld, StateLock
from reconciler.store.sqlite import Store, StoreError

T = TypeVar("T")


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
    lock_timeout: float = 0.0
    offline_is_error: bool = False


def parse_selector(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--selector")
        out[key] = value
    return out


def load_checked(common: Common, err: Console) -> PolicySet:
    """All or nothing: any error in any policy file stops here, before a charger is contacted."""
    paths = common.policies or [Path("policies")]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        err.print(f"error: {', '.join(missing)}: no such file or directory (pass --policies DIR)", markup=False)
        raise typer.Exit(1)
    policies = load_policies(paths, now=clock.now())
    for diagnostic in policies.diagnostics:
        err.print(f"{diagnostic.format_text()} [{diagnostic.code}]", markup=False, highlight=False, emoji=False)
    if not policies.ok:
        err.print(f"error: {len(policies.errors)} error(s) in the policies; nothing was planned or applied")
        raise typer.Exit(1)
    return policies


def select(common: Common, policies: PolicySet, err: Console, removed: Sequence[str] = ()) -> list[str]:
    """The declared stations to work on; a named station must be declared or removed-but-owned."""
    unknown = [s for s in common.stations if s not in policies.stations and s not in removed]
    if unknown:
        err.print(f"error: {', '.join(unknown)}: not declared in the policies (kind: Station), and the ledger "
                  "owns no profile on it", markup=False)  # fmt: skip
        raise typer.Exit(1)
    selected = (
        policies.select(common.stations, common.selector or None)
        if not (common.stations and all(s in removed for s in common.stations))
        else []
    )
    if not selected and not removed:
        err.print("error: no station matches the selection")
        raise typer.Exit(1)
    return selected


def load(common: Common, err: Console) -> tuple[PolicySet, list[str]]:
    """Policies and the selected declared stations (for callers without a store, e.g. the demo)."""
    policies = load_checked(common, err)
    return policies, select(common, policies, err)


def removed_in_scope(common: Common, policies: PolicySet, store: Store) -> list[str]:
    """Removed stations the ledger still owns profiles on, within the selection: all of them when
    nothing is selected, the named ones with --station, none with only --selector (no labels)."""
    removed = removed_stations(store.ledger_stations(), policies.stations)
    if common.stations:
        return [s for s in removed if s in common.stations]
    return [] if common.selector else removed


def store_path(common: Common) -> Path:
    if common.db is not None:
        return common.db
    first = (common.policies or [Path("policies")])[0].resolve()
    base = first.parent if first.is_dir() or first.suffix else first
    return base / ".reconciler" / "state.db"


def keep_out_of_git(path: Path) -> None:
    """The default state directory sits in the policy repository: a `.gitignore` of `*` inside it
    keeps it out of `git status` (and the policies' revision from reading `+dirty`)."""
    directory = path.parent
    if directory.name != ".reconciler":
        return
    ignore = directory / ".gitignore"
    if not ignore.exists():
        directory.mkdir(parents=True, exist_ok=True)
        ignore.write_text("# reconciler state (ledger, events): never committed\n*\n", encoding="utf-8")


def open_store(common: Common, err: Console) -> Store:
    try:
        keep_out_of_git(store_path(common))
        return Store(store_path(common))
    except (StoreError, OSError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None


@contextmanager
def state_lock(path: Path, timeout: float, err: Console, command: str) -> Iterator[StateLock]:
    """Hold the state lock for the block; a clear message naming the holder when it is taken."""
    try:
        keep_out_of_git(path)
    except OSError as exc:
        err.print(f"error: {path.parent}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(1) from None
    lock = StateLock(path, command=command)

    def waiting(holder: Any) -> None:
        who = holder.describe() if holder is not None else "another process"
        err.print(f"waiting up to {timeout:g} s for the state lock held by {who}", markup=False)

    try:
        lock.acquire(timeout, waiting=waiting)
    except (LockHeld, LockError) as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    if lock.stale is not None:
        err.print(f"note: took over the state lock left by {lock.stale.describe()}, which is no longer running",
                  markup=False, highlight=False)  # fmt: skip
    try:
        yield lock
    finally:
        lock.release()


def settings(common: Common) -> Settings:
    return Settings(
        horizon=common.horizon,
        concurrency=common.concurrency,
        rate_limit=common.rate_limit,
        retry=RetryPolicy(call_timeout=common.connection.call_timeout),
    )


def offline(station_ids: Sequence[str], reason: str) -> list[Outcome]:
    return [Outcome(s, Status.OFFLINE, reason) for s in station_ids]


def run_async(coroutine: Coroutine[Any, Any, T], err: Console, what: str) -> T:
    """Run the command's event loop; Ctrl-C ends it with a word on what state things are in. A bad
    option found while running (a port in use, no password) is an error: exit 1."""
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        err.print(f"interrupted: {what}", markup=False)
        raise typer.Exit(130) from None
    except typer.BadParameter as exc:
        err.print(f"error: {exc.format_message()}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def exit_code(
    outcomes: Sequence[Outcome], *, detailed: bool = False, offline_is_error: bool = False, applied: bool = False
) -> int:
    """1 errors; 2 (plan --detailed-exitcode) changes among the reachable stations; else 0.
    Offline stations are not errors unless `offline_is_error`, but none reachable at all is."""
    reachable = [o for o in outcomes if o.status is not Status.OFFLINE]
    if outcomes and not reachable:
        return 1
    if offline_is_error and len(reachable) < len(outcomes):
        return 1
    if applied:
        return 0 if all(o.status is Status.SYNCED for o in reachable) else 1
    if any(o.status is Status.DEGRADED for o in reachable):
        return 1
    if detailed and any(o.status is not Status.SYNCED for o in reachable):
        return 2
    return 0
