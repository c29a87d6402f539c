"""The policy language's values: what the loader hands to the engine.

End of the policy flow (source -> schema -> documents -> resolve -> checks -> here). A
`PolicySet` holds every `Station` and, per station, its `DesiredState`: the profiles the charger
should hold (from the ChargingPolicies that select it and from its Site), the configuration keys
it should have, and whether foreign profiles are to be pruned. It also carries every diagnostic;
`ok` is False when any is an error, and then nothing may be planned or applied (DESIGN §6.2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.core.context import StationContext
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import ChargingProfile
from reconciler.policy.diagnostics import Diagnostic, Location

if TYPE_CHECKING:
    from reconciler.policy.documents import ModelSpec


@dataclass(frozen=True, slots=True)
class Selector:
    """Stations by name and/or labels; both given means both must hold."""

    stations: tuple[str, ...] | None = None
    match_labels: Mapping[str, str] | None = None

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.stations is not None and name not in self.stations:
            return False
        if self.match_labels is not None:
            return all(labels.get(k) == v for k, v in self.match_labels.items())
        return True


def labels_match(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    return selector is None or all(labels.get(k) == v for k, v in selector.items())


@dataclass(frozen=True, slots=True)
class Station:
    """One physical charge point (`kind: Station`); `name` is its OCPP identity."""

    name: str
    labels: Mapping[str, str]
    connectors: int
    max_current_a: float  # per phase, per connector: what a connector draws with no limit
    phases: int
    voltage: float
    configuration: Mapping[str, str]
    context: StationContext
    location: Location
    model: str | None = None  # the ChargerModel it declares (None: chosen from its BootNotification)
    min_current_a: float = 6.0
    own_conventions: Mapping[str, Any] = field(default_factory=dict)  # declared on the Station itself
    own_capabilities: Mapping[str, Any] = field(default_factory=dict)

    @property
    def max_power_w(self) -> float:
        """One connector's hardware maximum in W."""
        return self.max_current_a * self.voltage * self.phases


@dataclass(frozen=True, slots=True)
class DesiredProfile:
    """A profile the station should hold on `connector_id`, and where it was declared."""

    connector_id: int
    profile: ChargingProfile
    policy: str  # the ChargingPolicy (or Site) that produced it
    location: Location
    template: str | None = None


@dataclass(frozen=True, slots=True)
class DesiredState:
    """Everything git says one station should be."""

    station: Station
    profiles: tuple[DesiredProfile, ...]
    configuration: Mapping[str, str]
    prune_foreign: bool
    sync: str = "selfHeal"  # what the watch daemon does with drift: selfHeal | reportOnly
    site: str | None = None  # the Site (grid connection) the station belongs to
    site_timezone: str = "UTC"
    site_limit_w: float | None = None  # the most the station may draw by its Site (its stationCap share, else the grid)
    sessions: tuple[DesiredProfile, ...] = ()  # per-session intents (sessionProfiles), sent per transaction

    def installed(self) -> InstalledProfiles:
        """The profiles as the charger should hold them, in declaration order."""
        return InstalledProfiles.of([(p.connector_id, p.profile) for p in self.profiles])


@dataclass(frozen=True)
class PolicySet:
    """The loaded policy directory: stations, desired state per station, diagnostics."""

    stations: Mapping[str, Station]
    desired: Mapping[str, DesiredState]
    diagnostics: tuple[Diagnostic, ...]
    revision: str | None
    files: tuple[str, ...]
    skipped: tuple[str, ...] = field(default=())  # YAML files holding no reconciler documents
    models: tuple[ModelSpec, ...] = field(default=())  # ChargerModels a station may be given, in order

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "warning")

    def select(self, station_ids: Sequence[str] = (), selector: Mapping[str, str] | None = None) -> list[str]:
        """Station names, sorted: those named (all when none are), narrowed by a label selector.
        Names that are not declared stations are left out."""
        names = [n for n in dict.fromkeys(station_ids) if n in self.stations] if station_ids else list(self.stations)
        return sorted(n for n in names if labels_match(selector, self.stations[n].labels))
