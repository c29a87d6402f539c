"""From desired state, ledger and observed drift to ordered actions: the plan of one station.

Flow: (engine) observations + ledger + desired -> `plan_station` -> `StationPlan` -> (render) text
or JSON, (engine) apply. Pure: no I/O; `now` is a parameter.

What it decides, in order:
1. ChangeConfiguration for every desired key whose value differs (readonly keys are reported,
   never written);
2. SetChargingProfile for desired profiles the ledger does not hold (`+`), holds with other
   content (`~`, replaced in place under the same id), or that a drifted connector lost (`+`);
3. ClearChargingProfile by id for ledger profiles no longer desired (`-`), unless a new profile
   already replaced them by id or slot; never a profile the ledger does not own;
4. with `prune: foreign`, when the charger shows caps nobody in the ledger installed: clears by
   (connector, purpose, stackLevel) of the slots our profiles do not use (`!`).

Make-before-break: sets come before clears, and the order is *proved*, not assumed: every
intermediate state is simulated with the charger's own rules (core.installed + core.composite) and
must, on every connector and at every instant of the horizon, stay capped wherever both the old and
the new desired state are capped, and never allow more than the looser of the two. Candidate
orders are tried (higher stack first, each purpose first, then permutations of a few sets); when
none holds, the plan is refused with the reason (e.g. MaxChargingProfilesInstalled leaves no spare
slot). A station whose charger already matches gets no actions: applying a synced fleet sends
nothing.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.core.composite import compute_composite
from reconciler.core.context import StationContext, Transaction, Uncovered
from reconciler.core.diff import ConnectorDrift, DriftClass, Normaliser, expected_timeline
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import ChargingProfile, Purpose, RateUnit, profile_to_ocpp
from reconciler.core.timeline import Timeline, loosest, walk

_PURPOSE_RANK = {Purpose.CHARGE_POINT_MAX: 0, Purpose.TX_DEFAULT: 1, Purpose.TX: 2}


class ActionKind(enum.StrEnum):
    CONFIGURE = "configure"
    SET = "set"
    REPLACE = "replace"
    CLEAR = "clear"
    PRUNE = "prune"

    @property
    def symbol(self) -> str:
        return {"configure": "~", "set": "+", "replace": "~", "clear": "-", "prune": "!"}[self.value]


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    reason: str
    connector_id: int | None = None
    profile: ChargingProfile | None = None
    profile_id: int | None = None
    key: str | None = None
    value: str | None = None
    purpose: Purpose | None = None
    stack_level: int | None = None
    digest: str | None = None  # content_hash of a profile being set

    def ocpp(self) -> tuple[str, dict[str, Any]]:
        """(OCPP action, payload) that carries this action out."""
        if self.kind is ActionKind.CONFIGURE:
            return "ChangeConfiguration", {"key": self.key, "value": self.value}
        if self.kind in (ActionKind.SET, ActionKind.REPLACE):
            assert self.profile is not None and self.connector_id is not None
            return "SetChargingProfile", {
                "connectorId": self.connector_id,
                "csChargingProfiles": profile_to_ocpp(self.profile),
            }
        if self.kind is ActionKind.CLEAR:
            return "ClearChargingProfile", {"id": self.profile_id}
        payload: dict[str, Any] = {"connectorId": self.connector_id, "stackLevel": self.stack_level}
        if self.purpose is not None:
            payload["chargingProfilePurpose"] = self.purpose.value
        return "ClearChargingProfile", payload

    def describe(self) -> str:
        if self.kind is ActionKind.CONFIGURE:
            return f"{self.key} = {self.value!r}"
        if self.profile is not None:
            p = self.profile
            where = f"on connector {self.connector_id}"
            return f"profile #{p.charging_profile_id} {p.purpose.value} stack {p.stack_level} {where}"
        if self.kind is ActionKind.CLEAR:
            return f"profile #{self.profile_id}"
        purpose = self.purpose.value if self.purpose else "any purpose"
        return f"foreign profiles at {purpose} stack {self.stack_level} on connector {self.connector_id}"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A profile the reconciler installed on a station (the inventory it may clear)."""

    connector_id: int
    profile: ChargingProfile
    content_hash: str
    revision: str | None = None


