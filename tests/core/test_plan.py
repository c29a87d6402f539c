"""The planner: what to send, in which order, and when to refuse (pure, no charger)."""

from __future__ import annotations

from reconciler.core.actions import LedgerState
from reconciler.core.context import Capabilities, StationContext
from reconciler.core.diff import DriftClass, Normaliser, compare_connector
from reconciler.core.installed import InstalledProfiles
from reconciler.core.plan import (
    ActionKind,
    ConfigValue,
    Desired,
    LedgerEntry,
    Window,
    content_hash,
    plan_station,
    prune_actions,
    prune_focus,
)
from reconciler.core.profiles import Purpose, RateUnit
from reconciler.core.safety import Checkpoint
from reconciler.core.timeline import Timeline
from tests.core.builders import T0, profile

CTX = StationContext(number_of_connectors=2)
NORM = Normaliser(max_current_a=32)
CAP16 = profile(1, [(0, 16)], purpose="ChargePointMaxProfile")
CAP10 = profile(2, [(0, 10)], purpose="ChargePointMaxProfile", stack=3)
DEFAULT12 = profile(99, [(0, 12)], stack=5)
DEFAULT20 = profile(98, [(0, 20)], stack=6)


def window(ctx=CTX):
    return Window(ctx, T0, 6 * 3600, RateUnit.A, NORM)


def ledger(*pairs):
    return [LedgerEntry(c, p, content_hash(c, p)) for c, p in pairs]


def plan(desired_pairs, ledger_pairs, on_charger=None, ctx=CTX, **kw):
    w = window(ctx)
    charger = InstalledProfiles.of(list(ledger_pairs if on_charger is None else on_charger))
    expected = w.timelines(InstalledProfiles.of(list(desired_pairs)))
    predicted = w.timelines(InstalledProfiles.of(list(ledger_pairs)))
    seen = w.timelines(charger)
    drift = [compare_connector(c, e, o, NORM) for c, e, o in zip(w.connectors, expected, seen, strict=True)]
    by_ledger = [compare_connector(c, p, o, NORM) for c, p, o in zip(w.connectors, predicted, seen, strict=True)]
    desired = Desired(tuple(desired_pairs), kw.pop("configuration", {}), kw.pop("prune", False))
    entries = kw.pop("entries", None) or ledger(*ledger_pairs)
    return plan_station(
        "CP", desired, entries, drift, w,
        as_recorded=all(d.in_sync for d in by_ledger),
        foreign_caps=any(DriftClass.EXTRA in d.classes for d in by_ledger),
        recorded=by_ledger,
        **kw,
    )  # fmt: skip


def kinds(result):
    return [(a.kind, a.profile.charging_profile_id if a.profile else a.profile_id) for a in result.actions]


def test_in_sync_means_no_actions():
    result = plan([(0, CAP16)], [(0, CAP16)])
    assert result.in_sync and result.actions == ()


def test_new_profiles_are_set_and_dropped_ones_cleared_after():
    result = plan([(0, CAP10)], [(0, CAP16)])
    assert kinds(result) == [(ActionKind.SET, 2), (ActionKind.CLEAR, 1)]
    assert result.refused is None and "make-before-break" in result.invariant


def test_order_is_chosen_so_the_charger_never_allows_more_than_both_states():
    # Installing the higher TxDefault (20 A) before the lower cap (10 A) would allow 16 A > max(12, 10).
    result = plan([(0, CAP10), (0, DEFAULT20)], [(0, CAP16), (0, DEFAULT12)])
    assert kinds(result)[:2] == [(ActionKind.SET, 2), (ActionKind.SET, 98)]
    assert {k for k, _ in kinds(result)[2:]} == {ActionKind.CLEAR}


def test_a_changed_profile_is_replaced_in_place():
    changed = profile(1, [(0, 12)], purpose="ChargePointMaxProfile")
    assert kinds(plan([(0, changed)], [(0, CAP16)])) == [(ActionKind.REPLACE, 1)]


def test_refused_when_no_spare_slot_for_make_before_break():
    tight = CTX.with_(capabilities=Capabilities(max_profiles=1))
    result = plan([(0, CAP10)], [(0, CAP16)], ctx=tight)
    assert result.refused is not None
    assert "MaxChargingProfilesInstalled" in result.refused and not result.in_sync


def test_lost_profiles_are_reinstalled():
    result = plan([(0, CAP16)], [(0, CAP16)], on_charger=[])
    assert kinds(result) == [(ActionKind.SET, 1)]
    assert result.actions[0].reason.startswith("re-install: connector 1 missing")


