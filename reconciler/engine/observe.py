"""Observe one station: its smart-charging configuration and its composite schedules.

Flow: engine -> `observe_station` -> GetConfiguration (cached in the store with a TTL) and one
GetCompositeSchedule per connector, with an explicit unit, over the horizon -> `Observation`.

Reading fails closed: a station whose configuration cannot be read, or whose composite answer
cannot be understood, is not planned for (its observation carries the failure, with the status it
leads to and why). Capabilities read from the charger (ChargeProfileMaxStackLevel...) override the
policy's defaults; the normaliser turns every "no limit" form of this charger into None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from reconciler.core.context import Capabilities, Connector0, StationContext, Transaction, Uncovered
from reconciler.core.diff import Normaliser, ObservationError, observed_from_ocpp
from reconciler.core.plan import ConfigValue
from reconciler.core.profiles import ProfileError, RateUnit, epoch_seconds, format_time, parse_time
from reconciler.core.status import Status
from reconciler.core.timeline import Timeline
from reconciler.core.units import parse_allowed_units
from reconciler.engine.calls import Caller
from reconciler.store.sqlite import Store
from reconciler.transport.gateway import Reply, ReplyKind

CAPABILITY_KEYS = (
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleMaxPeriods",
    "MaxChargingProfilesInstalled",
    "ChargingScheduleAllowedChargingRateUnit",
)


@dataclass(frozen=True, slots=True)
class Failure:
    status: Status
    reason: str
    clock_skew: float | None = None  # seconds, when the failure is the charger's clock


@dataclass(frozen=True, slots=True)
class Observation:
    station_id: str
    at: datetime
    context: StationContext = field(default_factory=StationContext)
    unit: RateUnit = RateUnit.A
    normaliser: Normaliser = field(default_factory=Normaliser)
    timelines: Mapping[int, Timeline] = field(default_factory=dict)
    configuration: Mapping[str, ConfigValue] = field(default_factory=dict)
    transactions: Mapping[int, Transaction] = field(default_factory=dict)
    failure: Failure | None = None
    clock_skew: float | None = None  # seconds, charger minus us, from its scheduleStart
    reply_units: Mapping[int, RateUnit] = field(default_factory=dict)  # the unit each answer came in
    charger_model: str | None = None  # the ChargerModel its conventions come from, and how it was chosen

    @property
    def ok(self) -> bool:
        return self.failure is None


def failure_of(reply: Reply, what: str) -> Failure:
    if reply.temporary:
        return Failure(Status.OFFLINE, f"{what}: {reply.describe()}")
    return Failure(Status.DEGRADED, f"{what}: {reply.describe()}")


def normaliser_for(context: StationContext, max_current_a: float) -> Normaliser:
    return Normaliser(
        voltage=context.supply_voltage,
        phases=context.default_number_phases,
        max_current_a=max_current_a,
        rejected_means_no_limit=context.uncovered is Uncovered.REJECTED,
        step=context.limit_step,
        connectors=context.number_of_connectors,
    )


def capabilities_from(values: Mapping[str, ConfigValue], default: Capabilities) -> Capabilities:
    def number(key: str, fallback: int) -> int:
        raw = values.get(key)
        try:
            return int(raw.value) if raw is not None and raw.value is not None else fallback
        except ValueError:
            return fallback

    units_raw = values.get("ChargingScheduleAllowedChargingRateUnit")
    units = default.allowed_units
    if units_raw is not None and units_raw.value:
        units = parse_allowed_units(units_raw.value) or units
    reported = values.get("ChargeProfileMaxStackLevel")
    return replace(
        default,
        max_stack_level=number("ChargeProfileMaxStackLevel", default.max_stack_level),
        max_stack_level_known=default.max_stack_level_known or (reported is not None and reported.value is not None),
        max_periods=number("ChargingScheduleMaxPeriods", default.max_periods),
        max_profiles=number("MaxChargingProfilesInstalled", default.max_profiles),
        allowed_units=units,
    )


async def read_configuration(
    caller: Caller, store: Store, station_id: str, keys: Sequence[str], now: datetime, ttl: float
) -> dict[str, ConfigValue] | Failure:
    cached = store.configuration(station_id)
    if cached is not None and now - cached[1] <= timedelta(seconds=ttl) and all(k in cached[0] for k in keys):
        return {k: ConfigValue(v.get("value"), bool(v.get("readonly"))) for k, v in cached[0].items()}
    reply = await caller.call(station_id, "GetConfiguration", {"key": list(keys)})
    if reply.kind is not ReplyKind.ANSWERED or reply.payload is None:
        return failure_of(reply, "GetConfiguration")
    values: dict[str, ConfigValue] = {k: ConfigValue(None) for k in keys}
    for item in reply.payload.get("configurationKey") or []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            values[item["key"]] = ConfigValue(item.get("value"), bool(item.get("readonly")))
    store.save_configuration(
        station_id, {k: {"value": v.value, "readonly": v.readonly} for k, v in values.items()}, now
    )
    return values


@dataclass(frozen=True, slots=True)
class Readings:
    """The composite answers of one station: a timeline per connector, how far the charger's clock
    is from ours (seconds, charger minus us; None when no answer said), the unit each came in."""

    timelines: dict[int, Timeline]
    clock_skew: float | None = None
    units: dict[int, RateUnit] = field(default_factory=dict)


def clock_skew_of(payload: Mapping[str, Any], asked_at: datetime) -> float | None:
    """The charger's scheduleStart (its "now") minus the time we asked, in seconds; None without one."""
    schedule = payload.get("chargingSchedule")
    raw = payload.get("scheduleStart") or (schedule.get("startSchedule") if isinstance(schedule, dict) else None)
    try:
        return (parse_time(raw) - asked_at).total_seconds() if isinstance(raw, str) else None
    except (ProfileError, OverflowError):
        return None


