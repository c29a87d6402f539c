"""What each station enforces now, from the charger's own read-back: the limit in force.

Flow: a reconcile ends (`Daemon.latest[station]`: the observation it planned from, and when it
applied, the read-back that verified the apply) -> `readback_of` picks the latest of the two (the
after-state when there is one) -> `in_force` turns it into W timelines per connector and for the
station's physical total (`core.physical.physical_from_readback`: each connector's limit, summed,
capped by the ChargePointMaxProfile; not the charger's connector-0 reporting convention) -> the
API's station views, the fleet table, and limit compliance (each MeterValues sample judged against
it).

Never the ledger: a charger that answered Accepted and enforces nothing reads back no limit, and
that is what is shown. No read-back (offline, suspended, not reconciled yet, or the read-back's
window has passed) is `None`: the limit in force is not known.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.core.physical import in_watts, physical_from_readback
from reconciler.core.profiles import RateUnit, epoch_seconds
from reconciler.core.timeline import Limit, Timeline, merged
from reconciler.daemon.power import power_samples

if TYPE_CHECKING:
    from reconciler.daemon.service import Daemon


@dataclass(frozen=True, slots=True)
class InForce:
    """One station's limits in force, in W, as its latest read-back shows them."""

    at: int  # epoch second of the read-back (its earliest answer)
    connectors: dict[int, Timeline]  # 1..N
    total: Timeline  # the station's physical total
    after_apply: bool  # the read-back that verified an apply (else the observation a plan started from)

    def connector_w(self, connector: int, now_s: int) -> Limit:
        """The limit on one connector (0: the station's total) at `now_s`; None: no limit."""
        timeline = self.total if connector == 0 else self.connectors.get(connector)
        return None if timeline is None else timeline.at(now_s)

    def until(self, now_s: int) -> float:
        """The epoch second from which another limit applies (a step, or the end of the read-back)."""
        timelines = (self.total, *self.connectors.values())
        later = [t.end for t in timelines] + [b for t in timelines for b, _ in t.steps]
        return float(min((moment for moment in later if moment > now_s), default=now_s + 86_400))


def readback_of(outcome: Any) -> Mapping[int, Timeline] | None:
    """The charger's latest answers per connector: the after-state read-back of an apply when there
    is one, else the observation the reconcile started from; None when it read nothing back."""
    if outcome is None:
        return None
    verified = getattr(outcome, "verified", ())
    if verified:
        return {d.connector_id: d.observed for d in verified}
    observation = getattr(outcome, "observation", None)
    if observation is None or not observation.ok or not observation.timelines:
        return None
    return dict(observation.timelines)


# daemon -> station -> (the outcome, its limits in force)
_SEEN: weakref.WeakKeyDictionary[Any, dict[str, tuple[Any, InForce | None]]] = weakref.WeakKeyDictionary()


def in_force(daemon: Daemon, station_id: str) -> InForce | None:
    """The station's limits in force from its latest read-back, or None (not known). Worked out once
    per outcome (every MeterValues sample is judged against it)."""
    outcome = daemon.latest.get(station_id)
    seen = _SEEN.setdefault(daemon, {})
    cached = seen.get(station_id)
    if cached is not None and cached[0] is outcome:
        return cached[1]
    found = _in_force(daemon, station_id, outcome)
    seen[station_id] = (outcome, found)
    return found


def _in_force(daemon: Daemon, station_id: str, outcome: Any) -> InForce | None:
    timelines = readback_of(outcome)
    station = daemon.policies.stations.get(station_id)
    if outcome is None or timelines is None or station is None:
        return None
    lanes = [timelines.get(c) for c in range(1, station.connectors + 1)]
    if any(lane is None for lane in lanes):
        return None
    observation = outcome.observation
    context = observation.context if observation is not None else station.context
    voltage, phases = station.voltage, station.phases

    def watts(timeline: Timeline) -> Timeline:
        return in_watts(timeline, voltage, phases)

    def normalised(timeline: Timeline, connector: int) -> Timeline:
        """At or above the hardware maximum (one connector's, or all of them for the total) is no limit."""
        if observation is None:
            return timeline
        normaliser = observation.normaliser.for_connector(connector)
        steps = [(b, normaliser.limit(v, RateUnit.W)) for b, v in timeline.steps]
        return Timeline(timeline.start, timeline.end, RateUnit.W, merged(steps))

    reported = timelines.get(0)
    per, total = physical_from_readback(
        [watts(lane) for lane in lanes if lane is not None],
        watts(reported) if reported is not None else None,
        context.connector0,
    )
    at = min(t.start for t in timelines.values())
    connectors = {c: normalised(lane, c) for c, lane in enumerate(per, start=1)}
    return InForce(at, connectors, normalised(total, 0), bool(outcome.verified))


def limit_now_w(daemon: Daemon, station_id: str, connector: int) -> Limit:
    """The limit in force now on a connector (0: the station's physical total), in W; None when the
    read-back shows no limit there or there is no read-back (or it no longer covers now)."""
    found = in_force(daemon, station_id)
    if found is None:
        return None
    now_s = epoch_seconds(daemon.now())
    if now_s >= found.total.end:
        return None
    return found.connector_w(connector, now_s)


CLOCK_SLACK_S = 2  # a sample this close before the read-back is judged by it (clocks a second apart)


def within(watts: float, limit: float) -> bool:
    """A power sample within a limit: 2 % and 50 W of slack for metering and rounding."""
    return watts <= limit * 1.02 + 50


def judged_samples(daemon: Daemon, station_id: str, data: dict[str, Any]) -> Iterator[bool]:
    """Each power sample of a MeterValues payload judged against the limit in force when it was taken:
    True within, False above. Not judged: a sample from before the latest read-back (the limit then is
    not what it shows), after its window, without a limit in force, or with no read-back at all."""
    found = in_force(daemon, station_id)
    if found is None:
        return
    now_s = epoch_seconds(daemon.now())
    for connector, watts, taken in power_samples(data):
        moment = epoch_seconds(taken) if taken is not None else now_s
        if moment < found.at - CLOCK_SLACK_S or moment >= found.total.end:
            continue
        limit = found.connector_w(connector, max(moment, found.at))
        if limit is not None:
            yield within(watts, limit)
