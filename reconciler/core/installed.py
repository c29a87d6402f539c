"""The set of profiles a charger holds, and the rules that change it.

`InstalledProfiles` is an immutable value: `set_profile` and `clear` return a new set plus the
charger's answer. The simulated charge points and the reconciler's expectations share this one
implementation, so "what the charger should now hold" never has two definitions.

SetChargingProfile (OCPP16-SMART-CHARGING.md §4), checked in libocpp's order; the first failure
is the answer, with a reason a person can act on:
- the connector exists; 0 <= stackLevel <= ChargeProfileMaxStackLevel;
- Absolute and Recurring carry startSchedule (unless AllowChargingProfileWithoutStartSchedule,
  which anchors them at the time of receipt); Recurring carries recurrencyKind;
- fewer than MaxChargingProfilesInstalled profiles are installed (a replacement does not need a
  free slot: the profile it replaces leaves);
- at most ChargingScheduleMaxPeriods periods, an allowed unit, numberPhases 1..3, limits >= 0;
- ChargePointMaxProfile only on connector 0 and not Relative; TxProfile only on a connector with a
  running transaction whose id matches the profile's transactionId (when it has one).
An accepted profile replaces the one with the same chargingProfileId (wherever it is) and the one
with the same (connectorId, purpose, stackLevel). A Recurring duration longer than its recurrence
is clamped to it.

ClearChargingProfile (§5): no field clears everything; an id clears that profile only (libocpp);
otherwise connectorId, purpose and stackLevel are ANDed, a missing one matching anything, and the
connectorId is the one the profile was installed on. Accepted when something was cleared, else
Unknown.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.core.context import StationContext, Transaction
from reconciler.core.profiles import RECURRENCE_SECONDS, ChargingProfile, Kind, Purpose


@dataclass(frozen=True, slots=True)
class SetResult:
    status: str  # "Accepted" | "Rejected"
    reason: str | None = None
    replaced: tuple[int, ...] = ()  # ids of the profiles the new one replaced

    @property
    def accepted(self) -> bool:
        return self.status == "Accepted"


@dataclass(frozen=True, slots=True)
class ClearResult:
    status: str  # "Accepted" | "Unknown"
    cleared: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Installed:
    connector_id: int
    profile: ChargingProfile


def _reject(reason: str) -> SetResult:
    return SetResult("Rejected", reason)


def acceptance(
    connector_id: int,
    profile: ChargingProfile,
    *,
    context: StationContext,
    transactions: Mapping[int, Transaction],
    installed_count: int,
    replaces_one: bool,
) -> SetResult:
    """Would a charger accept this profile? Accepted, or Rejected with the reason."""
    caps = context.capabilities
    schedule = profile.schedule
    if connector_id < 0 or connector_id > context.number_of_connectors:
        return _reject(f"connector {connector_id} does not exist (the station has 0..{context.number_of_connectors})")
    if not 0 <= profile.stack_level <= caps.max_stack_level:
        return _reject(
            f"stackLevel {profile.stack_level} is outside 0..{caps.max_stack_level} (ChargeProfileMaxStackLevel)"
        )
    needs_start = profile.kind in (Kind.ABSOLUTE, Kind.RECURRING)
    if needs_start and schedule.start_schedule is None and not caps.allow_without_start_schedule:
        return _reject(f"a {profile.kind.value} profile needs chargingSchedule.startSchedule")
    if profile.kind is Kind.RECURRING and profile.recurrency_kind is None:
        return _reject("a Recurring profile needs recurrencyKind (Daily or Weekly)")
    if installed_count >= caps.max_profiles and not replaces_one:
        return _reject(f"{installed_count} profiles are installed, the maximum (MaxChargingProfilesInstalled)")
    if len(schedule.periods) > caps.max_periods:
        return _reject(f"{len(schedule.periods)} periods exceed ChargingScheduleMaxPeriods {caps.max_periods}")
    if schedule.charging_rate_unit not in caps.allowed_units:
        allowed = ",".join(u.value for u in caps.allowed_units)
        unit = schedule.charging_rate_unit.value
        return _reject(f"unit {unit} is not allowed (ChargingScheduleAllowedChargingRateUnit {allowed})")
    for i, period in enumerate(schedule.periods):
        if period.number_phases is not None and not 1 <= period.number_phases <= 3:
            return _reject(f"period {i}: numberPhases {period.number_phases} is outside 1..3")
        if period.limit < 0:
            return _reject(f"period {i}: limit {period.limit} is negative")
    if profile.purpose is Purpose.CHARGE_POINT_MAX:
        if connector_id != 0:
            return _reject(f"ChargePointMaxProfile is only allowed on connector 0, not {connector_id}")
        if profile.kind is Kind.RELATIVE:
            return _reject("ChargePointMaxProfile cannot be Relative")
    elif profile.purpose is Purpose.TX:
        if connector_id == 0:
            return _reject("TxProfile is not allowed on connector 0")
        transaction = transactions.get(connector_id)
        if transaction is None:
            return _reject(f"TxProfile needs a running transaction on connector {connector_id}; none is running")
        if profile.transaction_id is not None and profile.transaction_id != transaction.transaction_id:
            return _reject(
                f"TxProfile transactionId {profile.transaction_id} does not match the running "
                f"transaction {transaction.transaction_id}"
            )
    return SetResult("Accepted")


def _normalised(profile: ChargingProfile, now: datetime | None) -> ChargingProfile:
    """What the charger stores: startSchedule filled in when allowed to be missing, duration clamped."""
    schedule = profile.schedule
    if profile.kind in (Kind.ABSOLUTE, Kind.RECURRING) and schedule.start_schedule is None and now is not None:
        schedule = replace(schedule, start_schedule=now, start_schedule_s=None)
    if profile.kind is Kind.RECURRING and profile.recurrency_kind is not None and schedule.duration is not None:
        longest = RECURRENCE_SECONDS[profile.recurrency_kind]
        if schedule.duration > longest:
            schedule = replace(schedule, duration=longest)
    return profile if schedule is profile.schedule else replace(profile, schedule=schedule)


@dataclass(frozen=True, slots=True)
class InstalledProfiles:
    """Profiles a charger holds, in installation order."""

    entries: tuple[Installed, ...] = ()

    @classmethod
    def of(cls, pairs: list[tuple[int, ChargingProfile]]) -> InstalledProfiles:
        """Installed as-is, bypassing the SetChargingProfile rules (e.g. a charger's own storage)."""
        return cls(tuple(Installed(c, p) for c, p in pairs))

    def __iter__(self) -> Iterator[Installed]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def pairs(self) -> list[tuple[int, ChargingProfile]]:
        """(connectorId, profile) in installation order: the composite engine's input."""
        return [(e.connector_id, e.profile) for e in self.entries]

    def by_id(self, profile_id: int) -> Installed | None:
        for entry in self.entries:
            if entry.profile.charging_profile_id == profile_id:
                return entry
        return None

    def _replaced_by(self, connector_id: int, profile: ChargingProfile) -> list[Installed]:
        return [
            e
            for e in self.entries
            if e.profile.charging_profile_id == profile.charging_profile_id
            or (
                e.connector_id == connector_id
                and e.profile.purpose is profile.purpose
                and e.profile.stack_level == profile.stack_level
            )
        ]

    def set_profile(
        self,
        connector_id: int,
        profile: ChargingProfile,
        *,
        context: StationContext | None = None,
        transactions: Mapping[int, Transaction] | None = None,
        now: datetime | None = None,
    ) -> tuple[InstalledProfiles, SetResult]:
        """SetChargingProfile: the new set and the charger's answer (the set is unchanged if Rejected).
        `now` is the time of receipt, used only when a missing startSchedule may be filled in."""
        ctx = context or StationContext()
        replaced = self._replaced_by(connector_id, profile)
        verdict = acceptance(
            connector_id,
            profile,
            context=ctx,
            transactions=transactions or {},
            installed_count=len(self.entries),
            replaces_one=bool(replaced),
        )
        if not verdict.accepted:
            return self, verdict
        fill_in = now if ctx.capabilities.allow_without_start_schedule else None
        stored = Installed(connector_id, _normalised(profile, fill_in))
        kept = tuple(e for e in self.entries if all(e is not r for r in replaced))
        ids = tuple(e.profile.charging_profile_id for e in replaced)
        return InstalledProfiles((*kept, stored)), SetResult("Accepted", replaced=ids)

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> tuple[InstalledProfiles, ClearResult]:
        """ClearChargingProfile: the new set and the answer (Accepted if anything was cleared)."""

        def matches(entry: Installed) -> bool:
            if profile_id is not None:
                return entry.profile.charging_profile_id == profile_id
            return (
                (connector_id is None or entry.connector_id == connector_id)
                and (purpose is None or entry.profile.purpose is purpose)
                and (stack_level is None or entry.profile.stack_level == stack_level)
            )

        gone = [e for e in self.entries if matches(e)]
        if not gone:
            return self, ClearResult("Unknown")
        kept = tuple(e for e in self.entries if all(e is not g for g in gone))
        return InstalledProfiles(kept), ClearResult("Accepted", tuple(e.profile.charging_profile_id for e in gone))

    def without_transaction(self, connector_id: int) -> InstalledProfiles:
        """A transaction ended: its connector's TxProfiles go with it."""
        kept = tuple(
            e for e in self.entries if not (e.connector_id == connector_id and e.profile.purpose is Purpose.TX)
        )
        return self if len(kept) == len(self.entries) else InstalledProfiles(kept)
