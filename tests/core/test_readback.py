"""What a read-back can verify (issue 9 items 4 and 7): pure functions on hand-built values."""

from __future__ import annotations

from datetime import timedelta

from reconciler.core.context import StationContext, Transaction
from reconciler.core.diff import Normaliser, compare_connector
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import RateUnit
from reconciler.core.readback import judge_unknown_start, limitations, reported_timeline
from reconciler.core.safety import Window
from tests.core.builders import T0, profile

CTX = StationContext(number_of_connectors=2, default_limit_a=32.0)
NORM = Normaliser(max_current_a=32.0, connectors=2)


def window(transactions, ctx=CTX):
    return Window(ctx, T0, 4 * 3600, RateUnit.A, NORM, transactions)


def test_a_relative_profile_under_a_transaction_of_unknown_start_is_never_blamed():
    relative = profile(5, [(0, 16), (3600, 8)], kind="Relative")
    cap = profile(1, [(0, 20)], purpose="ChargePointMaxProfile")
    installed = InstalledProfiles.of([(0, relative), (0, cap)])
    # The charger's transaction began two hours ago: its 16 A hour is over, it shows 8 A throughout.
    truth = window({1: Transaction(1, 9, T0 - timedelta(hours=2))})
    observed = reported_timeline(truth, installed, 1)
    # We know a transaction runs but not since when: "now" stands in, which would expect 16 A first.
    unknown = window({1: Transaction(1, 9, T0, start_known=False)})
    naive = compare_connector(1, reported_timeline(unknown, installed, 1), observed, NORM)
    assert not naive.in_sync
    judged = judge_unknown_start(unknown, installed, 1, observed, NORM, naive, {})
    assert judged.in_sync and judged.note is not None and "cannot be verified" in judged.note
    # ... but a lost station cap still shows: the connector must stay within the ChargePointMaxProfile.
    uncapped = reported_timeline(truth, InstalledProfiles.of([(0, profile(5, [(0, 40)], kind="Relative"))]), 1)
    lost = compare_connector(1, reported_timeline(unknown, installed, 1), uncapped, NORM)
    assert not judge_unknown_start(unknown, installed, 1, uncapped, NORM, lost, {}).in_sync


def test_the_start_is_inferred_when_the_charger_shows_a_boundary():
    relative = profile(5, [(0, 16), (3600, 8)], kind="Relative")
    installed = InstalledProfiles.of([(0, relative)])
    truth = window({1: Transaction(1, 9, T0 - timedelta(minutes=10))})
    observed = reported_timeline(truth, installed, 1)
    unknown = window({1: Transaction(1, 9, T0, start_known=False)})
    naive = compare_connector(1, reported_timeline(unknown, installed, 1), observed, NORM)
    inferred: dict[int, int] = {}
    judged = judge_unknown_start(unknown, installed, 1, observed, NORM, naive, inferred)
    assert judged.in_sync and "agree with 2024-01-17T17:50:00Z" in (judged.note or "")
    assert inferred == {1: int((T0 - timedelta(minutes=10)).timestamp())}


def test_tx_default_while_idle_is_named_as_not_verifiable():
    micro = CTX.with_(tx_default_when_idle=False)
    desired = InstalledProfiles.of([(0, profile(5, [(0, 10)]))])
    [idle] = limitations(micro, {}, desired)
    assert idle.code == "tx-default-idle" and idle.connectors == (1, 2)
    assert "TxDefaultProfile not verifiable while idle" in idle.message
    [one] = limitations(micro, {1: Transaction(1, 3, T0)}, desired)
    assert one.connectors == (2,)
    assert limitations(CTX, {}, desired) == []
