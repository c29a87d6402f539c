"""What a charger is and how it reports: the inputs to the composite engine besides the profiles.

`StationContext` bundles the hardware facts (connectors, voltage, phases), the SetChargingProfile
capabilities (the smart-charging configuration keys) and the *conventions* on which real chargers
disagree (OCPP16-SMART-CHARGING.md §9). Every convention defaults to EVerest libocpp's behaviour,
the reference the public conformance cases were taken from; the simulator's quirk knobs and the
per-model quirk files change them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from reconciler.core.profiles import RateUnit, epoch_seconds


class Uncovered(enum.StrEnum):
    """What a charger reports for time that no profile covers."""

    DEFAULT_LIMIT = "default_limit"  # EVerest: a period at defaultLimitA / defaultLimitW
    NO_LIMIT = "no_limit"  # the reconciler's own view: limit None ("not restricted")
    MINUS_ONE = "minus_one"  # MicroOcpp: limit -1, numberPhases -1
    REJECTED = "rejected"  # SAP and some real chargers: status Rejected if nothing covers the window


class Connector0(enum.StrEnum):
    """How a charger reports the composite of connector 0 (the grid connection)."""

    SUM = "sum"  # EVerest libocpp: each connector's Tx/TxDefault summed (A and W apart, gaps at the
    # default limit), converted with one phase count, then capped by ChargePointMax
    CONNECTOR_SUM = "connector_sum"  # the spec's reading: the sum of what each connector reports
    # (each in the requested unit with its own phases, uncovered at the default), capped by ChargePointMax
    STACK = "stack"  # SAP: every profile of every connector in one stack, nothing summed
    CAP_ONLY = "cap_only"  # MicroOcpp: only the ChargePointMaxProfile counts for connector 0
    UNSUPPORTED = "unsupported"  # open-ocpp: connector 0 is not answered; the station total is not verifiable


class ReplyUnit(enum.StrEnum):
    """The unit a GetCompositeSchedule answer comes in."""

    REQUESTED = "requested"  # the spec: the charger converts to the requested chargingRateUnit
    PROFILE = "profile"  # SAP: no conversion; the answer is in the unit of the profile that governs it


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The smart-charging configuration keys that bound what SetChargingProfile accepts."""

    max_stack_level: int = 100  # ChargeProfileMaxStackLevel
    max_stack_level_known: bool = False  # the charger reported it, or its ChargerModel declares it
    max_periods: int = 1024  # ChargingScheduleMaxPeriods
    max_profiles: int = 1000  # MaxChargingProfilesInstalled
    allowed_units: tuple[RateUnit, ...] = (RateUnit.A, RateUnit.W)  # ChargingScheduleAllowedChargingRateUnit
    allow_without_start_schedule: bool = False  # AllowChargingProfileWithoutStartSchedule (EVerest)


@dataclass(frozen=True, slots=True)
class StationContext:
    number_of_connectors: int = 1
    supply_voltage: float = 230.0
    default_number_phases: int = 3
    default_limit_a: float = 48.0
    default_limit_w: float = 33_120.0
    uncovered: Uncovered = Uncovered.DEFAULT_LIMIT
    connector0: Connector0 = Connector0.SUM
    tx_default_when_idle: bool = True  # EVerest's simulate_transaction_active
    recurrence_before_start: bool = True  # a Recurring profile recurs before its startSchedule too
    convert_units: bool = True  # False: limits in the other unit are not reported (MicroOcpp)
    reply_unit: ReplyUnit = ReplyUnit.REQUESTED  # PROFILE: answers in the profile's unit, asked in A or W (SAP)
    cap_on_connectors: bool = True  # False: ChargePointMaxProfile is left out of connectors 1..N (SAP)
    rebase_recurring: bool = True  # False: a Recurring profile is reported as if it started at the
    # request (its periods not shifted to the current occurrence; SAP)
    limit_step: float | None = None  # round reported limits to this step (0.1, or 1.0 for whole amps)
    max_composite_duration: int | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    conventions_declared: bool = False  # a ChargerModel or the Station says how it reports (not defaults)

    def with_(self, **changes: object) -> StationContext:
        if all(getattr(self, name) == value for name, value in changes.items()):
            return self  # (a check asks for the requested reply unit four times; it is usually so already)
        return replace(self, **changes)  # type: ignore[arg-type]

    def enforced(self) -> StationContext:
        """The context of what the hardware applies: every *reporting* convention back to the spec's
        (uncovered time is no limit, nothing rounded, units converted, the cap on every connector)."""
        return replace(
            self, uncovered=Uncovered.NO_LIMIT, limit_step=None, convert_units=True, connector0=Connector0.SUM,
            reply_unit=ReplyUnit.REQUESTED, cap_on_connectors=True, rebase_recurring=True,
        )  # fmt: skip

    def judged(self) -> StationContext:
        """The context a read-back is judged with: the charger's reporting conventions, unrounded,
        every answer in the requested unit (the reader converts whatever unit the charger chose)."""
        return replace(self, limit_step=None, reply_unit=ReplyUnit.REQUESTED)

    def default_limit(self, unit: RateUnit) -> float:
        return self.default_limit_a if unit is RateUnit.A else self.default_limit_w

    @property
    def default_unit(self) -> RateUnit:
        units = self.capabilities.allowed_units
        return units[0] if units else RateUnit.A


@dataclass(frozen=True, slots=True)
class Transaction:
    """A running transaction on one connector; `start` anchors its Relative profiles."""

    connector_id: int
    transaction_id: int | None
    start: datetime
    start_known: bool = True  # False: it runs, but its start was not seen (`start` is a stand-in)
    start_s: int = field(default=0, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_s", epoch_seconds(self.start))
