"""Make-before-break, proved: an order of actions is safe only if every state on the way is, and
only if the charger can be seen to enforce, before each clear, the sets that clear relies on.

Flow: (plan) sets and clears + the states the charger may be in (`core.holdings`) -> `prove_order`
-> the first candidate order whose every intermediate state, simulated with the charger's own rules
(core.installed + core.composite), stays within the old and the new desired state, from every
starting state, and whose clears can each be preceded by a read-back that shows the sets they rely
on, from every starting state -> a `Proof` (the order, where to read back) or why none holds.

"Within" is judged on physical power (`core.physical`): at every instant of the horizon, on every
connector and, for a station with several, on the station's total (the sum of each connector's
limit in force with its own phases, capped by the ChargePointMaxProfile): capped wherever both the
old and the new state are capped, and never above the looser of the two. Time no profile covers
counts as uncapped here, whatever the charger reports for it.

Set, verify, then clear: a clear that would break those bounds were one of the earlier sets not in
force *depends* on that set; before it, the engine reads the composite back (a *checkpoint*) and
clears only if the sets show. A set the read-back cannot show there (hidden under a profile of a
higher stack level that only the clear removes) cannot be verified: such an order is not taken, and
when every safe order has one the plan is refused with the reason.

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

from reconciler.core.actions import Action, ActionKind, content_hash
from reconciler.core.composite import compute_composite
from reconciler.core.context import StationContext, Transaction, Uncovered
from reconciler.core.diff import Normaliser, compare_connector, expected_timeline
from reconciler.core.installed import InstalledProfiles
from reconciler.core.physical import enforcing_context, physical_limits
from reconciler.core.profiles import Purpose, RateUnit, epoch_seconds
from reconciler.core.timeline import Timeline, loosest, walk

_PURPOSE_RANK = {Purpose.CHARGE_POINT_MAX: 0, Purpose.TX_DEFAULT: 1, Purpose.TX: 2}
MAX_CANDIDATES = 2000
MAX_ANALYSED = 16  # actions; longer orders get one checkpoint before the first clear, unanalysed

Bounds = list[tuple[str, Timeline]]


def judging_context(context: StationContext) -> StationContext:
    """The station's context as safety is judged: what its hardware enforces."""
    return enforcing_context(context)


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

    def reported_total(self, installed: InstalledProfiles) -> Timeline:
        """Connector 0 as a charger holding `installed` reports it (its connector-0 convention),
        not capped by any one connector's hardware maximum."""
        raw = replace(self.normaliser, max_current_a=None)
        return self._timeline(installed, 0, reporting_context(self.context), raw)

    @property
    def reports_as_judged(self) -> bool:
        """Does this charger report what it enforces (every form of uncovered time reads as "no
        limit", and a limit in the other unit is converted)?"""
        ctx = self.context
        if not ctx.convert_units or not ctx.cap_on_connectors or not ctx.rebase_recurring:
            return False  # it reports otherwise than it enforces (StationContext.enforced())
        if ctx.uncovered in (Uncovered.NO_LIMIT, Uncovered.MINUS_ONE):
            return True
        return self.normaliser.limit(ctx.default_limit(self.unit), self.unit) is None

    def bounds(self, installed: InstalledProfiles) -> Bounds:
        """What safety compares, in W: each connector's limit in force and, when there are several,
        the station's total (`core.physical`)."""
        if not installed:  # nothing installed: nothing limits anything
            start = epoch_seconds(self.now)
            free = Timeline(start, start + self.horizon, RateUnit.W, ((start, None),))
            return [(f"connector {c}", free) for c in self.connectors] + (
                [("the station's total", free)] if self.context.number_of_connectors > 1 else []
            )
        per_connector, total = physical_limits(
            installed.pairs(), context=self.context, now=self.now, horizon=self.horizon,
            transactions=self.transactions, normaliser=self.normaliser,
        )  # fmt: skip
        out = [(f"connector {c}", t) for c, t in zip(self.connectors, per_connector, strict=True)]
        if self.context.number_of_connectors > 1:
            out.append(("the station's total", total))
        return out


def bounded(state: Bounds, old: Bounds, new: Bounds, window: Window) -> str | None:
    """None when `state` stays within max(old, new) everywhere; else what breaks, for a person."""
    for (label, now_t), (_, old_t), (_, new_t) in zip(state, old, new, strict=True):
        unit = now_t.unit
        for begin, _, (value, before, after) in walk(now_t, old_t, new_t):
            bound = loosest(before, after)
            if bound is None:
                continue
            if value is None:
                return f"{label} would be uncapped from +{begin - now_t.start}s"
            if value > bound + window.normaliser.tolerance(unit, bound):
                return f"{label} would allow {value:.0f} {unit.value} (> {bound:.0f}) from +{begin - now_t.start}s"
    return None


