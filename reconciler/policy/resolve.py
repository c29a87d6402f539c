"""Typed documents -> desired state per station: selectors, templates, site caps, claims.

Fourth step of the policy flow (source -> schema -> documents -> resolve -> checks). A station's
desired state is the union of the ChargingPolicies that select it plus what its Site implies.

What a Site implies: nothing, unless it has `spec.stationCap: {chargingProfileId, stackLevel}`.
Then every station the site selects gets a ChargePointMaxProfile on connector 0 (Absolute from
2024-01-01T00:00:00Z, no end) with an equal share of the grid limit: maxPowerW / n in W, or
maxCurrentA / n in A, floored to 0.1, and never above what the station's own hardware can draw
(connectors x maxCurrentA). A station belongs to at most one Site; the Site's timezone
anchors its `time_of_use` templates (stations without a Site use UTC).

Two sources claiming the same chargingProfileId, or the same (connectorId, purpose, stackLevel)
slot, for one station are an error naming both places: a charger would silently replace one with
the other (OCPP16-SMART-CHARGING.md §4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from reconciler.core.profiles import ChargingProfile, ChargingSchedule, Kind, Purpose, RateUnit, SchedulePeriod
from reconciler.policy.checks import Findings, check_profile, check_station_count, now_seconds
from reconciler.policy.diagnostics import Collector, shown
from reconciler.policy.documents import (
    ModelSpec,
    Named,
    Origin,
    PolicySpec,
    ProfileEntry,
    SiteSpec,
    StationSpec,
    build_station,
)
from reconciler.policy.library import library
from reconciler.policy.model import DesiredProfile, DesiredState, Selector, Station
from reconciler.policy.templates import ANCHOR, TemplateCall, TemplateError, derived_id, expand, zone

N = TypeVar("N", bound=Named)
StationBuilder = Callable[[StationSpec, ModelSpec | None, Collector], Station]
Claim = tuple[DesiredProfile, Origin]


@dataclass(slots=True)
class Parsed:
    """Schema-valid documents by kind, in file order."""

    stations: list[StationSpec] = field(default_factory=list)
    models: list[ModelSpec] = field(default_factory=list)
    sites: list[SiteSpec] = field(default_factory=list)
    policies: list[PolicySpec] = field(default_factory=list)


def _unique(items: Iterable[N], kind: str, code: str, diagnostics: Collector) -> dict[str, N]:
    out: dict[str, N] = {}
    for item in items:
        first = out.get(item.name)
        if first is not None:
            diagnostics.error(
                code,
                item.location,
                f"{kind} {item.name!r} is declared twice (first at {first.location})",
                f"keep one {kind} named {item.name!r}, or rename one",
            )
            continue
        out[item.name] = item
    return out


class _Index:
    """Stations by label, so a selector costs its matches, not the fleet size."""

    def __init__(self, stations: Mapping[str, Station]) -> None:
        self.order = {name: i for i, name in enumerate(stations)}
        self.stations = stations
        self.by_label: dict[tuple[str, str], set[str]] = {}
        for name, station in stations.items():
            for pair in station.labels.items():
                self.by_label.setdefault(pair, set()).add(name)

    def select(self, selector: Selector) -> list[str]:
        """The stations a selector matches, in declaration order."""
        candidates: set[str] | None = None
        if selector.stations is not None:
            candidates = {n for n in selector.stations if n in self.stations}
        for pair in (selector.match_labels or {}).items():
            found = self.by_label.get(pair, set())
            candidates = set(found) if candidates is None else candidates & found
        if candidates is None:
            return list(self.stations)
        return sorted(candidates, key=self.order.__getitem__)


def _selected(index: _Index, spec: SiteSpec | PolicySpec, kind: str, diagnostics: Collector) -> list[str]:
    """The stations a Site's or ChargingPolicy's selector picks; a warning when it picks none."""
    chosen = index.select(spec.selector)
    if not chosen:
        diagnostics.warning(
            "selector-matches-nothing",
            spec.doc.at(("spec", "selector")),
            f"the selector of {kind} {spec.name!r} matches no station",
            "check the labels or station names it selects",
        )
    return chosen


def _check_site(site: SiteSpec, diagnostics: Collector) -> None:
    doc = site.doc
    if site.max_power_w is None and site.max_current_a is None:
        diagnostics.error(
            "site-missing-grid-limit",
            doc.at(("spec",)),
            f"Site {site.name!r} has no grid limit",
            "add spec.maxPowerW (W) or spec.maxCurrentA (A per phase)",
        )
    elif site.max_power_w is not None and site.max_current_a is not None:
        diagnostics.error(
            "site-grid-limit-ambiguous",
            doc.at(("spec", "maxCurrentA")),
            f"Site {site.name!r} gives both maxPowerW and maxCurrentA",
            "keep one grid limit",
        )
    if zone(site.timezone) is None:
        diagnostics.error(
            "unknown-timezone",
            doc.at(("spec", "timezone")),
            f"unknown timezone {shown(site.timezone)}",
            "use an IANA name such as Europe/Berlin or UTC",
        )


class _Expander:
    """Template entries -> profiles, once per (policy, entry, timezone); errors reported once."""

    def __init__(self, now: datetime, diagnostics: Collector) -> None:
        self.now = now
        self.diagnostics = diagnostics
        self.cache: dict[tuple[str, int, str], ChargingProfile | None] = {}

    def profile(self, policy: PolicySpec, entry: ProfileEntry, timezone: str) -> ChargingProfile | None:
        if entry.profile is not None:
            return entry.profile
        key = (policy.name, entry.index, timezone)
        if key in self.cache:
            return self.cache[key]
        call = TemplateCall(
            str(entry.template),
            entry.params,
            entry.profile_id if entry.profile_id is not None else derived_id(policy.name, entry.index),
            entry.stack_level if entry.stack_level is not None else 0,
        )
        result: ChargingProfile | None = None
        try:
            result = expand(call, timezone_name=timezone, now=self.now)
        except TemplateError as exc:
            origin = entry.origin
            where = origin.doc.at((*origin.path, "with", exc.param)) if exc.param else origin.at()
            self.diagnostics.error(exc.code, where, f"{entry.template}: {exc.message}", exc.hint)
        self.cache[key] = result
        return result


def _site_cap(site: SiteSpec, members: int, station: Station) -> ChargingProfile | None:
    """The station's share of the grid limit, never above what the station itself can draw."""
    if site.cap_profile_id is None or members == 0:
        return None
    unit, total = (RateUnit.W, site.max_power_w) if site.max_power_w is not None else (RateUnit.A, site.max_current_a)
    if total is None:
        return None
    hardware = station.connectors * (station.max_power_w if unit is RateUnit.W else station.max_current_a)
    share = math.floor(min(total / members, hardware) * 10 + 1e-9) / 10
    schedule = ChargingSchedule(unit, (SchedulePeriod(0, share),), start_schedule=ANCHOR)
    return ChargingProfile(site.cap_profile_id, site.cap_stack_level, Purpose.CHARGE_POINT_MAX, Kind.ABSOLUTE, schedule)


