"""Composite requests and replies as OCPP-shaped dicts: the edge of the composite engine.

A *composite request* is the format of the public conformance cases (tests/conformance/README.md in the repository):
`now`, `connectorId`, `duration`, `chargingRateUnit`, `profiles` (SetChargingProfile.req payloads
in installation order), `transaction` and `context` (the charger's settings and conventions). The
reply is a GetCompositeSchedule.conf payload. Parsing raises `RequestError` naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.core.composite import Composite, compute_composite
from reconciler.core.context import Capabilities, Connector0, ReplyUnit, StationContext, Transaction, Uncovered
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import ProfileError, RateUnit, format_time, parse_time, profile_from_ocpp
from reconciler.core.units import parse_allowed_units


class RequestError(ValueError):
    """A composite request that cannot be read; the message names the field and the fix."""


MAX_DURATION = 31 * 86_400  # seconds a request may ask for (a month covers weekly recurrences)


@dataclass(frozen=True, slots=True)
class CompositeRequest:
    now: datetime
    connector_id: int
    duration: int
    unit: RateUnit | None
    installed: InstalledProfiles
    transactions: Mapping[int, Transaction]
    context: StationContext
    rejected: tuple[str, ...] = ()  # SetChargingProfile refusals met while replaying `profiles`


_CONTEXT_KEYS = {
    "numberOfConnectors": ("number_of_connectors", int),
    "supplyVoltage": ("supply_voltage", float),
    "defaultNumberPhases": ("default_number_phases", int),
    "defaultLimitA": ("default_limit_a", float),
    "defaultLimitW": ("default_limit_w", float),
    "uncoveredTime": ("uncovered", Uncovered),
    "connector0": ("connector0", Connector0),
    "simulateTransactionActive": ("tx_default_when_idle", bool),
    "recurrenceBeforeStart": ("recurrence_before_start", bool),
    "convertUnits": ("convert_units", bool),
    "replyUnit": ("reply_unit", ReplyUnit),
    "capOnConnectors": ("cap_on_connectors", bool),
    "rebaseRecurring": ("rebase_recurring", bool),
    "limitStep": ("limit_step", float),
    "maxCompositeDuration": ("max_composite_duration", int),
}
_CAPABILITY_KEYS = {
    "ChargeProfileMaxStackLevel": ("max_stack_level", int),
    "ChargingScheduleMaxPeriods": ("max_periods", int),
    "MaxChargingProfilesInstalled": ("max_profiles", int),
    "AllowChargingProfileWithoutStartSchedule": ("allow_without_start_schedule", bool),
}
_IGNORED_CONTEXT_KEYS = {"installedDirectly", "capabilities"}


def _coerce(value: Any, kind: Any, path: str) -> Any:
    try:
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind is int and (isinstance(value, bool) or not isinstance(value, int | float) or value != int(value)):
            raise TypeError
        if kind is float and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError):
        members = getattr(kind, "__members__", None)
        choices = f" (one of {', '.join(m.value for m in members.values())})" if members else ""
        raise RequestError(f"{path}: {value!r} is not a valid {getattr(kind, '__name__', kind)}{choices}") from None


def context_from_json(data: Any, path: str = "context") -> StationContext:
    if data is None:
        return StationContext()
    if not isinstance(data, Mapping):
        raise RequestError(f"{path}: expected an object")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key in _IGNORED_CONTEXT_KEYS or value is None:
            continue
        if key not in _CONTEXT_KEYS:
            known = ", ".join(sorted([*_CONTEXT_KEYS, *_IGNORED_CONTEXT_KEYS]))
            raise RequestError(f"{path}.{key}: unknown setting; known: {known}")
        name, kind = _CONTEXT_KEYS[key]
        fields[name] = _coerce(value, kind, f"{path}.{key}")
    caps = data.get("capabilities")
    if caps is not None:
        if not isinstance(caps, Mapping):
            raise RequestError(f"{path}.capabilities: expected an object")
        cap_fields: dict[str, Any] = {}
        for key, value in caps.items():
            if key == "ChargingScheduleAllowedChargingRateUnit":
                text = value if isinstance(value, str) else ",".join(str(u) for u in value)
                units = parse_allowed_units(text)
                if not units:
                    raise RequestError(f"{path}.capabilities.{key}: {value!r} names no unit; use Current and/or Power")
                cap_fields["allowed_units"] = units
                continue
            if key not in _CAPABILITY_KEYS:
                raise RequestError(f"{path}.capabilities.{key}: unknown capability")
            name, kind = _CAPABILITY_KEYS[key]
            cap_fields[name] = _coerce(value, kind, f"{path}.capabilities.{key}")
        cap_fields["max_stack_level_known"] = "max_stack_level" in cap_fields
        fields["capabilities"] = Capabilities(**cap_fields)
    if fields.get("number_of_connectors", 1) < 1:
        raise RequestError(f"{path}.numberOfConnectors: must be at least 1")
    return StationContext(**fields)


def conventions_json(context: StationContext, *, changed_from: StationContext | None = None) -> dict[str, Any]:
    """A context's reporting conventions as the policy's `conventions` keys (the inverse of
    `context_from_json`); with `changed_from`, only those that differ from it."""
    out: dict[str, Any] = {}
    for key, (name, _) in _CONTEXT_KEYS.items():
        if key in ("numberOfConnectors", "supplyVoltage", "defaultNumberPhases"):
            continue  # hardware facts, declared on the Station
        value = getattr(context, name)
        if changed_from is not None and getattr(changed_from, name) == value:
            continue
        if value is not None:
            out[key] = value.value if isinstance(value, enum.Enum) else value
    return out


def request_from_json(data: Any) -> CompositeRequest:
    """Read one composite request (the conformance-case format)."""
    if not isinstance(data, Mapping):
        raise RequestError("a request must be a JSON object")
    missing = [k for k in ("now", "connectorId", "duration") if data.get(k) is None]
    if missing:
        raise RequestError(f"missing {', '.join(missing)}; a request needs now, connectorId and duration")
    try:
        now = parse_time(data["now"], "now")
    except ProfileError as exc:
        raise RequestError(str(exc)) from None
    connector_id = _coerce(data["connectorId"], int, "connectorId")
    duration = _coerce(data["duration"], int, "duration")
    if duration > MAX_DURATION:
        raise RequestError(f"duration {duration} is longer than {MAX_DURATION} s (31 days); ask for a shorter window")
    unit = (
        None
        if data.get("chargingRateUnit") is None
        else _coerce(data["chargingRateUnit"], RateUnit, "chargingRateUnit")
    )
    context_data = data.get("context") or {}
    context = context_from_json(context_data)

    transactions: dict[int, Transaction] = {}
    raw_tx = data.get("transaction")
    raw_list = raw_tx if isinstance(raw_tx, list) else ([] if raw_tx is None else [raw_tx])
    for i, tx in enumerate(raw_list):
        where = f"transaction[{i}]" if isinstance(raw_tx, list) else "transaction"
        if not isinstance(tx, Mapping) or tx.get("connectorId") is None or tx.get("start") is None:
            raise RequestError(f"{where}: expected {{connectorId, transactionId, start}}")
        try:
            start = parse_time(tx["start"], f"{where}.start")
        except ProfileError as exc:
            raise RequestError(str(exc)) from None
        tx_id = tx.get("transactionId")
        conn = _coerce(tx["connectorId"], int, f"{where}.connectorId")
        transactions[conn] = Transaction(
            conn, None if tx_id is None else _coerce(tx_id, int, f"{where}.transactionId"), start
        )

    raw_profiles = data.get("profiles") or []
    if not isinstance(raw_profiles, list):
        raise RequestError("profiles: expected a list of {connectorId, csChargingProfiles}")
    installed = InstalledProfiles()
    direct: list[tuple[int, Any]] = []
    rejected: list[str] = []
    replay = context_data.get("installedDirectly") is False if isinstance(context_data, Mapping) else False
    for i, item in enumerate(raw_profiles):
        path = f"profiles[{i}]"
        if not isinstance(item, Mapping) or item.get("connectorId") is None:
            raise RequestError(f"{path}: expected {{connectorId, csChargingProfiles}}")
        conn = _coerce(item["connectorId"], int, f"{path}.connectorId")
        try:
            profile = profile_from_ocpp(item.get("csChargingProfiles"), f"{path}.csChargingProfiles")
        except ProfileError as exc:
            raise RequestError(str(exc)) from None
        if replay:
            installed, verdict = installed.set_profile(
                conn, profile, context=context, transactions=transactions, now=now
            )
            if not verdict.accepted:
                rejected.append(f"{path}: {verdict.reason}")
        else:
            direct.append((conn, profile))
    if not replay:
        installed = InstalledProfiles.of(direct)
    return CompositeRequest(now, connector_id, duration, unit, installed, transactions, context, tuple(rejected))


def answer(request: CompositeRequest) -> Composite:
    return compute_composite(
        request.installed.pairs(),
        connector_id=request.connector_id,
        now=request.now,
        duration=request.duration,
        unit=request.unit,
        context=request.context,
        transactions=request.transactions,
    )


def composite_to_ocpp(composite: Composite) -> dict[str, Any]:
    """The GetCompositeSchedule.conf payload. `limit` None (no restriction) renders as no field."""
    if not composite.accepted:
        out: dict[str, Any] = {"status": "Rejected"}
        if composite.reason:
            out["reason"] = composite.reason
        return out
    start = format_time(composite.schedule_start)
    periods = []
    for p in composite.periods:
        period: dict[str, Any] = {"startPeriod": p.start_period}
        if p.limit is not None:
            period["limit"] = p.limit
        if p.number_phases is not None:
            period["numberPhases"] = p.number_phases
        periods.append(period)
    return {
        "status": "Accepted",
        "connectorId": composite.connector_id,
        "scheduleStart": start,
        "chargingSchedule": {
            "duration": composite.duration,
            "startSchedule": start,
            "chargingRateUnit": composite.unit.value,
            "chargingSchedulePeriod": periods,
        },
    }
