"""Expected vs observed: normalisation of every "no limit" form, tolerances, drift classes."""

from __future__ import annotations

import pytest

from reconciler.core.composite import compute_composite
from reconciler.core.context import StationContext, Uncovered
from reconciler.core.diff import (
    DriftClass,
    Normaliser,
    ObservationError,
    compare_connector,
    expected_timeline,
    observed_from_ocpp,
)
from reconciler.core.profiles import RateUnit, epoch_seconds
from tests.core.builders import T0, profile

NORM = Normaliser(max_current_a=32)
START = epoch_seconds(T0)
CTX = StationContext(uncovered=Uncovered.NO_LIMIT)


def reply(periods, unit="A", start="2024-01-17T18:00:00Z", duration=3600):
    schedule = {
        "duration": duration,
        "startSchedule": start,
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in periods],
    }
    return {"status": "Accepted", "connectorId": 1, "scheduleStart": start, "chargingSchedule": schedule}


def observed(payload, unit=RateUnit.A, norm=NORM):
    return observed_from_ocpp(payload, requested=unit, duration=3600, normaliser=norm, asked_at=START)


def expected(*profiles, unit=RateUnit.A):
    installed = [(1, p) for p in profiles]
    composite = compute_composite(installed, connector_id=1, now=T0, duration=3600, unit=unit, context=CTX)
    return expected_timeline(composite, NORM)


@pytest.mark.parametrize(
    "payload",
    [
        reply([(0, 48)]),  # EVerest's default limit: above the 32 A hardware maximum
        reply([(0, 32)]),  # the hardware maximum itself
        reply([(0, -1)]),  # MicroOcpp
        reply([]),  # an empty period list (SAP)
        {"status": "Accepted", "connectorId": 1},  # no schedule at all
        reply([(0, 22080)], unit="W"),  # 32 A x 230 V x 3 in W
    ],
)
def test_every_no_limit_form_reads_as_none(payload):
    timeline = observed(payload)
    assert timeline.steps == ((START, None),)


def test_rejected_is_no_limit_only_where_the_model_says_so():
    with pytest.raises(ObservationError, match="Rejected"):
        observed({"status": "Rejected"})
    lenient = Normaliser(max_current_a=32, rejected_means_no_limit=True)
    assert observed({"status": "Rejected"}, norm=lenient).steps == ((START, None),)


def test_equal_neighbours_merge_and_units_convert():
    timeline = observed(reply([(0, 6900), (60, 6900), (120, 3450)], unit="W"))
    assert timeline.steps == ((START, 10.0), (START + 120, 5.0))


def test_anchor_is_the_replys_schedule_start():
    timeline = observed(reply([(0, 10)], start="2024-01-17T18:00:05Z"))
    assert timeline.start == START + 5


def test_in_sync_within_tolerance_reports_rounding():
    drift = compare_connector(1, expected(profile(1, [(0, 11000)], unit="W")), observed(reply([(0, 15.9)])), NORM)
    assert drift.in_sync and drift.classes == (DriftClass.ROUNDING,)


def test_period_starts_two_seconds_apart_are_not_drift():
    want = expected(profile(1, [(0, 10), (600, 16)]))
    assert compare_connector(1, want, observed(reply([(0, 10), (602, 16)])), NORM).in_sync
    assert not compare_connector(1, want, observed(reply([(0, 10), (610, 16)])), NORM).in_sync


@pytest.mark.parametrize(
    ("periods", "klass"),
    [([(0, 48)], DriftClass.MISSING), ([(0, 20)], DriftClass.SHADOWED), ([(0, 6)], DriftClass.EXTRA)],
)
def test_drift_classes(periods, klass):
    drift = compare_connector(1, expected(profile(1, [(0, 10)])), observed(reply(periods)), NORM)
    assert not drift.in_sync and drift.primary is klass
    assert drift.mismatches[0].start == START and drift.mismatches[0].end == START + 3600


def test_a_cap_where_nothing_was_declared_is_extra():
    drift = compare_connector(1, expected(), observed(reply([(0, 16)])), NORM)
    assert drift.primary is DriftClass.EXTRA and "expected no limit, observed 16 A" in drift.describe()


def test_a_limit_rounded_up_to_the_hardware_maximum_is_no_limit_on_both_sides():
    # 22 kW is 31.88 A on 3 x 230 V; a whole-amp charger reports 32 A, its maximum.
    want = expected(profile(1, [(0, 22000)], unit="W"))
    assert want.steps == ((START, None),)
    assert compare_connector(1, want, observed(reply([(0, 32)])), NORM).in_sync
    assert expected(profile(1, [(0, 31)])).steps == ((START, 31.0),)  # a real cap stays a cap


def test_a_declared_rounding_step_widens_the_tolerance_to_half_a_step():
    want = expected(profile(1, [(0, 7000)], unit="W"))  # 10.14 A
    assert not compare_connector(1, want, observed(reply([(0, 10)])), NORM).in_sync
    whole_amps = Normaliser(max_current_a=32, step=1.0)
    assert compare_connector(1, want, observed(reply([(0, 10)]), norm=whole_amps), whole_amps).in_sync
    assert not compare_connector(1, want, observed(reply([(0, 9)]), norm=whole_amps), whole_amps).in_sync
