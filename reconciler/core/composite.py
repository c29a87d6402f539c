"""The OCPP 1.6 composite schedule: what a charger should answer to GetCompositeSchedule.

Values in, values out: installed profiles, running transactions, the station's context and the
instant `now` give a `Composite`. Nothing here reads the clock or touches the wire.

The rules (OCPP16-SMART-CHARGING.md §1-§3, §6), in the order they are applied:

1. Each profile becomes *entries*: one per (schedule period x occurrence), with absolute start and
   end seconds. The end is the soonest of the next period, `duration`, the next recurrence and
   `validTo`; a `validFrom` later than the start moves the start; empty and expired entries go.
   Absolute starts at startSchedule, Relative at the transaction start (or `now` when none runs),
   Recurring at the latest occurrence at or before `now` (time of day / week of startSchedule).
2. Within one purpose the entry with the highest stackLevel that covers an instant governs it, even
   when its limit is higher (an override, not a minimum). A sweep from `now` to the window end turns
   a purpose's entries into a step function with gaps.
3. TxProfile replaces TxDefaultProfile wherever it gives a value; ChargePointMaxProfile caps the
   result (lowest limit wins; A and W are kept apart until the end, then the lower after
   conversion to the requested unit wins).
4. Connector 0: by default the sum of every connector's own result (gaps at the default limit),
   capped by ChargePointMaxProfile; or, as a convention, one stack of every profile.
5. What no profile covers is reported as the station's convention says (`Uncovered`).

Steps 3-5 run as one sweep over the union of the purposes' breakpoints. Neighbouring periods with
the same (limit, numberPhases, governing stackLevel) are merged, as libocpp does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from reconciler.core.context import Connector0, StationContext, Transaction, Uncovered
from reconciler.core.profiles import (
    RECURRENCE_SECONDS,
    ChargingProfile,
    Kind,
    Purpose,
    RateUnit,
    epoch_seconds,
    from_epoch,
)
from reconciler.core.units import round_to_step

FOREVER = 1 << 62

# An entry is a tuple for speed: (start, end, limit, numberPhases, stackLevel, is_amps, profile).
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


@dataclass(frozen=True, slots=True)
class Governor:
    """Which profile sets a period's limit ("summed" for connector 0's sum of connectors)."""

    profile_id: int | None
    purpose: Purpose | None
    stack_level: int
    summed: bool = False

    def describe(self) -> str:
        if self.summed:
            return "sum of connectors"
        if self.profile_id is None or self.purpose is None:
            return "-"
        return f"#{self.profile_id} {self.purpose.value} stack {self.stack_level}"


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    start_period: int
    limit: float | None  # None: not restricted by any profile (Uncovered.NO_LIMIT only)
    number_phases: int | None = None
    governor: Governor | None = None  # None: no profile covers this period


@dataclass(frozen=True, slots=True)
class Composite:
    status: str  # "Accepted" | "Rejected"
    connector_id: int
    schedule_start: datetime
    duration: int
    unit: RateUnit
    periods: tuple[CompositePeriod, ...]
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"


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
    schedule = profile.schedule
    periods = schedule.periods
    count = len(periods)
    duration = schedule.duration
    valid_from = profile.valid_from_s
    valid_to = profile.valid_to_s
    amps = schedule.charging_rate_unit is RateUnit.A
    stack = profile.stack_level
    last_occurrence = len(starts) - 1
    out: list[Entry] = []
    previous_start = -1
    for i, period in enumerate(periods):
        offset = period.start_period
        if (i == 0 and offset != 0) or (i > 0 and previous_start >= offset):
            previous_start = offset
            continue  # libocpp skips periods that do not start at 0 or do not increase
        previous_start = offset
        length = periods[i + 1].start_period if i + 1 < count else FOREVER
        if duration is not None and duration < length:
            length = duration
        for k, occurrence in enumerate(starts):
            span = length
            if k < last_occurrence and starts[k + 1] - occurrence < span:
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
            out.append((begin, finish, period.limit, period.number_phases, stack, amps, profile))
    return out


# --- step 2: one purpose's step function ----------------------------------------------------------


def stacked_steps(entries: list[Entry], now: int, end: int) -> Steps:
    """Sweep [now, end): at each instant the highest-stack entry covering it (libocpp's order)."""
    if not entries:
        return [(0, None)]
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


def _by_stack(candidates: Iterable[ChargingProfile]) -> list[ChargingProfile]:
    """One profile per stackLevel, the last installed winning (a charger keys its table by level)."""
    table: dict[int, ChargingProfile] = {}
    for profile in candidates:
        table[profile.stack_level] = profile
    return list(table.values())


def _applicable(
    installed: Sequence[tuple[int, ChargingProfile]], connector_id: int, transaction: Transaction | None
) -> tuple[list[ChargingProfile], list[ChargingProfile]]:
    """(TxProfiles, TxDefaultProfiles) that apply to one connector N > 0."""
    tx: list[ChargingProfile] = []
    tx_default: list[ChargingProfile] = []
    running_id = transaction.transaction_id if transaction is not None else None
    for where, profile in installed:
        purpose = profile.purpose
        if purpose is Purpose.TX_DEFAULT:
            if where == 0 or where == connector_id:
                tx_default.append(profile)
        elif (
            purpose is Purpose.TX
            and where == connector_id
            and (profile.transaction_id is None or (running_id is not None and profile.transaction_id == running_id))
        ):
            tx.append(profile)
    return _by_stack(tx), _by_stack(tx_default)


def _purpose_steps(
    profiles: Iterable[ChargingProfile], now: int, end: int, session: int | None, ctx: StationContext
) -> Steps:
    entries: list[Entry] = []
    for profile in profiles:
        entries.extend(profile_entries(profile, now, end, session, ctx))
    return stacked_steps(entries, now, end)


# --- steps 3-5: combine, convert, report -------------------------------------------------------------


def _breakpoints(step_lists: Sequence[Steps]) -> list[int]:
    if len(step_lists) == 1:
        return [offset for offset, _ in step_lists[0]]
    return sorted({offset for steps in step_lists for offset, _ in steps})


def _walk(step_lists: Sequence[Steps], points: list[int]) -> Iterable[tuple[int, list[Entry | None]]]:
    """For each breakpoint, the value of every step function there."""
    index = [0] * len(step_lists)
    values: list[Entry | None] = [steps[0][1] for steps in step_lists]
    for point in points:
        for j, steps in enumerate(step_lists):
            i = index[j]
            while i + 1 < len(steps) and steps[i + 1][0] <= point:
                i += 1
            if i != index[j]:
                index[j] = i
                values[j] = steps[i][1]
        yield point, values


class _Limit:
    """A period's limits while it is assembled: A and W kept apart, as libocpp's IntermediatePeriod."""

    __slots__ = ("amps", "amps_entry", "phases", "summed", "watts", "watts_entry")

    def __init__(self) -> None:
        self.amps: float | None = None
        self.watts: float | None = None
        self.amps_entry: Entry | None = None
        self.watts_entry: Entry | None = None
        self.phases: int | None = None
        self.summed = False

    def lower(self, entry: Entry | None, use_amps: bool, use_watts: bool) -> None:
        """Take `entry` where it is lower than what is there (the ChargePointMax cap, or a purpose)."""
        if entry is None:
            return
        limit = entry[_LIMIT]
        if entry[_AMPS]:
            if not use_amps:
                return
            if self.amps is None or limit < self.amps:
                self.amps, self.amps_entry = limit, entry
        else:
            if not use_watts:
                return
            if self.watts is None or limit < self.watts:
                self.watts, self.watts_entry = limit, entry
        phases = entry[_PHASES]
        if phases is not None and (self.phases is None or phases < self.phases):
            self.phases = phases


def _governor(entry: Entry | None, summed: bool) -> Governor | None:
    if entry is None:
        return Governor(None, None, 0, summed=True) if summed else None
    profile = entry[_PROFILE]
    return Governor(profile.charging_profile_id, profile.purpose, entry[_STACK])


def _convert(
    value: _Limit, unit: RateUnit, ctx: StationContext
) -> tuple[float | None, int | None, Governor | None, int]:
    """(limit in `unit`, numberPhases, governor, governing stack level) of one assembled period."""
    if value.amps is None and value.watts is None:
        return None, value.phases, None, 0
    transform = ctx.supply_voltage * (value.phases if value.phases is not None else ctx.default_number_phases)
    limit: float | None = None
    entry: Entry | None = None
    if unit is RateUnit.A:
        if value.amps is not None:
            limit, entry = value.amps, value.amps_entry
        if value.watts is not None:
            converted = value.watts / transform
            if limit is None or converted < limit:
                limit, entry = converted, value.watts_entry
    else:
        if value.watts is not None:
            limit, entry = value.watts, value.watts_entry
        if value.amps is not None:
            converted = value.amps * transform
            if limit is None or converted < limit:
                limit, entry = converted, value.amps_entry
    stack = 0 if entry is None else entry[_STACK]
    if limit is not None and ctx.limit_step:
        limit = round_to_step(limit, ctx.limit_step)
    return limit, value.phases, _governor(entry, value.summed), stack


def _tx_value(tx: Entry | None, tx_default: Entry | None) -> Entry | None:
    return tx if tx is not None else tx_default


def compute_composite(
    installed: Sequence[tuple[int, ChargingProfile]],
    *,
    connector_id: int,
    now: datetime,
    duration: int,
    unit: RateUnit | None = None,
    context: StationContext | None = None,
    transactions: Mapping[int, Transaction] | None = None,
) -> Composite:
    """The GetCompositeSchedule answer of a station holding `installed` ((connectorId, profile),
    in installation order) for `connector_id` over [now, now + duration)."""
    ctx = context or StationContext()
    transactions = transactions or {}
    unit = unit or ctx.default_unit
    now_s = epoch_seconds(now)
    if ctx.max_composite_duration is not None and duration > ctx.max_composite_duration:
        duration = ctx.max_composite_duration
    start = from_epoch(now_s)
    if connector_id < 0 or connector_id > ctx.number_of_connectors or duration < 0:
        reason = (
            f"connector {connector_id} does not exist (the station has 1..{ctx.number_of_connectors})"
            if duration >= 0
            else f"duration {duration} is negative"
        )
        return Composite("Rejected", connector_id, start, max(duration, 0), unit, (), reason)
    end_s = now_s + duration
    use_amps = ctx.convert_units or unit is RateUnit.A
    use_watts = ctx.convert_units or unit is RateUnit.W

    cap_profiles = _by_stack(p for where, p in installed if where == 0 and p.purpose is Purpose.CHARGE_POINT_MAX)

    # Each "lane" is a pair of step functions (TxProfile, TxDefaultProfile) for one connector.
    lanes: list[tuple[Steps, Steps] | None] = []
    session: int | None = None
    if connector_id == 0 and ctx.connector0 is Connector0.SUM:
        lane_ids = list(range(1, ctx.number_of_connectors + 1))
    else:
        lane_ids = [connector_id]
    for lane in lane_ids:
        transaction = transactions.get(lane)
        session = epoch_seconds(transaction.start) if transaction is not None else None
        if session is None and not ctx.tx_default_when_idle:
            lanes.append(None)
            continue
        if lane == 0:  # connector 0 as one stack: every connector's profiles together
            tx_profiles = _by_stack(p for _, p in installed if p.purpose is Purpose.TX)
            default_profiles = _by_stack(p for _, p in installed if p.purpose is Purpose.TX_DEFAULT)
        else:
            tx_profiles, default_profiles = _applicable(installed, lane, transaction)
        lanes.append(
            (
                _purpose_steps(tx_profiles, now_s, end_s, session, ctx),
                _purpose_steps(default_profiles, now_s, end_s, session, ctx),
            )
        )
    cap_steps = _purpose_steps(cap_profiles, now_s, end_s, session, ctx)

    summed = connector_id == 0 and ctx.connector0 is Connector0.SUM
    step_lists: list[Steps] = [cap_steps]
    for pair in lanes:
        if pair is not None:
            step_lists.extend(pair)

    periods: list[CompositePeriod] = []
    last_key: tuple[float | None, int | None, int] | None = None
    for offset, values in _walk(step_lists, _breakpoints(step_lists)):
        value = _Limit()
        if summed:
            value.summed = True
            amps_total = 0.0
            watts_total = 0.0
            j = 1
            for pair in lanes:
                lane_value: Entry | None = None
                if pair is not None:
                    lane_value = _tx_value(values[j], values[j + 1])
                    j += 2
                amps_total += ctx.default_limit_a
                watts_total += ctx.default_limit_w
                if lane_value is not None and (use_amps if lane_value[_AMPS] else use_watts):
                    if lane_value[_AMPS]:
                        amps_total += lane_value[_LIMIT] - ctx.default_limit_a
                    else:
                        watts_total += lane_value[_LIMIT] - ctx.default_limit_w
                    phases = lane_value[_PHASES]
                    if phases is not None and (value.phases is None or phases > value.phases):
                        value.phases = phases
            value.amps, value.watts = amps_total, watts_total
            value.lower(values[0], use_amps, use_watts)
        else:
            if len(values) > 1:
                value.lower(_tx_value(values[1], values[2]), use_amps, use_watts)
            value.lower(values[0], use_amps, use_watts)
        limit, phases, governor, stack = _convert(value, unit, ctx)
        key = (limit, phases, stack)
        if limit is None and ctx.uncovered is not Uncovered.NO_LIMIT:
            key = (-1.0, -1, 0) if ctx.uncovered is Uncovered.MINUS_ONE else (ctx.default_limit(unit), None, 0)
        if key == last_key:
            continue
        last_key = key
        periods.append(CompositePeriod(offset, key[0], key[1], governor))

    if ctx.uncovered is Uncovered.REJECTED and all(p.governor is None for p in periods):
        return Composite("Rejected", connector_id, start, duration, unit, (), "no charging profile applies")
    return Composite("Accepted", connector_id, start, duration, unit, tuple(periods))
