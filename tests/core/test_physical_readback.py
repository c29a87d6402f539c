"""`core.physical.physical_from_readback`: the limits in force from what a charger answered, per connector
and for the station's physical total (connectors summed, capped by the ChargePointMaxProfile), whatever
its connector-0 reporting convention."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.context import Connector0
from reconciler.core.physical import in_watts, physical_from_readback
from reconciler.core.profiles import RateUnit
from reconciler.core.timeline import Limit, Timeline

START, END = 1_000, 4_600


def line(*steps: tuple[int, Limit], unit: RateUnit = RateUnit.W) -> Timeline:
    return Timeline(START, END, unit, tuple(steps))


def test_connectors_summed_and_capped_by_the_reported_total() -> None:
    per, total = physical_from_readback([line((START, 7000.0)), line((START, 7000.0))], line((START, 11000.0)),
                                        Connector0.SUM)  # fmt: skip
    assert total.at(START) == 11000.0  # min(cap, 7 + 7 kW)
    assert [p.at(START) for p in per] == [7000.0, 7000.0]


def test_a_connector_without_a_limit_leaves_only_the_cap() -> None:
    per, total = physical_from_readback([line((START, None)), line((START, 7000.0))], line((START, 11000.0)),
                                        Connector0.CAP_ONLY)  # fmt: skip
    assert [p.at(START) for p in per] == [11000.0, 7000.0]  # the cap bounds a connector it was left out of
    assert total.at(START) == 11000.0
    _, unbounded = physical_from_readback([line((START, None)), line((START, 7000.0))], None, Connector0.SUM)
    assert unbounded.at(START) is None


def test_a_stack_answer_for_connector_zero_is_not_a_bound_on_the_total() -> None:
    """SAP reports the lowest profile of any connector for connector 0: 6 kW here, though the station may
    draw 6 kW on connector 2 and 10 kW on connector 1."""
    per, total = physical_from_readback([line((START, 10000.0)), line((START, 6000.0))], line((START, 6000.0)),
                                        Connector0.STACK)  # fmt: skip
    assert [p.at(START) for p in per] == [10000.0, 6000.0] and total.at(START) == 16000.0


def test_steps_follow_time_and_amps_convert_with_the_stations_phases() -> None:
    amps = in_watts(line((START, 16.0), (START + 600, None), unit=RateUnit.A), 230.0, 3)
    assert amps.unit is RateUnit.W and amps.at(START) == pytest.approx(11040.0) and amps.at(START + 600) is None
    _, total = physical_from_readback([amps, line((START, 7000.0))], None, Connector0.UNSUPPORTED)
    assert total.at(START) == pytest.approx(18040.0) and total.at(START + 600) is None


limits = st.one_of(st.none(), st.floats(min_value=0, max_value=50_000))


@given(st.lists(limits, min_size=1, max_size=4), limits, st.sampled_from(list(Connector0)))
def test_the_total_never_exceeds_the_sum_nor_a_bounding_cap(lanes: list[Limit], cap: Limit, form: Connector0) -> None:
    per, total = physical_from_readback([line((START, v)) for v in lanes], line((START, cap)), form)
    value = total.at(START)
    values = [p.at(START) for p in per]
    if all(v is not None for v in values):
        assert value is not None and value <= sum(v for v in values if v is not None) + 1e-6
    if cap is not None and form in (Connector0.SUM, Connector0.CONNECTOR_SUM, Connector0.CAP_ONLY):
        assert value is not None and value <= cap + 1e-6
        assert all(v is not None and v <= cap + 1e-6 for v in values)
