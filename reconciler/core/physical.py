"""What a charger physically lets through: per connector and for the whole station, in watts.

Flow: (safety) installed profiles -> `physical_limits` -> one W timeline per connector and one for
the station's total -> compared, at every instant, with the old and the new desired state.

This is not what a charger *reports* for connector 0. EVerest libocpp reports the sum of each
connector's composite with amps and watts summed apart, a connector without a limit in one unit
counted at the default limit of that unit, and one phase count for the conversion (what
`core.composite` reproduces, right for comparing with its answers); other chargers report one
stack, or the ChargePointMaxProfile alone. The power a station can draw is instead:
- per connector, the limit in force: its TxProfile-over-TxDefaultProfile value capped by the
  ChargePointMaxProfile, each converted to W with its own numberPhases (else the station's);
- for the station, the sum of the connectors' own limits (a connector nothing limits makes the sum
  unlimited), capped by the ChargePointMaxProfile.
Time no profile covers is uncapped; the charger's reporting conventions play no part.

`physical_from_readback` applies the same definition to what a charger *answered*
(GetCompositeSchedule per connector, and for connector 0 where its convention makes that answer a
bound on the station), for the limit a person is shown as in force now. Pure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from reconciler.core.composite import compute_composite
from reconciler.core.context import Connector0, StationContext, Transaction
from reconciler.core.diff import Normaliser, expected_timeline
from reconciler.core.profiles import ChargingProfile, Purpose, RateUnit
from reconciler.core.timeline import Limit, Timeline, merged, walk
from reconciler.core.units import convert

_RAW = Normaliser(max_current_a=None)


@functools.lru_cache(maxsize=1024)
def enforcing_context(context: StationContext) -> StationContext:
    """The station's context as its hardware enforces: uncovered time is no limit, limits unrounded,
    a limit in either unit applied (whether or not the charger converts units when it reports), and
    every other reporting convention (connector 0's form, the answer's unit, the cap left out of
    connectors, Recurring periods not shifted) back to what the hardware does (`enforced()`)."""
    return context.enforced()


def _combine(timelines: Sequence[Timeline], fold: Callable[[list[Limit]], Limit]) -> Timeline:
    first = timelines[0]
    steps = [(begin, fold(values)) for begin, _, values in walk(*timelines)]
    return Timeline(first.start, first.end, first.unit, merged(steps or [(first.start, None)]))


def _lowest(values: list[Limit]) -> Limit:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _total(values: list[Limit]) -> Limit:
    """Connector limits summed, capped by the station cap (the first value); None: unlimited."""
    cap, lanes = values[0], values[1:]
    summed = None if any(v is None for v in lanes) else sum(v for v in lanes if v is not None)
    return _lowest([cap, summed])


def physical_limits(
    pairs: Sequence[tuple[int, ChargingProfile]],
    *,
    context: StationContext,
    now: datetime,
    horizon: int,
    transactions: Mapping[int, Transaction],
    normaliser: Normaliser,
) -> tuple[list[Timeline], Timeline]:
    """(per connector 1..N, station total) in W. Connector limits at or above the hardware maximum
    read as no limit (`normaliser`); the total is not capped by any one connector's hardware."""
    ctx = enforcing_context(context)

    def timeline(profiles: list[tuple[int, ChargingProfile]], connector: int) -> Timeline:
        composite = compute_composite(
            profiles, connector_id=connector, now=now, duration=horizon, unit=RateUnit.W, context=ctx,
            transactions=transactions,
        )  # fmt: skip
        return expected_timeline(composite, _RAW)

    caps = [(c, p) for c, p in pairs if p.purpose is Purpose.CHARGE_POINT_MAX]
    lanes_in = [(c, p) for c, p in pairs if p.purpose is not Purpose.CHARGE_POINT_MAX]
    connectors = range(1, ctx.number_of_connectors + 1)
    # The ChargePointMaxProfile alone, seen from any connector (connector 1 exists on every station).
    cap = timeline(caps, 1)
    lanes = [timeline(lanes_in, c) for c in connectors]
    per_connector = []
    for lane in lanes:
        capped = _combine([lane, cap], _lowest)
        steps = [(begin, normaliser.limit(value, RateUnit.W)) for begin, value in capped.steps]
        per_connector.append(Timeline(capped.start, capped.end, RateUnit.W, merged(steps)))
    return per_connector, _combine([cap, *lanes], _total)


# Connector-0 conventions whose answer is at least the physical total and at most the
# ChargePointMaxProfile: min(cap, a sum of the connectors' limits), or the cap alone. A STACK answer
# (every profile in one stack) can be below the total; UNSUPPORTED gives none.
_BOUNDING = frozenset({Connector0.SUM, Connector0.CONNECTOR_SUM, Connector0.CAP_ONLY})


def in_watts(timeline: Timeline, voltage: float, phases: int) -> Timeline:
    """`timeline` in W (limits in A converted with the station's voltage and phases)."""
    if timeline.unit is RateUnit.W:
        return timeline
    steps = [
        (b, None if v is None else convert(v, timeline.unit, RateUnit.W, voltage, phases)) for b, v in timeline.steps
    ]
    return Timeline(timeline.start, timeline.end, RateUnit.W, merged(steps))


def physical_from_readback(
    connectors: Sequence[Timeline], reported_total: Timeline | None, convention: Connector0
) -> tuple[list[Timeline], Timeline]:
    """(per connector 1..N, station total) in force, from a charger's read-back in one unit (None = no
    limit). Each connector's answer, capped by connector 0's answer where the convention makes it a
    bound (a charger leaving the cap out of its connectors' answers still enforces it); the total is
    those connector limits summed (one without a limit makes it unlimited), capped the same way."""
    cap = reported_total if reported_total is not None and convention in _BOUNDING else None
    if cap is None:
        unlimited = Timeline(connectors[0].start, connectors[0].end, connectors[0].unit, ((connectors[0].start, None),))
        return list(connectors), _combine([unlimited, *connectors], _total)
    per_connector = [_combine([lane, cap], _lowest) for lane in connectors]
    return per_connector, _combine([cap, *per_connector], _total)
