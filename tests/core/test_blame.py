"""Why a charger's answers differ (issue 9 item 6): the causes, in order, on hand-built values."""

from __future__ import annotations

from reconciler.core.blame import diagnose
from reconciler.core.context import StationContext
from reconciler.core.diff import Normaliser, compare_connector
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import RateUnit
from reconciler.core.readback import reported_timeline
from reconciler.core.safety import Window
from tests.core.builders import T0, profile

CTX = StationContext(number_of_connectors=2, default_limit_a=32.0)
NORM = Normaliser(max_current_a=32.0, connectors=2)
CAP = profile(1, [(0, 20)], purpose="ChargePointMaxProfile")
DEFAULT = profile(2, [(0, 30)])
HELD = InstalledProfiles.of([(0, CAP), (1, DEFAULT)])


def window(ctx: StationContext = CTX) -> Window:
    return Window(ctx, T0, 3600, RateUnit.A, NORM)


def observe(installed: InstalledProfiles, ctx: StationContext = CTX):
    """What a charger holding `installed` answers for connectors 1, 2 and 0 (the station total)."""
    return {c: reported_timeline(window(ctx), installed, c) for c in (1, 2, 0)}


def judge(observed, units=None):
    drift = [compare_connector(c, reported_timeline(window(), HELD, c), t, NORM.for_connector(c))
             for c, t in observed.items()]  # fmt: skip
    return diagnose("CP-1", window(), HELD, observed, drift, reply_units=units)


def test_a_foreign_cap_alone_explains_a_lower_limit_and_only_then_prune_is_advised():
    foreign = profile(9, [(0, 10)], purpose="ChargePointMaxProfile", stack=5)
    diagnosis = judge(observe(InstalledProfiles.of([(0, CAP), (1, DEFAULT), (0, foreign)])))
    assert diagnosis.foreign_only and not diagnosis.convention
    assert diagnosis.text().endswith("set `prune: foreign` on the policy to clear it")


def test_answers_of_a_charger_that_lost_its_profiles_are_lost_profiles_not_a_convention():
    diagnosis = judge(observe(InstalledProfiles()))
    assert diagnosis.lost and not diagnosis.foreign_only and "prune" not in diagnosis.text()


def test_another_reporting_convention_comes_first_and_prune_is_not_advised():
    # One connector alone cannot tell "the cap is lost" from "the cap is not shown on connectors";
    # the station total (connector 0) can: it still shows the cap.
    diagnosis = judge(observe(HELD, CTX.with_(cap_on_connectors=False)), units={1: RateUnit.W})
    assert dict(diagnosis.conventions) == {"capOnConnectors": False}
    assert diagnosis.causes[0].startswith("the charger reports by other conventions than declared")
    assert diagnosis.causes[1] == "a unit convention: it answered in W when asked in A"
    assert diagnosis.causes[2].startswith("a profile the reconciler did not install")
    assert diagnosis.causes[3] == "the charger accepted the profiles but does not enforce them"
    assert not diagnosis.foreign_only and "prune: foreign" not in diagnosis.text()
