"""What a charger may hold, given the ledger: its certain entries and every outcome of the others.

Flow: (store) ledger entries in installation order -> `possible_holdings` -> the `Holding`s the
charger may be in -> (engine) the ones its composite read-back explains -> (plan) the states make-
before-break starts from, and which of our profiles are surely there; (engine) after a read-back,
`Verdicts` say which entries to confirm, to mark not enforced, or to forget.

OCPP 1.6 cannot list a charger's profiles, so the ledger is a log of the SetChargingProfile calls
the reconciler sent. An Accepted entry is there (the charger accepted it and no read-back since
said otherwise); an Unconfirmed, Unverified or NotEnforced one may or may not be. Replaying the log
with the charger's replacement rule (an arriving profile replaces the one with its id and the one
in its (connector, purpose, stackLevel) slot) for every combination of the uncertain entries'
arrival gives every state the charger can be in: a Set that may never have arrived leaves the
entry it would have replaced possibly in place, so it stays owned and is never blamed on a
foreign profile. Pure: no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from reconciler.core.actions import LedgerEntry, LedgerState
from reconciler.core.installed import InstalledProfiles

MAX_EXACT = 6  # up to 2^6 combinations of uncertain entries; beyond, the extremes and single misses


@dataclass(frozen=True, slots=True)
class Holding:
    """One state the charger may be in: the ledger entries present, in installation order."""

    entries: tuple[LedgerEntry, ...]
    missing: frozenset[int] = frozenset()  # seqs of the uncertain entries assumed not to have arrived

    @property
    def installed(self) -> InstalledProfiles:
        return InstalledProfiles.of([(e.connector_id, e.profile) for e in self.entries])

    @property
    def nominal(self) -> bool:
        """Every entry arrived: the state the ledger's latest calls describe."""
        return not self.missing

    def has(self, profile_id: int, content_hash: str | None = None) -> bool:
        return any(
            e.profile.charging_profile_id == profile_id and (content_hash is None or e.content_hash == content_hash)
            for e in self.entries
        )

    def holds(self, entry: LedgerEntry) -> bool:
        """Is this very entry (or one with its id and content) present?"""
        return self.has(entry.profile.charging_profile_id, entry.content_hash)


def replay(ledger: Sequence[LedgerEntry], missing: frozenset[int] = frozenset()) -> Holding:
    """The charger's state if every entry arrived except those whose seq is in `missing`."""
    held: list[LedgerEntry] = []
    for entry in ledger:
        if entry.seq in missing and not entry.state.certain:
            continue
        held = [h for h in held if not entry.replaces(h)]
        held.append(entry)
    return Holding(tuple(held), missing)


def _combinations(uncertain: list[int]) -> Iterator[frozenset[int]]:
    if len(uncertain) <= MAX_EXACT:
        for size in range(len(uncertain) + 1):
            for combo in itertools.combinations(uncertain, size):
                yield frozenset(combo)
        return
    yield frozenset()
    yield frozenset(uncertain)
    for seq in uncertain:
        yield frozenset({seq})


def possible_holdings(ledger: Sequence[LedgerEntry]) -> list[Holding]:
    """Every distinct state the charger may be in, the nominal one (all arrived) first."""
    uncertain = [e.seq for e in ledger if not e.state.certain]
    out: list[Holding] = []
    seen: set[tuple[tuple[int, str], ...]] = set()
    for missing in _combinations(uncertain):
        holding = replay(ledger, missing)
        key = tuple((e.profile.charging_profile_id, e.content_hash) for e in holding.entries)
        if key not in seen:
            seen.add(key)
            out.append(holding)
    return out


@dataclass(frozen=True, slots=True)
class Verdicts:
    """What a read-back proves about the ledger's entries (seqs), for the store to record."""

    confirm: tuple[int, ...] = ()  # present in every state the read-back allows
    not_enforced: tuple[int, ...] = ()  # answered Accepted, absent in every state the read-back allows
    forget: tuple[int, ...] = ()  # absent in every state the read-back allows: gone from the charger

    @property
    def empty(self) -> bool:
        return not (self.confirm or self.not_enforced or self.forget)


def verdicts(ledger: Sequence[LedgerEntry], explained: Sequence[Holding], *, trust_nominal: bool) -> Verdicts:
    """Settle the ledger after a read-back that `explained` (the holdings it agrees with) allows.

    With `trust_nominal` (the read-back matches what the latest calls should give, e.g. the station
    is Synced), an *Accepted answer* (Unverified) is taken at its word even where a state without it
    would look the same: only the explained states in which every Unverified entry arrived count.
    Nothing else is taken on trust: an entry the charger was seen not to enforce, or whose answer
    never came, hidden by another profile, stays uncertain (the plan sends it again if wanted,
    clears it if not) rather than being confirmed on a read-back that cannot see it. Then only what
    every counted state agrees on is recorded; a read-back nothing explains proves nothing."""
    if not explained:
        return Verdicts()
    chosen = list(explained)
    if trust_nominal:
        unverified = {e.seq for e in ledger if e.state is LedgerState.UNVERIFIED}
        chosen = [h for h in explained if not h.missing & unverified] or chosen
    confirm, not_enforced, forget = [], [], []
    for entry in ledger:
        present = [h.holds(entry) for h in chosen]
        if all(present):
            if not entry.state.certain:
                confirm.append(entry.seq)
            elif any(h.holds(entry) and entry not in h.entries for h in chosen):
                forget.append(entry.seq)  # an identical later entry stands for it
        elif not any(present):
            never_arrived = all(entry.seq in h.missing for h in chosen)
            if never_arrived and entry.state in (LedgerState.UNVERIFIED, LedgerState.NOT_ENFORCED):
                not_enforced.append(entry.seq)  # the charger said Accepted; its composite says otherwise
            else:
                forget.append(entry.seq)  # replaced by a later entry, or never arrived
    return Verdicts(tuple(confirm), tuple(not_enforced), tuple(forget))


def explained_by(holdings: Sequence[Holding], agrees: Callable[[InstalledProfiles], bool]) -> list[Holding]:
    """The holdings whose predicted composites agree with what the charger reported."""
    return [h for h in holdings if agrees(h.installed)]
