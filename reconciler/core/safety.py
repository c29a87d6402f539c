"""Make-before-break, proved: an order of actions is safe only if every state on the way is.

Flow: (plan) sets and clears + the ledger's model of the charger -> `prove_order` -> the first
candidate order whose every intermediate state, simulated with the charger's own rules
(core.installed + core.composite), stays within the old and the new desired state -> or why none.

"Within" means, at every instant of the horizon and on every connector, and for a station with
several connectors also for connector 0 (the whole station's draw on the grid connection): capped
wherever both the old and the new state are capped, and never above the looser of the two. Time
no profile covers counts as uncapped here, whatever the charger reports for it.

Candidate orders, most natural first: sets before clears always; sets with the cap purpose first or
last, higher stack levels first; clears lower stack levels first; then every permutation of a few
sets and clears (bounded).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from reconciler.core.actions import Action, ActionKind
from reconciler.core.composite import compute_composite
from reconciler.core.context import StationContext, Transaction, Uncovered
from reconciler.core.diff import Normaliser, expected_timeline
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import Purpose, RateUnit
from reconciler.core.timeline import Timeline, loosest, walk

_PURPOSE_RANK = {Purpose.CHARGE_POINT_MAX: 0, Purpose.TX_DEFAULT: 1, Purpose.TX: 2}
MAX_CANDIDATES = 2000


@functools.lru_cache(maxsize=1024)
def judging_context(context: StationContext) -> StationContext:
    """The station's context as safety is judged: uncovered time is "no limit", limits unrounded."""
    return context.with_(uncovered=Uncovered.NO_LIMIT, limit_step=None)


@functools.lru_cache(maxsize=1024)
def reporting_context(context: StationContext) -> StationContext:
    """The station's context as its charger reports: its own "uncovered" convention, unrounded."""
    return context.with_(limit_step=None)


@dataclass(frozen=True, slots=True)
class Window:
    """Where and when a plan is judged: the station's context, now, horizon, unit, transactions."""

    context: StationContext
    now: datetime
    horizon: int
    unit: RateUnit
    normaliser: Normaliser
    transactions: Mapping[int, Transaction] = field(default_factory=dict)

    @property
    def connectors(self) -> range:
        return range(1, self.context.number_of_connectors + 1)

    def _timeline(
        self, installed: InstalledProfiles, connector: int, ctx: StationContext, norm: Normaliser
    ) -> Timeline:
        composite = compute_composite(
            installed.pairs(), connector_id=connector, now=self.now, duration=self.horizon, unit=self.unit,
            context=ctx, transactions=self.transactions,
        )  # fmt: skip
        return expected_timeline(composite, norm)

    def timelines(self, installed: InstalledProfiles) -> list[Timeline]:
        """Per connector 1..N, what `installed` allows (uncovered time: no limit)."""
        ctx = judging_context(self.context)
        return [self._timeline(installed, c, ctx, self.normaliser) for c in self.connectors]

    def reported(self, installed: InstalledProfiles) -> list[Timeline]:
        """Per connector 1..N, what a charger holding `installed` reports, normalised like its answers."""
        if self.reports_as_judged:
            return self.timelines(installed)
        ctx = reporting_context(self.context)
        return [self._timeline(installed, c, ctx, self.normaliser) for c in self.connectors]

    @property
    def reports_as_judged(self) -> bool:
        """Does every form this charger reports uncovered time in read as "no limit" anyway?"""
        ctx = self.context
        if ctx.uncovered in (Uncovered.NO_LIMIT, Uncovered.MINUS_ONE):
            return True
        return self.normaliser.limit(ctx.default_limit(self.unit), self.unit) is None

    def bounds(self, installed: InstalledProfiles, known: list[Timeline] | None = None) -> list[tuple[str, Timeline]]:
        """What safety compares: each connector, and connector 0 (the station's total, not capped
        by a connector's hardware maximum) when there are several. `known`: connectors 1..N."""
        per_connector = known if known is not None else self.timelines(installed)
        out = [(f"connector {c}", t) for c, t in zip(self.connectors, per_connector, strict=True)]
        if self.context.number_of_connectors > 1:
            raw = replace(self.normaliser, max_current_a=None)
            out.append(
                ("connector 0 (the station's total)", self._timeline(installed, 0, judging_context(self.context), raw))
            )
        return out


