"""Expected vs observed composite schedules: normalise, compare, classify the drift.

Flow: (engine) observed GetCompositeSchedule.conf -> `observed_from_ocpp` -> `Timeline`; (core)
expected `Composite` -> `Timeline`; `compare_connector` -> `ConnectorDrift`.

Chargers say "no limit" in many ways (OCPP16-SMART-CHARGING.md §9-§10): a default limit (48 A in
EVerest, the hardware maximum in others), `-1`, an empty period list, or `Rejected`. Before judging,
both sides become a `Timeline` in one unit over absolute time: limits at or above the station's
hardware maximum, and every "no limit" form, become None; equal neighbours merge. Two timelines
agree when every stretch longer than the start tolerance differs by no more than the limit
tolerance (default 0.1 A, or 1 %, whichever is larger).

Drift classes, per connector:
- missing: the charger is unrestricted where a cap was expected (profiles lost, e.g. a reboot);
- shadowed: the charger allows more than expected (something overrides our cap);
- extra: the charger allows less than expected, or caps where nothing was declared (a foreign cap);
- rounding: differences within tolerance only (in sync; reported, never acted on).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from reconciler.core.composite import Composite
from reconciler.core.profiles import ProfileError, RateUnit, epoch_seconds, from_epoch, parse_time
from reconciler.core.timeline import Limit, Timeline, merged, walk
from reconciler.core.units import convert


@dataclass(frozen=True, slots=True)
class Normaliser:
    """How one station's answers are read: its unit conversion, hardware maximum and tolerances."""

    voltage: float = 230.0
    phases: int = 3
    max_current_a: float | None = None  # limits at or above this (converted) mean "no limit"
    tolerance_a: float = 0.1
    tolerance_ratio: float = 0.01
    start_tolerance_s: int = 2
    rejected_means_no_limit: bool = False  # the station answers Rejected when nothing applies
    step: float | None = None  # the charger rounds reported limits to this step (e.g. 1.0: whole amps)
    connectors: int = 1  # connector 0's hardware maximum is every connector's together

    def for_connector(self, connector_id: int) -> Normaliser:
        """How answers about one connector are read: connector 0 (the station total) has the
        hardware maximum of all connectors together."""
        if connector_id != 0 or self.connectors == 1 or self.max_current_a is None:
            return self
        return replace(self, max_current_a=self.max_current_a * self.connectors, connectors=1)

    def hardware_max(self, unit: RateUnit) -> float | None:
        if self.max_current_a is None:
            return None
        return convert(self.max_current_a, RateUnit.A, unit, self.voltage, self.phases)

    def tolerance(self, unit: RateUnit, reference: float) -> float:
        absolute = convert(self.tolerance_a, RateUnit.A, unit, self.voltage, self.phases)
        rounding = self.step / 2 if self.step else 0.0
        return max(absolute, abs(reference) * self.tolerance_ratio, rounding)

    def limit(self, value: float | None, unit: RateUnit) -> Limit:
        """None for every form of "no limit"; the value otherwise. A limit within tolerance of the
        hardware maximum is no limit too (a charger rounding 31.88 A up to its 32 A maximum)."""
        if value is None or value < 0:
            return None
        ceiling = self.hardware_max(unit)
        if ceiling is not None and value >= ceiling - self.tolerance(unit, ceiling) - 1e-9:
            return None
        return value


def expected_timeline(composite: Composite, normaliser: Normaliser) -> Timeline:
    """The expected composite as a normalised timeline (limit None where nothing restricts)."""
    start = epoch_seconds(composite.schedule_start)
    unit = composite.unit
    steps = [(start + p.start_period, normaliser.limit(p.limit, unit)) for p in composite.periods]
    return Timeline(start, start + composite.duration, unit, merged(steps or [(start, None)]))


class ObservationError(ValueError):
    """A GetCompositeSchedule answer that cannot be judged (not a "no limit" form, not a schedule)."""


