"""Make-before-break proved on physical power (issue 9, finding 2), and verifiable (issue 8).

The station total is each connector's limit in force with its own phases, summed, capped by the
ChargePointMaxProfile: not the connector-0 value a libocpp charger reports (which sums amps and
watts apart and converts with one phase count). A property test checks every order the prover
accepts against an evaluator written from the definition, independent of `core.physical`."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.actions import Action, ActionKind, LedgerEntry, content_hash
from reconciler.core.context import StationContext
from reconciler.core.diff import Normaliser
from reconciler.core.installed import InstalledProfiles
from reconciler.core.plan import Desired, plan_station
from reconciler.core.profiles import ChargingProfile, Purpose, RateUnit
from reconciler.core.safety import Window, orders, simulate
from tests.core.builders import T0, profile

V = 230.0
NORM = Normaliser(max_current_a=32)
HORIZON = 6 * 3600


def window(connectors: int = 2) -> Window:
    return Window(StationContext(number_of_connectors=connectors), T0, HORIZON, RateUnit.A, NORM)


def ledger(pairs: list[tuple[int, ChargingProfile]]) -> list[LedgerEntry]:
    return [LedgerEntry(c, p, content_hash(c, p), seq=i + 1) for i, (c, p) in enumerate(pairs)]


def plan_change(old: list, new: list, connectors: int = 2):
    w = window(connectors)
    return plan_station("CP", Desired(tuple(new)), ledger(old), [], w), w


def replace_action(connector: int, item: ChargingProfile) -> Action:
    return Action(ActionKind.REPLACE, "test", connector, item, digest=content_hash(connector, item))


def bounds_of(w: Window, pairs: list) -> list:
    return w.bounds(InstalledProfiles.of(list(pairs)))


def tx(pid: int, limit: float, *, unit: str = "A", phases: int | None = None, stack: int = 1) -> ChargingProfile:
    period = (0, limit, phases) if phases is not None else (0, limit)
    return profile(pid, [period], unit=unit, stack=stack)


# --- the three cases of issue 9, finding 2 ------------------------------------------------------------


def test_a_total_that_only_the_reported_connector_zero_would_allow_is_refused_and_the_safe_order_taken():
    # old: 30 A + 1,380 W (2 A on 3 phases) = 32 A real; new: 2 A + 18 A = 20 A. Setting connector 2
    # first leaves 30 A + 18 A = 48 A, above both; libocpp's connector 0 reports the old state as 50 A.
    old = [(1, tx(1, 30)), (2, tx(2, 1380, unit="W"))]
    new = [(1, tx(1, 2)), (2, tx(2, 18))]
    result, w = plan_change(old, new)
    start = InstalledProfiles.of(old)
    wrong = [replace_action(2, new[1][1]), replace_action(1, new[0][1])]
    problem = simulate(start, wrong, w, bounds_of(w, old), bounds_of(w, new))
    assert problem is not None and "the station's total would allow 33120 W (> 22080)" in problem
    assert result.refused is None
    assert [a.connector_id for a in result.actions] == [1, 2]  # connector 1 down first


def test_moving_two_ten_amp_defaults_to_6900_watts_each_finds_an_order():
    # The real total stays 20 A (13,800 W) throughout; the reported mix of units reads 58 A.
    old = [(1, tx(1, 10)), (2, tx(2, 10))]
    new = [(1, tx(1, 6900, unit="W")), (2, tx(2, 6900, unit="W"))]
    result, _ = plan_change(old, new)
    assert result.refused is None, result.refused
    assert [a.kind for a in result.actions] == [ActionKind.REPLACE, ActionKind.REPLACE]


def test_phases_count_per_connector_in_the_total():
    # old: 2 A on 1 phase + 2 A on 3 phases (1,840 W); new: 6 A on 3 phases + 2 A on 1 phase (4,600 W).
    # Raising connector 1 first puts 6 A and 2 A both on 3 phases: 5,520 W, above both totals.
    old = [(1, tx(1, 2, phases=1)), (2, tx(2, 2, phases=3))]
    new = [(1, tx(1, 6, phases=3)), (2, tx(2, 2, phases=1))]
    result, w = plan_change(old, new)
    start = InstalledProfiles.of(old)
    wrong = [replace_action(1, new[0][1]), replace_action(2, new[1][1])]
    problem = simulate(start, wrong, w, bounds_of(w, old), bounds_of(w, new))
    assert problem is not None and "the station's total would allow 5520 W (> 4600)" in problem
    assert result.refused is None
    assert [a.connector_id for a in result.actions] == [2, 1]


def test_the_total_is_capped_by_the_charge_point_max_with_its_own_phases():
    w = window(2)
    cap = profile(9, [(0, 10, 1)], purpose="ChargePointMaxProfile")  # 10 A on one phase: 2,300 W
    pairs = [(0, cap), (1, tx(1, 16)), (2, tx(2, 16))]
    connectors, total = w.bounds(InstalledProfiles.of(pairs))[:2], w.bounds(InstalledProfiles.of(pairs))[2]
    assert total[0] == "the station's total" and total[1].steps[0][1] == 2300
    assert [t.steps[0][1] for _, t in connectors] == [2300, 2300]
    uncovered = w.bounds(InstalledProfiles.of([(1, tx(1, 16))]))[2][1]
    assert uncovered.steps[0][1] is None  # connector 2 is not limited: neither is the station


# --- the property: every accepted order holds physically ---------------------------------------------


def value_at(item: ChargingProfile, offset: int) -> float:
    """A profile's limit at `offset` seconds after T0 (its schedule starts at T0), in W."""
    current = item.schedule.periods[0]
    for period in item.schedule.periods:
        if period.start_period <= offset:
            current = period
    if item.schedule.charging_rate_unit is RateUnit.W:
        return current.limit
    return current.limit * V * (current.number_phases or 3)