def bounded(state: list[tuple[str, Timeline]], old: list[tuple[str, Timeline]], new: list[tuple[str, Timeline]],
            window: Window) -> str | None:  # fmt: skip
    """None when `state` stays within max(old, new) everywhere; else what breaks, for a person."""
    for (label, now_t), (_, old_t), (_, new_t) in zip(state, old, new, strict=True):
        for begin, _, (value, before, after) in walk(now_t, old_t, new_t):
            bound = loosest(before, after)
            if bound is None:
                continue
            if value is None:
                return f"{label} would be uncapped from +{begin - now_t.start}s"
            if value > bound + window.normaliser.tolerance(window.unit, bound):
                unit = window.unit.value
                return f"{label} would allow {value:g} {unit} (> {bound:g}) from +{begin - now_t.start}s"
    return None


def simulate(
    start: InstalledProfiles, actions: Sequence[Action], window: Window,
    old: list[tuple[str, Timeline]], new: list[tuple[str, Timeline]],
) -> str | None:  # fmt: skip
    """Run `actions` on a model of the charger; None if every intermediate state is safe."""
    installed = start
    for action in actions:
        if action.kind in (ActionKind.SET, ActionKind.REPLACE):
            assert action.profile is not None and action.connector_id is not None
            installed, result = installed.set_profile(
                action.connector_id, action.profile, context=window.context, transactions=window.transactions,
                now=window.now,
            )  # fmt: skip
            if not result.accepted:
                return f"the charger would reject {action.describe()}: {result.reason}"
        elif action.kind is ActionKind.CLEAR:
            installed, _ = installed.clear(profile_id=action.profile_id)
        else:
            continue
        problem = bounded(window.bounds(installed), old, new, window)
        if problem:
            return f"after {action.kind.value} {action.describe()}: {problem}"
    return None


def orders(sets: list[Action], clears: list[Action]) -> Iterator[list[Action]]:
    """Candidate orders, most natural first (see the module docstring); at most MAX_CANDIDATES."""

    def rank(action: Action, cap_first: bool, descending: bool) -> tuple[int, int]:
        purpose, stack = action.slot
        first = _PURPOSE_RANK[purpose] if cap_first else -_PURPOSE_RANK[purpose]
        return first, -stack if descending else stack

    seen: set[tuple[int, ...]] = set()

    def once(candidate: list[Action]) -> Iterator[list[Action]]:
        key = tuple(id(a) for a in candidate)
        if key not in seen:
            seen.add(key)
            yield candidate

    for cap_first in (True, False):
        ordered_sets = sorted(sets, key=lambda a: rank(a, cap_first, True))
        ordered_clears = sorted(clears, key=lambda a: rank(a, cap_first, False))
        yield from once(ordered_sets + ordered_clears)
    set_orders = itertools.permutations(sets) if len(sets) <= 5 else iter([tuple(sets)])
    clear_orders = list(itertools.permutations(clears)) if len(clears) <= 4 else [tuple(clears)]
    for set_order, clear_order in itertools.islice(itertools.product(set_orders, clear_orders), MAX_CANDIDATES):
        yield from once([*set_order, *clear_order])


def prove_order(
    start: InstalledProfiles, sets: list[Action], clears: list[Action], window: Window,
    old: list[tuple[str, Timeline]], new: list[tuple[str, Timeline]],
) -> tuple[list[Action], str | None]:  # fmt: skip
    """The first safe order, or (the natural order, why no order is safe)."""
    first_problem: str | None = None
    natural: list[Action] = [*sets, *clears]
    for candidate in orders(sets, clears):
        problem = simulate(start, candidate, window, old, new)
        if problem is None:
            return candidate, None
        first_problem = first_problem or problem
    return natural, first_problem
