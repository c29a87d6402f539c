"""Semantic checks on one station's desired profiles: what the schema cannot see.

Fifth step of the policy flow (source -> schema -> documents -> resolve -> checks). Each rule has a
stable code, a message naming the station, and a fix. A policy that selects many stations usually
breaks a rule the same way for all of them, so findings are grouped: one diagnostic per (rule,
place), naming the first stations and how many more.

Rules per profile: ids, stack levels, startPeriods and durations fit OCPP 1.6's 32-bit integers
(the schema says so too; this catches profiles built by templates and sites); ChargePointMaxProfile
only on connector 0 and not Relative; no TxProfile in
static desired state; the connector exists; periods start at 0 and strictly increase; period count
<= ChargingScheduleMaxPeriods; stackLevel <= ChargeProfileMaxStackLevel; unit allowed by the
station; Absolute/Recurring carry startSchedule; Recurring carries recurrencyKind; validTo after
validFrom; limits >= 0, in 0.1 steps, not above the hardware maximum, and 0 or at least the
minimum current (default 6 A per phase); active at some time in the coming 7 days (warning).
Per station: at most MaxChargingProfilesInstalled profiles.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.core.entries import profile_entries
from reconciler.core.profiles import ChargingProfile, Kind, Purpose, RateUnit, epoch_seconds
from reconciler.policy.diagnostics import Collector, Location, Severity, shown
from reconciler.policy.documents import Origin
from reconciler.policy.model import Station

WEEK = 7 * 86_400
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_SHOWN = 3


@dataclass(slots=True)
class _Finding:
    severity: Severity
    message: str
    hint: str | None
    stations: list[str] = field(default_factory=list)


class Findings:
    """Station-level findings grouped by (code, location, message); flushed into a Collector."""

    def __init__(self) -> None:
        self.groups: dict[tuple[str, Location | None, str], _Finding] = {}

    def add(
        self,
        code: str,
        location: Location | None,
        station: str,
        message: str,
        hint: str | None,
        *,
        warning: bool = False,
    ) -> None:
        """`message` may contain `{stations}`, filled in with the station names on flush."""
        key = (code, location, message)
        finding = self.groups.get(key)
        if finding is None:
            finding = self.groups[key] = _Finding("warning" if warning else "error", message, hint)
        finding.stations.append(station)

    def flush(self, diagnostics: Collector) -> None:
        for (code, location, message), finding in self.groups.items():
            names = finding.stations
            who = f"station {names[0]}" if len(names) == 1 else "stations " + ", ".join(names[:_SHOWN])
            if len(names) > _SHOWN:
                who += f" and {len(names) - _SHOWN} more"
            text = message.replace("{stations}", who)
            if finding.severity == "error":
                diagnostics.error(code, location, text, finding.hint)
            else:
                diagnostics.warning(code, location, text, finding.hint)
        self.groups.clear()


_active_cache: dict[tuple[ChargingProfile, int, bool], bool] = {}


def _active_within_week(profile: ChargingProfile, station: Station, now_s: int) -> bool:
    key = (profile, now_s, station.context.recurrence_before_start)
    cached = _active_cache.get(key)
    if cached is None:
        if len(_active_cache) > 100_000:
            _active_cache.clear()
        cached = bool(profile_entries(profile, now_s, now_s + WEEK, None, station.context))
        _active_cache[key] = cached
    return cached


def _limit_checks(
    station: Station, connector: int, profile: ChargingProfile, at: Callable[..., Location], report: Callable[..., None]
) -> None:
    unit = profile.schedule.charging_rate_unit
    per_station = profile.purpose is Purpose.CHARGE_POINT_MAX
    for i, period in enumerate(profile.schedule.periods):
        where = at("chargingSchedule", "chargingSchedulePeriod", i, "limit")
        limit = period.limit
        if limit < 0:
            report("negative-limit", where, f"limit {limit:g} is negative ({{stations}})", "use 0 or a positive limit")
            continue
        if abs(limit * 10 - round(limit * 10)) > 1e-6:
            report(
                "limit-not-multiple",
                where,
                f"limit {limit!r} is not a multiple of 0.1 ({{stations}})",
                f"OCPP 1.6 limits have one decimal; use {round(limit, 1):g}",
            )
        phases = period.number_phases or station.phases
        scale = 1.0 if unit is RateUnit.A else station.voltage * phases
        hardware = station.max_current_a * scale * (station.connectors if per_station else 1)
        if limit > hardware + 1e-6:
            report(
                "limit-above-hardware",
                where,
                f"limit {limit:g} {unit.value} exceeds the hardware maximum {hardware:g} {unit.value} of {{stations}}",
                f"use at most {hardware:g} (maxCurrentA {station.max_current_a:g} A per phase"
                + (f" x {station.connectors} connectors)" if per_station else ")"),
            )
        minimum = station.min_current_a * scale
        if 0 < limit < minimum - 1e-6:
            report(
                "limit-below-minimum",
                where,
                f"limit {limit:g} {unit.value} is below the minimum charging current of {{stations}} "
                f"({minimum:g} {unit.value}); chargers may stop or ignore it",
                f"use 0 to pause charging, or at least {minimum:g}",
            )


def _integers_out_of_range(profile: ChargingProfile, at: Callable[..., Location], report: Callable[..., None]) -> bool:
    """OCPP 1.6 integers are 32-bit, and the ledger stores them as such: a larger id, stack level,
    transaction id, startPeriod or duration would be refused by chargers or break the store."""
    schedule = profile.schedule
    fields: list[tuple[str, int | None, Location, int]] = [
        ("chargingProfileId", profile.charging_profile_id, at("chargingProfileId"), 1),
        ("stackLevel", profile.stack_level, at("stackLevel"), 0),
        ("transactionId", profile.transaction_id, at("transactionId"), INT32_MIN),
        ("duration", schedule.duration, at("chargingSchedule", "duration"), 0),
    ]
    for i, period in enumerate(schedule.periods):
        where = at("chargingSchedule", "chargingSchedulePeriod", i, "startPeriod")
        fields.append(("startPeriod", period.start_period, where, 0))
    bad = False
    for name, value, where, lowest in fields:
        if value is not None and not lowest <= value <= INT32_MAX:
            report(
                "integer-out-of-range",
                where,
                f"{name} {shown(value)} does not fit an OCPP 1.6 integer (32-bit) ({{stations}})",
                f"use {lowest}..{INT32_MAX}",
            )
            bad = True
    return bad


def check_profile(
    findings: Findings, station: Station, connector: int, profile: ChargingProfile, origin: Origin, now_s: int
) -> None:
    name = station.name
    caps = station.context.capabilities
    schedule = profile.schedule
    at = origin.at

    broken: list[str] = []

    def report(code: str, where: Location, message: str, hint: str, *, warning: bool = False) -> None:
        if not warning:
            broken.append(code)
        findings.add(code, where, name, message, hint, warning=warning)

    if _integers_out_of_range(profile, at, report):
        return
    purpose = profile.purpose.value
    if profile.purpose is Purpose.TX:
        report(
            "tx-profile-static",
            at("chargingProfilePurpose"),
            "a TxProfile belongs to a live transaction and cannot be static desired state ({stations})",
            "use TxDefaultProfile; per-session limits are applied when a transaction starts",
        )
    if profile.purpose is Purpose.CHARGE_POINT_MAX and connector != 0:
        report(
            "charge-point-max-connector",
            at("connectorId"),
            f"ChargePointMaxProfile on connector {connector} ({{stations}}); chargers accept it only on connector 0",
            "set connectorId: 0, or use TxDefaultProfile to limit one connector",
        )
    if profile.purpose is Purpose.CHARGE_POINT_MAX and profile.kind is Kind.RELATIVE:
        report(
            "charge-point-max-relative",
            at("chargingProfileKind"),
            "a ChargePointMaxProfile cannot be Relative ({stations})",
            "use Absolute with a startSchedule, or Recurring",
        )
    if connector > station.connectors:
        report(
            "connector-out-of-range",
            at("connectorId"),
            f"connector {connector} does not exist on {{stations}} (connectors 0..{station.connectors})",
            f"use a connectorId from 0 to {station.connectors}",
        )
    periods = schedule.periods
    if periods and periods[0].start_period != 0:
        report(
            "period-start-not-zero",
            at("chargingSchedule", "chargingSchedulePeriod", 0, "startPeriod"),
            f"the first period starts at {periods[0].start_period} s ({{stations}}); chargers skip it",
            "the first startPeriod must be 0",
        )
    for i in range(1, len(periods)):
        if periods[i].start_period <= periods[i - 1].start_period:
            report(
                "periods-not-increasing",
                at("chargingSchedule", "chargingSchedulePeriod", i, "startPeriod"),
                f"startPeriod {periods[i].start_period} does not come after "
                f"{periods[i - 1].start_period} ({{stations}})",
                "list periods in strictly increasing startPeriod order",
            )
    if len(periods) > caps.max_periods:
        report(
            "too-many-periods",
            at("chargingSchedule", "chargingSchedulePeriod"),
            f"{len(periods)} periods exceed ChargingScheduleMaxPeriods {caps.max_periods} of {{stations}}",
            f"use at most {caps.max_periods} periods",
        )
    if profile.stack_level > caps.max_stack_level:
        report(
            "stack-level-too-high",
            at("stackLevel"),
            f"stackLevel {profile.stack_level} exceeds ChargeProfileMaxStackLevel {caps.max_stack_level} "
            "of {stations}",
            f"use 0..{caps.max_stack_level}",
        )
    if schedule.charging_rate_unit not in caps.allowed_units:
        allowed = ", ".join(u.value for u in caps.allowed_units)
        report(
            "unit-not-allowed",
            at("chargingSchedule", "chargingRateUnit"),
            f"unit {schedule.charging_rate_unit.value} is not allowed by {{stations}} (allowed: {allowed})",
            f"express the limits in {allowed}",
        )
    if profile.kind in (Kind.ABSOLUTE, Kind.RECURRING) and schedule.start_schedule is None:
        article = "an" if profile.kind is Kind.ABSOLUTE else "a"
        report(
            "missing-start-schedule",
            at("chargingSchedule"),
            f"{article} {profile.kind.value} profile needs chargingSchedule.startSchedule ({purpose}, {{stations}})",
            "add startSchedule, e.g. 2024-01-01T00:00:00Z",
        )
    if profile.kind is Kind.RECURRING and profile.recurrency_kind is None:
        report(
            "missing-recurrency-kind",
            at("chargingProfileKind"),
            "a Recurring profile needs recurrencyKind ({stations})",
            "add recurrencyKind: Daily or Weekly",
        )
    if (
        profile.valid_from_s is not None
        and profile.valid_to_s is not None
        and profile.valid_to_s <= profile.valid_from_s
    ):
        report(
            "valid-to-before-valid-from",
            at("validTo"),
            "validTo is not after validFrom: the profile is never valid ({stations})",
            "make validTo later than validFrom, or drop one of them",
        )
    _limit_checks(station, connector, profile, at, report)
    if not broken and not _active_within_week(profile, station, now_s):
        report(
            "never-active",
            at(),
            f"profile {profile.charging_profile_id} is valid but never active in the coming 7 days on {{stations}}",
            "check startSchedule, duration, validFrom and validTo; remove it if it has expired",
            warning=True,
        )


def check_station_count(findings: Findings, station: Station, count: int, location: Location) -> None:
    limit = station.context.capabilities.max_profiles
    if count > limit:
        findings.add(
            "too-many-profiles",
            location,
            station.name,
            f"{{stations}} would hold {count} profiles, above MaxChargingProfilesInstalled {limit}",
            "select fewer policies for it, or merge profiles",
        )


def now_seconds(now: datetime) -> int:
    return epoch_seconds(now)