def test_foreign_caps_block_the_plan_unless_pruning_is_asked_for():
    foreign = profile(500, [(0, 6)], stack=7)
    reported = plan([(0, CAP16)], [(0, CAP16)], on_charger=[(0, CAP16), (0, foreign)])
    assert reported.foreign and reported.blocked and "prune: foreign" in reported.blocked
    assert not reported.executable and not any(a.kind is ActionKind.PRUNE for a in reported.actions)
    small = CTX.with_(capabilities=Capabilities(max_stack_level=2))
    pruned = plan([(0, CAP16)], [(0, CAP16)], on_charger=[(0, CAP16), (0, foreign)], ctx=small, prune=True)
    assert pruned.blocked is None
    slots = {(a.connector_id, a.purpose, a.stack_level) for a in pruned.actions if a.kind is ActionKind.PRUNE}
    # where we hold a ChargePointMax, only the other levels; where we hold nothing, one Clear for all levels
    assert slots == {(0, Purpose.CHARGE_POINT_MAX, 1), (0, Purpose.CHARGE_POINT_MAX, 2), (0, Purpose.TX_DEFAULT, None),
                     (1, Purpose.TX_DEFAULT, None), (2, Purpose.TX_DEFAULT, None)}  # fmt: skip


def test_a_set_into_a_foreign_slot_is_blocked_not_silently_replacing_it():
    foreign_cap = profile(99, [(0, 6)], purpose="ChargePointMaxProfile", stack=0)
    result = plan([(0, CAP16)], [], on_charger=[(0, foreign_cap)])
    assert result.blocked and not result.executable


def test_prune_never_clears_the_copies_of_our_connector_zero_tx_default():
    small = CTX.with_(capabilities=Capabilities(max_stack_level=2))
    foreign = profile(500, [(0, 6)], purpose="ChargePointMaxProfile", stack=2)
    result = plan([(0, DEFAULT12)], [(0, DEFAULT12)], on_charger=[(0, DEFAULT12), (0, foreign)], ctx=small,
                  prune=True)  # fmt: skip
    prunes = {(a.connector_id, a.purpose, a.stack_level) for a in result.actions if a.kind is ActionKind.PRUNE}
    assert all(level != DEFAULT12.stack_level for _, purpose, level in prunes if purpose is Purpose.TX_DEFAULT)
    assert (1, Purpose.TX_DEFAULT, None) not in prunes  # connector 1 holds a copy of ours: level by level


def test_connector_zero_total_is_bounded_too():
    # Swapping 10 A and 20 A between two connectors: one order passes through 20 + 20 = 40 A > 30 A.
    ctx = CTX.with_(number_of_connectors=2)
    a_old, b_old = profile(21, [(0, 10)], stack=1), profile(22, [(0, 20)], stack=1)
    a_new, b_new = profile(21, [(0, 20)], stack=1), profile(22, [(0, 10)], stack=1)
    result = plan([(1, a_new), (2, b_new)], [(1, a_old), (2, b_old)], ctx=ctx)
    assert result.refused is None
    assert [a.profile.charging_profile_id for a in result.actions] == [22, 21]  # lower first
    assert "the station's total (connector 0)" in result.invariant


def test_clears_are_ordered_and_permuted_to_find_a_safe_order():
    # Old: A stack 2 at 8 A over B stack 1 at 30 A; new: X at 10 A. Clearing A before B exposes 30 A.
    a = profile(11, [(0, 8)], stack=2)
    b = profile(12, [(0, 30)], stack=1)
    x = profile(13, [(0, 10)], stack=3)
    result = plan([(1, x)], [(1, a), (1, b)])
    assert result.refused is None
    assert [(k, i) for k, i in kinds(result)] == [(ActionKind.SET, 13), (ActionKind.CLEAR, 12), (ActionKind.CLEAR, 11)]
    # one read-back, before the clear that relies on the set (clearing B does not: A still caps)
    assert result.checkpoints == (Checkpoint(2),)


def test_a_set_hidden_until_the_clear_it_relies_on_goes_through_the_slot_of_what_hides_it():
    # X (stack 0) stays hidden under A and B until both are cleared: no read-back could show it before
    # the clear that leaves it alone. So X first takes A's slot (replacing A: visible), then moves to
    # its own stack level by id where A's clear was. No clear relies on anything unverified.
    a = profile(11, [(0, 8)], stack=2)
    b = profile(12, [(0, 30)], stack=1)
    x = profile(13, [(0, 10)], stack=0)
    result = plan([(1, x)], [(1, a), (1, b)])
    assert result.refused is None
    steps = [(a.kind, a.profile.stack_level if a.profile else a.profile_id) for a in result.actions]
    assert steps == [(ActionKind.SET, 2), (ActionKind.CLEAR, 12), (ActionKind.REPLACE, 0)]
    assert "in the slot of #11" in result.actions[0].reason and result.checkpoints == ()


def test_a_clear_relying_on_a_set_no_read_back_can_show_is_refused_with_the_fix():
    # A station cap becomes a connector default of the same value: the new profile changes nothing
    # a read-back shows until the cap is cleared, and it cannot take the cap's slot (another purpose).
    one = CTX.with_(number_of_connectors=1)
    cap = profile(1, [(0, 10)], purpose="ChargePointMaxProfile")
    default = profile(3, [(0, 10)], stack=1)
    result = plan([(1, default)], [(0, cap)], ctx=one)
    assert result.refused is not None and not result.executable
    assert "#3" in result.refused and "hidden" in result.refused and "uncapped" in result.refused
    assert "two applies" in result.refused