def _number(value: Any, what: str) -> float:
    """A finite JSON number, or ObservationError naming `what` (NaN, infinities, huge integers,
    booleans and strings are not limits a charger can enforce)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ObservationError(f"{what} {value!r} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise ObservationError(f"{what} is too large to be a limit") from None
    if not math.isfinite(number):
        raise ObservationError(f"{what} {number} is not a finite number")
    return number


def observed_from_ocpp(
    payload: Mapping[str, Any], *, requested: RateUnit, duration: int, normaliser: Normaliser, asked_at: int
) -> Timeline:
    """Read a GetCompositeSchedule.conf payload as a normalised timeline in the requested unit.
    `asked_at` (epoch seconds) anchors an answer that carries no scheduleStart. Anything that is not
    a schedule this reading can judge raises ObservationError saying what."""
    status = payload.get("status")
    if status == "Rejected":
        if not normaliser.rejected_means_no_limit:
            raise ObservationError("the charger answered GetCompositeSchedule with Rejected")
        return Timeline(asked_at, asked_at + duration, requested, ((asked_at, None),))
    if status != "Accepted":
        raise ObservationError(f"unexpected GetCompositeSchedule status {status!r}")
    schedule = payload.get("chargingSchedule")
    if schedule is not None and not isinstance(schedule, Mapping):
        raise ObservationError("chargingSchedule is not an object")
    raw_start = payload.get("scheduleStart") or (schedule or {}).get("startSchedule")
    try:
        start = epoch_seconds(parse_time(raw_start)) if raw_start else asked_at
        from_epoch(start + duration)  # the window must be representable too
    except ProfileError as exc:
        raise ObservationError(f"scheduleStart: {exc.message}") from None
    except (OverflowError, ValueError, OSError):
        raise ObservationError(f"scheduleStart {raw_start!r} is out of the representable range") from None
    if not schedule:
        return Timeline(start, start + duration, requested, ((start, None),))
    try:
        unit = RateUnit(schedule.get("chargingRateUnit", requested.value))
    except ValueError:
        raise ObservationError(f"unknown chargingRateUnit {schedule.get('chargingRateUnit')!r}") from None
    length = schedule.get("duration")
    if length is not None:
        length = _number(length, "chargingSchedule.duration")
    length = duration if length is None or length <= 0 or length > duration else int(length)
    periods = schedule.get("chargingSchedulePeriod") or []
    if not isinstance(periods, list) or not all(isinstance(p, Mapping) for p in periods):
        raise ObservationError("chargingSchedulePeriod is not a list of periods")
    read: list[tuple[int, Limit]] = []
    for period in periods:
        offset = _number(period.get("startPeriod", 0), "startPeriod")
        if offset < 0 or offset != int(offset):
            raise ObservationError(f"startPeriod {offset:g} is not a whole number of seconds from 0")
        limit = period.get("limit")
        if limit is None:
            raise ObservationError(f"a period without a numeric limit: {dict(period)!r}")
        value = _number(limit, "limit")
        phases = period.get("numberPhases")
        phases = phases if isinstance(phases, int) and 1 <= phases <= 3 else normaliser.phases
        converted = None if value < 0 else convert(value, unit, requested, normaliser.voltage, phases)
        # a period beyond the window cannot matter (and keeps absurd offsets out of the arithmetic)
        read.append((start + min(int(offset), duration), normaliser.limit(converted, requested)))
    steps = sorted(read, key=lambda step: step[0])
    if not steps or steps[0][0] > start:
        steps.insert(0, (start, None))
    return Timeline(start, start + length, requested, merged(steps))


class DriftClass(enum.StrEnum):
    MISSING = "missing"
    SHADOWED = "shadowed"
    EXTRA = "extra"
    ROUNDING = "rounding"


@dataclass(frozen=True, slots=True)
class Mismatch:
    start: int
    end: int
    expected: Limit
    observed: Limit
    drift: DriftClass


@dataclass(frozen=True, slots=True)
class ConnectorDrift:
    connector_id: int
    in_sync: bool
    classes: tuple[DriftClass, ...]  # most severe first; ROUNDING alone when in sync but not exact
    mismatches: tuple[Mismatch, ...]
    expected: Timeline
    observed: Timeline
    note: str | None = None  # what this comparison could not verify, or assumed (a person should know)

    @property
    def primary(self) -> DriftClass | None:
        return self.classes[0] if self.classes else None

    def describe(self) -> str:
        if self.in_sync:
            return "in sync" + (" (within rounding tolerance)" if self.classes else "")
        first = self.mismatches[0]
        return (
            f"{self.primary}: from {_hms(first.start)}Z expected "
            f"{_show(first.expected, self.expected.unit)}, observed {_show(first.observed, self.expected.unit)}"
        )


def _show(limit: Limit, unit: RateUnit) -> str:
    return "no limit" if limit is None else f"{round(limit, 1):g} {unit.value}"


def _hms(moment: int) -> str:
    seconds = moment % 86_400
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


_SEVERITY = (DriftClass.MISSING, DriftClass.SHADOWED, DriftClass.EXTRA, DriftClass.ROUNDING)


def _classify(expected: Limit, observed: Limit) -> DriftClass:
    if observed is None:
        return DriftClass.MISSING
    if expected is None or observed < expected:
        return DriftClass.EXTRA
    return DriftClass.SHADOWED


def compare_connector(
    connector_id: int, expected: Timeline, observed: Timeline, normaliser: Normaliser
) -> ConnectorDrift:
    """Judge one connector over the window both timelines cover."""
    mismatches: list[Mismatch] = []
    rounding = False
    for point, stop, (want, got) in walk(expected, observed):
        if want == got:
            continue
        if want is not None and got is not None and abs(want - got) <= normaliser.tolerance(expected.unit, want) + 1e-9:
            rounding = True
            continue
        if stop - point <= normaliser.start_tolerance_s:
            continue  # a boundary a second or two apart: the chargers' clocks, not drift
        drift = _classify(want, got)
        if mismatches and mismatches[-1].end == point and mismatches[-1].drift is drift:
            last = mismatches.pop()
            mismatches.append(Mismatch(last.start, stop, last.expected, last.observed, drift))
        else:
            mismatches.append(Mismatch(point, stop, want, got, drift))
    found = {m.drift for m in mismatches}
    if not mismatches and rounding:
        found = {DriftClass.ROUNDING}
    classes = tuple(c for c in _SEVERITY if c in found)
    return ConnectorDrift(connector_id, not mismatches, classes, tuple(mismatches), expected, observed)


def timelines_agree(a: Timeline, b: Timeline, normaliser: Normaliser) -> bool:
    """Do two observations of one connector say the same thing where they overlap?"""
    return compare_connector(0, a, b, normaliser).in_sync