def _site_limit_w(site: SiteSpec, members: int, station: Station) -> float | None:
    """The most a station may draw by its Site, in W: its stationCap share, else the whole grid limit."""
    watts_per_amp = station.voltage * station.phases
    total = site.max_power_w if site.max_power_w is not None else (
        site.max_current_a * watts_per_amp if site.max_current_a is not None else None
    )  # fmt: skip
    if total is None:
        return None
    if site.cap_profile_id is not None and members:
        return min(total / members, station.connectors * station.max_power_w)
    return total


def _claims(station: Station, claims: list[Claim], findings: Findings) -> None:
    by_id: dict[int, DesiredProfile] = {}
    by_slot: dict[tuple[int, Purpose, int], DesiredProfile] = {}
    for desired, _ in claims:
        profile = desired.profile
        first = by_id.get(profile.charging_profile_id)
        if first is not None:
            findings.add(
                "duplicate-profile-id",
                desired.location,
                station.name,
                f"chargingProfileId {profile.charging_profile_id} is claimed twice for {{stations}}: "
                f"here ({desired.policy}) and at {first.location} ({first.policy})",
                "give each profile of a station its own chargingProfileId; a charger replaces a profile "
                "with the same id wherever it is installed",
            )
        else:
            by_id[profile.charging_profile_id] = desired
        slot = (desired.connector_id, profile.purpose, profile.stack_level)
        other = by_slot.get(slot)
        if other is not None:
            findings.add(
                "duplicate-slot",
                desired.location,
                station.name,
                f"connector {slot[0]}, {slot[1].value}, stackLevel {slot[2]} is claimed twice for {{stations}}: "
                f"here ({desired.policy}) and at {other.location} ({other.policy})",
                "use a different stackLevel; the second SetChargingProfile would replace the first",
            )
        else:
            by_slot[slot] = desired
    for (connector, purpose, level), desired in by_slot.items():
        if connector != 0 and purpose is Purpose.TX_DEFAULT:
            shared = by_slot.get((0, purpose, level))
            if shared is not None:
                findings.add(
                    "tx-default-stack-shadow",
                    desired.location,
                    station.name,
                    f"TxDefaultProfile stackLevel {level} is used on connector 0 ({shared.location}) and on "
                    f"connector {connector} of {{stations}}; chargers disagree on which one wins (some keep "
                    "whichever was installed last), so the reconciler cannot know what the charger enforces",
                    "give the connector-specific profile a higher stackLevel",
                )


