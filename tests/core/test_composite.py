"""The composite engine, rule by rule, on hand-built profile sets (the pure core, no I/O)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reconciler.core.composite import compute_composite
from reconciler.core.context import Connector0, ReplyUnit, StationContext, Transaction, Uncovered
from reconciler.core.profiles import RateUnit
from tests.core.builders import T0, profile, steps

CTX = StationContext()


def composite(installed, connector=1, duration=600, unit=RateUnit.A, ctx=CTX, tx=None, now=T0):
    return compute_composite(
        installed, connector_id=connector, now=now, duration=duration, unit=unit, context=ctx, transactions=tx
    )


def test_higher_stack_level_overrides_even_when_higher():
    low = profile(1, [(0, 6)], stack=0)
    high = profile(2, [(0, 16)], stack=1, duration=300)
    assert steps(composite([(1, low), (1, high)])) == [(0, 16), (300, 6)]


def test_tc072_stacking_two_tx_default_profiles():
    # OCTT TC_072_CS as in EVerest's integration test: expected 0:7, 100:9, 150:8, 200:10.
    base = profile(1, [(0, 6), (100, 8), (200, 10)], stack=0, duration=400)
    top = profile(2, [(0, 7), (100, 9)], stack=1, duration=150)
    result = composite([(1, base), (1, top)], duration=400)
    assert steps(result)[:4] == [(0, 7), (100, 9), (150, 8), (200, 10)]


def test_tc066_tx_profile_replaces_tx_default_and_cap_limits():
    cap = profile(1, [(0, 10)], purpose="ChargePointMaxProfile")
    default = profile(2, [(0, 6), (50, 10), (100, 8), (200, 25), (240, 8)], duration=300)
    tx = profile(3, [(0, 8), (100, 11), (200, 16), (240, 6), (250, 12)], purpose="TxProfile", duration=260)
    running = {1: Transaction(1, 42, T0)}
    result = composite([(0, cap), (1, default), (1, tx)], duration=400, tx=running)
    # 0-50 the TxProfile's 8 replaces the TxDefault's 6; the 10 A cap wins where Tx is above it;
    # after 260 s the TxDefault's 8 returns; after 300 s only the cap is left.
    assert steps(result) == [(0, 8), (100, 10), (240, 6), (250, 10), (260, 8), (300, 10)]


def test_charge_point_max_caps_but_does_not_raise():
    cap = profile(1, [(0, 10)], purpose="ChargePointMaxProfile")
    default = profile(2, [(0, 20), (100, 5)])
    assert steps(composite([(0, cap), (1, default)])) == [(0, 10), (100, 5)]


def test_uncovered_time_follows_the_station_convention():
    short = profile(1, [(0, 10)], duration=100)
    assert steps(composite([(1, short)])) == [(0, 10), (100, 48)]
    no_limit = CTX.with_(uncovered=Uncovered.NO_LIMIT)
    assert steps(composite([(1, short)], ctx=no_limit)) == [(0, 10), (100, None)]
    minus_one = composite([(1, short)], ctx=CTX.with_(uncovered=Uncovered.MINUS_ONE))
    assert [(p.limit, p.number_phases) for p in minus_one.periods] == [(10, None), (-1.0, -1)]
    rejected = composite([], ctx=CTX.with_(uncovered=Uncovered.REJECTED))
    assert rejected.status == "Rejected" and rejected.periods == ()


def test_valid_from_and_valid_to_clip_to_the_lower_stack():
    base = profile(1, [(0, 6)], stack=0)
    window = profile(2, [(0, 16)], stack=1, valid_from="2024-01-17T18:01:40Z", valid_to="2024-01-17T18:05:00Z")
    assert steps(composite([(1, base), (1, window)])) == [(0, 6), (100, 16), (300, 6)]


def test_daily_recurrence_is_anchored_on_start_schedule_time_of_day():
    # Recurs daily at 17:00 (startSchedule a year earlier): 11 kW for 8 h, then 6 kW until 17:00 again.
    daily = profile(
        1, [(0, 11000), (28800, 6000)], kind="Recurring", recurrency="Daily", unit="W", start="2023-01-17T17:00:00Z"
    )
    now = T0 + timedelta(hours=7, minutes=30)  # 01:30 next day: 6 kW since 01:00
    result = composite([(1, daily)], unit=RateUnit.W, duration=86_400, now=now)
    assert steps(result) == [(0, 6000), (55_800, 11000), (84_600, 6000)]


def test_weekly_recurrence_wraps_at_seven_days():
    weekly = profile(
        1, [(0, 10), (3600, 20)], kind="Recurring", recurrency="Weekly", start="2024-01-10T18:00:00Z", duration=7200
    )
    result = composite([(1, weekly)], duration=10_800)
    assert steps(result) == [(0, 10), (3600, 20), (7200, 48)]


def test_recurrence_before_start_schedule_is_a_convention():
    daily = profile(1, [(0, 10)], kind="Recurring", recurrency="Daily", start="2024-01-17T18:05:00Z", duration=600)
    everest = composite([(1, daily)], duration=900)
    strict = composite([(1, daily)], duration=900, ctx=CTX.with_(recurrence_before_start=False))
    # Before 18:05 libocpp already runs yesterday's occurrence (18:05 -> 18:15 yesterday ended); so both
    # show the gap first, then the 10 A from 18:05; they differ only when yesterday's tail reaches now.
    assert steps(everest) == [(0, 48), (300, 10)]
    assert steps(strict) == [(0, 48), (300, 10)]
    long_tail = profile(1, [(0, 10)], kind="Recurring", recurrency="Daily", start="2024-01-17T18:05:00Z")
    assert steps(composite([(1, long_tail)], duration=900)) == [(0, 10)]
    assert steps(composite([(1, long_tail)], duration=900, ctx=CTX.with_(recurrence_before_start=False))) == [
        (0, 48),
        (300, 10),
    ]


def test_relative_profile_starts_with_the_transaction_or_now():
    relative = profile(1, [(0, 6), (3600, 32)], kind="Relative", start=None)
    assert steps(composite([(1, relative)], duration=7200)) == [(0, 6), (3600, 32)]
    running = {1: Transaction(1, 1, T0 - timedelta(minutes=50))}
    assert steps(composite([(1, relative)], duration=7200, tx=running)) == [(0, 6), (600, 32)]


def test_tx_default_while_idle_is_a_convention():
    default = profile(1, [(0, 10)])
    idle = CTX.with_(tx_default_when_idle=False)
    assert steps(composite([(1, default)], ctx=idle)) == [(0, 48)]
    running = {1: Transaction(1, 5, T0)}
    assert steps(composite([(1, default)], ctx=idle, tx=running)) == [(0, 10)]


def test_tx_profile_of_another_transaction_is_ignored():
    tx = profile(1, [(0, 7)], purpose="TxProfile", transaction_id=99)
    assert steps(composite([(1, tx)], tx={1: Transaction(1, 5, T0)})) == [(0, 48)]
    assert steps(composite([(1, tx)], tx={1: Transaction(1, 99, T0)})) == [(0, 7)]


def test_watts_and_amps_convert_and_the_lower_wins():
    cap = profile(1, [(0, 6900)], purpose="ChargePointMaxProfile", unit="W")  # 10 A on 3 x 230 V
    default = profile(2, [(0, 16), (100, 8)])
    assert steps(composite([(0, cap), (1, default)])) == [(0, 10), (100, 8)]
    assert steps(composite([(0, cap), (1, default)], unit=RateUnit.W)) == [(0, 6900), (100, 5520)]


def test_number_phases_of_the_period_drive_the_conversion():
    one_phase = profile(1, [(0, 16, 1)])
    result = composite([(1, one_phase)], unit=RateUnit.W)
    assert [(p.limit, p.number_phases) for p in result.periods] == [(16 * 230, 1)]


def test_connector_zero_sums_connectors_then_caps():
    ctx = CTX.with_(number_of_connectors=2)
    one = profile(1, [(0, 10)])
    two = profile(2, [(0, 16)])
    assert steps(composite([(1, one), (2, two)], connector=0, ctx=ctx)) == [(0, 26)]
    cap = profile(3, [(0, 20)], purpose="ChargePointMaxProfile")
    assert steps(composite([(1, one), (2, two), (0, cap)], connector=0, ctx=ctx)) == [(0, 20)]
    # A connector without a profile counts at the default limit.
    assert steps(composite([(1, one)], connector=0, ctx=ctx)) == [(0, 58)]
    stacked = ctx.with_(connector0=Connector0.STACK)
    higher = profile(4, [(0, 10)], stack=1)
    assert steps(composite([(1, higher), (2, two)], connector=0, ctx=stacked)) == [(0, 10)]


def test_tx_default_on_connector_zero_applies_to_every_connector():
    ctx = CTX.with_(number_of_connectors=2)
    default = profile(1, [(0, 12)])
    assert steps(composite([(0, default)], connector=2, ctx=ctx)) == [(0, 12)]


def test_same_stack_on_connector_zero_and_n_last_installed_wins():
    ctx = CTX.with_(number_of_connectors=2)
    everywhere = profile(1, [(0, 12)], stack=2)
    here = profile(2, [(0, 20)], stack=2)
    assert steps(composite([(0, everywhere), (1, here)], ctx=ctx)) == [(0, 20)]
    assert steps(composite([(1, here), (0, everywhere)], ctx=ctx)) == [(0, 12)]


def test_invalid_periods_are_skipped_like_libocpp():
    # (300, 20) would end at the next period's start, 200: an empty period, dropped; (200, 30) does not
    # come after its predecessor, skipped. What is left: 10 A until 300 s, then nothing.
    unordered = profile(1, [(0, 10), (300, 20), (200, 30)])
    assert steps(composite([(1, unordered)])) == [(0, 10), (300, 48)]
    late_first = profile(2, [(60, 10), (120, 20)])
    assert steps(composite([(1, late_first)])) == [(0, 48), (120, 20)]


def test_window_is_half_open_and_whole_seconds():
    late = profile(1, [(0, 10)], start="2024-01-17T18:10:00Z")
    assert steps(composite([(1, late)], duration=600)) == [(0, 48)]
    now = T0.replace(microsecond=900_000)
    result = composite([(1, late)], duration=601, now=now)
    assert result.schedule_start == T0 and steps(result) == [(0, 48), (600, 10)]


def test_limit_step_rounds_reported_limits():
    watts = profile(1, [(0, 8000)], unit="W")
    assert steps(composite([(1, watts)], ctx=CTX.with_(limit_step=0.1))) == [(0, 11.6)]
    assert steps(composite([(1, watts)], ctx=CTX.with_(limit_step=1.0))) == [(0, 12.0)]


def test_no_unit_conversion_reports_other_unit_as_uncovered():
    watts = profile(1, [(0, 8000)], unit="W")
    result = composite([(1, watts)], ctx=CTX.with_(convert_units=False, uncovered=Uncovered.MINUS_ONE))
    assert steps(result) == [(0, -1.0)]


@pytest.mark.parametrize("connector", [-1, 2])
def test_unknown_connector_is_rejected_with_a_reason(connector):
    result = composite([], connector=connector)
    assert result.status == "Rejected"
    assert result.reason is not None and f"connector {connector} does not exist" in result.reason


def test_governor_names_the_profile_that_sets_each_period():
    base = profile(7, [(0, 6)], stack=0)
    top = profile(9, [(0, 16)], stack=3, duration=60)
    result = composite([(1, base), (1, top)])
    assert [p.governor.describe() for p in result.periods if p.governor] == [
        "#9 TxDefaultProfile stack 3",
        "#7 TxDefaultProfile stack 0",
    ]


def test_connector_zero_conventions_of_real_chargers():
    """Issue 9: what each charger family reports for connector 0 (libocpp's sum is the default)."""
    ctx = CTX.with_(number_of_connectors=2)
    cap = profile(3, [(0, 20)], purpose="ChargePointMaxProfile")
    one = profile(1, [(0, 10)])
    installed = [(1, one), (0, cap)]
    assert steps(composite(installed, connector=0, ctx=ctx)) == [(0, 20)]
    # MicroOcpp: only the ChargePointMaxProfile counts; without it, connector 0 is uncovered.
    cap_only = ctx.with_(connector0=Connector0.CAP_ONLY)
    assert steps(composite(installed, connector=0, ctx=cap_only)) == [(0, 20)]
    assert steps(composite([(1, one)], connector=0, ctx=cap_only)) == [(0, 48)]
    # The spec's reading: what each connector reports, in the requested unit with its own phases.
    spec = ctx.with_(connector0=Connector0.CONNECTOR_SUM)
    assert steps(composite([(1, one)], connector=0, ctx=spec)) == [(0, 58)]
    single_phase = profile(1, [(0, 10, 1)])
    # libocpp sums amps and converts with the one phase count it saw (1): (10 + 48) A x 230 W/A;
    # the per-connector sum converts connector 1 with its own single phase: 10 x 230 + 48 x 690.
    assert steps(composite([(1, single_phase)], connector=0, ctx=ctx, unit=RateUnit.W)) == [(0, 58 * 230)]
    assert steps(composite([(1, single_phase)], connector=0, ctx=spec, unit=RateUnit.W)) == [(0, 2300 + 48 * 690)]
    # open-ocpp: connector 0 is not answered.
    unsupported = composite(installed, connector=0, ctx=ctx.with_(connector0=Connector0.UNSUPPORTED))
    assert unsupported.status == "Rejected" and "connector 0" in (unsupported.reason or "")


def test_sap_like_reporting_conventions():
    """Issue 9: a charger that leaves the ChargePointMaxProfile out of its connectors, answers in the
    profile's unit and does not shift a Recurring profile to its current occurrence."""
    cap = profile(3, [(0, 20)], purpose="ChargePointMaxProfile")
    default = profile(1, [(0, 30)])
    assert steps(composite([(0, cap), (1, default)])) == [(0, 20)]
    assert steps(composite([(0, cap), (1, default)], ctx=CTX.with_(cap_on_connectors=False))) == [(0, 30)]
    watts = profile(2, [(0, 6900)], unit="W")
    answer = composite([(1, watts)], ctx=CTX.with_(reply_unit=ReplyUnit.PROFILE), unit=RateUnit.A)
    assert answer.unit is RateUnit.W and steps(answer) == [(0, 6900)]
    # A daily profile from midnight: 10 A until 06:00, then 16 A. Asked at 18:00 the charger should
    # say 16 A until midnight, then 10 A; one that does not rebase reports the periods from now.
    daily = profile(4, [(0, 10), (6 * 3600, 16)], kind="Recurring", recurrency="Daily", start="2024-01-17T00:00:00Z")
    assert steps(composite([(1, daily)], duration=86_400)) == [(0, 16), (6 * 3600, 10), (12 * 3600, 16)]
    unshifted = composite([(1, daily)], duration=86_400, ctx=CTX.with_(rebase_recurring=False))
    assert steps(unshifted) == [(0, 10), (6 * 3600, 16)]
