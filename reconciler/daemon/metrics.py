"""What the daemon measures, in Prometheus form (`GET /metrics`) and as JSON (`GET /stations/metrics`).

Flow: the daemon and the API record into `DaemonMetrics` (one registry per daemon, no module-level
singletons, so several daemons or tests share a process) -> prometheus-client renders it. Every
OCPP call goes through `MeteredGateway`, a Gateway that counts calls by action and outcome on its
way to the real one, so the engine needs no knowledge of metrics.

Series: `reconciler_stations{condition}`, `reconciler_reconciles_total{outcome}`,
`reconciler_reconcile_duration_seconds`, `reconciler_ocpp_calls_total{action,outcome}`,
`reconciler_profile_acceptance_ratio`, `reconciler_limit_compliance_ratio` (MeterValues samples
within the limit in force), `reconciler_meter_samples_total{within}`,
`reconciler_boot_to_reapplied_seconds`, `reconciler_api_request_duration_seconds{method,route}`,
`reconciler_policy_reloads_total{result}`, `reconciler_notifications_total{result}`,
`reconciler_clock_skewed_stations` (declared stations whose last measured clock is off by more than
the tolerance) and `reconciler_clock_skew_max_seconds` (the largest such offset, either sign).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from reconciler.core.status import Status
from reconciler.transport.gateway import BootCheck, Gateway, Reply, ReplyKind, StationEvent

FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)


class _Conditions(Collector):
    def __init__(self, conditions: Callable[[], Counter[str]]) -> None:
        self.conditions = conditions

    def collect(self) -> Any:
        family = GaugeMetricFamily("reconciler_stations", "Declared stations by condition", labels=["condition"])
        counts = self.conditions()
        for status in Status:
            family.add_metric([status.value], counts.get(status.value, 0))
        yield family


class _ClockSkew(Collector):
    """Clock-skew health, read from the store at scrape time: how many clocks are off, and the worst."""

    def __init__(self, skews: Callable[[], Mapping[str, float]], tolerance: float) -> None:
        self.skews, self.tolerance = skews, tolerance

    def collect(self) -> Any:
        offsets = [abs(s) for s in self.skews().values()]
        off = GaugeMetricFamily(
            "reconciler_clock_skewed_stations",
            f"Stations whose clock is off by more than {self.tolerance:g} s (Degraded until set)",
        )
        off.add_metric([], sum(1 for s in offsets if s > self.tolerance))
        yield off
        worst = GaugeMetricFamily("reconciler_clock_skew_max_seconds", "The largest clock offset measured, in seconds")
        worst.add_metric([], max(offsets, default=0.0))
        yield worst


class DaemonMetrics:
    def __init__(
        self, conditions: Callable[[], Counter[str]], skews: Callable[[], Mapping[str, float]] = dict,
        clock_tolerance: float = 30.0,
    ) -> None:  # fmt: skip
        self.registry = CollectorRegistry()
        r = self.registry
        r.register(_Conditions(conditions))
        r.register(_ClockSkew(skews, clock_tolerance))
        self.reconciles = PromCounter("reconciler_reconciles", "Reconciles by outcome", ["outcome"], registry=r)
        self.duration = Histogram(
            "reconciler_reconcile_duration_seconds", "Duration of one station's reconcile", buckets=FAST, registry=r
        )
        self.calls = PromCounter(
            "reconciler_ocpp_calls", "OCPP calls to chargers by action and outcome", ["action", "outcome"], registry=r
        )
        self.acceptance = Gauge(
            "reconciler_profile_acceptance_ratio",
            "Share of SetChargingProfile calls the chargers answered Accepted",
            registry=r,
        )
        self.compliance = Gauge(
            "reconciler_limit_compliance_ratio",
            "Share of MeterValues power samples within the limit in force",
            registry=r,
        )
        self.samples = PromCounter(
            "reconciler_meter_samples", "MeterValues power samples judged against the limit", ["within"], registry=r
        )
        self.boot_to_reapplied = Histogram(
            "reconciler_boot_to_reapplied_seconds",
            "From a BootNotification to the station verified Synced again",
            buckets=SLOW,
            registry=r,
        )
        self.api_latency = Histogram(
            "reconciler_api_request_duration_seconds",
            "API request latency",
            ["method", "route"],
            buckets=FAST,
            registry=r,
        )
        self.reloads = PromCounter("reconciler_policy_reloads", "Policy reloads by result", ["result"], registry=r)
        self.notifications = PromCounter("reconciler_notifications", "Notifications by result", ["result"], registry=r)
        self.sets: Counter[str] = Counter()  # answers to SetChargingProfile: Accepted / other
        self.within = Counter[bool]()
        self.acceptance.set(1.0)
        self.compliance.set(1.0)

    def call(self, action: str, reply: Reply) -> None:
        outcome = (reply.status or "ok") if reply.kind is ReplyKind.ANSWERED else reply.kind.value
        self.calls.labels(action, outcome).inc()
        if action == "SetChargingProfile" and reply.kind is ReplyKind.ANSWERED:
            self.sets["Accepted" if reply.status == "Accepted" else "other"] += 1
            total = sum(self.sets.values())
            self.acceptance.set(self.sets["Accepted"] / total)

    def sample(self, within: bool) -> None:
        self.within[within] += 1
        self.samples.labels("true" if within else "false").inc()
        self.compliance.set(self.within[True] / (self.within[True] + self.within[False]))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, Any]:
        """The same figures as JSON (counters summed over their labels where that reads better)."""
        out: dict[str, Any] = {}
        for family in self.registry.collect():
            samples = [s for s in family.samples if not s.name.endswith("_created")]
            if family.type in ("counter", "gauge") and not any(s.labels for s in samples):
                out[family.name] = samples[0].value if samples else 0
            elif family.type == "histogram":
                count = sum(s.value for s in samples if s.name.endswith("_count"))
                total = sum(s.value for s in samples if s.name.endswith("_sum"))
                out[family.name] = {"count": count, "sum": total, "mean": total / count if count else None}
            else:
                out[family.name] = [
                    {"labels": s.labels, "value": s.value}
                    for s in samples
                    if s.name.endswith("_total") or family.type == "gauge"
                ]
        return out


class MeteredGateway:
    """A Gateway that counts every call on its way to `inner`."""

    def __init__(self, inner: Gateway, metrics: DaemonMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Reply:
        reply = await self.inner.call(station_id, action, payload, timeout=timeout)
        self.metrics.call(action, reply)
        return reply

    def is_connected(self, station_id: str) -> bool:
        return self.inner.is_connected(station_id)

    def connected_stations(self) -> set[str]:
        return self.inner.connected_stations()

    def subscribe(self) -> asyncio.Queue[StationEvent]:
        return self.inner.subscribe()

    def station(self, station_id: str) -> Any:
        station = getattr(self.inner, "station", None)
        return station(station_id) if callable(station) else None

    # What the embedded Central System offers beyond the Gateway protocol (engine/readiness.py asks
    # for it by name): the boot wait, learning each connector's state, the transaction journal.
    async def wait_booted(self, station_id: str, timeout: float) -> BootCheck:
        wait = getattr(self.inner, "wait_booted", None)
        return await wait(station_id, timeout) if callable(wait) else BootCheck(True)

    async def learn_connectors(self, station_id: str, connectors: Iterable[int], timeout: float) -> None:
        learn = getattr(self.inner, "learn_connectors", None)
        if callable(learn):
            await learn(station_id, connectors, timeout)

    def use_journal(self, sink: Any) -> None:
        attach = getattr(self.inner, "use_journal", None)
        if callable(attach):
            attach(sink)