def physical(pairs: list[tuple[int, ChargingProfile]], connectors: int, offset: int) -> list[float | None]:
    """[connector 1..N, total] in W, from the definition: the highest stack level of a purpose governs."""

    def governing(candidates: list[ChargingProfile]) -> float | None:
        return value_at(max(candidates, key=lambda p: p.stack_level), offset) if candidates else None

    cap = governing([p for _, p in pairs if p.purpose is Purpose.CHARGE_POINT_MAX])
    lanes = [governing([p for c, p in pairs if p.purpose is Purpose.TX_DEFAULT and c in (0, n)])
             for n in range(1, connectors + 1)]  # fmt: skip
    capped = [v if cap is None else cap if v is None else min(v, cap) for v in lanes]
    summed = None if any(v is None for v in lanes) else sum(v for v in lanes if v is not None)
    total = summed if cap is None else cap if summed is None else min(summed, cap)
    return [*capped, total]


def tolerance(bound: float) -> float:
    return max(0.1 * V * 3, bound * 0.01)


@st.composite
def limited(draw, pid: int, stack: int, purpose: str = "TxDefaultProfile") -> ChargingProfile:
    unit = draw(st.sampled_from(["A", "W"]))
    phases = draw(st.sampled_from([None, 1, 3]))
    value = st.integers(6, 31) if unit == "A" else st.integers(1400, 21000)
    periods = [(0, draw(value), phases)] if phases else [(0, draw(value))]
    if draw(st.booleans()):
        second = draw(value)
        periods.append((3600, second, phases) if phases else (3600, second))
    return profile(pid, periods, unit=unit, stack=stack, purpose=purpose)


@st.composite
def changes(draw):
    connectors = draw(st.integers(2, 3))
    old, new = [], []
    for n in range(1, connectors + 1):
        before_stack = draw(st.integers(0, 3))
        if draw(st.booleans()):
            old.append((n, draw(limited(100 + n, before_stack))))
        if draw(st.booleans()):
            pid = draw(st.sampled_from([100 + n, 200 + n]))  # same id (replaced in place) or a new one
            stack = before_stack if pid == 100 + n else draw(st.integers(0, 3).filter(lambda s, b=before_stack: s != b))
            new.append((n, draw(limited(pid, stack))))
    if draw(st.booleans()):
        old.append((0, draw(limited(1, 0, "ChargePointMaxProfile"))))
    if draw(st.booleans()):
        pid = draw(st.sampled_from([1, 2]))
        new.append((0, draw(limited(pid, 0 if pid == 1 else 1, "ChargePointMaxProfile"))))
    return connectors, old, new


def states(start: InstalledProfiles, order: list[Action], w: Window) -> list[InstalledProfiles]:
    out, installed = [], start
    for action in order:
        if action.kind is ActionKind.CLEAR:
            installed, _ = installed.clear(profile_id=action.profile_id)
        else:
            assert action.profile is not None and action.connector_id is not None
            installed, _ = installed.set_profile(action.connector_id, action.profile, context=w.context, now=T0)
        out.append(installed)
    return out


@settings(max_examples=200, deadline=None)
@given(change=changes())
def test_every_order_the_prover_accepts_keeps_connectors_and_total_within_the_looser_state(change):
    connectors, old, new = change
    result, w = plan_change(old, new, connectors)
    sets = [a for a in result.actions if a.kind in (ActionKind.SET, ActionKind.REPLACE)]
    clears = [a for a in result.actions if a.kind is ActionKind.CLEAR]
    start = InstalledProfiles.of(old)
    old_bounds, new_bounds = bounds_of(w, old), bounds_of(w, new)
    accepted = 0
    for order in orders(sets, clears):
        if simulate(start, order, w, old_bounds, new_bounds) is not None:
            continue
        accepted += 1
        for state in states(start, order, w):
            for offset in (0, 3600):
                now = physical(state.pairs(), connectors, offset)
                before, after = physical(old, connectors, offset), physical(new, connectors, offset)
                for where, (value, a, b) in enumerate(zip(now, before, after, strict=True)):
                    if a is None or b is None:
                        continue
                    assert value is not None, (where, offset, order)
                    assert value <= max(a, b) + tolerance(max(a, b)), (where, offset, value, a, b)
    if result.refused is None and (sets or clears):
        assert accepted > 0  # the plan's own order is among those checked