def test_configuration_keys_come_first_and_readonly_ones_are_only_reported():
    wanted = {"SmartChargingEnabled": "true", "ChargeProfileMaxStackLevel": "9"}
    desired = Desired(((0, CAP10),), wanted)
    known = {
        "ChargeProfileMaxStackLevel": ConfigValue("8", readonly=True),
        "SmartChargingEnabled": ConfigValue("false"),
    }
    result = plan_station("CP", desired, ledger((0, CAP16)), [], window(), configuration=known)
    assert [(a.kind, a.key) for a in result.actions][:1] == [(ActionKind.CONFIGURE, "SmartChargingEnabled")]
    assert [a.kind for a in result.actions][1:] == [ActionKind.SET, ActionKind.CLEAR]
    assert any("ChargeProfileMaxStackLevel is readonly" in n for n in result.notes)
    unknown = plan_station("CP", Desired(((0, CAP16),), wanted), ledger((0, CAP16)), [], window(), configuration={})
    assert sorted(a.key for a in unknown.actions) == ["ChargeProfileMaxStackLevel", "SmartChargingEnabled"]


def test_an_unconfirmed_entry_is_sent_again_if_wanted_and_cleared_if_not():
    unsure = [LedgerEntry(0, CAP16, content_hash(0, CAP16), state=LedgerState.UNCONFIRMED)]
    again = plan([(0, CAP16)], [(0, CAP16)], entries=unsure)
    assert kinds(again) == [(ActionKind.SET, 1)] and "interruption" in again.actions[0].reason
    dropped = plan([(0, CAP10)], [(0, CAP16)], entries=unsure)
    assert kinds(dropped) == [(ActionKind.SET, 2), (ActionKind.CLEAR, 1)]


def test_prune_is_bounded_by_what_the_charger_or_its_model_says_and_looks_above_ours_first():
    """Issue 9 item 5: not 100 guessed stack levels per slot when the charger does not say."""
    foreign = profile(500, [(0, 6)], stack=7)
    held = [(0, CAP16), (0, DEFAULT12)]

    def levels(ctx):
        pruned = plan(held, held, on_charger=[*held, (0, foreign)], ctx=ctx, prune=True)
        prunes = [a for a in pruned.actions if a.kind is ActionKind.PRUNE]
        return pruned, [(a.connector_id, a.purpose, a.stack_level) for a in prunes]

    unknown, slots = levels(CTX)  # ChargeProfileMaxStackLevel neither reported nor declared: 0..10
    assert max(level for _, _, level in slots if level is not None) == 10
    assert len(slots) == 10 + 10 + 10 + 10  # (0, ChargePointMax), (0, TxDefault), (1, TxDefault), (2, TxDefault)
    assert any("stack levels 0..10" in note for note in unknown.notes)
    defaults = [level for connector, purpose, level in slots if (connector, purpose) == (0, Purpose.TX_DEFAULT)]
    assert defaults[:5] == [6, 7, 8, 9, 10] and defaults[5:] == [4, 3, 2, 1, 0]  # above ours (5) first
    known, slots = levels(CTX.with_(capabilities=Capabilities(max_stack_level=30, max_stack_level_known=True)))
    assert max(level for _, _, level in slots if level is not None) == 30 and not known.notes


def _drift(connector: int, expected: float | None, observed: list[tuple[int, float | None]]):
    start = int(T0.timestamp())
    want = Timeline(start, start + 3600, RateUnit.A, ((start, expected),))
    seen = Timeline(start, start + 3600, RateUnit.A, tuple((start + s, v) for s, v in observed))
    return compare_connector(connector, want, seen, NORM)


def test_one_connectors_drift_that_explains_the_totals_is_searched_first():
    """Issue 9 item 5 (audit): a foreign cap at connector 2 lowers connector 0's total as well; the
    total's drift is explained by connector 2's, so connector 2's levels come first (not connector
    0's two purposes, then connector 1's, then connector 2's: 34 Clears for a profile at level 5)."""
    held = (0, CAP16), (0, DEFAULT12)
    desired = Desired(held, prune_foreign=True)
    total, two, one = _drift(0, None, [(0, 38)]), _drift(2, None, [(0, 6)]), _drift(1, None, [(0, None)])
    assert prune_focus([one, two, total]) == [2]
    prunes = prune_actions(desired, window(), focus=prune_focus([one, two, total]))
    assert [(a.connector_id, a.stack_level) for a in prunes[:5]] == [(2, 6), (2, 7), (2, 8), (2, 9), (2, 10)]
    # the total drifts where connector 2 does not: a station-wide cap may explain it, connector 0 stays
    partial = _drift(2, None, [(0, 6), (1800, None)])
    assert prune_focus([one, partial, total]) == [0, 2] or prune_focus([one, partial, total]) == [2, 0]
    assert prune_actions(desired, window(), focus=prune_focus([one, partial, total]))[0].connector_id == 0
    assert prune_focus([one, _drift(2, None, [(0, None)]), total]) == [0]  # the total alone: connector 0 first
    both = prune_focus([_drift(1, None, [(0, 6)]), two, total])
    assert prune_actions(desired, window(), focus=both)[0].connector_id == 0  # several connectors: connector 0
