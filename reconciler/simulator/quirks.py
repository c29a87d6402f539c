"""Quirk knobs: how a simulated charge point departs from the reference (EVerest-like) behaviour.

Flow: CLI `--quirks FILE` or `key=value` pairs, or a test -> `Quirks.from_mapping` -> a frozen
`Quirks` -> `Quirks.context(...)`, the `StationContext` the station's composite engine and
SetChargingProfile rules run with. Each knob imitates something real chargers do
(OCPP16-SMART-CHARGING.md §9-§10); the defaults are a spec-faithful charger that rounds its
GetCompositeSchedule limits to 0.1 and reports uncovered time at its hardware maximum.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from reconciler.core.context import Capabilities, Connector0, ReplyUnit, StationContext, Uncovered
from reconciler.core.profiles import RateUnit


class UncoveredReport(enum.StrEnum):
    """What GetCompositeSchedule reports for time no profile covers."""

    DEFAULT_LIMIT = "default_limit"  # a period at the hardware maximum (max current)
    MINUS_ONE = "minus_one"  # limit -1, numberPhases -1 (MicroOcpp)
    EMPTY = "empty"  # Accepted with an empty period list when nothing covers the window (SAP)
    REJECTED = "rejected"  # status Rejected when nothing covers the window (SAP, some real chargers)


class BeforeBoot(enum.StrEnum):
    """How the station treats Central System calls before its BootNotification was accepted."""

    ANSWER = "answer"  # as after (the spec does not forbid it)
    REFUSE = "refuse"  # CallError SecurityError (the SAP simulator)
    SILENT = "silent"  # no answer at all (the SAP simulator, other versions)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Quirks:
    """Every knob; the docstring of each field is its CLI key (snake_case or kebab-case)."""

    uncovered: UncoveredReport = UncoveredReport.DEFAULT_LIMIT
    convert_units: bool = True  # False: a limit in the other unit is not converted (reported as uncovered)
    whole_amps: bool = False  # round reported limits to whole amps instead of 0.1
    connector0: Connector0 = Connector0.SUM  # connector 0: sum | connector_sum | stack (SAP) | cap_only
    # (MicroOcpp) | unsupported
    reply_unit: ReplyUnit = ReplyUnit.REQUESTED  # profile: answers in the profile's unit, not the asked one (SAP)
    cap_on_connectors: bool = True  # False: ChargePointMaxProfile left out of connectors 1..N (SAP)
    rebase_recurring: bool = True  # False: Recurring periods reported from the request, not shifted (SAP)
    tx_default_when_idle: bool = True  # False: TxDefaultProfile counts only during a transaction (MicroOcpp)
    lose_profiles_on_reboot: bool = False  # profiles are kept in memory only and vanish on Reset
    lose_on_reboot: str = ""  # profile ids and/or purposes (comma-separated) that vanish on Reset while the
    # others survive (a charger that persists only some profiles), e.g. "1" or "ChargePointMaxProfile"
    accepted_not_enforced: bool = False  # SetChargingProfile answers Accepted but stores nothing
    enforce_delay_ms: int = 0  # an Accepted SetChargingProfile takes effect this many ms later (applied async)
    lose_answers: str = ""  # actions (comma-separated) carried out but never answered: the answer is lost
    late_answers: str = ""  # actions (comma-separated) carried out at once but answered answer_delay_ms later
    answer_delay_ms: int = 0  # how late the late_answers are answered
    composite_unsupported: bool = False  # GetCompositeSchedule answers CallError NotSupported
    boot_delay: float = 0.0  # seconds between connecting and sending BootNotification
    before_boot: BeforeBoot = BeforeBoot.ANSWER  # calls before the boot is accepted: refuse | silent (SAP)
    epoch_clock_until_boot: bool = False  # the clock starts at 1970-01-01 at power-up and is set by
    # the BootNotification answer (MicroOcpp)
    clock_offset: float = 0.0  # seconds the station's clock is off from the Central System's, always
    boot_on_reconnect: bool = True  # False: only a power-up sends BootNotification, not a reconnect
    report_stack_level: bool = True  # False: GetConfiguration does not know ChargeProfileMaxStackLevel
    max_stack_level: int = 20  # ChargeProfileMaxStackLevel
    max_periods: int = 48  # ChargingScheduleMaxPeriods
    max_profiles: int = 32  # MaxChargingProfilesInstalled
    allowed_units: str = "A,W"  # ChargingScheduleAllowedChargingRateUnit (first = default reply unit)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Quirks:
        """Build from a mapping of knob names (snake_case or kebab-case) to values; strings such
        as "true", "0.5" or "minus_one" are converted. Unknown knobs raise ValueError naming the
        known ones."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for raw_key, raw in data.items():
            key = str(raw_key).strip().replace("-", "_")
            if key not in known:
                raise ValueError(f"unknown quirk {raw_key!r}; known quirks: {', '.join(sorted(known))}")
            default = getattr(cls(), key)
            values[key] = _coerce(key, raw, default)
        quirks = cls(**values)
        quirks.units()  # validate
        return quirks

    @classmethod
    def from_file(cls, path: Path) -> Quirks:
        """A JSON object (or, if PyYAML is present, YAML) of knob -> value."""
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            import yaml

            data = yaml.safe_load(text)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected a mapping of quirk -> value")
        return cls.from_mapping(data)

    @classmethod
    def from_pairs(cls, pairs: list[str], base: Quirks | None = None) -> Quirks:
        """`key=value` strings, e.g. from the command line, applied over `base`."""
        data: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ValueError(f"quirk {pair!r} is not key=value, e.g. uncovered=minus_one")
            data[key] = value
        parsed = cls.from_mapping(data)
        if base is None:
            return parsed
        return replace(
            base, **{k.strip().replace("-", "_"): getattr(parsed, k.strip().replace("-", "_")) for k in data}
        )

    def answer_lost(self, action: str) -> bool:
        return bool(self.lose_answers) and action in _actions(self.lose_answers)

    def lost_on_reboot(self, profile_id: int, purpose: str) -> bool:
        """Does a profile with this id and purpose vanish when the station reboots?"""
        if self.lose_profiles_on_reboot:
            return True
        lost = _actions(self.lose_on_reboot)
        return bool(lost) and (str(profile_id) in lost or purpose in lost)

    def answer_delay(self, action: str) -> float:
        """Seconds the answer to `action` is held back (0: answered at once)."""
        late = bool(self.late_answers) and action in _actions(self.late_answers)
        return self.answer_delay_ms / 1000 if late else 0.0

    def units(self) -> tuple[RateUnit, ...]:
        try:
            units = tuple(RateUnit(u.strip().upper()) for u in self.allowed_units.split(",") if u.strip())
        except ValueError:
            raise ValueError(f"allowed_units {self.allowed_units!r}: use A, W, or A,W") from None
        if not units:
            raise ValueError("allowed_units is empty: use A, W, or A,W")
        return units

    def context(
        self, *, connectors: int, max_current: float, voltage: float = 230.0, phases: int = 3
    ) -> StationContext:
        """The context the station reports with (GetCompositeSchedule, SetChargingProfile rules)."""
        uncovered = {
            UncoveredReport.DEFAULT_LIMIT: Uncovered.DEFAULT_LIMIT,
            UncoveredReport.MINUS_ONE: Uncovered.MINUS_ONE,
            UncoveredReport.EMPTY: Uncovered.NO_LIMIT,
            UncoveredReport.REJECTED: Uncovered.REJECTED,
        }[self.uncovered]
        return StationContext(
            number_of_connectors=connectors,
            supply_voltage=voltage,
            default_number_phases=phases,
            default_limit_a=max_current,
            default_limit_w=max_current * voltage * phases,
            uncovered=uncovered,
            connector0=self.connector0,
            tx_default_when_idle=self.tx_default_when_idle,
            convert_units=self.convert_units,
            reply_unit=self.reply_unit,
            cap_on_connectors=self.cap_on_connectors,
            rebase_recurring=self.rebase_recurring,
            limit_step=1.0 if self.whole_amps else 0.1,
            capabilities=Capabilities(
                max_stack_level=self.max_stack_level,
                max_periods=self.max_periods,
                max_profiles=self.max_profiles,
                allowed_units=self.units(),
            ),
        )


def _actions(text: str) -> set[str]:
    return {a.strip() for a in text.split(",") if a.strip()}


def _coerce(key: str, raw: Any, default: Any) -> Any:
    if isinstance(default, enum.Enum):
        try:
            return type(default)(str(raw).strip().lower())
        except ValueError:
            choices = ", ".join(m.value for m in type(default))
            raise ValueError(f"quirk {key}: {raw!r} is not one of {choices}") from None
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"quirk {key}: {raw!r} is not a boolean (true/false)")
    if isinstance(default, float):
        try:
            number = float(str(raw).strip())
        except ValueError:
            raise ValueError(f"quirk {key}: {raw!r} is not a number") from None
        if number != number or abs(number) > 1e9 or (number < 0 and key != "clock_offset"):
            raise ValueError(f"quirk {key}: {raw!r} is out of range")
        return number
    if isinstance(default, int):
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"quirk {key}: {raw!r} is not an integer") from None
        if value < 0:
            raise ValueError(f"quirk {key}: {value} must be 0 or more")
        return value
    if isinstance(raw, list | tuple):
        return ",".join(str(x) for x in raw)
    return str(raw)
