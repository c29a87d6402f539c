"""The OCPP 1.6 composite schedule: what a charger should answer to GetCompositeSchedule.

Values in, values out: installed profiles, running transactions, the station's context and the
instant `now` give a `Composite`. Nothing here reads the clock or touches the wire.

The rules (OCPP16-SMART-CHARGING.md §1-§3, §6), in the order they are applied:

1-2. Each purpose's profiles become one step function over the window, the highest stackLevel
   governing each instant (`entries.py`).
3. TxProfile replaces TxDefaultProfile wherever it gives a value; ChargePointMaxProfile caps the
   result (lowest limit wins; A and W are kept apart until the end, then the lower after
   conversion to the requested unit wins).
4. Connector 0: by default the sum of every connector's own result (gaps at the default limit),
   capped by ChargePointMaxProfile; or, by the station's `Connector0` convention, the sum of what
   each connector reports, one stack of every profile, the ChargePointMaxProfile alone, or Rejected.
5. What no profile covers is reported as the station's convention says (`Uncovered`); a charger
   that does not convert answers in the unit of the profile that governs (`ReplyUnit.PROFILE`).

Steps 3-5 run as one sweep over the union of the purposes' breakpoints. Neighbouring periods with
the same (limit, numberPhases, governing stackLevel) are merged, as libocpp does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from reconciler.core.context import Connector0, ReplyUnit, StationContext, Transaction, Uncovered
from reconciler.core.entries import (
    _AMPS,
    _LIMIT,
    _PHASES,
    _PROFILE,
    _STACK,
    GAP,
    Buckets,
    Entry,
    Steps,
    by_stack,
    purpose_steps,
)
from reconciler.core.profiles import FOREVER, ChargingProfile, Purpose, RateUnit, epoch_seconds, from_epoch
from reconciler.core.units import round_to_step


class Governor(NamedTuple):
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


class CompositePeriod(NamedTuple):
    start_period: int
    limit: float | None  # None: not restricted by any profile (Uncovered.NO_LIMIT only)
    number_phases: int | None = None
    governor: Governor | None = None  # None: no profile covers this period


class Composite(NamedTuple):
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


# --- steps 3-5: combine, convert, report -------------------------------------------------------------

_SUMMED = Governor(None, None, 0, summed=True)


def _is_gap(steps: Steps) -> bool:
    return len(steps) == 1 and steps[0][1] is None


def _zip(a: Steps, b: Steps) -> Iterator[tuple[int, Entry | None, Entry | None]]:
    """Walk two step functions together: (offset, value of a, value of b) at every breakpoint."""
    va, vb = a[0][1], b[0][1]
    yield 0, va, vb
    i, j, na, nb = 1, 1, len(a), len(b)
    while i < na or j < nb:
        oa = a[i][0] if i < na else FOREVER
        ob = b[j][0] if j < nb else FOREVER
        if oa <= ob:
            va = a[i][1]
            i += 1
        if ob <= oa:
            vb = b[j][1]
            j += 1
        yield (oa if oa < ob else ob), va, vb


def _overlay(top: Steps, bottom: Steps) -> Steps:
    """`top` wherever it has a value, else `bottom`: TxProfile over TxDefaultProfile."""
    if _is_gap(top):
        return bottom
    if _is_gap(bottom):
        return top
    return [(offset, t if t is not None else d) for offset, t, d in _zip(top, bottom)]


def _walk(step_lists: Sequence[Steps]) -> Iterator[tuple[int, list[Entry | None]]]:
    """For each breakpoint of several step functions, the value of every one there."""
    points = sorted({offset for steps in step_lists for offset, _ in steps})
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


class _Period:
    """One period while it is assembled: A and W kept apart until the end, as libocpp does."""

    __slots__ = ("amps", "amps_entry", "phases", "watts", "watts_entry")

    def __init__(self, amps: float | None = None, watts: float | None = None, phases: int | None = None) -> None:
        self.amps = amps
        self.watts = watts
        self.amps_entry: Entry | None = None
        self.watts_entry: Entry | None = None
        self.phases = phases

    def lower(self, entry: Entry, use_amps: bool, use_watts: bool) -> None:
        """Take `entry` where it is lower than what is there (lowest limit wins; ties keep the first)."""
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


class _Reporter:
    """Converts assembled periods to the requested unit and merges equal neighbours."""

    __slots__ = ("ctx", "gap", "last", "periods", "step", "summed", "unit_is_amps", "voltage")

    def __init__(self, ctx: StationContext, unit: RateUnit, summed: bool) -> None:
        self.ctx = ctx
        self.unit_is_amps = unit is RateUnit.A
        self.summed = summed
        self.voltage = ctx.supply_voltage
        self.step = ctx.limit_step
        self.periods: list[CompositePeriod] = []
        self.last: tuple[float | None, int | None, int] | None = None
        # what a period no profile covers reports, by the station's convention
        self.gap: tuple[float | None, int | None, int] = (
            (None, None, 0)
            if ctx.uncovered is Uncovered.NO_LIMIT
            else (-1.0, -1, 0)
            if ctx.uncovered is Uncovered.MINUS_ONE
            else (ctx.default_limit_a if self.unit_is_amps else ctx.default_limit_w, None, 0)
        )

    def add(
        self,
        offset: int,
        amps: float | None,
        watts: float | None,
        phases: int | None,
        amps_entry: Entry | None,
        watts_entry: Entry | None,
    ) -> None:
        limit: float | None = None
        entry: Entry | None = None
        if amps is not None or watts is not None:
            transform = self.voltage * (phases if phases is not None else self.ctx.default_number_phases)
            if self.unit_is_amps:
                if amps is not None:
                    limit, entry = amps, amps_entry
                if watts is not None and (limit is None or watts / transform < limit):
                    limit, entry = watts / transform, watts_entry
            else:
                if watts is not None:
                    limit, entry = watts, watts_entry
                if amps is not None and (limit is None or amps * transform < limit):
                    limit, entry = amps * transform, amps_entry
            if self.step:
                limit = round_to_step(limit, self.step)  # type: ignore[arg-type]
        key = self.gap if limit is None else (limit, phases, 0 if entry is None else entry[_STACK])
        if key == self.last:
            return
        self.last = key
        if limit is None:
            governor = None
        elif entry is None:
            governor = _SUMMED
        else:
            profile = entry[_PROFILE]
            governor = Governor(profile.charging_profile_id, profile.purpose, entry[_STACK])
        self.periods.append(CompositePeriod(offset, key[0], key[1], governor))


def _report_connector(reporter: _Reporter, lane: Steps, cap: Steps, use_amps: bool, use_watts: bool) -> None:
    """Connector N (or connector 0 as one stack): the lane's value, capped by ChargePointMax."""
    add = reporter.add
    if _is_gap(cap) or _is_gap(lane):
        only = lane if _is_gap(cap) else cap
        for offset, entry in only:
            if entry is None or not (use_amps if entry[_AMPS] else use_watts):
                add(offset, None, None, None, None, None)
            elif entry[_AMPS]:
                add(offset, entry[_LIMIT], None, entry[_PHASES], entry, None)
            else:
                add(offset, None, entry[_LIMIT], entry[_PHASES], None, entry)
        return
    for offset, value, limit in _zip(lane, cap):
        period = _Period()
        if value is not None:
            period.lower(value, use_amps, use_watts)
        if limit is not None:
            period.lower(limit, use_amps, use_watts)
        add(offset, period.amps, period.watts, period.phases, period.amps_entry, period.watts_entry)


