"""Why a charger's answers differ (issue 9 item 6): the causes, in order, on hand-built values."""

from __future__ import annotations

from reconciler.core.blame import diagnose, possibly_lost
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


def lost_from(held: InstalledProfiles, on_charger: InstalledProfiles):
    answers = observe(on_charger)
    recorded = [compare_connector(c, reported_timeline(window(), held, c), t, NORM.for_connector(c))
                for c, t in answers.items()]  # fmt: skip
    return possibly_lost(window(), held, recorded)


# A station cap binding in the first half hour, a default at connector 0 binding after it, and a
# station cap below the first, hidden by it: only the first two can show in the answers.
EARLY_CAP = profile(1, [(0, 10), (1800, 40)], purpose="ChargePointMaxProfile", stack=1)
LATE_DEFAULT = profile(2, [(0, 30), (1800, 8)], stack=1)
HIDDEN_CAP = profile(3, [(0, 100)], purpose="ChargePointMaxProfile")
THREE = InstalledProfiles.of([(0, EARLY_CAP), (0, LATE_DEFAULT), (0, HIDDEN_CAP)])


def test_what_the_answers_miss_is_lost_with_what_they_cannot_show_not_what_they_show_in_force():
    """Issue 12 item 6 (audit): a cleared cap re-sent the default too, which the answers show."""
    assert lost_from(THREE, InstalledProfiles.of([(0, LATE_DEFAULT), (0, HIDDEN_CAP)])) == {1, 3}
    assert lost_from(THREE, InstalledProfiles.of([(0, EARLY_CAP), (0, HIDDEN_CAP)])) == {2, 3}
    assert lost_from(THREE, THREE) == set()


def test_a_charger_that_lost_everything_loses_what_cannot_show_too_a_foreign_cap_nothing_of_ours():
    assert lost_from(THREE, InstalledProfiles()) == {1, 2, 3}
    assert lost_from(THREE, InstalledProfiles.of([(0, HIDDEN_CAP)])) == {1, 2, 3}
    # A foreign cap on connector 2 only: ours show in force on connector 1, and the loss of the
    # hidden cap would change no answer: nothing of ours is lost (sending it again changes nothing).
    foreign = profile(9, [(0, 6)], stack=5)
    assert lost_from(THREE, InstalledProfiles.of([*THREE.pairs(), (2, foreign)])) == set()


def test_profiles_hiding_each_other_are_sent_again_together_when_their_loss_shows():
    twin = profile(4, [(0, 10), (1800, 40)], purpose="ChargePointMaxProfile", stack=2)  # hides #1 exactly
    held = InstalledProfiles.of([*THREE.pairs(), (0, twin)])
    assert lost_from(held, held) == set()
    assert lost_from(held, InstalledProfiles.of([(0, LATE_DEFAULT), (0, HIDDEN_CAP)])) == {1, 3, 4}
    foreign = profile(9, [(0, 6)], stack=5)  # neither twin shows alone; their loss is not what differs
    assert lost_from(held, InstalledProfiles.of([*held.pairs(), (2, foreign)])) == set()


def test_answers_that_cannot_be_re_derived_blame_every_profile():
    held = InstalledProfiles.of([(0, CAP)])
    odd = [compare_connector(1, reported_timeline(window(), InstalledProfiles(), 1),
                             reported_timeline(window(), InstalledProfiles(), 1), NORM)]  # fmt: skip
    assert possibly_lost(window(), held, odd) is None
