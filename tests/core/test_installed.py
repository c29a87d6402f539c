"""SetChargingProfile replacement and acceptance rules, ClearChargingProfile filters: one test per rule."""

from __future__ import annotations

import pytest

from reconciler.core.context import Capabilities, StationContext, Transaction
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import Purpose, RateUnit
from tests.core.builders import T0, profile

CTX = StationContext(number_of_connectors=2)


def install(*items, ctx=CTX, tx=None):
    installed = InstalledProfiles()
    results = []
    for connector, prof in items:
        installed, result = installed.set_profile(connector, prof, context=ctx, transactions=tx or {}, now=T0)
        results.append(result)
    return installed, results


def ids(installed):
    return [(e.connector_id, e.profile.charging_profile_id) for e in installed]


# --- replacement ------------------------------------------------------------------------------------


def test_same_id_replaces_wherever_it_is_installed():
    installed, results = install((1, profile(5, [(0, 10)])), (2, profile(5, [(0, 20)], stack=3)))
    assert ids(installed) == [(2, 5)]
    assert results[1].replaced == (5,)


def test_same_connector_purpose_and_stack_replaces():
    installed, _ = install((1, profile(1, [(0, 10)], stack=2)), (1, profile(2, [(0, 20)], stack=2)))
    assert ids(installed) == [(1, 2)]


def test_same_stack_on_another_connector_or_purpose_is_added():
    installed, _ = install(
        (1, profile(1, [(0, 10)], stack=2)),
        (2, profile(2, [(0, 20)], stack=2)),
        (0, profile(3, [(0, 20)], stack=2, purpose="ChargePointMaxProfile")),
    )
    assert ids(installed) == [(1, 1), (2, 2), (0, 3)]


# --- acceptance -------------------------------------------------------------------------------------


def rejected(connector, prof, *, ctx=CTX, tx=None, already=()):
    installed, _ = install(*already, ctx=ctx)
    after, result = installed.set_profile(connector, prof, context=ctx, transactions=tx or {}, now=T0)
    assert result.status == "Rejected"
    assert after is installed  # a refusal changes nothing
    return result.reason


def test_unknown_connector_is_rejected():
    assert "connector 3 does not exist" in rejected(3, profile(1, [(0, 10)]))


def test_stack_level_above_capability_is_rejected():
    ctx = CTX.with_(capabilities=Capabilities(max_stack_level=3))
    assert "stackLevel 4 is outside 0..3" in rejected(1, profile(1, [(0, 10)], stack=4), ctx=ctx)


def test_absolute_without_start_schedule_is_rejected_unless_allowed():
    reason = rejected(1, profile(1, [(0, 10)], start=None))
    assert "Absolute profile needs chargingSchedule.startSchedule" in reason
    lenient = CTX.with_(capabilities=Capabilities(allow_without_start_schedule=True))
    installed, (result,) = install((1, profile(1, [(0, 10)], start=None)), ctx=lenient)
    assert result.accepted
    assert installed.entries[0].profile.schedule.start_schedule == T0  # anchored at receipt


def test_recurring_needs_recurrency_kind():
    assert "needs recurrencyKind" in rejected(1, profile(1, [(0, 10)], kind="Recurring"))


def test_recurring_duration_longer_than_recurrence_is_clamped():
    daily = profile(1, [(0, 10)], kind="Recurring", recurrency="Daily", duration=100_000)
    installed, (result,) = install((1, daily))
    assert result.accepted and installed.entries[0].profile.schedule.duration == 86_400


def test_profile_count_limit_but_replacement_needs_no_slot():
    ctx = CTX.with_(capabilities=Capabilities(max_profiles=1))
    first = (1, profile(1, [(0, 10)]))
    reason = rejected(1, profile(2, [(0, 10)], stack=1), ctx=ctx, already=[first])
    assert "MaxChargingProfilesInstalled" in reason
    installed, results = install(first, (1, profile(1, [(0, 12)])), ctx=ctx)
    assert results[1].accepted and len(installed) == 1


