"""`reconciler composite`: the expected GetCompositeSchedule answer, computed offline.

Two sources: a composite request (the conformance-case JSON format, from a file or stdin), or
`--policies DIR --station ID`: the station's resolved desired state from the policy loader, its
templates expanded, run through the core engine at `--at` (default: now, read at this edge).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from reconciler import clock
from reconciler.core.composite import Composite, compute_composite
from reconciler.core.profiles import ProfileError, RateUnit, from_epoch, parse_time, profile_to_ocpp
from reconciler.core.wire import MAX_DURATION, RequestError, answer, composite_to_ocpp, request_from_json

HELP = """Compute the composite schedule a charger should report, from a set of installed profiles.

SOURCE is a file, or - for standard input, holding one JSON request object or JSON lines (one
request per line). Each request is the format of the public conformance cases:

\b
  {"now": "2024-01-17T18:01:00Z",          instant the charger computes at (= scheduleStart)
   "connectorId": 1, "duration": 3600,      the GetCompositeSchedule.req fields
   "chargingRateUnit": "A",                 A, W, or null for the station's first allowed unit
   "profiles": [{"connectorId": 0,          SetChargingProfile.req payloads, in installation order
                 "csChargingProfiles": {...}}],
   "transaction": {"connectorId": 1, "transactionId": 7, "start": "..."} or null,
   "context": {...}}                        the charger's settings and conventions (all optional)

\b
context keys: numberOfConnectors (1), supplyVoltage (230), defaultNumberPhases (3),
  defaultLimitA (48), defaultLimitW (33120), uncoveredTime (default_limit | no_limit |
  minus_one | rejected), connector0 (sum | connector_sum | stack | cap_only | unsupported),
  simulateTransactionActive (true), recurrenceBeforeStart (true), convertUnits (true),
  replyUnit (requested | profile), capOnConnectors (true), rebaseRecurring (true),
  limitStep (none; 0.1 or 1 to round),
  maxCompositeDuration, installedDirectly (true: profiles are the installed set as-is; false:
  replay them through the SetChargingProfile rules), capabilities {ChargeProfileMaxStackLevel,
  ChargingScheduleMaxPeriods, MaxChargingProfilesInstalled,
  ChargingScheduleAllowedChargingRateUnit, AllowChargingProfileWithoutStartSchedule}.

Output: one GetCompositeSchedule.conf JSON object per request and line, in order. A request that
cannot be read gives {"status": "Rejected", "error": "..."} on its line and the rest go on.
With --format table, a readable timeline per request: start, end, limit, unit and which profile
sets each period.

\b
From policies instead of a request:
  reconciler composite --policies policies/ --station PY-SIM-0001 [--connector 0]
      [--at 2025-06-02T18:30:00Z] [--duration 86400] [--unit W] [--format table|json]
prints the station's desired profiles (templates expanded, with the file:line that declared
each) and the composite the core engine expects the charger to report. Invalid policies print
their diagnostics on stderr and exit 1.
"""


def _requests(stream: TextIO) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON or the parse error) for a single object or JSON lines."""
    text = stream.read()
    stripped = text.strip()
    if not stripped:
        return
    if stripped.startswith("{") and "\n" in stripped:
        try:
            yield 1, json.loads(stripped)  # one pretty-printed object
            return
        except json.JSONDecodeError:
            pass  # JSON lines
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, RequestError(f"line {number}: not valid JSON: {exc.msg} at column {exc.colno}")


def render_table(composite: Composite) -> str:
    """A timeline people can read: one row per period."""
    if not composite.accepted:
        return f"Rejected: {composite.reason or 'no reason given'}"
    start = int(composite.schedule_start.timestamp())
    unit = composite.unit.value
    rows = [
        f"connector {composite.connector_id}, {composite.duration} s from {composite.schedule_start:%Y-%m-%d %H:%M:%S}Z"
    ]
    rows.append(f"{'start':>20}  {'end':>20}  {'limit':>10}  {'phases':>6}  governed by")
    periods = composite.periods
    for i, period in enumerate(periods):
        begin = start + period.start_period
        finish = start + (periods[i + 1].start_period if i + 1 < len(periods) else composite.duration)
        limit = "no limit" if period.limit is None else f"{period.limit:.1f} {unit}"
        phases = "" if period.number_phases is None else str(period.number_phases)
        governor = period.governor.describe() if period.governor else "no profile (uncovered)"
        span = f"{from_epoch(begin):%Y-%m-%d %H:%M:%S}  {from_epoch(finish):%Y-%m-%d %H:%M:%S}"
        rows.append(f"{span}  {limit:>10}  {phases:>6}  {governor}")
    return "\n".join(rows)


def run(stream: TextIO, out: TextIO, fmt: str) -> int:
    failures = 0
    for _, data in _requests(stream):
        try:
            if isinstance(data, RequestError):
                raise data
            composite = answer(request_from_json(data))
        except RequestError as exc:
            failures += 1
            if fmt == "table":
                out.write(f"error: {exc}\n\n")
            else:
                out.write(json.dumps({"status": "Rejected", "error": str(exc)}) + "\n")
            continue
        if fmt == "table":
            out.write(render_table(composite) + "\n\n")
        else:
            out.write(json.dumps(composite_to_ocpp(composite)) + "\n")
    out.flush()
    return 1 if failures else 0


