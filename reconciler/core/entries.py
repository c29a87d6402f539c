"""From installed profiles to one step function per purpose: steps 1-2 of the composite.

Flow: (composite) installed profiles -> `Buckets` (by purpose and connector) -> `purpose_steps` ->
`Steps`, one purpose's limit over [now, end) with gaps. Pure: integer epoch seconds in, tuples out.

1. Each profile becomes *entries*: one per (schedule period x occurrence), with absolute start and
   end seconds. The end is the soonest of the next period, `duration`, the next recurrence and
   `validTo`; a `validFrom` later than the start moves the start; empty and expired entries go.
   Absolute starts at startSchedule, Relative at the transaction start (or `now` when none runs),
   Recurring at the latest occurrence at or before `now` (time of day / week of startSchedule).
2. Within one purpose the entry with the highest stackLevel that covers an instant governs it, even
   when its limit is higher (an override, not a minimum): a sweep from `now` to the window end, in
   libocpp's order (highest stack first, then earliest; ties keep installation order).
Entries are tuples for speed: (start, end, limit, numberPhases, stackLevel, is_amps, profile).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from reconciler.core.context import StationContext, Transaction
from reconciler.core.profiles import FOREVER, RECURRENCE_SECONDS, ChargingProfile, Kind, Purpose, RateUnit

_START: Final = 0
_END: Final = 1
_LIMIT: Final = 2
_PHASES: Final = 3
_STACK: Final = 4
_AMPS: Final = 5
_PROFILE: Final = 6
Entry = tuple[int, int, float, int | None, int, bool, ChargingProfile]
# A purpose's step function: (offset from now, entry or None for a gap), offsets strictly increasing.
Steps = list[tuple[int, Entry | None]]

GAP: Steps = [(0, None)]


# --- step 1: entries ---------------------------------------------------------------------------


def _occurrences(
    profile: ChargingProfile, now: int, end: int, session_start: int | None, ctx: StationContext
) -> list[int]:
    kind = profile.kind
    schedule = profile.schedule
    if kind is Kind.ABSOLUTE:
        if schedule.start_schedule_s is not None:
            return [schedule.start_schedule_s]
        return [profile.valid_from_s if profile.valid_from_s is not None else now]
    if kind is Kind.RELATIVE:
        return [session_start if session_start is not None else now]
    anchor = schedule.start_schedule_s
    if profile.recurrency_kind is None or anchor is None:
        return []  # an accepted Recurring profile without startSchedule contributes nothing
    step = RECURRENCE_SECONDS[profile.recurrency_kind]
    if not ctx.rebase_recurring and (anchor <= now or ctx.recurrence_before_start):
        anchor = now  # reported as if the occurrence began at the request (periods not shifted)
    start = now - (now - anchor) % step
    if not ctx.recurrence_before_start and start < anchor:
        start = anchor
    starts = []
    while start <= end:
        starts.append(start)
        start += step
    return starts


def profile_entries(
    profile: ChargingProfile, now: int, end: int, session_start: int | None, ctx: StationContext
) -> list[Entry]:
    """The (period x occurrence) entries of one profile that reach into [now, end]."""
    starts = _occurrences(profile, now, end, session_start, ctx)
    if not starts:
        return []
    valid_from = profile.valid_from_s
    valid_to = profile.valid_to_s
    amps = profile.schedule.charging_rate_unit is RateUnit.A
    stack = profile.stack_level
    out: list[Entry] = []
    append = out.append
    if len(starts) == 1 and valid_from is None and valid_to is None:  # Absolute/Relative, no validity window
        occurrence = starts[0]
        for offset, length, limit, phases in profile.schedule.compiled:
            begin = occurrence + offset
            finish = occurrence + length if length < FOREVER else FOREVER
            if finish > begin and finish > now and begin <= end:
                append((begin, finish, limit, phases, stack, amps, profile))
        return out
    last = len(starts) - 1
    for offset, length, limit, phases in profile.schedule.compiled:
        for k, occurrence in enumerate(starts):
            span = length
            if k < last and starts[k + 1] - occurrence < span:
                span = starts[k + 1] - occurrence
            if valid_to is not None and valid_to - occurrence < span:
                span = valid_to - occurrence
            begin = occurrence + offset
            finish = occurrence + span if span < FOREVER else FOREVER
            if valid_from is not None and valid_from > begin:
                if valid_from >= finish:
                    continue
                begin = valid_from
            if finish <= begin or finish <= now or begin > end:
                continue
            append((begin, finish, limit, phases, stack, amps, profile))
    return out


# --- step 2: one purpose's step function ----------------------------------------------------------


def stacked_steps(entries: list[Entry], now: int, end: int) -> Steps:
    """Sweep [now, end): at each instant the highest-stack entry covering it (libocpp's order)."""
    if not entries:
        return [(0, None)]
    if len(entries) == 1:  # the common case: one period of one profile
        only = entries[0]
        begin = only[_START] - now if only[_START] > now else 0
        if begin >= end - now:
            return [(0, None)]
        steps1: Steps = [(0, None), (begin, only)] if begin > 0 else [(0, only)]
        if only[_END] < end:
            steps1.append((only[_END] - now, None))
        return steps1
    # Earliest first, then highest stack first; ties keep installation order (both sorts are stable).
    entries.sort(key=lambda e: (-e[_STACK], e[_START]))
    steps: Steps = []
    current = now
    while current < end:
        earliest = end
        next_earliest = end
        chosen: Entry | None = None
        for entry in entries:
            if entry[_START] <= earliest and entry[_END] > current:
                next_earliest = earliest
                earliest = entry[_START]
                chosen = entry
                if earliest <= current:
                    break
        if earliest > current or chosen is None:
            steps.append((current - now, None))
            current = earliest
        else:
            steps.append((current - now, chosen))
            current = chosen[_END] if chosen[_END] < next_earliest else next_earliest
    return steps


# --- selection of the profiles that apply to a connector ------------------------------------------


def by_stack(candidates: Iterable[ChargingProfile]) -> list[ChargingProfile]:
    """One profile per stackLevel, the last installed winning (a charger keys its table by level)."""
    table: dict[int, ChargingProfile] = {}
    for profile in candidates:
        table[profile.stack_level] = profile
    return list(table.values())


class Buckets:
    """The installed profiles sorted once by purpose and connector."""

    __slots__ = ("caps", "tx", "tx_default")

    def __init__(self, installed: Sequence[tuple[int, ChargingProfile]]) -> None:
        self.caps: list[ChargingProfile] = []
        self.tx: list[tuple[int, ChargingProfile]] = []
        self.tx_default: list[tuple[int, ChargingProfile]] = []
        for pair in installed:
            purpose = pair[1].purpose
            if purpose is Purpose.TX_DEFAULT:
                self.tx_default.append(pair)
            elif purpose is Purpose.TX:
                self.tx.append(pair)
            elif pair[0] == 0:
                self.caps.append(pair[1])

    def for_connector(
        self, connector_id: int, transaction: Transaction | None
    ) -> tuple[list[ChargingProfile], list[ChargingProfile]]:
        """(TxProfiles, TxDefaultProfiles) that apply to one connector; 0 means every connector's."""
        running_id = transaction.transaction_id if transaction is not None else None
        tx = [
            p
            for where, p in self.tx
            if (connector_id == 0 or where == connector_id)
            and (p.transaction_id is None or (running_id is not None and p.transaction_id == running_id))
        ]
        default = [p for where, p in self.tx_default if connector_id == 0 or where == 0 or where == connector_id]
        return (by_stack(tx) if len(tx) > 1 else tx), (by_stack(default) if len(default) > 1 else default)


def purpose_steps(
    profiles: list[ChargingProfile],
    now: int,
    end: int,
    session: int | None,
    ctx: StationContext,
    seen: dict[tuple[int, int | None], list[Entry]],
) -> Steps:
    """One purpose's step function; `seen` keeps each profile's entries for this computation
    (connector 0's sum meets the connector-0 profiles once per connector)."""
    if not profiles:
        return GAP
    entries: list[Entry] = []
    for profile in profiles:
        key = (id(profile), session)
        found = seen.get(key)
        if found is None:
            found = seen[key] = profile_entries(profile, now, end, session, ctx)
        entries.extend(found)
    return stacked_steps(entries, now, end)
