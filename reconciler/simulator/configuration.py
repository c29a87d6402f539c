"""A simulated charge point's configuration keys: GetConfiguration and ChangeConfiguration.

Flow: the Central System sends GetConfiguration / ChangeConfiguration -> `charge_point` -> here.
The smart-charging capability keys are read-only and mirror the station's quirks (so the
reconciler learns the same limits the SetChargingProfile rules enforce); a few keys are writable,
some of them only after a reboot (ChangeConfiguration answers RebootRequired, as chargers do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

_UNIT_NAMES = {"A": "Current", "W": "Power"}
_SAMPLED_DATA = "Power.Active.Import,Energy.Active.Import.Register,Current.Offered"


def _is_bool(value: str) -> bool:
    return value.lower() in ("true", "false")


def _is_uint(value: str) -> bool:
    return value.isdigit()


def _any(value: str) -> bool:
    return len(value) <= 500


@dataclass(slots=True)
class ConfigKey:
    key: str
    value: str
    readonly: bool = False
    reboot_required: bool = False
    valid: Callable[[str], bool] = _any
    pending: str | None = None  # a value that takes effect at the next reboot

    def to_ocpp(self) -> dict[str, Any]:
        return {"key": self.key, "readonly": self.readonly, "value": self.value}


class Configuration:
    """The key table. `values` is what the station runs with now."""

    def __init__(self, keys: Iterable[ConfigKey]) -> None:
        self._keys = {k.key: k for k in keys}

    @classmethod
    def standard(
        cls,
        *,
        connectors: int,
        max_stack_level: int,
        max_periods: int,
        max_profiles: int,
        allowed_units: str,
        heartbeat_interval: int = 300,
        meter_interval: int = 60,
    ) -> Configuration:
        return cls(
            [
                ConfigKey("SmartChargingEnabled", "true", valid=_is_bool),
                ConfigKey("ChargeProfileMaxStackLevel", str(max_stack_level), readonly=True),
                ConfigKey(
                    "ChargingScheduleAllowedChargingRateUnit",
                    ",".join(_UNIT_NAMES.get(u.strip().upper(), u) for u in allowed_units.split(",")),
                    readonly=True,
                ),
                ConfigKey("ChargingScheduleMaxPeriods", str(max_periods), readonly=True),
                ConfigKey("MaxChargingProfilesInstalled", str(max_profiles), readonly=True),
                ConfigKey("NumberOfConnectors", str(connectors), readonly=True),
                ConfigKey("ConnectorSwitch3to1PhaseSupported", "false", readonly=True),
                ConfigKey("HeartbeatInterval", str(heartbeat_interval), valid=_is_uint),
                ConfigKey("MeterValueSampleInterval", str(meter_interval), valid=_is_uint),
                ConfigKey(
                    "MeterValuesSampledData", "Power.Active.Import,Energy.Active.Import.Register,Current.Offered"
                ),
                ConfigKey("AuthorizeRemoteTxRequests", "false", valid=_is_bool),
                ConfigKey("ConnectionTimeOut", "60", valid=_is_uint),
                ConfigKey("ScheduledMode", "Off", valid=lambda v: v in ("Off", "Eco", "Boost")),
                ConfigKey("LocalPolicyEnabled", "false", valid=_is_bool),
                ConfigKey("WebSocketPingInterval", "60", reboot_required=True, valid=_is_uint),
                ConfigKey("SupplyVoltage", "230", reboot_required=True, valid=_is_uint),
            ]
        )

    def drop(self, key: str) -> None:
        """Forget a key (a charger that does not report it answers it as unknown)."""
        self._keys.pop(key, None)

    def get(self, key: str) -> str | None:
        entry = self._keys.get(key)
        return None if entry is None else entry.value

    def flag(self, key: str) -> bool:
        return (self.get(key) or "").lower() == "true"

    def number(self, key: str, default: int) -> int:
        value = self.get(key)
        return int(value) if value is not None and value.isdigit() else default

    def get_configuration(self, keys: list[str] | None) -> dict[str, Any]:
        """The GetConfiguration.conf payload; no keys (or an empty list) means every key."""
        if not keys:
            return {"configurationKey": [k.to_ocpp() for k in self._keys.values()]}
        known = [self._keys[k].to_ocpp() for k in keys if k in self._keys]
        unknown = [k for k in keys if k not in self._keys]
        out: dict[str, Any] = {"configurationKey": known}
        if unknown:
            out["unknownKey"] = unknown
        return out

    def change(self, key: str, value: str) -> str:
        """ChangeConfiguration: Accepted, Rejected (readonly or invalid value), RebootRequired or NotSupported."""
        entry = self._keys.get(key)
        if entry is None:
            return "NotSupported"
        if entry.readonly or not entry.valid(value):
            return "Rejected"
        if entry.reboot_required:
            entry.pending = value
            return "RebootRequired"
        entry.value = value
        return "Accepted"

    def reboot(self) -> None:
        """Pending values take effect."""
        for entry in self._keys.values():
            if entry.pending is not None:
                entry.value, entry.pending = entry.pending, None

    def writable_values(self) -> dict[str, str]:
        """What persists across restarts (the read-only keys come from the quirks)."""
        return {k: e.pending or e.value for k, e in self._keys.items() if not e.readonly}

    def restore(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            entry = self._keys.get(key)
            if entry is not None and not entry.readonly and entry.valid(value):
                entry.value = value