def _station_cap(station: Station, profiles: Iterable[DesiredProfile], unit: RateUnit) -> float:
    """The most a station may draw: its highest ChargePointMaxProfile limit, else its hardware."""
    best: float | None = None
    scale_w = station.voltage * station.phases
    for desired in profiles:
        profile = desired.profile
        if profile.purpose is not Purpose.CHARGE_POINT_MAX or not profile.schedule.periods:
            continue
        for period in profile.schedule.periods:
            amps = profile.schedule.charging_rate_unit is RateUnit.A
            value = period.limit * scale_w if amps else period.limit
            best = value if best is None else max(best, value)
    watts = best if best is not None else station.connectors * station.max_power_w
    return watts if unit is RateUnit.W else watts / scale_w


def _grid_checks(
    sites: Mapping[str, SiteSpec], members: Mapping[str, list[str]], desired: Mapping[str, DesiredState], out: Collector
) -> None:
    for site in sites.values():
        if site.max_power_w is not None:
            unit, limit, field_name = RateUnit.W, site.max_power_w, "maxPowerW"
        elif site.max_current_a is not None:
            unit, limit, field_name = RateUnit.A, site.max_current_a, "maxCurrentA"
        else:
            continue
        names = [n for n in members.get(site.name, []) if n in desired]
        total = sum(_station_cap(desired[n].station, desired[n].profiles, unit) for n in names)
        if total > limit + 1e-6:
            message = (
                f"the {len(names)} stations of Site {site.name!r} may draw {total:g} {unit.value} together, "
                f"above its grid limit {limit:g} {unit.value}"
            )
            hint = "lower their ChargePointMaxProfile limits, add spec.stationCap to share the limit, or raise it"
            where = site.doc.at(("spec", field_name))
            if site.grid_check == "error":
                out.error("site-over-grid-limit", where, message, hint)
            else:
                out.warning("site-over-grid-limit", where, message, hint)


