"""Commands that read (or, under the lock, edit) the state: status, history, show, state, force-unlock.

Flow: `--db FILE` (or the default beside `--policies`) -> `store/queries.StateReader` (read-only:
no lock needed, works while an apply or the daemon runs) -> text or `--json`. `state rm` and
`force-unlock` are the two writers here: `state rm` takes the state lock and drops ledger entries
(a profile someone removed from the charger by hand); `force-unlock` removes a stuck lock, given
the lock id its holder's message showed. `show PLAN` renders a saved plan without any charger.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from reconciler import clock
from reconciler.cli.render import plain_console
from reconciler.cli.saved_plan import PlanFileError, read_saved_plan
from reconciler.core.profiles import ProfileError, format_time, parse_time
from reconciler.store.lock import LockError, force_unlock, lock_status, read_holder
from reconciler.store.queries import StateReader
from reconciler.store.sqlite import Store, StoreError

DbOpt = Annotated[
    Path | None,
    typer.Option("--db", metavar="FILE", help="state file; default .reconciler/state.db beside the policies"),
]
PoliciesOpt = Annotated[
    Path, typer.Option("--policies", "-p", metavar="PATH", help="policy directory (locates the default state file)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
StationOpt = Annotated[str | None, typer.Option("--station", "-s", metavar="ID", help="only this station")]


def state_file(db: Path | None, policies: Path) -> Path:
    """The same default as plan/apply: .reconciler/state.db beside the policy directory."""
    if db is not None:
        return db
    first = policies.resolve()
    base = first.parent if first.is_dir() or first.suffix else first
    return base / ".reconciler" / "state.db"


def _reader(path: Path, err: Console) -> StateReader:
    try:
        return StateReader(path)
    except StoreError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def parse_since(text: str, now: datetime) -> datetime:
    """`30m`, `2h`, `7d` (ago) or an ISO 8601 instant."""
    match = re.fullmatch(r"(\d{1,6})([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return now - timedelta(**{unit: int(match.group(1))})
    try:
        return parse_time(text)
    except ProfileError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (30m, 2h, 7d) nor an ISO 8601 time (2025-06-01T00:00:00Z)",
            param_hint="--since",
        ) from None


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)


def status_json(reader: StateReader, path: Path, station: str | None) -> dict[str, Any]:
    conditions = reader.conditions()
    registry = reader.stations()
    ledger = reader.ledger()
    owned = Counter(r.station_id for r in ledger)
    unconfirmed = Counter(r.station_id for r in ledger if not r.confirmed)
    pending = reader.pending_count()
    ids = sorted(set(conditions) | set(registry) | set(owned) | set(pending))
    if station is not None:
        ids = [s for s in ids if s == station]
    stations = []
    for sid in ids:
        c, r = conditions.get(sid), registry.get(sid)
        stations.append({
            "station": sid, "status": c.status.value if c else None, "reason": c.reason if c else None,
            "revision": c.revision if c else None, "since": format_time(c.since) if c else None,
            "lastReconcile": format_time(c.updated_at) if c else None,
            "lastSeen": format_time(r.last_seen) if r and r.last_seen else None,
            "profiles": owned[sid], "unconfirmed": unconfirmed[sid], "pending": pending.get(sid, 0),
        })  # fmt: skip
    statuses = Counter(s["status"] or "never reconciled" for s in stations)
    return {"state": str(path), "lock": lock_status(path), "stations": stations, "summary": dict(statuses)}


def render_status(data: dict[str, Any]) -> str:
    rows = [
        [s["station"], s["status"] or "-", s["lastReconcile"] or "never", s["revision"] or "-",
         f"{s['profiles']}" + (f" ({s['unconfirmed']} unconfirmed)" if s["unconfirmed"] else ""), s["reason"] or ""]
        for s in data["stations"]
    ]  # fmt: skip
    out = [_table(rows, ["STATION", "STATUS", "LAST RECONCILE", "REVISION", "PROFILES", "REASON"])] if rows else []
    lock = data["lock"]
    if lock:
        holder = f"{lock.get('command')} (pid {lock.get('pid')} on {lock.get('host')}, since {lock.get('since')})"
        out.append(f"state locked by {holder if lock.get('id') else 'another process'}")
    parts = ", ".join(f"{n} {s}" for s, n in sorted(data["summary"].items()))
    out.append(f"{len(data['stations'])} station(s){': ' + parts if parts else ''} ({data['state']})")
    return "\n".join(out)


def render_saved(data: dict[str, Any], path: Path) -> str:
    """A saved plan as text (what `plan` printed when it was saved, without drift details)."""
    connection = data.get("connection") or {}
    reach = (f"--listen {connection['listen']}" if connection.get("listen")
             else f"--via {connection['via']}" if connection.get("via") else "the flags given to apply")  # fmt: skip
    lines = [
        f"Saved plan {path}: created {data.get('createdAt', '?')} at revision {data.get('revision') or 'not in git'}",
        f"  policies {', '.join(data['policies'])}; horizon {data['horizon']} s; chargers via {reach}; "
        f"state {data.get('db') or 'default'}",
        "",
    ]
    kinds: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for entry in (data.get("plan") or {}).get("stations", []):
        status, actions = entry["status"], entry.get("actions") or []
        blocked = bool(entry.get("blocked") or entry.get("refused"))
        counts["in sync" if status == "Synced" else "blocked" if blocked and status == "OutOfSync"
               else "to change" if status == "OutOfSync" else status.lower()] += 1  # fmt: skip
        if status == "Synced" and not actions:
            continue
        head = f"{entry['station']}  {status}" + (f"  ({entry['reason']})" if entry.get("reason") else "")
        lines.append(head)
        for action in actions:
            lines.append(f"  {action['symbol']} {action['kind']:<9} {action['description']}"
                         + (f"   ({action['reason']})" if action.get("reason") else ""))  # fmt: skip
            if action.get("source"):
                lines.append(f"      from {action['source']}")
            if status == "OutOfSync" and not blocked:
                kinds[action["kind"]] += 1
        for key in ("blocked", "refused"):
            if entry.get(key):
                lines.append(f"    {key.upper()}: {entry[key]}")
        lines.append("")
    changes = ", ".join(f"{kinds[k]} configuration" if k == "configure" else f"{kinds[k]} to {k}"
                        for k in ("set", "replace", "clear", "configure", "prune"))  # fmt: skip
    tallies = [f"{counts['in sync']} in sync", f"{counts['to change']} to change"]  # as `plan` words its summary
    tallies += [f"{counts[what]} {what}" for what in ("blocked", "degraded", "offline") if counts[what]]
    tallies += [f"{n} {what}" for what, n in sorted(counts.items())
                if n and what not in ("in sync", "to change", "blocked", "degraded", "offline")]  # fmt: skip
    lines.append(f"Plan: {changes}. {', '.join(tallies)}.")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(db: DbOpt = None, policies: PoliciesOpt = Path("policies"), station: StationOpt = None,
               as_json: JsonOpt = False) -> None:  # fmt: skip
        """Each station's condition from the state file: status, reason, revision, last reconcile, owned profiles.

        Reads the state only (no charger, no lock). Exit 1 when there is no state file.
        """
        err = plain_console()
        path = state_file(db, policies)
        with _reader(path, err) as reader:
            data = status_json(reader, path, station)
        typer.echo(json.dumps(data, indent=2) if as_json else render_status(data))

    @app.command("history")
    def history(
        db: DbOpt = None, policies: PoliciesOpt = Path("policies"), station: StationOpt = None,
        since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help="30m, 2h, 7d or an ISO 8601 time")] = None,  # noqa: E501
        limit: Annotated[int, typer.Option("--limit", metavar="N", min=1, max=100_000, help="newest N events")] = 100,
        as_json: JsonOpt = False,
    ) -> None:  # fmt: skip
        """The event log: what was sent, what changed status, with the policies' git revision."""
        err = plain_console()
        path = state_file(db, policies)
        after = parse_since(since, clock.now()) if since else None
        with _reader(path, err) as reader:
            events = reader.events(station_id=station, since=after, limit=limit)
        if as_json:
            typer.echo(json.dumps([{"id": e.id, "at": format_time(e.at), "station": e.station_id, "kind": e.kind,
                                    "message": e.message, "revision": e.revision, "data": e.data}
                                   for e in events], indent=2))  # fmt: skip
            return
        for e in events:
            rev = f"  [{e.revision}]" if e.revision else ""
            typer.echo(f"{format_time(e.at)}  {e.station_id or '-':<14} {e.kind:<18} {e.message}{rev}")
        if not events:
            typer.echo("no events" + (f" for {station}" if station else "") + (f" since {since}" if since else ""))

    @app.command("show")
    def show(
        plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="a plan saved with plan --out")],
        as_json: JsonOpt = False,
    ) -> None:
        """Render a saved plan (checked first), without contacting any charger."""
        err = plain_console()
        try:
            saved = read_saved_plan(plan_file)
        except PlanFileError as exc:
            err.print(f"error: {exc}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        typer.echo(json.dumps(saved.data, indent=1) if as_json else render_saved(saved.data, plan_file))

    state = typer.Typer(help="The ledger: what the reconciler installed, per station (list, rm).",
                        no_args_is_help=True, rich_markup_mode=None)  # fmt: skip
    app.add_typer(state, name="state")

    @state.command("list")
    def state_list(db: DbOpt = None, policies: PoliciesOpt = Path("policies"), station: StationOpt = None,
                   as_json: JsonOpt = False) -> None:  # fmt: skip
        """The ledger entries: station, profile id, connector, purpose, stack level, outcome
        (Accepted, Unverified, Unconfirmed, NotEnforced) and, when a restart or an unanswered Clear made
        it uncertain, why (DOUBT; `doubt` in --json, null otherwise)."""
        err = plain_console()
        path = state_file(db, policies)
        with _reader(path, err) as reader:
            rows = reader.ledger(station)
        if as_json:
            typer.echo(json.dumps([r.to_json() for r in rows], indent=2))
            return
        table = [[r.station_id, f"#{r.profile_id}", str(r.connector_id), r.purpose, str(r.stack_level),
                  r.outcome, r.revision or "-", format_time(r.installed_at), r.doubt or "-"]
                 for r in rows]  # fmt: skip
        if table:
            typer.echo(_table(table, ["STATION", "PROFILE", "CONNECTOR", "PURPOSE", "STACK", "OUTCOME", "REVISION",
                                      "INSTALLED", "DOUBT"]))  # fmt: skip
        typer.echo(f"{len(rows)} ledger entr{'y' if len(rows) == 1 else 'ies'}")

    @state.command("rm")
    def state_rm(
        station_id: Annotated[str, typer.Argument(metavar="STATION", help="station id")],
        profile_ids: Annotated[list[int], typer.Argument(metavar="PROFILE_ID...", help="ledger profile ids")],
        db: DbOpt = None, policies: PoliciesOpt = Path("policies"),
        lock_timeout: Annotated[float, typer.Option("--lock-timeout", metavar="SECONDS", min=0, help="wait this long for the state lock")] = 0.0,  # noqa: E501
        yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    ) -> None:  # fmt: skip
        """Forget ledger entries, such as a profile someone cleared from the charger by hand.

        Nothing is sent to the charger. A forgotten profile still on the charger becomes foreign:
        the next plan shows it as drift (BLOCKED until `prune: foreign` or it is removed).
        """
        from reconciler.cli.common import state_lock

        err = plain_console()
        path = state_file(db, policies)
        if not path.is_file():
            err.print(f"error: {path}: no state file here (pass --db FILE)", markup=False)
            raise typer.Exit(1)
        if not yes:
            if not sys.stdin.isatty():
                err.print("error: state rm needs confirmation and there is no terminal; pass --yes")
                raise typer.Exit(1)
            ids = ", ".join(f"#{p}" for p in profile_ids)
            if not typer.confirm(f"Forget {ids} of {station_id} in {path}?", default=False):
                raise typer.Exit(1)
        with state_lock(path, lock_timeout, err, "reconciler state rm"):
            try:
                store = Store(path)
            except StoreError as exc:
                err.print(f"error: {exc}", markup=False)
                raise typer.Exit(1) from None
            try:
                missing = [p for p in profile_ids
                           if not store.forget_profile(station_id, p, clock.now(), "reconciler state rm")]  # fmt: skip
            finally:
                store.close()
        for p in profile_ids:
            if p not in missing:
                typer.echo(f"forgot {station_id} #{p}")
        if missing:
            err.print(f"error: not in the ledger of {station_id}: {', '.join(f'#{p}' for p in missing)}", markup=False)
            raise typer.Exit(1)

    @app.command("force-unlock")
    def unlock(
        lock_id: Annotated[str, typer.Argument(metavar="LOCK_ID", help="the lock id the error message showed")],
        db: DbOpt = None, policies: PoliciesOpt = Path("policies"),
        force: Annotated[bool, typer.Option("--force", help="do not ask for confirmation")] = False,
    ) -> None:  # fmt: skip
        """Remove the state lock of a holder that is stuck or gone. Only when nothing else uses the state."""
        err = plain_console()
        path = state_file(db, policies)
        holder = read_holder(path)
        if not force and holder is not None:
            if not sys.stdin.isatty():
                err.print("error: force-unlock needs confirmation and there is no terminal; pass --force")
                raise typer.Exit(1)
            if not typer.confirm(f"Remove the lock of {holder.describe()}?", default=False):
                raise typer.Exit(1)
        try:
            removed = force_unlock(path, lock_id)
        except LockError as exc:
            err.print(f"error: {exc}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        typer.echo(f"removed the state lock of {removed.describe()}")
