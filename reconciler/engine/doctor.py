"""`reconciler doctor`: infer how a charger reports composite schedules from what it answers.

Flow: (cli) a reachable, booted station -> `examine` -> reads (GetConfiguration; GetCompositeSchedule
of every connector, in A and in W) and, with `active`, probes: a profile installed for two
minutes starting a minute from now, read back and removed at once -> `Findings`: each convention
with the evidence for it, what could not be told, the clock. The CLI prints them as a ChargerModel
to commit (`doctor_cmd`).

The probes cap nothing: their limits lie above the station's hardware maximum (a TxDefaultProfile
at maxCurrentA + 1.37 A per connector, a ChargePointMaxProfile at that times the connectors), in
the top stack level, under an id no policy uses, and they are sent only to a charger that reports
no cap at all (else a probe could lift a cap it overrides: refused, with the reason). Each is
cleared by id right after it is read; a clear that fails is reported loudly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reconciler.core.profiles import format_time, parse_time
from reconciler.engine.calls import Caller
from reconciler.transport.gateway import Reply, ReplyKind

PROBE_ID = 2_000_000_001
PROBE_STEP_A = 1.37  # above the hardware maximum, with a fraction that shows the charger's rounding
HORIZON = 3 * 3600
SETTLE_READS, SETTLE_SECONDS = 10, 0.5  # an accepted probe may take a moment to be in force: read again, bounded
CAPABILITY_KEYS = ("ChargeProfileMaxStackLevel", "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled",
                   "ChargingScheduleAllowedChargingRateUnit")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Hardware:
    connectors: int = 1
    max_current_a: float = 32.0
    phases: int = 3
    voltage: float = 230.0

    @property
    def per_amp(self) -> float:
        return self.voltage * self.phases


@dataclass
class Findings:
    """What doctor learnt: ChargerModel fields with their evidence, and what it could not tell."""

    boot: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, Any] = field(default_factory=dict)
    conventions: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)  # field -> why
    undetermined: dict[str, str] = field(default_factory=dict)  # convention -> why not
    notes: list[str] = field(default_factory=list)
    clock_skew: float | None = None

    def found(self, section: str, key: str, value: Any, why: str) -> None:
        (self.capabilities if section == "capabilities" else self.conventions)[key] = value
        self.evidence[key] = why
        self.undetermined.pop(key, None)

    def unknown(self, key: str, why: str) -> None:
        if key not in self.conventions:
            self.undetermined.setdefault(key, why)


@dataclass(frozen=True, slots=True)
class Answer:
    """One GetCompositeSchedule answer, reduced: status, unit, start and (offset, limit) periods."""

    status: str
    unit: str | None
    start: datetime | None
    periods: tuple[tuple[int, float], ...]
    error: str | None = None

    def at(self, offset: int) -> float | None:
        """The limit in force `offset` seconds after the answer's start (None: no period there)."""
        value = None
        for begin, limit in self.periods:
            if begin > offset:
                break
            value = limit
        return value


def reduce(reply: Reply) -> Answer:
    if reply.kind is not ReplyKind.ANSWERED or reply.payload is None:
        return Answer("Error", None, None, (), reply.describe())
    payload = reply.payload
    found = payload.get("chargingSchedule")
    schedule: dict[str, Any] = found if isinstance(found, dict) else {}
    raw = payload.get("scheduleStart") or schedule.get("startSchedule")
    try:
        start = parse_time(raw) if isinstance(raw, str) else None
    except ValueError:
        start = None
    periods = tuple(
        (int(p.get("startPeriod", 0)), float(p["limit"]))
        for p in schedule.get("chargingSchedulePeriod") or []
        if isinstance(p, dict) and isinstance(p.get("limit"), int | float)
    )
    return Answer(str(payload.get("status")), schedule.get("chargingRateUnit"), start, periods)


def _close(a: float | None, b: float, tolerance: float = 0.051) -> bool:
    return a is not None and abs(a - b) <= tolerance


