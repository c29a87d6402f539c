"""Properties of the composite engine that hold for any profile set (hypothesis)."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.composite import compute_composite
from reconciler.core.context import StationContext, Uncovered
from reconciler.core.profiles import (
    ChargingProfile,
    ChargingSchedule,
    Kind,
    Purpose,
    RateUnit,
    Recurrency,
    SchedulePeriod,
)
from reconciler.core.units import amps_to_watts, round_to_step, watts_to_amps
from tests.core.builders import T0, limit_at

CTX = StationContext(number_of_connectors=2, uncovered=Uncovered.NO_LIMIT)
HORIZON = 6 * 3600


@st.composite
def schedules(draw, unit=RateUnit.A):
    starts = sorted(draw(st.sets(st.integers(1, HORIZON), max_size=4)))
    limits = st.floats(0, 32) if unit is RateUnit.A else st.floats(0, 22_000)
    periods = tuple(SchedulePeriod(s, round(draw(limits), 1)) for s in [0, *starts])
    start = T0 + timedelta(seconds=draw(st.integers(-HORIZON, HORIZON)))
    duration = draw(st.one_of(st.none(), st.integers(60, 2 * HORIZON)))
    return ChargingSchedule(unit, periods, duration=duration, start_schedule=start)


@st.composite
def profiles(draw, purpose=None, profile_id=None, stack=None):
    purpose = purpose or draw(st.sampled_from([Purpose.TX_DEFAULT, Purpose.CHARGE_POINT_MAX]))
    kinds = [Kind.ABSOLUTE, Kind.RECURRING] + ([Kind.RELATIVE] if purpose is not Purpose.CHARGE_POINT_MAX else [])
    kind = draw(st.sampled_from(kinds))
    return ChargingProfile(
        charging_profile_id=profile_id if profile_id is not None else draw(st.integers(1, 10_000)),
        stack_level=stack if stack is not None else draw(st.integers(0, 4)),
        purpose=purpose,
        kind=kind,
        schedule=draw(schedules(unit=draw(st.sampled_from([RateUnit.A, RateUnit.W])))),
        recurrency_kind=draw(st.sampled_from([Recurrency.DAILY, Recurrency.WEEKLY]))
        if kind is Kind.RECURRING
        else None,
    )


def run(installed, connector=1, unit=RateUnit.A, ctx=CTX):
    return compute_composite(installed, connector_id=connector, now=T0, duration=HORIZON, unit=unit, context=ctx)


@settings(max_examples=300, deadline=None)
@given(
    cap=profiles(purpose=Purpose.CHARGE_POINT_MAX), others=st.lists(profiles(purpose=Purpose.TX_DEFAULT), max_size=4)
)
def test_composite_never_exceeds_an_active_charge_point_max(cap, others):
    installed = [(0, cap)] + [(1, p) for p in others]
    alone = run([(0, cap)], unit=cap.schedule.charging_rate_unit)
    combined = run(installed, unit=cap.schedule.charging_rate_unit)
    for offset in sorted({p.start_period for p in alone.periods} | {p.start_period for p in combined.periods}):
        ceiling = limit_at(alone, offset)
        if ceiling is not None:
            got = limit_at(combined, offset)
            assert got is not None and got <= ceiling + 1e-9, (offset, got, ceiling)


@settings(max_examples=300, deadline=None)
@given(base=st.lists(profiles(purpose=Purpose.TX_DEFAULT), max_size=3), top=profiles(purpose=Purpose.TX_DEFAULT))
def test_a_higher_stack_level_governs_wherever_it_has_a_period(base, top):
    top = ChargingProfile(**{**_fields(top), "stack_level": 9, "charging_profile_id": 99_999})
    installed = [(1, p) for p in base if p.charging_profile_id != 99_999] + [(1, top)]
    result = run(installed, unit=top.schedule.charging_rate_unit)
    alone = run([(1, top)], unit=top.schedule.charging_rate_unit)
    for period in alone.periods:
        if period.limit is not None:
            assert limit_at(result, period.start_period) == period.limit
            governed = [p for p in result.periods if p.start_period == period.start_period]
            assert not governed or governed[0].governor.profile_id == 99_999


@settings(max_examples=150, deadline=None)
@given(items=st.lists(profiles(), min_size=1, max_size=4, unique_by=lambda p: (p.purpose, p.stack_level)))
def test_installation_order_does_not_matter_when_slots_are_distinct(items):
    installed = [(0 if p.purpose is Purpose.CHARGE_POINT_MAX else 1, p) for p in items]
    expected = [(p.start_period, p.limit) for p in run(installed).periods]
    for order in itertools.islice(itertools.permutations(installed), 6):
        assert [(p.start_period, p.limit) for p in run(list(order)).periods] == expected


@settings(max_examples=500, deadline=None)
@given(
    amps=st.integers(0, 800).map(lambda tenths: tenths / 10),
    voltage=st.sampled_from([110.0, 120.0, 220.0, 230.0, 240.0]),
    phases=st.integers(1, 3),
)
def test_amps_to_watts_and_back_is_stable_to_a_tenth(amps, voltage, phases):
    watts = round_to_step(amps_to_watts(amps, voltage, phases), 0.1)
    assert abs(round_to_step(watts_to_amps(watts, voltage, phases), 0.1) - amps) < 0.1 + 1e-9


def _fields(profile):
    return {name: getattr(profile, name) for name in ChargingProfile.__dataclass_fields__ if not name.endswith("_s")}
