"""Judge one station's read-back: drift per connector, why it differs, what it cannot show.

Flow: (reconcile) an `Observation` + the desired state + the ledger -> `judged_plan` (the plan, judged
against every state the ledger allows) -> `station_drift` for each (every
connector 0..N by the charger's own conventions, at the instant it reported from; a transaction
nobody saw start judged without blame) -> the plan; when the charger does not report what the
ledger says it holds, `explain` says why (lost profiles, another reporting convention, a unit
convention, a foreign profile, not enforced: `core.blame`), and `station_limitations` what a
`Synced` could not verify. The reconciler quotes these in its reasons; nothing here sends a call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from reconciler.core.actions import LedgerEntry, LedgerState
from reconciler.core.blame import Diagnosis, diagnose
from reconciler.core.context import StationContext
from reconciler.core.diff import ConnectorDrift, DriftClass, compare_connector
from reconciler.core.holdings import possible_holdings
from reconciler.core.installed import InstalledProfiles
from reconciler.core.plan import Desired, StationPlan, plan_station
from reconciler.core.profiles import epoch_seconds, from_epoch
from reconciler.core.readback import Limitation, judge_unknown_start, limitations, reported_timeline
from reconciler.core.safety import Window
from reconciler.core.timeline import Timeline
from reconciler.engine.observe import Observation

WindowAt = Callable[[Observation, datetime | None], Window]


def station_drift(
    observation: Observation, installed: InstalledProfiles, window_at: WindowAt,
    known: tuple[int, list[Timeline]] | None = None,
) -> list[ConnectorDrift]:  # fmt: skip
    """Each observed connector (1..N, then the station total) against what a charger holding
    `installed` reports by its own conventions, at the instant it reported from (its
    scheduleStart). `known`: (instant, reported timelines of connectors 1..N) already computed."""
    drift = []
    inferred: dict[int, int] = {}  # connector -> start of a transaction nobody saw start, inferred
    for connector, observed in sorted(observation.timelines.items(), key=lambda item: (item[0] == 0, item[0])):
        window = window_at(observation, from_epoch(observed.start))
        if connector == 0:  # the station total, by the charger's connector-0 convention
            expected = reported_timeline(window, installed, 0)
        elif known is not None and known[0] == observed.start:
            expected = known[1][connector - 1]
        else:
            expected = window.reported(installed)[connector - 1]
        normaliser = observation.normaliser.for_connector(connector)
        judged = compare_connector(connector, expected, observed, normaliser)
        drift.append(judge_unknown_start(window, installed, connector, observed, normaliser, judged, inferred))
    return drift


def explain(
    station_id: str, observation: Observation, installed: InstalledProfiles, window_at: WindowAt, *,
    presets: Mapping[str, StationContext] | None = None, accepted_unchanged: bool = False,
    just_applied: bool = False,
) -> Diagnosis:  # fmt: skip
    """Why the charger's answers differ from those of a charger holding `installed`."""
    first = min((t.start for t in observation.timelines.values()), default=None)
    window = window_at(observation, None if first is None else from_epoch(first))
    drift = station_drift(observation, installed, window_at)
    return diagnose(
        station_id, window, installed, observation.timelines, drift, reply_units=observation.reply_units,
        presets=presets, accepted_unchanged=accepted_unchanged, just_applied=just_applied,
    )  # fmt: skip


def explained_plan(plan: StationPlan, diagnosis: Diagnosis) -> StationPlan:
    """The plan once the charger's answers are explained: nothing is sent when they show another
    reporting convention (re-sending would change nothing); a foreign cap is blocked with the
    likely causes (`prune: foreign` advised only when nothing else explains it)."""
    if diagnosis.lost:
        return plan
    if diagnosis.convention:
        return replace(plan, actions=(), blocked=diagnosis.text(), foreign=False)
    if plan.blocked:
        return replace(plan, blocked=diagnosis.text())
    return plan


def station_limitations(
    observation: Observation, desired: InstalledProfiles, drift: Sequence[ConnectorDrift],
    known: Sequence[Limitation] = (),
) -> tuple[Limitation, ...]:  # fmt: skip
    """What the charger's answers cannot show of the desired profiles (with `known` ones, once each)."""
    found = {item.message: item for item in (*known, *limitations(observation.context, observation.transactions,
                                                                   desired, drift))}  # fmt: skip
    return tuple(found.values())


def with_limitations(reason: str | None, found: Sequence[Limitation]) -> str | None:
    """A Synced reason that says what it could not verify."""
    return "; ".join([*([reason] if reason else []), *(item.message for item in found)]) or None


def judged_plan(
    station_id: str, desired: Desired, ledger: Sequence[LedgerEntry], observation: Observation, window_at: WindowAt
) -> StationPlan:
    """The plan of one observed station: its drift from the desired state, judged against every state
    the charger may be in given the ledger's uncertain entries (usually one), at the instant it
    reported from; a cap below every state the ledger allows is a profile the reconciler did not install."""
    wanted = InstalledProfiles.of(list(desired.profiles))
    first = min((t.start for t in observation.timelines.values()), default=None)
    window = window_at(observation, None if first is None else from_epoch(first))
    at = epoch_seconds(window.now)
    same = window.reports_as_judged
    new = window.timelines(wanted)
    drift = station_drift(observation, wanted, window_at, (at, new if same else window.reported(wanted)))
    holdings = possible_holdings(ledger)
    judge = window.timelines if same else window.reported
    judged = [  # a holding that is the desired state (a drift check of a station in sync) reuses its drift
        drift if h.installed == wanted else station_drift(observation, h.installed, window_at, (at, judge(h.installed)))
        for h in holdings
    ]
    explained = [i for i, d in enumerate(judged) if all(c.in_sync for c in d)]
    if explained and holdings[explained[0]].nominal:
        # An Accepted answer whose absence no read-back can show is taken at its word.
        unverified = {e.seq for e in ledger if e.state is LedgerState.UNVERIFIED}
        explained = [i for i in explained if not holdings[i].missing & unverified]
    foreign_caps = all(any(DriftClass.EXTRA in d.classes for d in by_state) for by_state in judged)
    chosen = explained or list(range(len(holdings)))
    return plan_station(
        station_id,
        desired,
        ledger,
        drift,
        window,
        configuration=observation.configuration,
        as_recorded=bool(explained),
        foreign_caps=foreign_caps,
        holdings=[holdings[i] for i in chosen],
        recorded=judged[chosen[0]],
    )