def apply_action(installed: InstalledProfiles, action: Action, window: Window) -> tuple[InstalledProfiles, str | None]:
    """The charger's state after one action, or why the charger would refuse it."""
    if action.kind in (ActionKind.SET, ActionKind.REPLACE):
        assert action.profile is not None and action.connector_id is not None
        after, result = installed.set_profile(
            action.connector_id, action.profile, context=window.context, transactions=window.transactions,
            now=window.now,
        )  # fmt: skip
        if not result.accepted:
            return installed, f"the charger would reject {action.describe()}: {result.reason}"
        return after, None
    if action.kind is ActionKind.CLEAR:
        return installed.clear(profile_id=action.profile_id)[0], None
    return installed, None


def simulate(
    start: InstalledProfiles, actions: Sequence[Action], window: Window, old: Bounds, new: Bounds
) -> str | None:
    """Run `actions` on a model of the charger; None if every intermediate state is safe."""
    installed = start
    # Where the old state caps nothing (e.g. an empty charger) no state can break the bounds.
    unbounded = all(limit is None for _, timeline in old for _, limit in timeline.steps)
    for action in actions:
        if action.kind not in (ActionKind.SET, ActionKind.REPLACE, ActionKind.CLEAR):
            continue
        installed, refusal = apply_action(installed, action, window)
        if refusal:
            return refusal
        if unbounded:
            continue
        problem = bounded(window.bounds(installed), old, new, window)
        if problem:
            return f"after {action.kind.value} {action.describe()}: {problem}"
    return None


def _run(start: InstalledProfiles, actions: Sequence[Action], window: Window) -> InstalledProfiles:
    installed = start
    for action in actions:
        installed, _ = apply_action(installed, action, window)
    return installed


