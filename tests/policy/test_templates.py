"""Template expansion: energy rounding, time-of-use anchoring (DST rule), peak shaving, derived ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.profiles import Kind, Purpose, RateUnit, Recurrency
from reconciler.policy.templates import (
    TemplateCall,
    TemplateError,
    derived_id,
    energy_seconds,
    expand,
    local_midnight_anchor,
)

NOW = datetime(2025, 1, 15, 12, tzinfo=UTC)


def call(name: str, **params: object) -> TemplateCall:
    return TemplateCall(name, params, 7, 2)


def test_energy_budget_is_floored_to_the_second() -> None:
    assert energy_seconds(30_000, 11_000) == 9818  # 9818.18 s = 2 h 43 m 38 s
    assert energy_seconds(11_000, 11_000) == 3600
    assert energy_seconds(7_400.1, 7_400) == 3600  # 3600.048... floors


@given(st.integers(1, 200_000), st.integers(1, 50_000))
def test_energy_never_exceeds_the_budget(energy: int, power: int) -> None:
    seconds = energy_seconds(energy, power)
    assert seconds * power <= energy * 3600 < (seconds + 1) * power


def test_energy_cap_profile_shape() -> None:
    profile = expand(call("energy_cap", energyWh=30_000, powerW=11_000), timezone_name="UTC", now=NOW)
    assert profile.kind is Kind.RELATIVE and profile.purpose is Purpose.TX_DEFAULT
    assert [(p.start_period, p.limit) for p in profile.schedule.periods] == [(0, 11_000.0), (9818, 0.0)]
    absolute = expand(
        call("energy_cap", energyWh=1000, powerW=1000, start="2025-02-01T08:00:00Z"), timezone_name="UTC", now=NOW
    )
    assert absolute.kind is Kind.ABSOLUTE and absolute.schedule.start_schedule == datetime(2025, 2, 1, 8, tzinfo=UTC)


def test_time_of_use_anchor_follows_the_offset_in_force() -> None:
    assert local_midnight_anchor("Europe/Berlin", NOW) == datetime(2023, 12, 31, 23, tzinfo=UTC)
    summer = datetime(2025, 7, 1, tzinfo=UTC)
    assert local_midnight_anchor("Europe/Berlin", summer) == datetime(2023, 12, 31, 22, tzinfo=UTC)
    # stable within one offset period: the same profile every day (plan stays idle)
    assert local_midnight_anchor("Europe/Berlin", datetime(2025, 2, 20, tzinfo=UTC)) == local_midnight_anchor(
        "Europe/Berlin", NOW
    )


def test_time_of_use_periods_and_overnight_peak() -> None:
    day = expand(
        call("time_of_use", offPeakW=22000, peakW=7000, peakStartHour=18, peakEndHour=22),
        timezone_name="UTC",
        now=NOW,
    )
    assert day.kind is Kind.RECURRING and day.recurrency_kind is Recurrency.DAILY
    assert [(p.start_period, p.limit) for p in day.schedule.periods] == [(0, 22000), (64800, 7000), (79200, 22000)]
    night = expand(
        call("time_of_use", offPeakW=22000, peakW=7000, peakStartHour=22, peakEndHour=6),
        timezone_name="UTC",
        now=NOW,
    )
    assert [(p.start_period, p.limit) for p in night.schedule.periods] == [(0, 7000), (21600, 22000), (79200, 7000)]
    to_midnight = expand(
        call("time_of_use", offPeakW=22000, peakW=7000, peakStartHour=0, peakEndHour=24),
        timezone_name="UTC",
        now=NOW,
    )
    assert [(p.start_period, p.limit) for p in to_midnight.schedule.periods] == [(0, 7000)]


def test_time_of_use_own_timezone_wins_and_bad_zone_is_reported() -> None:
    profile = expand(
        call("time_of_use", offPeakW=1, peakW=2, peakStartHour=1, peakEndHour=2, timezone="Asia/Tokyo"),
        timezone_name="Europe/Berlin",
        now=NOW,
    )
    assert profile.schedule.start_schedule == datetime(2023, 12, 31, 15, tzinfo=UTC)
    with pytest.raises(TemplateError) as caught:
        expand(
            call("time_of_use", offPeakW=1, peakW=2, peakStartHour=1, peakEndHour=2, timezone="Mars/Olympus"),
            timezone_name="UTC",
            now=NOW,
        )
    assert caught.value.code == "unknown-timezone" and caught.value.param == "timezone"


def test_peak_shaving_in_watts_or_amps() -> None:
    watts = expand(call("peak_shaving", maxPowerW=7400), timezone_name="UTC", now=NOW)
    assert watts.purpose is Purpose.CHARGE_POINT_MAX and watts.schedule.charging_rate_unit is RateUnit.W
    assert watts.schedule.periods[0].limit == 7400 and watts.charging_profile_id == 7 and watts.stack_level == 2
    amps = expand(call("peak_shaving", maxCurrentA=16), timezone_name="UTC", now=NOW)
    assert amps.schedule.charging_rate_unit is RateUnit.A
    with pytest.raises(TemplateError):
        expand(call("peak_shaving"), timezone_name="UTC", now=NOW)


def test_derived_ids_are_stable_and_in_their_own_range() -> None:
    assert derived_id("depot", 0) == derived_id("depot", 0)
    assert derived_id("depot", 0) != derived_id("depot", 1)
    assert 1_000_000 <= derived_id("x", 3) < 2_000_000
