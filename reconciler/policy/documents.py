"""Schema-valid documents -> typed specs (Station, ChargerModel, Site, ChargingPolicy).

Third step of the policy flow (source -> schema -> documents -> resolve -> checks). The schema has
already vouched for shapes and types, so this module only converts: camelCase to fields, selectors
to `Selector`, raw OCPP profiles to `ChargingProfile` (through the core parser), and keeps an
`Origin` for each profile entry so later checks can point at the exact field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from reconciler.core.context import StationContext
from reconciler.core.profiles import ChargingProfile, ProfileError, profile_from_ocpp
from reconciler.core.wire import RequestError, context_from_json
from reconciler.policy.diagnostics import Collector, Location
from reconciler.policy.model import Selector, Station
from reconciler.policy.source import Document, PathKey


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a profile entry was declared; `at(...)` finds a field inside it."""

    doc: Document
    path: PathKey
    raw: bool = True  # False for template entries and site-implied profiles: fields point at the entry

    def at(self, *suffix: str | int) -> Location:
        return self.doc.at((*self.path, *suffix) if self.raw else self.path)


@dataclass(frozen=True, slots=True)
class Named:
    name: str
    doc: Document

    @property
    def location(self) -> Location:
        return self.doc.at(("metadata", "name"))


@dataclass(frozen=True, slots=True)
class ModelSpec(Named):
    min_current_a: float | None
    capabilities: Mapping[str, Any]
    conventions: Mapping[str, Any]
    vendor: str | None = None  # BootNotification globs it is chosen by (no vendor: only by name)
    product: str | None = None
    firmware: str | None = None
    builtin: bool = False  # from the library shipped with the package


@dataclass(frozen=True, slots=True)
class SiteSpec(Named):
    selector: Selector
    max_power_w: float | None
    max_current_a: float | None
    timezone: str
    grid_check: str  # "warning" | "error"
    cap_profile_id: int | None
    cap_stack_level: int
    sync: str | None = None  # selfHeal | reportOnly (the watch daemon)


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    index: int
    origin: Origin
    connector_id: int
    profile: ChargingProfile | None  # raw entries; None for templates
    template: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    profile_id: int | None = None
    stack_level: int | None = None


@dataclass(frozen=True, slots=True)
class PolicySpec(Named):
    selector: Selector
    prune_foreign: bool
    entries: tuple[ProfileEntry, ...]
    session_entries: tuple[ProfileEntry, ...] = ()  # per-session intents (sessionProfiles)


@dataclass(frozen=True, slots=True)
class StationSpec(Named):
    labels: Mapping[str, str]
    spec: Mapping[str, Any]


def selector_of(data: Mapping[str, Any]) -> Selector:
    stations = data.get("stations")
    labels = data.get("matchLabels")
    return Selector(tuple(stations) if stations is not None else None, dict(labels) if labels is not None else None)


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def station_context(
    connectors: int, max_a: float, phases: int, voltage: float, own_conventions: Mapping[str, Any],
    own_capabilities: Mapping[str, Any], model: ModelSpec | None,
) -> StationContext:  # fmt: skip
    """A station's context: its hardware, its model's conventions and capabilities, its own over
    those (raises RequestError for a value the core cannot read)."""
    conventions: dict[str, Any] = dict(model.conventions) if model else {}
    conventions.update(own_conventions)
    capabilities: dict[str, Any] = dict(model.capabilities) if model else {}
    capabilities.update(own_capabilities)
    conventions.setdefault("defaultLimitA", max_a)
    conventions.setdefault("defaultLimitW", max_a * voltage * phases)
    base = context_from_json({**conventions, "capabilities": capabilities})
    return base.with_(number_of_connectors=connectors, supply_voltage=voltage, default_number_phases=phases,
                      conventions_declared=model is not None or bool(own_conventions))  # fmt: skip


def build_station(spec: StationSpec, model: ModelSpec | None, diagnostics: Collector) -> Station:
    data = spec.spec
    connectors = int(data["connectors"])
    max_a = float(data["maxCurrentA"])
    phases = int(data.get("phases", 3))
    voltage = float(data.get("voltage", 230.0))
    own_conventions = dict(data.get("conventions") or {})
    own_capabilities = dict(data.get("capabilities") or {})
    try:
        context = station_context(connectors, max_a, phases, voltage, own_conventions, own_capabilities, model)
    except RequestError as exc:  # the schema admits only what the core reads; kept as a safety net
        diagnostics.error("bad-conventions", spec.doc.at(("spec",)), str(exc), "see schemas/policy.schema.json")
        context = StationContext(number_of_connectors=connectors, supply_voltage=voltage, default_number_phases=phases)
    min_a = data.get("minCurrentA", model.min_current_a if model and model.min_current_a is not None else 6.0)
    configuration = {str(k): _config_value(v) for k, v in (data.get("configuration") or {}).items()}
    return Station(
        name=spec.name,
        labels=dict(spec.labels),
        connectors=connectors,
        max_current_a=max_a,
        phases=phases,
        voltage=voltage,
        configuration=configuration,
        context=context,
        location=spec.location,
        model=data.get("model"),
        min_current_a=float(min_a),
        own_conventions=own_conventions,
        own_capabilities=own_capabilities,
    )


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _profile_path(error_path: str) -> PathKey:
    """`p.chargingSchedule.chargingSchedulePeriod[0].limit` -> the same as a path key (minus `p`)."""
    parts: list[str | int] = [int(m.group(2)) if m.group(2) else m.group(1) for m in _PATH_PART.finditer(error_path)]
    return tuple(parts[1:])