async def read_answers(
    caller: Caller, station_id: str, connectors: Sequence[int], *, unit: RateUnit, horizon: int,
    normaliser: Normaliser, now: datetime, clock_now: Callable[[], datetime] | None = None,
    clock_tolerance: float | None = None,
) -> Readings | Failure:  # fmt: skip
    """GetCompositeSchedule per connector. With `clock_tolerance`, an answer whose scheduleStart is
    further than that from our clock when we asked is not judged: the charger's clock is wrong (a
    charger at 1970 until its boot is accepted enforces nothing that starts later), Degraded."""
    readings = Readings({})
    for connector in connectors:
        payload: dict[str, Any] = {"connectorId": connector, "duration": horizon, "chargingRateUnit": unit.value}
        asked = (clock_now or (lambda: now))()
        reply = await caller.call(station_id, "GetCompositeSchedule", payload)
        if reply.kind is not ReplyKind.ANSWERED or reply.payload is None:
            return failure_of(reply, f"GetCompositeSchedule connector {connector}")
        skew = clock_skew_of(reply.payload, asked)
        if skew is not None and readings.clock_skew is None:
            readings = replace(readings, clock_skew=skew)
            if clock_tolerance is not None and abs(skew) > clock_tolerance:
                charger = format_time(asked + timedelta(seconds=skew))
                return Failure(Status.DEGRADED, f"clock skew: charger says {charger}, we say {format_time(asked)} "
                               f"({skew:+.0f} s, more than {clock_tolerance:g} s); its schedules run on its clock, "
                               "so nothing is judged or sent until it is set (BootNotification, Heartbeat or "
                               "its own time source)", clock_skew=skew)  # fmt: skip
        schedule = reply.payload.get("chargingSchedule")
        if isinstance(schedule, dict) and schedule.get("chargingRateUnit") in ("A", "W"):
            readings.units[connector] = RateUnit(schedule["chargingRateUnit"])
        try:
            readings.timelines[connector] = observed_from_ocpp(
                reply.payload, requested=unit, duration=horizon, normaliser=normaliser.for_connector(connector),
                asked_at=epoch_seconds(now),
            )  # fmt: skip
        except ObservationError as exc:
            return Failure(Status.DEGRADED, f"GetCompositeSchedule connector {connector}: {exc}")
    return readings


async def read_composites(
    caller: Caller, station_id: str, connectors: Sequence[int], *, unit: RateUnit, horizon: int,
    normaliser: Normaliser, now: datetime,
) -> dict[int, Timeline] | Failure:  # fmt: skip
    """The timelines alone (a read-back after applying)."""
    readings = await read_answers(
        caller, station_id, connectors, unit=unit, horizon=horizon, normaliser=normaliser, now=now
    )
    return readings if isinstance(readings, Failure) else readings.timelines


def observed_connectors(context: StationContext) -> list[int]:
    """The connectors whose composite is read: 1..N, and for a station with several connectors also
    connector 0, the station total (where a lost ChargePointMaxProfile shows), unless the charger's
    convention says it does not answer for connector 0."""
    connectors = list(range(1, context.number_of_connectors + 1))
    if context.number_of_connectors > 1 and context.connector0 is not Connector0.UNSUPPORTED:
        connectors.insert(0, 0)
    return connectors


async def observe_station(
    caller: Caller,
    store: Store,
    station_id: str,
    *,
    context: StationContext,
    max_current_a: float,
    desired_keys: Sequence[str],
    transactions: Mapping[int, Transaction],
    now: datetime,
    horizon: int,
    config_ttl: float,
    clock_now: Callable[[], datetime] | None = None,
    clock_tolerance: float | None = None,
) -> Observation:
    """Everything the planner needs to know about one station, or why it could not be known."""
    keys = list(dict.fromkeys([*CAPABILITY_KEYS, *desired_keys]))
    configuration = await read_configuration(caller, store, station_id, keys, now, config_ttl)
    if isinstance(configuration, Failure):
        return Observation(station_id, now, failure=configuration)
    context = context.with_(capabilities=capabilities_from(configuration, context.capabilities))
    unit = context.default_unit
    normaliser = normaliser_for(context, max_current_a)
    readings = await read_answers(
        caller, station_id, observed_connectors(context), unit=unit, horizon=horizon, normaliser=normaliser, now=now,
        clock_now=clock_now, clock_tolerance=clock_tolerance,
    )  # fmt: skip
    if isinstance(readings, Failure):
        return Observation(station_id, now, context, unit, normaliser, configuration=configuration, failure=readings,
                           clock_skew=readings.clock_skew)  # fmt: skip
    return Observation(station_id, now, context, unit, normaliser, readings.timelines, configuration, transactions,
                       clock_skew=readings.clock_skew, reply_units=readings.units)  # fmt: skip