def _report_sum(reporter: _Reporter, lanes: list[Steps], cap: Steps, use_amps: bool, use_watts: bool) -> None:
    """Connector 0: each connector's value (its default where it has none) summed, then capped."""
    ctx = reporter.ctx
    for offset, values in _walk([cap, *lanes]):
        amps = watts = 0.0
        phases: int | None = None
        for value in values[1:]:
            amps += ctx.default_limit_a
            watts += ctx.default_limit_w
            if value is not None and (use_amps if value[_AMPS] else use_watts):
                if value[_AMPS]:
                    amps += value[_LIMIT] - ctx.default_limit_a
                else:
                    watts += value[_LIMIT] - ctx.default_limit_w
                if value[_PHASES] is not None and (phases is None or value[_PHASES] > phases):
                    phases = value[_PHASES]
        period = _Period(amps, watts, phases)
        if values[0] is not None:
            period.lower(values[0], use_amps, use_watts)
        reporter.add(offset, period.amps, period.watts, period.phases, period.amps_entry, period.watts_entry)


def _report_connector_sum(
    reporter: _Reporter, installed: Sequence[tuple[int, ChargingProfile]], cap: Steps, *, now: datetime,
    duration: int, unit: RateUnit, ctx: StationContext, transactions: Mapping[int, Transaction],
    use_amps: bool, use_watts: bool,
) -> None:  # fmt: skip
    """Connector 0 as the spec reads it: what each connector reports (in the requested unit, with its
    own phases; uncovered at the default limit) summed, then capped by ChargePointMax."""
    plain = ctx.with_(uncovered=Uncovered.NO_LIMIT, limit_step=None, reply_unit=ReplyUnit.REQUESTED)
    default = ctx.default_limit(unit)
    lanes: list[list[tuple[int, float]]] = []
    for connector in range(1, ctx.number_of_connectors + 1):
        one = compute_composite(installed, connector_id=connector, now=now, duration=duration, unit=unit,
                                context=plain, transactions=transactions)  # fmt: skip
        lanes.append([(p.start_period, default if p.limit is None else p.limit) for p in one.periods] or [(0, default)])
    points = sorted({offset for lane in lanes for offset, _ in lane} | {offset for offset, _ in cap})
    index = [0] * len(lanes)
    cap_at = 0
    amps = unit is RateUnit.A
    for point in points:
        total = 0.0
        for j, lane in enumerate(lanes):
            while index[j] + 1 < len(lane) and lane[index[j] + 1][0] <= point:
                index[j] += 1
            total += lane[index[j]][1]
        while cap_at + 1 < len(cap) and cap[cap_at + 1][0] <= point:
            cap_at += 1
        period = _Period(total if amps else None, None if amps else total)
        entry = cap[cap_at][1]
        if entry is not None:
            period.lower(entry, use_amps, use_watts)
        reporter.add(point, period.amps, period.watts, period.phases, period.amps_entry, period.watts_entry)


