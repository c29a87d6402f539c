"""`reconciler explain`: per period of a station's expected composite, which profile governs and why.

Offline, from the policies alone (no charger): the same engine `plan` uses for its expectations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler import clock
from reconciler.core.explain import explain_composite
from reconciler.core.profiles import ProfileError, RateUnit, format_time, from_epoch, parse_time
from reconciler.core.timeline import Limit
from reconciler.core.wire import MAX_DURATION
from reconciler.policy import load_policies


def _limit(value: Limit, unit: RateUnit) -> str:
    return "no limit" if value is None else f"{value:.1f} {unit.value}"


def register(app: typer.Typer) -> None:
    @app.command("explain")
    def explain(
        station: Annotated[str, typer.Option("--station", "-s", metavar="ID", help="the station to explain")],
        policies: Annotated[
            list[Path] | None, typer.Option("--policies", "-p", metavar="PATH", help="policy files or directories")
        ] = None,
        connector: Annotated[
            int | None, typer.Option("--connector", "-c", metavar="N", help="one connector (default: each)")
        ] = None,
        at: Annotated[
            str | None, typer.Option("--at", metavar="TIME", help="ISO 8601 instant to start from (default: now)")
        ] = None,
        duration: Annotated[
            int,
            typer.Option(
                "--duration", metavar="SECONDS", help="seconds to explain (at most 31 days)", min=0, max=MAX_DURATION
            ),
        ] = 86_400,
        unit: Annotated[
            str | None, typer.Option("--unit", metavar="A|W", help="A or W (default: the station's first allowed unit)")
        ] = None,
    ) -> None:
        """Show, period by period, which desired profile sets a station's limit and why.

        Within a purpose the highest stackLevel covering an instant governs (even when higher);
        a TxProfile replaces the TxDefaultProfile; a ChargePointMaxProfile caps the result.
        """
        paths = policies or [Path("policies")]
        try:
            now = parse_time(at, "--at") if at else clock.now()
        except ProfileError as exc:
            raise typer.BadParameter(exc.message, param_hint="--at") from None
        loaded = load_policies(paths, now=now)
        if not loaded.ok:
            for diagnostic in loaded.errors:
                typer.echo(diagnostic.format_text(), err=True)
            raise typer.Exit(1)
        if station not in loaded.desired:
            known = ", ".join(sorted(loaded.desired)[:10])
            raise typer.BadParameter(f"{station} is not a declared station (e.g. {known})", param_hint="--station")
        state = loaded.desired[station]
        ctx = state.station.context
        if unit is not None and unit.upper() not in ("A", "W"):
            raise typer.BadParameter(f"{unit!r}: use A or W", param_hint="--unit")
        chosen = RateUnit(unit.upper()) if unit else ctx.default_unit
        sources = {p.profile.charging_profile_id: p for p in state.profiles}
        pairs = [(p.connector_id, p.profile) for p in state.profiles]
        if connector is not None and not 0 <= connector <= ctx.number_of_connectors:
            raise typer.BadParameter(
                f"connector {connector} does not exist: {station} has 0..{ctx.number_of_connectors}",
                param_hint="--connector",
            )
        connectors = [connector] if connector is not None else list(range(1, ctx.number_of_connectors + 1))
        refused = 0
        for c in connectors:
            composite, explanations = explain_composite(
                pairs, connector_id=c, now=now, duration=duration, unit=chosen, context=ctx
            )
            if not composite.accepted:
                typer.echo(f"{station} connector {c}: {composite.reason}", err=True)
                refused += 1
                continue
            start = int(composite.schedule_start.timestamp())
            typer.echo(f"{station} connector {c}, from {format_time(composite.schedule_start)} for {duration} s")
            for i, item in enumerate(explanations):
                period = item.period
                end = explanations[i + 1].period.start_period if i + 1 < len(explanations) else duration
                span = (
                    f"{format_time(from_epoch(start + period.start_period))} .. {format_time(from_epoch(start + end))}"
                )
                governor = period.governor
                who = "default (no profile)" if governor is None else governor.describe()
                typer.echo(f"  {span}  {_limit(period.limit, chosen):>10}  {who}")
                if governor is not None and governor.profile_id in sources:
                    source = sources[governor.profile_id]
                    typer.echo(f"      from {source.policy} ({source.location})")
                typer.echo(f"      why: {item.reason}")
        if refused:
            raise typer.Exit(1)