def test_too_many_periods_is_rejected():
    ctx = CTX.with_(capabilities=Capabilities(max_periods=2))
    reason = rejected(1, profile(1, [(0, 10), (60, 12), (120, 14)]), ctx=ctx)
    assert "3 periods exceed ChargingScheduleMaxPeriods 2" in reason


def test_unit_not_allowed_is_rejected():
    ctx = CTX.with_(capabilities=Capabilities(allowed_units=(RateUnit.A,)))
    assert "unit W is not allowed" in rejected(1, profile(1, [(0, 7000)], unit="W"), ctx=ctx)


@pytest.mark.parametrize("phases", [0, 4])
def test_number_phases_outside_one_to_three_is_rejected(phases):
    assert f"numberPhases {phases} is outside 1..3" in rejected(1, profile(1, [(0, 10, phases)]))


def test_negative_limit_is_rejected():
    assert "limit -1.0 is negative" in rejected(1, profile(1, [(0, -1)]))


def test_charge_point_max_only_on_connector_zero():
    assert "only allowed on connector 0" in rejected(1, profile(1, [(0, 10)], purpose="ChargePointMaxProfile"))


def test_charge_point_max_cannot_be_relative():
    relative = profile(1, [(0, 10)], purpose="ChargePointMaxProfile", kind="Relative", start=None)
    assert "cannot be Relative" in rejected(0, relative)


def test_tx_profile_needs_a_running_transaction():
    assert "needs a running transaction on connector 1" in rejected(1, profile(1, [(0, 10)], purpose="TxProfile"))
    assert "not allowed on connector 0" in rejected(0, profile(1, [(0, 10)], purpose="TxProfile"))


def test_tx_profile_with_another_transaction_id_is_rejected():
    running = {1: Transaction(1, 7, T0)}
    reason = rejected(1, profile(1, [(0, 10)], purpose="TxProfile", transaction_id=8), tx=running)
    assert "transactionId 8 does not match the running transaction 7" in reason
    _, (result,) = install((1, profile(1, [(0, 10)], purpose="TxProfile", transaction_id=7)), tx=running)
    assert result.accepted


# --- clear ------------------------------------------------------------------------------------------

SET = [
    (0, profile(1, [(0, 30)], purpose="ChargePointMaxProfile")),
    (1, profile(2, [(0, 10)], stack=1)),
    (2, profile(3, [(0, 10)], stack=1)),
    (0, profile(4, [(0, 10)], stack=2)),
]


def test_clear_without_filter_clears_everything():
    installed, _ = install(*SET)
    after, result = installed.clear()
    assert result.status == "Accepted" and len(after) == 0 and result.cleared == (1, 2, 3, 4)


def test_clear_by_id_ignores_the_other_fields():
    installed, _ = install(*SET)
    after, result = installed.clear(profile_id=2, connector_id=2, purpose=Purpose.CHARGE_POINT_MAX)
    assert result.cleared == (2,) and ids(after) == [(0, 1), (2, 3), (0, 4)]


def test_clear_fields_are_anded():
    installed, _ = install(*SET)
    after, result = installed.clear(connector_id=1, stack_level=1)
    assert result.cleared == (2,) and ids(after) == [(0, 1), (2, 3), (0, 4)]
    _, result = installed.clear(purpose=Purpose.TX_DEFAULT, stack_level=2)
    assert result.cleared == (4,)
    _, result = installed.clear(connector_id=0)
    assert result.cleared == (1, 4)  # the connector a profile was installed on


def test_clear_matching_nothing_is_unknown():
    installed, _ = install(*SET)
    after, result = installed.clear(profile_id=99)
    assert result.status == "Unknown" and after is installed


def test_transaction_end_removes_its_tx_profiles():
    running = {1: Transaction(1, 7, T0)}
    installed, _ = install((1, profile(1, [(0, 10)], purpose="TxProfile")), (1, profile(2, [(0, 10)])), tx=running)
    assert ids(installed.without_transaction(1)) == [(1, 2)]
