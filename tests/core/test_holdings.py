"""Every state a charger may be in, given the ledger's uncertain entries (issue 8, safety 3)."""

from __future__ import annotations

from reconciler.core.actions import LedgerEntry, LedgerState, content_hash
from reconciler.core.holdings import MAX_EXACT, possible_holdings, replay, verdicts
from tests.core.builders import profile

OLD = profile(10, [(0, 10)], stack=1)
NEW = profile(12, [(0, 20)], stack=1)  # same (connector, purpose, stackLevel) slot as OLD
OTHER = profile(20, [(0, 16)], purpose="ChargePointMaxProfile")


def entry(item, seq: int, state: LedgerState = LedgerState.ACCEPTED, connector: int = 0) -> LedgerEntry:
    return LedgerEntry(connector, item, content_hash(connector, item), state=state, seq=seq)


def ids(holding) -> list[int]:
    return sorted(e.profile.id for e in holding.entries)


def test_a_replacement_whose_arrival_is_uncertain_leaves_both_possibilities():
    ledger = [entry(OTHER, 1), entry(OLD, 2), entry(NEW, 3, LedgerState.UNCONFIRMED)]
    holdings = possible_holdings(ledger)
    assert [ids(h) for h in holdings] == [[12, 20], [10, 20]]
    assert holdings[0].nominal and not holdings[1].nominal


def test_certain_entries_replace_by_id_and_by_slot():
    same_id = profile(10, [(0, 6)], stack=4)
    assert ids(replay([entry(OLD, 1), entry(same_id, 2)])) == [10]
    assert replay([entry(OLD, 1), entry(same_id, 2)]).entries[0].profile == same_id
    assert ids(replay([entry(OLD, 1), entry(NEW, 2)])) == [12]
    assert ids(replay([entry(OLD, 1, connector=1), entry(NEW, 2, connector=2)])) == [10, 12]  # other connector


def test_many_uncertain_entries_are_bounded():
    ledger = [entry(profile(100 + i, [(0, 10)], stack=i), i + 1, LedgerState.UNVERIFIED) for i in range(MAX_EXACT + 4)]
    holdings = possible_holdings(ledger)
    assert len(holdings) == 2 + MAX_EXACT + 4  # all, none, each one missing
    assert holdings[0].nominal


def test_a_read_back_confirms_what_every_explaining_state_holds_and_marks_what_none_does():
    ledger = [entry(OLD, 1), entry(NEW, 2, LedgerState.UNVERIFIED)]
    old_only = [h for h in possible_holdings(ledger) if not h.nominal]
    settled = verdicts(ledger, old_only, trust_nominal=False)
    assert settled.not_enforced == (2,) and settled.confirm == () and settled.forget == ()
    nominal = [h for h in possible_holdings(ledger) if h.nominal]
    assert verdicts(ledger, nominal, trust_nominal=True).confirm == (2,)
    assert verdicts(ledger, nominal, trust_nominal=True).forget == (1,)
    assert verdicts(ledger, [], trust_nominal=True).empty  # a read-back nothing explains proves nothing


def test_a_trusted_read_back_takes_only_accepted_answers_at_their_word():
    hidden = profile(2, [(0, 30)], stack=0, purpose="ChargePointMaxProfile")  # under `above`: never visible
    above = profile(3, [(0, 31)], stack=1, purpose="ChargePointMaxProfile")
    for doubtful in (LedgerState.NOT_ENFORCED, LedgerState.UNCONFIRMED):
        ledger = [entry(hidden, 1, doubtful), entry(above, 2, LedgerState.UNVERIFIED)]
        both_explain = possible_holdings(ledger)  # the read-back cannot tell whether #2 is there
        settled = verdicts(ledger, both_explain, trust_nominal=True)
        assert settled.confirm == (2,) and 1 not in settled.forget + settled.not_enforced