def _profile_unit(
    installed: Sequence[tuple[int, ChargingProfile]], periods: Sequence[CompositePeriod]
) -> RateUnit | None:
    """The unit of the first profile that governs an answer (what a charger that does not convert
    answers in), or None when no profile governs."""
    for period in periods:
        governor = period.governor
        if governor is not None and governor.profile_id is not None:
            for _, profile in installed:
                if profile.charging_profile_id == governor.profile_id:
                    return profile.schedule.charging_rate_unit
    return None


@functools.lru_cache(maxsize=256)
def _instant(now: datetime) -> tuple[int, datetime]:
    """`now` floored to the second, as epoch seconds and as the reply's scheduleStart."""
    seconds = epoch_seconds(now)
    return seconds, from_epoch(seconds)


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
    now_s, start = _instant(now)
    if ctx.max_composite_duration is not None and duration > ctx.max_composite_duration:
        duration = ctx.max_composite_duration
    if connector_id < 0 or connector_id > ctx.number_of_connectors:
        reason = f"connector {connector_id} does not exist (the station has 0..{ctx.number_of_connectors})"
        return Composite("Rejected", connector_id, start, max(duration, 0), unit, (), reason)
    if duration < 0:
        return Composite("Rejected", connector_id, start, 0, unit, (), f"duration {duration} is negative")
    end_s = now_s + duration
    use_amps = ctx.convert_units or unit is RateUnit.A
    use_watts = ctx.convert_units or unit is RateUnit.W
    form = ctx.connector0 if connector_id == 0 else None
    if form is Connector0.UNSUPPORTED:
        return Composite("Rejected", 0, start, duration, unit, (), "connector 0 is not supported by this charger")
    summed = form is Connector0.SUM

    # A lane is one connector's TxProfile-over-TxDefaultProfile step function.
    buckets = Buckets(installed)
    seen: dict[tuple[int, int | None], list[Entry]] = {}
    lanes: list[Steps] = []
    session: int | None = None
    for lane in range(1, ctx.number_of_connectors + 1) if summed else (connector_id,):
        if form in (Connector0.CAP_ONLY, Connector0.CONNECTOR_SUM):
            lanes.append(GAP)  # only the cap here (the connectors' own answers are summed below)
            continue
        transaction = transactions.get(lane)
        session = transaction.start_s if transaction is not None else None
        if session is None and not ctx.tx_default_when_idle:
            lanes.append(GAP)
            continue
        tx_profiles, default_profiles = buckets.for_connector(lane, transaction)
        lanes.append(
            _overlay(
                purpose_steps(tx_profiles, now_s, end_s, session, ctx, seen),
                purpose_steps(default_profiles, now_s, end_s, session, ctx, seen),
            )
        )
    caps = by_stack(buckets.caps) if len(buckets.caps) > 1 else buckets.caps
    cap = purpose_steps(caps, now_s, end_s, session, ctx, seen) if connector_id == 0 or ctx.cap_on_connectors else GAP

    reporter = _Reporter(ctx, unit, summed or form is Connector0.CONNECTOR_SUM)
    if summed:
        _report_sum(reporter, lanes, cap, use_amps, use_watts)
    elif form is Connector0.CONNECTOR_SUM:
        _report_connector_sum(reporter, installed, cap, now=now, duration=duration, unit=unit, ctx=ctx,
                              transactions=transactions, use_amps=use_amps, use_watts=use_watts)  # fmt: skip
    else:
        _report_connector(reporter, lanes[0], cap, use_amps, use_watts)
    periods = tuple(reporter.periods)
    if ctx.reply_unit is ReplyUnit.PROFILE:
        own = _profile_unit(installed, periods)
        if own is not None and own is not unit:  # no conversion: the answer comes in the profile's unit
            return compute_composite(
                installed,
                connector_id=connector_id,
                now=now,
                duration=duration,
                unit=own,
                context=ctx.with_(reply_unit=ReplyUnit.REQUESTED),
                transactions=transactions,
            )
    if ctx.uncovered is Uncovered.REJECTED and all(p.governor is None for p in periods):
        return Composite("Rejected", connector_id, start, duration, unit, (), "no charging profile applies")
    return Composite("Accepted", connector_id, start, duration, unit, periods)