def _same_report(a: list[Timeline], b: list[Timeline], normaliser: Normaliser) -> bool:
    return all(compare_connector(0, x, y, normaliser).in_sync for x, y in zip(a, b, strict=True))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Read the composites back before action `index`; also connector 0 when `total` (a set the
    clear relies on shows only in the station's total)."""

    index: int
    total: bool = False


def checkpoints(
    start: InstalledProfiles, order: Sequence[Action], window: Window, old: Bounds, new: Bounds
) -> tuple[tuple[Checkpoint, ...], Blind | None]:
    """Before which actions of `order` the composite must be read back, and why the order cannot
    be verified (None when it can): see the module docstring. A clear depends on the sets not yet
    verified when it breaks the bounds without all of them (a charger that enforces nothing) or
    without any one of them."""
    is_set = [a.kind in (ActionKind.SET, ActionKind.REPLACE) for a in order]
    clears = [i for i, a in enumerate(order) if a.kind is ActionKind.CLEAR]
    if not clears or not any(is_set[: clears[-1]]):
        return (), None
    several = window.context.number_of_connectors > 1
    if len(order) > MAX_ANALYSED:
        first = next(i for i in clears if any(is_set[:i]))
        return (Checkpoint(first, several),), None

    def without(dropped: Sequence[int], upto: int) -> InstalledProfiles:
        return _run(start, [a for j, a in enumerate(order[:upto]) if j not in dropped], window)

    def breaks(dropped: Sequence[int], upto: int) -> str | None:
        return bounded(window.bounds(without(dropped, upto)), old, new, window)

    def reliance(sets: list[int], upto: int) -> tuple[int, str] | None:
        """(a set the state after `upto` relies on, what breaks without it), or None."""
        for s in sets:
            if problem := breaks([s], upto):
                return s, problem
        if len(sets) > 1 and (problem := breaks(sets, upto)):
            return sets[0], problem
        return None

    raw = replace(window.normaliser, max_current_a=None)
    points: list[Checkpoint] = []
    unverified: list[int] = []
    for i, action in enumerate(order):
        if is_set[i]:
            unverified.append(i)
            continue
        if action.kind is not ActionKind.CLEAR or not unverified or reliance(unverified, i + 1) is None:
            continue
        state = _run(start, order[:i], window)
        shown, total = window.reported(state), window.reported_total(state) if several else None
        hidden, by_total = [], False
        for s in unverified:
            alternative = without([s], i)
            if _same_report(window.reported(alternative), shown, window.normaliser):
                if total is not None and not _same_report([window.reported_total(alternative)], [total], raw):
                    by_total = True  # only connector 0 shows it
                else:
                    hidden.append(s)
        points.append(Checkpoint(i, by_total))
        blind = reliance(hidden, i + 1)
        if blind is not None:
            return tuple(points), Blind(blind[0], i, (
                f"{order[blind[0]].describe()} stays hidden until {action.kind.value} {action.describe()}, so a "
                f"read-back cannot show the charger enforces it before that clear; without it {blind[1]}"
            ))  # fmt: skip
        unverified = hidden
    return tuple(points), None


@dataclass(frozen=True, slots=True)
class Blind:
    """A clear (`clear`, an index) relies on a set (`set`) no read-back can show before it."""

    set: int
    clear: int
    problem: str


def bridged(order: Sequence[Action], blind: Blind) -> list[Action] | None:
    """The order with the hidden set sent, in its place, into the slot of the profile the clear
    removes (an atomic replacement a read-back shows), and moved to its own slot by id where that
    clear was (another atomic replacement, of identical limits): no clear, nothing to trust. None
    when that slot cannot take the profile (another purpose)."""
    hidden, clear = order[blind.set], order[blind.clear]
    profile = hidden.profile
    if profile is None or clear.purpose is not profile.purpose or clear.stack_level is None:
        return None
    if clear.connector_id is None or hidden.connector_id is None:
        return None
    stand_in = replace(profile, stack_level=clear.stack_level)
    first = Action(
        ActionKind.SET,
        f"in the slot of #{clear.profile_id} first (replacing it), so a read-back can show it before it moves "
        f"to stack {profile.stack_level}",
        clear.connector_id, stand_in, digest=content_hash(clear.connector_id, stand_in),
    )  # fmt: skip
    move = replace(
        hidden, kind=ActionKind.REPLACE, reason=f"moved from the slot of #{clear.profile_id} to its own stack level"
    )
    out: list[Action] = []
    for j, action in enumerate(order):
        out.append(first if j == blind.set else move if j == blind.clear else action)
    return out


@dataclass(frozen=True, slots=True)
class Proof:
    order: list[Action]
    problem: str | None = None  # why no order is safe (or verifiable); None: `order` is proved
    checkpoints: tuple[Checkpoint, ...] = ()  # where in `order` to read the composites back


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


def _proved(
    starts: Sequence[InstalledProfiles], order: list[Action], window: Window, olds: Sequence[Bounds], new: Bounds
) -> tuple[str | None, tuple[Checkpoint, ...], Blind | None]:
    """(why `order` is unsafe from some start, or None; its checkpoints; what cannot be verified).
    Checkpoints are placed for every start: a set a read-back shows from one state may be hidden
    from another the charger may equally be in (where a matching read-back proves nothing)."""
    for start, old in zip(starts, olds, strict=True):
        problem = simulate(start, order, window, old, new)
        if problem is not None:
            return problem, (), None
    merged: dict[int, bool] = {}  # action index -> read connector 0 too
    for start, old in zip(starts, olds, strict=True):
        points, blind = checkpoints(start, order, window, old, new)
        for point in points:
            merged[point.index] = merged.get(point.index, False) or point.total
        if blind is not None:
            return None, tuple(Checkpoint(i, total) for i, total in sorted(merged.items())), blind
    return None, tuple(Checkpoint(i, total) for i, total in sorted(merged.items())), None


def prove_order(
    starts: Sequence[InstalledProfiles], sets: list[Action], clears: list[Action], window: Window,
    olds: Sequence[Bounds], new: Bounds,
) -> Proof:  # fmt: skip
    """The first order that is safe from every starting state and verifiable (bridging a hidden
    set through the slot of the profile that hides it when that is what it takes), or (the natural
    order, why none is). `olds[k]` are the bounds of `starts[k]`."""
    first_problem: str | None = None
    unverifiable: tuple[list[Action], Blind] | None = None
    for candidate in orders(sets, clears):
        problem, points, blind = _proved(starts, candidate, window, olds, new)
        if problem is not None:
            first_problem = first_problem or problem
            continue
        if blind is None:
            return Proof(candidate, None, points)
        unverifiable = unverifiable or (candidate, blind)
    if unverifiable is None:
        return Proof([*sets, *clears], first_problem)
    order, blind = unverifiable
    for _attempt in range(len(sets)):
        attempt = bridged(order, blind)
        if attempt is None:
            break
        problem, points, again = _proved(starts, attempt, window, olds, new)
        if problem is not None:
            break
        if again is None:
            return Proof(attempt, None, points)
        order, blind = attempt, again
    return Proof(
        order, f"no verifiable order: {blind.problem}. Give the new profile the id or a stack level above the "
        "profile it replaces, or make the change in two applies (add the new profile, then remove the old one)"
    )  # fmt: skip