class Doctor:
    """One examination of one station through a `Caller` (rate limits and retries as ever)."""

    def __init__(self, caller: Caller, station_id: str, hardware: Hardware, now: Callable[[], datetime]) -> None:
        self.caller, self.station_id, self.hw, self.now = caller, station_id, hardware, now
        self.findings = Findings()
        self.delay = 0.0  # seconds the charger took to put the first probe in force (enforcement delay)

    async def composite(self, connector: int, unit: str, duration: int = HORIZON) -> Answer:
        payload = {"connectorId": connector, "duration": duration, "chargingRateUnit": unit}
        return reduce(await self.caller.call(self.station_id, "GetCompositeSchedule", payload))

    async def read_until(self, connector: int, unit: str, shown: Callable[[Answer], bool]) -> Answer:
        """Read a connector until `shown` holds, at most SETTLE_READS more times: some chargers put an
        accepted profile in force a moment later. The time it took is kept as the charger's delay."""
        answer = await self.composite(connector, unit)
        for attempt in range(1, SETTLE_READS + 1):
            if shown(answer):
                break
            await asyncio.sleep(SETTLE_SECONDS)
            answer = await self.composite(connector, unit)
            if shown(answer):
                self.delay = max(self.delay, attempt * SETTLE_SECONDS)
                self.findings.notes.append(f"the charger put the probe in force about {attempt * SETTLE_SECONDS:g} s "
                                           "after accepting it; later probes were read after that long")  # fmt: skip
        return answer

    def amps(self, answer: Answer, offset: int) -> float | None:
        """A limit of an answer in A, whatever unit it came in (None: no limit there, or -1)."""
        value = answer.at(offset)
        if value is None or value < 0:
            return None
        return value / self.hw.per_amp if answer.unit == "W" else value

    # --- reading ------------------------------------------------------------------------------

    async def read_capabilities(self) -> None:
        reply = await self.caller.call(self.station_id, "GetConfiguration", {"key": list(CAPABILITY_KEYS)})
        keys = {i.get("key"): i.get("value") for i in (reply.payload or {}).get("configurationKey") or []
                if isinstance(i, dict)}  # fmt: skip
        for key in CAPABILITY_KEYS:
            value = keys.get(key)
            if value is None:
                self.findings.notes.append(
                    f"{key} is not reported (GetConfiguration: unknown); declare it if you know it"
                    + (" (prune is bounded to stack levels 0..10 otherwise)" if key.endswith("StackLevel") else "")
                )
                continue
            if key == "ChargingScheduleAllowedChargingRateUnit":
                units = [{"current": "A", "power": "W", "a": "A", "w": "W"}.get(u.strip().lower())
                         for u in str(value).split(",")]  # fmt: skip
                self.findings.found("capabilities", key, [u for u in units if u], f"GetConfiguration: {value!r}")
            elif str(value).strip().isdigit():
                self.findings.found("capabilities", key, int(value), f"GetConfiguration: {value}")

    async def read_uncovered(self) -> dict[int, Answer]:
        """Every connector's answer now, in A; the uncovered form of a charger that caps nothing."""
        answers = {c: await self.composite(c, "A") for c in range(0 if self.hw.connectors > 1 else 1,
                                                                    self.hw.connectors + 1)}  # fmt: skip
        first = answers[1]
        if first.start is not None:
            asked = self.now()
            self.findings.clock_skew = (first.start - asked).total_seconds()
        f = self.findings
        if first.status == "Error":
            f.notes.append(f"GetCompositeSchedule connector 1: {first.error}")
        elif first.status == "Rejected":
            f.found("conventions", "uncoveredTime", "rejected", "connector 1 answered Rejected where nothing applies")
        elif not first.periods:
            f.found("conventions", "uncoveredTime", "no_limit", "connector 1 answered Accepted with no period")
        elif first.periods[0][1] < 0:
            f.found("conventions", "uncoveredTime", "minus_one", "connector 1 answered a period with limit -1")
        elif all(limit >= self.hw.max_current_a - 0.05 for _, limit in first.periods):
            limit = first.periods[0][1]
            f.found("conventions", "uncoveredTime", "default_limit",
                    f"connector 1 answered a period at {limit:g} A where nothing applies")  # fmt: skip
            f.found("conventions", "defaultLimitA", limit, "the limit of that period")
        return answers

    def capped(self, answers: Mapping[int, Answer]) -> tuple[str | None, str | None]:
        """Where the charger reports a cap, so no probe may be sent (a probe could lift a cap it
        overrides); and, second, why a ChargePointMaxProfile probe may not (connector 0 reports one
        connector's default: the uncovered form of a `stack` or `cap_only` charger, or a cap)."""
        default = self.findings.conventions.get("defaultLimitA")
        cap_doubt = None
        for connector, answer in answers.items():
            ceiling = self.hw.max_current_a * (self.hw.connectors if connector == 0 else 1)
            for offset, _ in answer.periods:
                value = self.amps(answer, offset)
                if value is None or value >= ceiling - 0.05:
                    continue
                if connector == 0 and default is not None and abs(value - default) < 0.05:
                    cap_doubt = (f"connector 0 reports {value:g} A, one connector's default: the uncovered time of a "
                                 "charger that does not sum its connectors, or a station cap")  # fmt: skip
                    continue
                return f"connector {connector} reports {value:.1f} A (below its {ceiling:g} A hardware maximum)", None
        return None, cap_doubt

    # --- probing ------------------------------------------------------------------------------

    @property
    def unit(self) -> str:
        """The unit probes are set in: W, unless the charger allows A only (it refuses W profiles)."""
        allowed = self.findings.capabilities.get("ChargingScheduleAllowedChargingRateUnit")
        return "A" if isinstance(allowed, list) and "W" not in allowed and "A" in allowed else "W"

    def in_unit(self, limit_w: float) -> float:
        """A probe limit given in W, in the unit probes are set in."""
        return round(limit_w, 1) if self.unit == "W" else round(limit_w / self.hw.per_amp, 2)

    def probe(self, purpose: str, limit_w: float, start: datetime, stack: int, **extra: Any) -> dict[str, Any]:
        periods = [{"startPeriod": 0, "limit": self.in_unit(limit_w)}]
        schedule: dict[str, Any] = {"startSchedule": format_time(start), "chargingRateUnit": self.unit,
                                    "chargingSchedulePeriod": periods}  # fmt: skip
        schedule.update(extra.pop("schedule", {}))
        profile = {"chargingProfileId": PROBE_ID, "stackLevel": stack, "chargingProfilePurpose": purpose,
                   "chargingProfileKind": "Absolute", "chargingSchedule": schedule, **extra}  # fmt: skip
        return {"connectorId": 0 if purpose == "ChargePointMaxProfile" else 1, "csChargingProfiles": profile}

    async def install(self, payload: dict[str, Any]) -> str | None:
        """Set a probe (top stack level, else 0); None when accepted, else what the charger said (a
        probe whose answer never came may be on the charger all the same: it is cleared)."""
        reply = await self.caller.call(self.station_id, "SetChargingProfile", payload)
        unsure = reply.ambiguous
        if reply.status != "Accepted" and payload["csChargingProfiles"]["stackLevel"] != 0:
            payload["csChargingProfiles"]["stackLevel"] = 0
            reply = await self.caller.call(self.station_id, "SetChargingProfile", payload)
            unsure = unsure or reply.ambiguous
        if reply.status != "Accepted":
            if unsure:
                await self.remove()
            return reply.describe()
        if self.delay:
            await asyncio.sleep(self.delay)  # in force only that long after it was accepted
        return None

    async def remove(self) -> None:
        reply = await self.caller.call(self.station_id, "ClearChargingProfile", {"id": PROBE_ID})
        if reply.status != "Accepted" and self.delay:
            await asyncio.sleep(self.delay)  # not stored yet when the Clear came: once more, after the delay
            reply = await self.caller.call(self.station_id, "ClearChargingProfile", {"id": PROBE_ID})
        if reply.status != "Accepted":
            self.findings.notes.append(
                f"WARNING: the probe profile #{PROBE_ID} could not be cleared ({reply.describe()}); clear it by hand: "
                f'ClearChargingProfile {{"id": {PROBE_ID}}} (it caps nothing, but it is not yours)'
            )