@dataclass(frozen=True, slots=True)
class ConfigValue:
    value: str | None  # None: the charger does not know the key
    readonly: bool = False


@dataclass(frozen=True, slots=True)
class StationPlan:
    station_id: str
    actions: tuple[Action, ...]
    drift: tuple[ConnectorDrift, ...]
    invariant: str
    refused: str | None = None
    notes: tuple[str, ...] = ()
    adopted: tuple[int, ...] = ()  # ids sent before a crash, verifiably held, not yet in the ledger
    foreign: bool = False  # the charger shows caps the ledger cannot explain
    as_recorded: bool = True  # the charger reports what the ledger says it holds (differences are policy changes)
    owned: int = 0  # profiles the ledger records for the station

    @property
    def in_sync(self) -> bool:
        return not self.actions and not self.refused and all(d.in_sync for d in self.drift)

    def count(self, *kinds: ActionKind) -> int:
        return sum(1 for a in self.actions if a.kind in kinds)


@dataclass(frozen=True, slots=True)
class Desired:
    profiles: tuple[tuple[int, ChargingProfile], ...]
    configuration: Mapping[str, str] = field(default_factory=dict)
    prune_foreign: bool = False


def content_hash(connector_id: int, profile: ChargingProfile) -> str:
    """A stable digest of what would be sent: same hash, same SetChargingProfile."""
    return hashlib.sha256(repr((connector_id, sorted(profile_to_ocpp(profile).items()))).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1024)
def expectation_context(context: StationContext) -> StationContext:
    """The station's context as the reconciler judges it: uncovered time is "no limit", unrounded."""
    return context.with_(uncovered=Uncovered.NO_LIMIT, limit_step=None)


@dataclass(frozen=True, slots=True)
class Window:
    """Where and when the plan is judged: the station's context, now, horizon, unit, transactions."""

    context: StationContext
    now: datetime
    horizon: int
    unit: RateUnit
    normaliser: Normaliser
    transactions: Mapping[int, Transaction] = field(default_factory=dict)
    expect: StationContext = field(init=False, repr=False, compare=False)  # the context, "no limit" as None

    def __post_init__(self) -> None:
        object.__setattr__(self, "expect", expectation_context(self.context))

    @property
    def connectors(self) -> range:
        return range(1, self.context.number_of_connectors + 1)

    def timelines(self, installed: InstalledProfiles) -> list[Timeline]:
        ctx = self.expect
        pairs = installed.pairs()
        return [
            expected_timeline(
                compute_composite(
                    pairs,
                    connector_id=c,
                    now=self.now,
                    duration=self.horizon,
                    unit=self.unit,
                    context=ctx,
                    transactions=self.transactions,
                ),
                self.normaliser,
            )
            for c in self.connectors
        ]


def _affects(connector_id: int, drift: ConnectorDrift) -> bool:
    return connector_id in (0, drift.connector_id)


def _bounded(state: list[Timeline], old: list[Timeline], new: list[Timeline], window: Window) -> str | None:
    """None when `state` stays within max(old, new) everywhere; else what breaks, for a person."""
    for c, (now_t, old_t, new_t) in zip(window.connectors, zip(state, old, new, strict=True), strict=True):
        for begin, _, (value, before, after) in walk(now_t, old_t, new_t):
            bound = loosest(before, after)
            if bound is None:
                continue
            if value is None:
                return f"connector {c} would be uncapped from +{begin - now_t.start}s"
            if value > bound + window.normaliser.tolerance(window.unit, bound):
                unit = window.unit.value
                return f"connector {c} would allow {value:g} {unit} (> {bound:g}) from +{begin - now_t.start}s"
    return None