def resolve(
    parsed: Parsed, now: datetime, diagnostics: Collector, *, build: StationBuilder = build_station
) -> tuple[dict[str, Station], dict[str, DesiredState], tuple[ModelSpec, ...]]:
    """Stations, the desired state of each, and the ChargerModels a station may be given (the
    policy's own, then the library's they do not override); every problem goes to `diagnostics`.
    `build` makes a `Station` of its spec and model (a long-lived caller passes one that reuses
    unchanged ones)."""
    declared = _unique(parsed.models, "ChargerModel", "duplicate-name", diagnostics)
    models = {m.name: m for m in library()}
    models.update(declared)
    choosable = (*declared.values(), *(m for m in library() if m.name not in declared))
    specs = _unique(parsed.stations, "Station", "duplicate-station", diagnostics)
    spec_sync = {name: spec.spec.get("sync") for name, spec in specs.items()}
    stations: dict[str, Station] = {}
    for name, spec in specs.items():
        model_name = spec.spec.get("model")
        model = models.get(model_name) if model_name is not None else None
        if model_name is not None and model is None:
            known = ", ".join(sorted(models)) or "none declared"
            diagnostics.error(
                "unknown-model",
                spec.doc.at(("spec", "model")),
                f"Station {name!r} refers to ChargerModel {model_name!r}, which is neither declared nor in the library",
                f"declare a ChargerModel named {model_name!r} or use one of: {known}",
            )
        stations[name] = build(spec, model, diagnostics)

    index = _Index(stations)
    sites = _unique(parsed.sites, "Site", "duplicate-name", diagnostics)
    site_of: dict[str, SiteSpec] = {}
    members: dict[str, list[str]] = {}
    for site in sites.values():
        _check_site(site, diagnostics)
        chosen = _selected(index, site, "Site", diagnostics)
        taken = [n for n in chosen if n in site_of]
        if taken:
            other = site_of[taken[0]]
            diagnostics.error(
                "station-in-two-sites",
                site.doc.at(("spec", "selector")),
                f"Site {site.name!r} selects {', '.join(taken[:3])}{' and more' if len(taken) > 3 else ''}, "
                f"already in Site {other.name!r} ({other.location})",
                "a station belongs to one grid connection; narrow one of the selectors",
            )
        members[site.name] = [n for n in chosen if n not in site_of]
        for n in members[site.name]:
            site_of[n] = site

    claims: dict[str, list[Claim]] = {n: [] for n in stations}
    sessions: dict[str, list[DesiredProfile]] = {n: [] for n in stations}
    prune: set[str] = set()
    expander = _Expander(now, diagnostics)
    for policy in _unique(parsed.policies, "ChargingPolicy", "duplicate-name", diagnostics).values():
        chosen = _selected(index, policy, "ChargingPolicy", diagnostics)
        for n in chosen:
            if policy.prune_foreign:
                prune.add(n)
            home = site_of.get(n)
            timezone = home.timezone if home is not None and zone(home.timezone) is not None else "UTC"
            for entry in policy.session_entries:
                profile = expander.profile(policy, entry, timezone)
                if profile is not None:
                    sessions[n].append(
                        DesiredProfile(entry.connector_id, profile, policy.name, entry.origin.at(), entry.template)
                    )
            for entry in policy.entries:
                profile = expander.profile(policy, entry, timezone)
                if profile is not None:
                    located = DesiredProfile(
                        entry.connector_id, profile, policy.name, entry.origin.at(), entry.template
                    )
                    claims[n].append((located, entry.origin))

    for site in sites.values():
        origin = Origin(site.doc, ("spec", "stationCap"), raw=False)
        for n in members[site.name]:
            cap = _site_cap(site, len(members[site.name]), stations[n])
            if cap is not None:
                claims[n].append((DesiredProfile(0, cap, site.name, origin.at(), "stationCap"), origin))

    findings = Findings()
    now_s = now_seconds(now)
    desired: dict[str, DesiredState] = {}
    for name, station in stations.items():
        mine = claims[name]
        _claims(station, mine, findings)
        for located, origin in mine:
            check_profile(findings, station, located.connector_id, located.profile, origin, now_s)
        check_station_count(findings, station, len(mine), station.location)
        profiles = tuple(located for located, _ in mine)
        home = site_of.get(name)
        sync = str(spec_sync.get(name) or (home.sync if home is not None else None) or "selfHeal")
        desired[name] = DesiredState(
            station, profiles, station.configuration, name in prune, sync,
            home.name if home is not None else None,
            home.timezone if home is not None and zone(home.timezone) is not None else "UTC",
            _site_limit_w(home, len(members[home.name]), station) if home is not None else None,
            tuple(sessions[name]),
        )  # fmt: skip
    findings.flush(diagnostics)
    _grid_checks(sites, members, desired, diagnostics)
    return stations, desired, choosable