def _describe(state: Any) -> list[str]:
    rows = ["desired profiles:"]
    for desired in state.profiles:
        p = desired.profile
        origin = f"{desired.policy}" + (f" ({desired.template})" if desired.template else "")
        limits = ", ".join(f"{q.start_period}s:{q.limit:g}" for q in p.schedule.periods)
        rows.append(
            f"  #{p.charging_profile_id} connector {desired.connector_id} {p.purpose.value} stack {p.stack_level} "
            f"{p.kind.value}{'/' + p.recurrency_kind.value if p.recurrency_kind else ''} "
            f"[{limits}] {p.schedule.charging_rate_unit.value}  from {origin} at {desired.location}"
        )
    return rows


def run_policies(
    directory: str, station: str, connector: int, at: str | None, duration: int, unit: str | None, fmt: str
) -> int:
    """The expected composite of one station from the policy directory; 1 on invalid input."""
    from reconciler.policy import load_policies  # the policy room is only needed in this mode

    try:
        moment = clock.now() if at is None else parse_time(at, "--at")
    except ProfileError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    policies = load_policies([directory], now=moment)
    if not policies.ok:
        for diagnostic in policies.errors:
            sys.stderr.write(diagnostic.format_text() + f" [{diagnostic.code}]\n")
        sys.stderr.write(
            f"error: {len(policies.errors)} error(s) in {directory}; fix them first (reconciler validate)\n"
        )
        return 1
    state = policies.desired.get(station)
    if state is None:
        known = ", ".join(sorted(policies.stations)[:10]) or "none"
        sys.stderr.write(f"error: no Station {station!r} in {directory}; stations: {known}\n")
        return 1
    composite = compute_composite(
        state.installed().pairs(),
        connector_id=connector,
        now=moment,
        duration=duration,
        unit=None if unit is None else RateUnit(unit),
        context=state.station.context,
    )
    if fmt == "json":
        payload = {
            "station": station,
            "revision": policies.revision,
            "profiles": [
                {
                    "connectorId": d.connector_id,
                    "policy": d.policy,
                    "template": d.template,
                    "location": str(d.location),
                    "csChargingProfiles": profile_to_ocpp(d.profile),
                }
                for d in state.profiles
            ],
            "composite": composite_to_ocpp(composite),
        }
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        sys.stdout.write("\n".join([f"station {station}", *_describe(state), render_table(composite)]) + "\n")
    return 0 if composite.accepted else 1


def register(app: typer.Typer) -> None:
    @app.command("composite", help=HELP)
    def composite(
        source: Annotated[
            str, typer.Argument(metavar="[FILE]", help="request file, or - for standard input (the default)")
        ] = "-",
        fmt: Annotated[
            str, typer.Option("--format", metavar="FORMAT", help="json (one line per request) or table")
        ] = "json",
        policies: Annotated[
            str | None,
            typer.Option(
                "--policies", "-p", metavar="PATH", help="policy directory: compute from a station's desired state"
            ),
        ] = None,
        station: Annotated[
            str | None, typer.Option("--station", "-s", metavar="ID", help="with --policies: the station id")
        ] = None,
        connector: Annotated[
            int, typer.Option("--connector", metavar="N", help="with --policies: connector (0 = grid)")
        ] = 0,
        at: Annotated[
            str | None, typer.Option("--at", metavar="TIME", help="with --policies: ISO 8601 instant (default: now)")
        ] = None,
        duration: Annotated[
            int,
            typer.Option(
                "--duration",
                metavar="SECONDS",
                help="with --policies: seconds (at most 31 days)",
                min=0,
                max=MAX_DURATION,
            ),
        ] = 86_400,
        unit: Annotated[
            str | None, typer.Option("--unit", metavar="UNIT", help="with --policies: A or W (default: station's)")
        ] = None,
    ) -> None:
        if fmt not in ("json", "table"):
            raise typer.BadParameter(f"unknown format {fmt!r}; use json or table", param_hint="--format")
        if policies is not None:
            if station is None:
                raise typer.BadParameter("--policies needs --station ID", param_hint="--station")
            if unit is not None and unit not in ("A", "W"):
                raise typer.BadParameter(f"unknown unit {unit!r}; use A or W", param_hint="--unit")
            raise typer.Exit(run_policies(policies, station, connector, at, duration, unit, fmt))
        if station is not None:
            raise typer.BadParameter(
                "--station needs --policies PATH (the station's desired state); without them, composite reads "
                "requests from FILE or standard input",
                param_hint="--station",
            )
        if source == "-":
            if sys.stdin.isatty():
                sys.stderr.write(
                    "reading composite requests (JSON, one per line) from the terminal; end with Ctrl-D.\n"
                    "Or: reconciler composite FILE, or reconciler composite --policies DIR --station ID\n"
                )
            code = run(sys.stdin, sys.stdout, fmt)
        else:
            path = Path(source)
            if not path.is_file():
                raise typer.BadParameter(f"{source}: no such file", param_hint="SOURCE")
            with path.open(encoding="utf-8") as stream:
                code = run(stream, sys.stdout, fmt)
        raise typer.Exit(code)