def _simulate(
    start: InstalledProfiles, actions: Sequence[Action], window: Window, old: list[Timeline], new: list[Timeline]
) -> str | None:
    """Run `actions` on a model of the charger; None if every intermediate state is safe."""
    installed = start
    for action in actions:
        if action.kind in (ActionKind.SET, ActionKind.REPLACE):
            assert action.profile is not None and action.connector_id is not None
            installed, result = installed.set_profile(
                action.connector_id,
                action.profile,
                context=window.context,
                transactions=window.transactions,
                now=window.now,
            )
            if not result.accepted:
                return f"the charger would reject {action.describe()}: {result.reason}"
        elif action.kind is ActionKind.CLEAR:
            installed, _ = installed.clear(profile_id=action.profile_id)
        else:
            continue
        problem = _bounded(window.timelines(installed), old, new, window)
        if problem:
            return f"after {action.kind.value} {action.describe()}: {problem}"
    return None


def _orders(sets: list[Action], clears: list[Action]) -> list[list[Action]]:
    """Candidate orders, most natural first: sets (higher stack first) then clears (lower first)."""
    candidates: list[list[Action]] = []
    for cap_first in (True, False):

        def rank(action: Action, descending: bool, cap_first: bool = cap_first) -> tuple[int, int]:
            assert action.profile is not None or action.purpose is not None or action.profile_id is not None
            purpose = action.profile.purpose if action.profile else action.purpose or Purpose.TX_DEFAULT
            stack = action.profile.stack_level if action.profile else action.stack_level or 0
            first = _PURPOSE_RANK[purpose] if cap_first else -_PURPOSE_RANK[purpose]
            return first, -stack if descending else stack

        candidates.append(sorted(sets, key=lambda a: rank(a, True)) + sorted(clears, key=lambda a: rank(a, False)))
    if len(sets) <= 5:
        for perm in itertools.permutations(sets):
            candidates.append([*perm, *candidates[0][len(sets) :]])
    return candidates