async def examine(
    caller: Caller, station_id: str, hardware: Hardware, *, active: bool, now: Callable[[], datetime],
    boot: Mapping[str, Any] | None = None,
) -> Findings:  # fmt: skip
    """Read (and with `active`, probe) a station; what its answers say of its conventions."""
    from reconciler.engine.doctor_probes import run_probes  # the probes, beside: one idea per module

    doctor = Doctor(caller, station_id, hardware, now)
    doctor.findings.boot = dict(boot or {})
    await doctor.read_capabilities()
    answers = await doctor.read_uncovered()
    if hardware.connectors > 1 and answers[0].status == "Error":
        doctor.findings.found("conventions", "connector0", "unsupported",
                              f"connector 0 answered {answers[0].error}")  # fmt: skip
    if not active:
        for key in ("convertUnits", "limitStep", "connector0", "simulateTransactionActive", "capOnConnectors",
                    "rebaseRecurring", "replyUnit"):  # fmt: skip
            doctor.findings.unknown(key, "reading alone cannot tell: run with --active")
        return doctor.findings
    why, cap_doubt = doctor.capped(answers)
    if why is not None:
        doctor.findings.notes.append(f"no probe was sent: {why}; a probe could lift a cap it overrides. Run --active "
                                     "on a charger that holds no profiles (a lab, or before adopting it)")  # fmt: skip
        return doctor.findings
    await run_probes(doctor, answers, cap_doubt)
    return doctor.findings


def probe_window(doctor: Doctor, answers: Mapping[int, Answer]) -> datetime:
    """When probes start: a minute after the charger's own now."""
    start = answers[1].start or doctor.now()
    return start + timedelta(seconds=60)