def _entry(
    doc: Document, index: int, data: Mapping[str, Any], diagnostics: Collector, key: str = "profiles"
) -> ProfileEntry | None:
    path: PathKey = ("spec", key, index)
    connector = int(data.get("connectorId", 0))
    if "template" in data:
        origin = Origin(doc, path, raw=False)
        return ProfileEntry(
            index,
            origin,
            connector,
            None,
            template=str(data["template"]),
            params=dict(data.get("with") or {}),
            profile_id=data.get("chargingProfileId"),
            stack_level=data.get("stackLevel"),
        )
    origin = Origin(doc, path)
    if _dates_out_of_range(doc, path, data, diagnostics):
        return None
    payload = {k: v for k, v in data.items() if k not in ("connectorId", "description")}
    try:
        profile = profile_from_ocpp(payload, "p")
    except ProfileError as exc:
        where = doc.at((*path, *_profile_path(exc.path)))
        message = exc.message
        if len(message) > 200:
            message = f"{message[:150]}... ({len(message):,} characters)"
        diagnostics.error("bad-profile-field", where, message, "use an ISO 8601 date-time such as 2024-01-01T00:00:00Z")
        return None
    return ProfileEntry(index, origin, connector, profile)


_DATE_FIELDS: tuple[PathKey, ...] = (("validFrom",), ("validTo",), ("chargingSchedule", "startSchedule"))


def utc_overflows(text: str) -> bool:
    """True for an ISO 8601 date-time with an offset that leaves years 1..9999 once in UTC
    (`0001-01-01T00:00:00+01:00`, `9999-12-31T23:59:59-01:00`): no datetime can hold it."""
    value = text.strip()
    if value.endswith(("z", "Z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False  # not a date-time at all: the profile parser says so
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return True
    return False


def _dates_out_of_range(doc: Document, path: PathKey, data: Mapping[str, Any], diagnostics: Collector) -> bool:
    bad = False
    for field_path in _DATE_FIELDS:
        value: Any = data
        for part in field_path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str) and utc_overflows(value):
            diagnostics.error(
                "date-out-of-range",
                doc.at((*path, *field_path)),
                f"{field_path[-1]} {value!r} is outside the years 1 to 9999 once converted to UTC",
                "use a date-time such as 2024-01-01T00:00:00Z",
            )
            bad = True
    return bad


def build_policy(doc: Document, name: str, diagnostics: Collector) -> PolicySpec:
    spec = doc.data["spec"]
    entries = []
    for i, item in enumerate(spec.get("profiles") or []):
        entry = _entry(doc, i, item, diagnostics)
        if entry is not None:
            entries.append(entry)
    sessions = []
    for i, item in enumerate(spec.get("sessionProfiles") or []):
        entry = _entry(doc, i, item, diagnostics, "sessionProfiles") if isinstance(item, Mapping) else None
        if entry is not None:
            sessions.append(replace(entry, index=10_000 + i))
    return PolicySpec(name, doc, selector_of(spec["selector"]), spec.get("prune") == "foreign", tuple(entries),
                      tuple(sessions))  # fmt: skip


def build_site(doc: Document, name: str) -> SiteSpec:
    spec = doc.data["spec"]
    cap = spec.get("stationCap") or {}
    return SiteSpec(
        name,
        doc,
        selector_of(spec["selector"]),
        spec.get("maxPowerW"),
        spec.get("maxCurrentA"),
        str(spec.get("timezone", "UTC")),
        str(spec.get("gridLimitCheck", "warning")),
        cap.get("chargingProfileId"),
        int(cap.get("stackLevel", 0)),
        spec.get("sync"),
    )


def build_model(doc: Document, name: str, *, builtin: bool = False) -> ModelSpec:
    spec = doc.data["spec"]
    return ModelSpec(
        name, doc, spec.get("minCurrentA"), dict(spec.get("capabilities") or {}), dict(spec.get("conventions") or {}),
        spec.get("vendor"), spec.get("model"), spec.get("firmware"), builtin,
    )  # fmt: skip


def build_station_spec(doc: Document, name: str) -> StationSpec:
    metadata = doc.data["metadata"]
    return StationSpec(name, doc, dict(metadata.get("labels") or {}), doc.data["spec"])
