"""Why a charger's answers differ from what it should hold: the likely causes, most likely first.

Flow: (engine) a read-back that does not match what the ledger (or the plan) says the charger
holds -> `diagnose` -> a `Diagnosis` the plan's and the outcome's reasons quote. Pure.

A foreign profile is only one explanation, and blaming it wrongly is costly: the advice to set
`prune: foreign` clears profiles for nothing, every run. So the answers are tried against the
other explanations first:
1. lost profiles: the answers are what the charger would say holding fewer of them (a reboot);
2. another reporting convention: the answers are exactly what it would say holding all of them,
   by conventions other than those declared (e.g. `capOnConnectors: false`, a known model's);
3. a unit convention: it answered in another unit than the one asked;
4. a profile the reconciler did not install;
5. profiles accepted but not enforced.
`foreign_only` is set when nothing but 4 can explain the answers; only then is `prune: foreign`
worth suggesting.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.core.context import Connector0, StationContext, Uncovered
from reconciler.core.diff import ConnectorDrift, DriftClass, Normaliser, compare_connector
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import RateUnit
from reconciler.core.readback import reported_timeline
from reconciler.core.safety import Window
from reconciler.core.timeline import Limit, Timeline, walk
from reconciler.core.wire import conventions_json

# The reporting conventions tried, each with every value it can take.
_KNOBS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("uncovered", tuple(Uncovered)),
    ("connector0", tuple(c for c in Connector0 if c is not Connector0.UNSUPPORTED)),
    ("tx_default_when_idle", (True, False)),
    ("cap_on_connectors", (True, False)),
    ("rebase_recurring", (True, False)),
    ("convert_units", (True, False)),
    ("recurrence_before_start", (True, False)),
)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    observed: str  # what was observed, for a person
    causes: tuple[str, ...]  # most likely first
    conventions: Mapping[str, Any] = field(default_factory=dict)  # policy keys that explain the answers
    lost: bool = False  # the answers are those of a charger that lost some of its profiles
    foreign_only: bool = False  # nothing but a foreign profile explains them

    @property
    def convention(self) -> bool:
        """The charger holds what it should and reports it by other conventions than declared."""
        return bool(self.conventions)

    def text(self) -> str:
        causes = "; ".join(f"({i}) {cause}" for i, cause in enumerate(self.causes, 1))
        advice = "; set `prune: foreign` on the policy to clear it" if self.foreign_only else ""
        return f"{self.observed}. Likely causes, most likely first: {causes}{advice}"


def agrees(window: Window, installed: InstalledProfiles, observed: Mapping[int, Timeline]) -> bool:
    """Would a charger holding `installed`, reporting by `window.context`, answer `observed`?"""
    for connector, timeline in observed.items():
        expected = reported_timeline(window, installed, connector)
        if not compare_connector(connector, expected, timeline, window.normaliser.for_connector(connector)).in_sync:
            return False
    return True


def variants(context: StationContext) -> Iterator[StationContext]:
    """The context with one, then two, of its reporting conventions changed (bounded: ~70)."""
    changes = [(name, value) for name, values in _KNOBS for value in values if getattr(context, name) != value]
    for one in changes:
        yield replace(context, **{one[0]: one[1]})
    for a, b in itertools.combinations(changes, 2):
        if a[0] != b[0]:
            yield replace(context, **{a[0]: a[1], b[0]: b[1]})


def _expected(window: Window, installed: InstalledProfiles, connector: int) -> Timeline:
    """What a charger holding `installed` answers for `connector` (as `engine.judge` derives it)."""
    return reported_timeline(window, installed, 0) if connector == 0 else window.reported(installed)[connector - 1]


def _close(a: Limit, b: Limit, normaliser: Normaliser, unit: RateUnit) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= normaliser.tolerance(unit, a) + 1e-9


def _side(value: Limit, reference: Limit, normaliser: Normaliser, unit: RateUnit) -> int:
    """0 when `value` is `reference` (within tolerance), 1 when it allows more, -1 when less."""
    if _close(value, reference, normaliser, unit):
        return 0
    return 1 if value is None or (reference is not None and value > reference) else -1


def possibly_lost(
    window: Window, installed: InstalledProfiles, recorded: Sequence[ConnectorDrift]
) -> frozenset[int] | None:
    """The ids of `installed` the read-back (`recorded`: each connector's answer against what a
    charger holding `installed` answers) may have lost: every one it does not show in force, when
    their loss would change some answer; none when it would not (the difference is then no loss of
    ours: a foreign profile, say, and sending ours again would change nothing).

    A profile is shown in force when, on some connector for some time, the charger answers what it
    would holding everything and would answer otherwise without that profile. A profile the
    answers cannot show (hidden by another of ours, or never binding) is sent again with the
    others when any of ours may be lost (a reboot loses them all). None when the answers cannot be
    re-derived here (a transaction whose start was inferred, another instant): the caller then
    blames every profile on the connectors that differ."""
    ids = {e.profile.charging_profile_id for e in installed}
    judged: list[tuple[ConnectorDrift, Normaliser]] = []
    for drift in recorded:
        if _expected(window, installed, drift.connector_id) != drift.expected:
            return None
        judged.append((drift, window.normaliser.for_connector(drift.connector_id)))
    shown: set[int] = set()
    for profile_id in sorted(ids):
        without = _without(installed, {profile_id})
        for drift, normaliser in judged:
            other = _expected(window, without, drift.connector_id)
            unit = drift.expected.unit
            if any(
                stop - point > normaliser.start_tolerance_s
                and _close(want, got, normaliser, unit)
                and not _close(alone, got, normaliser, unit)
                for point, stop, (want, alone, got) in walk(drift.expected, other, drift.observed)
            ):
                shown.add(profile_id)
                break
    unshown = frozenset(ids - shown)
    if not unshown:
        return unshown
    rest = _without(installed, unshown)
    for drift, normaliser in judged:  # would their loss move an answer the way the answers differ?
        other, unit = _expected(window, rest, drift.connector_id), drift.expected.unit
        if any(
            stop - point > normaliser.start_tolerance_s
            and _side(got, want, normaliser, unit) != 0
            and _side(alone, want, normaliser, unit) == _side(got, want, normaliser, unit)
            for point, stop, (want, alone, got) in walk(drift.expected, other, drift.observed)
        ):
            return unshown
    return frozenset()


def _without(installed: InstalledProfiles, ids: Iterable[int]) -> InstalledProfiles:
    gone = set(ids)
    return InstalledProfiles(tuple(e for e in installed if e.profile.charging_profile_id not in gone))


def _lost(window: Window, installed: InstalledProfiles, observed: Mapping[int, Timeline]) -> bool:
    """Do the answers fit a charger that lost some of `installed` (all, or all but one, or one)?"""
    entries = list(installed)
    subsets = [()] + [tuple(e for e in entries if e is not gone) for gone in entries]
    subsets += [(keep,) for keep in entries] if len(entries) > 2 else []
    return any(agrees(window, InstalledProfiles(subset), observed) for subset in subsets if len(subset) < len(entries))


def diagnose(
    station_id: str, window: Window, installed: InstalledProfiles, observed: Mapping[int, Timeline],
    drift: Sequence[ConnectorDrift], *, reply_units: Mapping[int, RateUnit] | None = None,
    presets: Mapping[str, StationContext] | None = None, accepted_unchanged: bool = False,
    just_applied: bool = False,
) -> Diagnosis:  # fmt: skip
    """Why `observed` differs from what a charger holding `installed` should answer. `just_applied`:
    the charger has just accepted them (a read-back after applying), so "lost" is not the answer."""
    wrong = next((d for d in drift if not d.in_sync), None)
    if wrong is None:
        return Diagnosis("the charger's answers agree", ())
    where = "connector 0 (the station total)" if wrong.connector_id == 0 else f"connector {wrong.connector_id}"
    observed_text = f"{where} {wrong.describe()}"
    causes: list[str] = []
    if installed and not accepted_unchanged and not just_applied and _lost(window, installed, observed):
        return Diagnosis(observed_text, ("the charger lost profiles it had accepted (a reboot, a clear by "
                                         "someone else): they are set again",), lost=True)  # fmt: skip
    conventions: dict[str, Any] = {}
    for name, context in (presets or {}).items():
        if agrees(replace(window, context=context), installed, observed):
            conventions = conventions_json(context, changed_from=window.context)
            causes.append(f"the charger reports as the {name} model does, not by its declared conventions: declare "
                          f"`model: {name}` on the Station")  # fmt: skip
            break
    if not conventions:
        for context in variants(window.context):
            if agrees(replace(window, context=context), installed, observed):
                conventions = conventions_json(context, changed_from=window.context)
                shown = ", ".join(f"{k}: {_yaml(v)}" for k, v in conventions.items())
                causes.append(f"the charger reports by other conventions than declared: its answers match "
                              f"`conventions: {{{shown}}}`; declare them in its ChargerModel "
                              f"(`reconciler doctor {station_id}` infers them)")  # fmt: skip
                break
    requested = window.unit
    other = sorted({u.value for c, u in (reply_units or {}).items() if u is not requested})
    if other:
        causes.append(f"a unit convention: it answered in {', '.join(other)} when asked in {requested.value}")
    foreign = any(c in (DriftClass.EXTRA, DriftClass.SHADOWED) for d in drift for c in d.classes)
    if foreign:
        causes.append("a profile the reconciler did not install caps or overrides its own")
    enforced = "the charger accepted the profiles but does not enforce them"
    causes.insert(0 if accepted_unchanged and not conventions else len(causes), enforced)
    foreign_only = foreign and not conventions and not other and not accepted_unchanged
    if foreign_only:
        causes = ["a profile the reconciler did not install caps or overrides its own (the answers fit "
                  "no other reporting convention)"]  # fmt: skip
    return Diagnosis(observed_text, tuple(causes), conventions, foreign_only=foreign_only)


def _yaml(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)
