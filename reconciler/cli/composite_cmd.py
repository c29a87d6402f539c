"""`reconciler composite`: the expected GetCompositeSchedule answer, computed offline."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from reconciler.core.composite import Composite
from reconciler.core.profiles import from_epoch
from reconciler.core.wire import RequestError, answer, composite_to_ocpp, request_from_json

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
  minus_one | rejected), connector0 (sum | stack), simulateTransactionActive (true),
  recurrenceBeforeStart (true), convertUnits (true), limitStep (none; 0.1 or 1 to round),
  maxCompositeDuration, installedDirectly (true: profiles are the installed set as-is; false:
  replay them through the SetChargingProfile rules), capabilities {ChargeProfileMaxStackLevel,
  ChargingScheduleMaxPeriods, MaxChargingProfilesInstalled,
  ChargingScheduleAllowedChargingRateUnit, AllowChargingProfileWithoutStartSchedule}.

Output: one GetCompositeSchedule.conf JSON object per request and line, in order. A request that
cannot be read gives {"status": "Rejected", "error": "..."} on its line and the rest go on.
With --format table, a readable timeline per request: start, end, limit, unit and which profile
sets each period.
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


def register(app: typer.Typer) -> None:
    @app.command("composite", help=HELP)
    def composite(
        source: Annotated[str, typer.Argument(help="request file, or - for standard input")] = "-",
        fmt: Annotated[str, typer.Option("--format", help="json (one line per request) or table")] = "json",
    ) -> None:
        if fmt not in ("json", "table"):
            raise typer.BadParameter(f"unknown format {fmt!r}; use json or table", param_hint="--format")
        if source == "-":
            code = run(sys.stdin, sys.stdout, fmt)
        else:
            path = Path(source)
            if not path.is_file():
                raise typer.BadParameter(f"{source}: no such file", param_hint="SOURCE")
            with path.open(encoding="utf-8") as stream:
                code = run(stream, sys.stdout, fmt)
        raise typer.Exit(code)
