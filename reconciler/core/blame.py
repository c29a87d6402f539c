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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.core.context import Connector0, StationContext, Uncovered
from reconciler.core.diff import ConnectorDrift, DriftClass, compare_connector
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import RateUnit
from reconciler.core.readback import reported_timeline
from reconciler.core.safety import Window
from reconciler.core.timeline import Timeline
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
