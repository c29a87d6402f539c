"""From desired state, ledger and observed drift to ordered actions: the plan of one station.

Flow: (engine) observations + ledger (and the states it allows that the observation explains,
`core.holdings`) + desired -> `plan_station` -> `StationPlan` -> (render) text or JSON, (engine)
apply. Pure: no I/O; `now` is a parameter.

What it decides:
1. ChangeConfiguration for every desired key whose value differs (readonly keys are reported,
   never written);
2. SetChargingProfile for desired profiles the ledger does not hold (`+`), holds with other
   content (`~`, replaced in place under the same id), may not hold (sent before an interruption
   and never answered, accepted but not shown in force by a read-back, or possibly replaced by
   such a profile: sent again, a same-id Set is idempotent), or that the charger lost (`+`: its
   composite differs from what the ledger predicts, not from what the policies now ask; only
   those the read-back does not show in force, `blame.possibly_lost`);
3. ClearChargingProfile by id for ledger profiles no longer desired that may be on the charger
   (`-`), unless a new profile replaces them by id or slot anyway; never a profile the ledger does
   not own;
4. foreign caps (the charger caps below what any state the ledger allows predicts): a Set could
   replace one that shares its (connector, purpose, stackLevel) slot, so without `prune: foreign`
   the plan is *blocked* until a person decides; with it, the slots our profiles do not use are
   cleared (`!`). Likewise a charger that allows *more* than our profiles although it accepted
   them before (`overridden`: a foreign profile at a higher stack level): with `prune: foreign`
   the free slots are cleared; without, the station is Degraded with the reason.

Make-before-break: sets come first, then prunes, then clears, and the order is proved by
simulation from every state the charger may be in (`safety.py`), with the points where the engine
reads the composite back before a clear; when no order holds, the plan is refused with the reason.
A station whose charger matches gets no actions: applying a synced fleet sends nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from reconciler.core.actions import (
    DOUBT_RESTARTED,
    Action,
    ActionKind,
    ConfigValue,
    LedgerEntry,
    LedgerState,
    content_hash,
)
from reconciler.core.blame import possibly_lost
from reconciler.core.diff import ConnectorDrift, DriftClass
from reconciler.core.holdings import Holding, possible_holdings
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import ChargingProfile, Purpose
from reconciler.core.safety import Checkpoint, Window, prove_order

__all__ = [
    "Action", "ActionKind", "ConfigValue", "Desired", "LedgerEntry", "StationPlan", "Window",
    "content_hash", "plan_station",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class StationPlan:
    station_id: str
    actions: tuple[Action, ...]
    drift: tuple[ConnectorDrift, ...]
    invariant: str
    refused: str | None = None  # no safe order exists: nothing may be sent
    notes: tuple[str, ...] = ()
    blocked: str | None = None  # a person must decide first (foreign caps without `prune: foreign`)
    foreign: bool = False  # the charger shows caps the ledger cannot explain
    as_recorded: bool = True  # the charger reports what the ledger says it holds (differences are policy changes)
    owned: int = 0  # profiles the ledger records for the station
    checkpoints: tuple[Checkpoint, ...] = ()  # where in `actions` to read the composites back
    starts: tuple[InstalledProfiles, ...] = ()  # the states the charger may be in, as planned from
    not_enforced: tuple[int, ...] = ()  # ids the charger accepted earlier without enforcing them
    uncertain: int = 0  # ledger entries whose arrival is uncertain (a read-back may settle them)
    # Connectors the charger allows more on than the policy although it accepted our profiles for them
    # before: a profile the reconciler did not install may override ours (`prune: foreign` removes it).
    overridden: tuple[ConnectorDrift, ...] = ()

    @property
    def in_sync(self) -> bool:
        return not self.actions and not self.refused and not self.blocked and all(d.in_sync for d in self.drift)

    @property
    def executable(self) -> bool:
        return bool(self.actions) and not self.refused and not self.blocked


@dataclass(frozen=True, slots=True)
class Desired:
    profiles: tuple[tuple[int, ChargingProfile], ...]
    configuration: Mapping[str, str] = field(default_factory=dict)
    prune_foreign: bool = False


def _configuration(desired: Desired, configuration: Mapping[str, ConfigValue], notes: list[str]) -> list[Action]:
    actions = []
    for key, value in sorted(desired.configuration.items()):
        actual = configuration.get(key)
        if actual is not None and actual.value == value:
            continue
        if actual is not None and actual.readonly:
            notes.append(f"configuration {key} is readonly on the charger ({actual.value!r}); wanted {value!r}")
            continue
        was = "unknown to the charger" if actual is None or actual.value is None else f"is {actual.value!r}"
        actions.append(Action(ActionKind.CONFIGURE, f"{key} {was}", key=key, value=value))
    return actions


_AGAIN = {
    LedgerState.UNCONFIRMED: "sent before an interruption, its answer never recorded",
    LedgerState.UNVERIFIED: "accepted, but not yet shown in force by a read-back",
    LedgerState.NOT_ENFORCED: "accepted before, but the charger did not enforce it: sent again",
    LedgerState.ACCEPTED: "may have been replaced by a profile whose arrival is uncertain",
}

_ACCEPTED_BEFORE = {_AGAIN[LedgerState.UNVERIFIED], _AGAIN[LedgerState.NOT_ENFORCED]}


def again(entry: LedgerEntry) -> str:
    """Why a profile the ledger may hold is sent again: what made its entry uncertain."""
    if entry.doubt and entry.state is LedgerState.UNCONFIRMED:
        return entry.doubt
    return _AGAIN[entry.state]


def _sets(
    desired: Desired, ledger: Sequence[LedgerEntry], holdings: Sequence[Holding], lost: Sequence[ConnectorDrift],
    suspects: frozenset[int] | None, shown: Sequence[ConnectorDrift] = (),
) -> list[Action]:  # fmt: skip
    """`lost`: where the charger differs from what the ledger says it holds; `suspects`: the ids the
    read-back may have lost (`blame.possibly_lost`; None: every profile on a connector whose answers
    show a loss); `shown`: where it lacks what the policies ask (what a restart took shows there)."""
    latest = {e.profile.charging_profile_id: e for e in ledger}  # the last sent under each id
    sets = []
    for connector_id, profile in desired.profiles:
        profile_id = profile.charging_profile_id
        entry = latest.get(profile_id)
        digest = content_hash(connector_id, profile)
        reason: str | None = None
        kind = ActionKind.SET
        same = [e for e in ledger if e.profile.charging_profile_id == profile_id and e.content_hash == digest]
        if entry is None:
            reason = "not installed yet"
        elif all(h.has(profile_id, digest) for h in holdings):
            if suspects is None:
                hit = next((d for d in lost if connector_id in (0, d.connector_id)), None)
            elif profile_id in suspects:
                hit = next((d for d in lost if connector_id in (0, d.connector_id)), lost[0] if lost else None)
            else:
                hit = None  # the read-back shows it in force, or its loss would change no answer
            if hit is not None:
                reason = f"re-install: connector {hit.connector_id} {hit.primary}"
        elif same and same[-1].doubt == DOUBT_RESTARTED and not any(h.has(profile_id, digest) for h in holdings):
            hit = next((d for d in shown if connector_id in (0, d.connector_id)), None)  # lost at the restart
            where = f"connector {hit.connector_id} {hit.primary}" if hit else "lost at a restart"
            reason = f"re-install: {where}"
        elif same:
            reason = again(same[-1])
        else:
            kind, reason = (
                ActionKind.REPLACE,
                "changed in policy" + (f" (installed from {entry.revision})" if entry.revision else ""),
            )
        if reason is not None:
            sets.append(Action(kind, reason, connector_id, profile, digest=digest))
    return sets


def _clears(
    desired: Desired, ledger: Sequence[LedgerEntry], starts: Sequence[InstalledProfiles], sets: Sequence[Action],
    window: Window, notes: list[str],
) -> list[Action]:  # fmt: skip
    """A Clear by id for every ledger profile no longer desired that may be on the charger."""
    desired_ids = {p.charging_profile_id for _, p in desired.profiles}
    afters = []
    for start in starts:
        after = start
        for action in sets:
            assert action.profile is not None and action.connector_id is not None
            after, _ = after.set_profile(action.connector_id, action.profile, context=window.context, now=window.now)
        afters.append(after)
    clears = []
    done: set[int] = set()
    for e in reversed(ledger):
        profile_id = e.profile.charging_profile_id
        if profile_id in desired_ids or profile_id in done:
            continue
        done.add(profile_id)
        if not any(start.by_id(profile_id) for start in starts):
            continue  # in no state the charger may be in
        if not any(after.by_id(profile_id) for after in afters):
            notes.append(f"profile #{profile_id} leaves with the profile that replaces it")
            continue
        clears.append(Action(ActionKind.CLEAR, "no longer in policy", e.connector_id, profile_id=profile_id,
                             purpose=e.profile.purpose, stack_level=e.profile.stack_level))  # fmt: skip
    clears.reverse()
    return clears


def plan_station(
    station_id: str,
    desired: Desired,
    ledger: Sequence[LedgerEntry],
    drift: Sequence[ConnectorDrift],
    window: Window,
    *,
    configuration: Mapping[str, ConfigValue] | None = None,
    as_recorded: bool = True,
    foreign_caps: bool = False,
    holdings: Sequence[Holding] | None = None,
    recorded: Sequence[ConnectorDrift] = (),
) -> StationPlan:
    """The ordered, verified-safe actions that bring one station to its desired state.

    `drift` compares the observation with the desired state; `holdings` are the states the charger
    may be in (those the observation explains, else every state the ledger allows; by default all),
    `recorded` compares the observation with them (a difference there is a loss: what it touches is
    installed again); `as_recorded` says whether some state explains the observation, `foreign_caps`
    whether every state leaves a cap below it unexplained (a profile the reconciler did not install)."""
    notes: list[str] = []
    actions = _configuration(desired, configuration or {}, notes)
    holdings = list(holdings) if holdings else possible_holdings(ledger)
    lost = [d for d in recorded if not d.in_sync and d.primary in (DriftClass.MISSING, DriftClass.SHADOWED)]
    # Only what the read-back may have lost is sent again, not every profile of a connector that differs.
    suspects = possibly_lost(window, holdings[0].installed, recorded) if lost else None
    shown = [d for d in drift if not d.in_sync and d.primary in (DriftClass.MISSING, DriftClass.SHADOWED)]
    sets = _sets(desired, ledger, holdings, lost, suspects, shown)
    starts = [h.installed for h in holdings]
    clears = _clears(desired, ledger, starts, sets, window, notes)

    # Sent again although the charger accepted them before, and the charger allows more than they
    # should, which no state the ledger allows explains (not our old profiles still in force): not
    # (only) a lost profile, which the earlier Set would have restored.
    resent = not as_recorded and any(a.reason in _ACCEPTED_BEFORE for a in sets)
    overridden = [d for d in shown if d.primary is DriftClass.SHADOWED] if resent else []
    blocked: str | None = None
    prunes: list[Action] = []
    if (foreign_caps or overridden) and desired.prune_foreign:
        prunes = prune_actions(desired, window, focus=prune_focus(overridden if not foreign_caps else drift))
        if not window.context.capabilities.max_stack_level_known:
            notes.append(f"prune covers stack levels 0..{prune_bound(window)}: the charger does not report "
                         "ChargeProfileMaxStackLevel and no ChargerModel declares it")  # fmt: skip
    elif foreign_caps:
        first = next((d for d in drift if not d.in_sync), None)
        seen = f" ({first.describe()})" if first else ""
        blocked = (
            f"the charger shows a cap the reconciler did not install{seen}; a profile set into the same "
            "(connector, purpose, stackLevel) slot would silently replace it. Set `prune: foreign` on the "
            "policy to let the reconciler take the charger over, or remove that cap"
        )

    proof = None
    if sets or clears:
        olds = [window.bounds(s) for s in starts]
        # From an empty charger nothing can break the bounds (simulation checks acceptance only).
        new_bounds = window.bounds(InstalledProfiles.of(list(desired.profiles))) if any(starts) else olds[0]
        proof = prove_order(starts, sets, clears, window, olds, new_bounds)
    ordered = proof.order if proof else []
    refused = None
    if proof is not None and proof.problem is not None:
        refused = f"no make-before-break order keeps the charger capped: {proof.problem}"
    n = window.context.number_of_connectors
    places = "connector 1" if n == 1 else f"connectors 1..{n} and the station's total (connector 0)"
    invariant = (
        f"make-before-break: each of {len(ordered)} step(s) simulated on {places} over {window.horizon} s "
        "stays within the old and new caps"
        if ordered
        else "nothing to change"
    )
    # Sets, then prunes (they remove only foreign profiles: what stays is ours, old and new), then clears.
    cut = next((i for i, a in enumerate(ordered) if a.kind is ActionKind.CLEAR), len(ordered))
    final = (*actions, *ordered[:cut], *prunes, *ordered[cut:])
    shift = len(actions) + len(prunes)
    points = tuple(replace(c, index=c.index + shift) for c in (proof.checkpoints if proof else ()))
    again = _AGAIN[LedgerState.NOT_ENFORCED]
    not_enforced = tuple(sorted({a.profile.charging_profile_id for a in sets if a.profile and a.reason == again}))
    return StationPlan(
        station_id, final, tuple(drift), invariant, refused, tuple(notes), blocked,
        foreign_caps, as_recorded, len({e.profile.charging_profile_id for e in ledger}), points, tuple(starts),
        not_enforced, sum(1 for e in ledger if not e.state.certain), tuple(overridden),
    )  # fmt: skip


def prune_focus(drift: Sequence[ConnectorDrift]) -> list[int]:
    """The connectors whose drift shows the foreign cap, for `prune_actions` to search first.

    A cap on one connector lowers the station's total too (connector 0 sums the connectors), so
    connector 0 drifts whenever any connector does. When exactly one connector drifts and it
    drifts wherever connector 0 does, its drift explains the total's: connector 0 is left out of
    the focus (its groups are still searched, after that connector's). Connector 0 stays in the
    focus when it shows drift that no single connector explains (a foreign station cap)."""
    off = [d for d in drift if not d.in_sync]
    total = next((d for d in off if d.connector_id == 0), None)
    connectors = [d for d in off if d.connector_id != 0]
    if total is not None and len(connectors) == 1 and _covers(connectors[0], total):
        return [connectors[0].connector_id]
    return [d.connector_id for d in off]


def _covers(connector: ConnectorDrift, total: ConnectorDrift) -> bool:
    """Does `connector` drift at every moment `total` does?"""
    spans: list[tuple[int, int]] = []
    for m in sorted(connector.mismatches, key=lambda m: m.start):  # adjacent mismatches as one span
        if spans and spans[-1][1] >= m.start:
            spans[-1] = (spans[-1][0], max(spans[-1][1], m.end))
        else:
            spans.append((m.start, m.end))
    return all(any(a <= m.start and m.end <= b for a, b in spans) for m in total.mismatches)


UNKNOWN_STACK_BOUND = 10  # stack levels pruned when neither the charger nor its model says how many


def prune_bound(window: Window) -> int:
    """The highest stack level a prune clears: the charger's ChargeProfileMaxStackLevel when it
    reports it or its ChargerModel declares it, else UNKNOWN_STACK_BOUND (not 100 guesses per slot)."""
    caps = window.context.capabilities
    return caps.max_stack_level if caps.max_stack_level_known else min(caps.max_stack_level, UNKNOWN_STACK_BOUND)


def prune_actions(desired: Desired, window: Window, *, focus: Sequence[int] = ()) -> list[Action]:
    """Clear the foreign profiles of every slot our desired profiles leave free, most likely first.

    Where we hold nothing of a purpose on a connector, one Clear by (connector, purpose) takes every
    stack level; where we do, one Clear per free stack level up to `prune_bound`: the levels above
    ours first (a profile that overrides ours sits there), then those below, nearest first. A
    connector-0 TxDefaultProfile counts as ours on every connector too (some chargers store it as
    a copy per connector). `focus`: the connectors that show the foreign cap; the groups that can
    explain it come first (connector 0's when the station total alone or several connectors show
    it; `prune_focus` leaves connector 0 out when one connector's drift explains the total's), and
    connector 0's two purposes are searched level by level together (a foreign profile at level k
    is found after about 2k clears, whichever purpose it has)."""
    ours: dict[tuple[int, Purpose], set[int]] = {}
    for c, p in desired.profiles:
        ours.setdefault((c, p.purpose), set()).add(p.stack_level)
    shared = ours.get((0, Purpose.TX_DEFAULT), set())
    station: list[tuple[int, Purpose, set[int]]] = [
        (0, Purpose.CHARGE_POINT_MAX, ours.get((0, Purpose.CHARGE_POINT_MAX), set())),
        (0, Purpose.TX_DEFAULT, shared),
    ]
    per_connector = [
        (c, Purpose.TX_DEFAULT, ours.get((c, Purpose.TX_DEFAULT), set()) | shared) for c in window.connectors
    ]
    seen = sorted(set(focus))
    if len(seen) == 1 and seen[0] != 0:
        per_connector.sort(key=lambda group: group[0] != seen[0])
        groups = [*per_connector[:1], *station, *per_connector[1:]]
    else:
        groups = [*station, *per_connector]
    top = prune_bound(window)
    out: list[Action] = []
    station_searches: list[list[Action]] = []  # connector 0's two purposes, searched level by level together
    for connector, purpose, levels in groups:
        if not levels:
            search = [Action(ActionKind.PRUNE, "prune: foreign", connector, purpose=purpose)]
        else:
            highest = max(levels)
            order = [*range(highest + 1, top + 1), *range(highest - 1, -1, -1)]
            search = [
                Action(ActionKind.PRUNE, "prune: foreign", connector, purpose=purpose, stack_level=level)
                for level in order
                if level not in levels
            ]
        if connector == 0:
            station_searches.append(search)
            if len(station_searches) < 2:
                continue
            search = [a for step in itertools.zip_longest(*station_searches) for a in step if a is not None]
        out += search
    return out
