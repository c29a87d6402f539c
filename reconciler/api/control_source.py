"""What controls a station's power now, as the source documents show it: an OCPP limit, the station's
own fallback policy, or its hardware.

Flow: `views.station_summary` (GET /stations) and `observed` (GET /stations/{id}/connectors) ->
`control_source` with the limit in force (`views.limit_in_force`: the charger's own read-back, never
the ledger), the profile count, and what the station itself reported to the Central System
(StatusNotification per connector, the configuration keys last read with GetConfiguration) ->
`ControlSource`. Pure: no daemon, no I/O.

- `OCPP: 7.4 kW (2)`: the charger's read-back shows an OCPP limit below its hardware; its value
  (the station's physical total) and how many profiles the charger holds from us. `OCPP: 7.4 kW (?)`:
  a limit none of our profiles explains (a foreign profile). A charger that accepted our profiles
  but does not enforce them reads back no limit, and is not shown with one.
- `Policy: Blocked`: no OCPP limit, and a connector with a running transaction reports
  `SuspendedEVSE` (OCPP 1.6: the EVSE offers the EV no energy); the station's local policy (or another
  local constraint) holds it.
- `Policy: OK`: no OCPP limit, the station reports `LocalPolicyEnabled=true`, and nothing is blocked.
- `hardware limit`: nothing else limits it.
- `not read back`: no read-back to go by (offline, suspended, not reconciled yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LOCAL_POLICY_KEY = "LocalPolicyEnabled"


@dataclass(frozen=True, slots=True)
class ControlSource:
    text: str  # as shown in the fleet table
    kind: str  # ocpp | policy | hardware | unknown
    local_policy: str | None  # OK | Blocked | None (no local policy known)
    evidence: str  # what the judgement rests on, for a person

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "kind": self.kind, "local_policy": self.local_policy, "evidence": self.evidence}


def connector_statuses(info: Any) -> dict[int, str]:
    """connectorId -> the status the station last reported (StatusNotification), from the registry."""
    connectors = getattr(info, "connectors", None) or {}
    return {int(c): str(getattr(state, "status", "Unknown")) for c, state in connectors.items()}


def local_policy_enabled(configuration: Mapping[str, Any] | None) -> bool | None:
    """`LocalPolicyEnabled` as last read from the charger (None: never read)."""
    if not configuration or LOCAL_POLICY_KEY not in configuration:
        return None
    entry = configuration[LOCAL_POLICY_KEY]
    value = entry.get("value") if isinstance(entry, Mapping) else entry
    return None if value is None else str(value).strip().lower() == "true"


def profiles_held(ledger: Sequence[Any]) -> int:
    """How many profiles the charger holds from us, as far as read-backs tell: the ledger's entries
    in state Accepted (none contradicted them), one per id; not those accepted but not enforced,
    nor those whose arrival is uncertain."""
    return len({e.profile.charging_profile_id for e in ledger if e.confirmed})


def _kw(watts: float) -> str:
    return f"{watts / 1000:.1f} kW"


def control_source(
    limit: Mapping[str, Any], profile_count: int, info: Any, configuration: Mapping[str, Any] | None
) -> ControlSource:
    """`limit`: the `limit` of GET /stations (value_w, source, hardware_w, governed_by, evidence);
    `info`: the Central System's StationInfo (None through an inject API); `configuration`: key -> {value}."""
    value = float(limit.get("value_w") or 0.0)
    source = limit.get("source")
    read = limit.get("evidence") or ""
    if source in ("policy", "override"):
        governed = limit.get("governed_by")
        why = f"{source} profile {governed}" if governed else f"{source} profile"
        return ControlSource(f"OCPP: {_kw(value)} ({profile_count})", "ocpp", None,
                             f"{why} limits the station to {_kw(value)} ({read})")  # fmt: skip
    if source == "charger":
        return ControlSource(f"OCPP: {_kw(value)} (?)", "ocpp", None, read)
    if source == "unknown":
        return ControlSource("not read back", "unknown", None, read or "nothing read back from the charger")
    statuses = connector_statuses(info)
    suspended = sorted(c for c, status in statuses.items() if c > 0 and status == "SuspendedEVSE")
    enabled = local_policy_enabled(configuration)
    if suspended:
        which = ", ".join(str(c) for c in suspended)
        policy = "its local policy" if enabled else "a station-local constraint (its local policy)"
        return ControlSource("Policy: Blocked", "policy", "Blocked",
                             f"connector {which} reports SuspendedEVSE with no OCPP limit in force: {policy} "
                             "blocks charging")  # fmt: skip
    if enabled:
        return ControlSource("Policy: OK", "policy", "OK",
                             f"the station reports {LOCAL_POLICY_KEY}=true and no OCPP limit is in force; "
                             "its local policy allows charging now")  # fmt: skip
    hardware = float(limit.get("hardware_w") or value)
    why = f"no OCPP profile or local policy limits the station: its hardware allows {_kw(hardware)}"
    return ControlSource("hardware limit", "hardware", None, why)