def plan_station(
    station_id: str,
    desired: Desired,
    ledger: Sequence[LedgerEntry],
    drift: Sequence[ConnectorDrift],
    window: Window,
    *,
    configuration: Mapping[str, ConfigValue] | None = None,
    ledger_matches: Sequence[bool] = (),
    unconfirmed: frozenset[str] = frozenset(),
    timelines: tuple[list[Timeline], list[Timeline]] | None = None,
) -> StationPlan:
    """The ordered, verified-safe actions that bring one station to its desired state.
    `ledger_matches[i]` says whether connector i+1's observation is what the ledger predicts;
    `unconfirmed` holds the content hashes of SetChargingProfile calls sent but never recorded as
    answered (a crash mid-apply): such a profile is adopted into the ledger, not sent again, when
    the charger's composite verifiably matches. `timelines` are (old, new) expected timelines per
    connector at `window.now`, when the caller already has them."""
    notes: list[str] = []
    actions: list[Action] = []
    for key, value in sorted(desired.configuration.items()):
        actual = (configuration or {}).get(key)
        if actual is not None and actual.value == value:
            continue
        if actual is not None and actual.readonly:
            notes.append(f"configuration {key} is readonly on the charger ({actual.value!r}); wanted {value!r}")
            continue
        was = "unknown to the charger" if actual is None or actual.value is None else f"is {actual.value!r}"
        actions.append(Action(ActionKind.CONFIGURE, f"{key} {was}", key=key, value=value))

    in_sync = all(d.in_sync for d in drift)
    lost = [d for d in drift if not d.in_sync and (d.primary in (DriftClass.MISSING, DriftClass.SHADOWED))]
    owned = {e.profile.charging_profile_id: e for e in ledger}
    sets: list[Action] = []
    adopted: list[int] = []
    for connector_id, profile in desired.profiles:
        entry = owned.get(profile.charging_profile_id)
        digest = content_hash(connector_id, profile)
        if entry is None and in_sync and digest in unconfirmed:
            adopted.append(profile.charging_profile_id)
        elif entry is None:
            sets.append(Action(ActionKind.SET, "not installed yet", connector_id, profile, digest=digest))
        elif entry.content_hash != digest:
            since = f" (installed from {entry.revision})" if entry.revision else ""
            sets.append(Action(ActionKind.REPLACE, f"changed in policy{since}", connector_id, profile, digest=digest))
        else:
            hit = next((d for d in lost if _affects(connector_id, d)), None)
            if hit is not None:
                reason = f"re-install: connector {hit.connector_id} {hit.primary}"
                sets.append(Action(ActionKind.SET, reason, connector_id, profile, digest=digest))

    start = InstalledProfiles.of([(e.connector_id, e.profile) for e in ledger])
    after_sets = start
    for action in sets:
        assert action.profile is not None and action.connector_id is not None
        after_sets, _ = after_sets.set_profile(
            action.connector_id, action.profile, context=window.context, now=window.now
        )
    desired_ids = {p.charging_profile_id for _, p in desired.profiles}
    clears = [
        Action(ActionKind.CLEAR, "no longer in policy", e.connector_id, profile_id=e.profile.charging_profile_id)
        for e in ledger
        if e.profile.charging_profile_id not in desired_ids
        and after_sets.by_id(e.profile.charging_profile_id) is not None
    ]
    for e in ledger:
        if e.profile.charging_profile_id not in desired_ids and after_sets.by_id(e.profile.charging_profile_id) is None:
            notes.append(f"profile #{e.profile.charging_profile_id} leaves with the profile that replaces it")

    foreign = any(not ok for ok in ledger_matches) and any(
        not d.in_sync and d.primary in (DriftClass.EXTRA, DriftClass.SHADOWED) for d in drift
    )
    prunes: list[Action] = []
    if foreign and desired.prune_foreign:
        prunes = _prune_actions(desired, window)
    elif foreign:
        notes.append("the charger shows a cap the reconciler did not install; set `prune: foreign` to clear it")

    if timelines is None:
        old, new = window.timelines(start), window.timelines(InstalledProfiles.of(list(desired.profiles)))
    else:
        old, new = timelines
    refused: str | None = None
    ordered: list[Action] = [*sets, *clears]
    if sets or clears:
        problems = []
        for candidate in _orders(sets, clears):
            problem = _simulate(start, candidate, window, old, new)
            if problem is None:
                ordered = candidate
                break
            problems.append(problem)
        else:
            refused = f"no make-before-break order keeps the charger capped: {problems[0]}"
    invariant = (
        f"make-before-break: each of {len(ordered)} step(s) simulated on connectors "
        f"{window.connectors.start}..{window.connectors.stop - 1} over {window.horizon} s "
        "stays within the old and new caps"
        if ordered
        else "nothing to change"
    )
    return StationPlan(
        station_id,
        (*actions, *ordered, *prunes),
        tuple(drift),
        invariant,
        refused,
        tuple(notes),
        tuple(adopted),
        foreign,
        all(ledger_matches),
        len(ledger),
    )


def _prune_actions(desired: Desired, window: Window) -> list[Action]:
    """Clear every (connector, purpose, stackLevel) slot our desired profiles do not occupy."""
    ours = {(c, p.purpose, p.stack_level) for c, p in desired.profiles}
    top = window.context.capabilities.max_stack_level
    slots: list[tuple[int, Purpose]] = [(0, Purpose.CHARGE_POINT_MAX), (0, Purpose.TX_DEFAULT)]
    slots += [(c, Purpose.TX_DEFAULT) for c in window.connectors]
    return [
        Action(
            ActionKind.PRUNE,
            "prune: foreign",
            connector_id=c,
            purpose=purpose,
            stack_level=level,
        )
        for c, purpose in slots
        for level in range(top + 1)
        if (c, purpose, level) not in ours
    ]
