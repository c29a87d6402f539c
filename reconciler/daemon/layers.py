"""Desired state in layers: git's, plus overrides, plus the per-session intents of running transactions.

Flow: the engine asks `Layers.desired(station)` (its desired-state provider) -> git's `DesiredState`
with every active override (from the API) and session TxProfile (from a StartTransaction) added as
more `DesiredProfile`s -> the same plan, make-before-break, verify and ledger as git's profiles.
When an override expires or a transaction stops its layer goes, and the next reconcile clears its
profile like any profile the ledger owns and the desired state dropped.

Also here, because they judge a candidate layer against git's: `check_override` (collisions with a
git profile's id or slot -> 409 naming the policy file:line; a station above its Site's cap -> 400)
and `free_slot` (a free id and a stack level that governs, for scenario overrides).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.core.composite import compute_composite
from reconciler.core.context import Transaction
from reconciler.core.profiles import ChargingProfile, ProfileError, Purpose, RateUnit, profile_from_ocpp
from reconciler.policy import DesiredProfile, DesiredState, Location, PolicySet
from reconciler.store.daemon_state import DaemonState, Intent, Override

MAX_ID = 2**31 - 1
SCENARIO_IDS = 900_000  # scenario overrides take ids from here up


class LayerError(Exception):
    """An override that may not be installed: `status` 400 (unsafe, invalid) or 409 (collides)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Candidate:
    connector_id: int
    profile: ChargingProfile


def override_profile(override: Override) -> DesiredProfile | None:
    try:
        profile = profile_from_ocpp(override.profile)
    except (ProfileError, ValueError, TypeError, KeyError):
        return None
    who = f"override #{override.id} by {override.who}" + (f" ({override.scenario})" if override.scenario else "")
    return DesiredProfile(
        override.connector_id, profile, who, Location(f"override #{override.id}", 1, 1), override.scenario
    )


def session_profile(intent: Intent) -> DesiredProfile | None:
    try:
        profile = profile_from_ocpp(intent.profile)
    except (ProfileError, ValueError, TypeError, KeyError):
        return None
    where = Location(f"session {intent.transaction_id}", 1, 1)
    return DesiredProfile(intent.connector_id, profile, f"{intent.policy} (transaction {intent.transaction_id})", where)


class Layers:
    """The engine's desired-state provider for the daemon.

    A reconcile asks for a station's desired state several times (observe, plan, verify...), and a
    drift check every few minutes: each answer is kept until the station's layers change (an
    override or an intent added or removed: `DaemonState.layer_version`), the policies are replaced or
    a commit fails, so a drift check does not query the overrides and intents tables five times."""

    def __init__(self, policies: Callable[[], PolicySet], state: DaemonState) -> None:
        self.policies = policies
        self.state = state
        self._known: dict[str, tuple[PolicySet, int, DesiredState]] = {}

    def desired(self, station_id: str) -> DesiredState:
        policies = self.policies()
        version = self.state.layer_version(station_id)
        known = self._known.get(station_id)
        if known is not None and known[0] is policies and known[1] == version and self.state.store.healthy:
            return known[2]
        git = policies.desired[station_id]
        extra = [p for o in self.state.overrides(station_id) if (p := override_profile(o)) is not None]
        extra += [p for i in self.state.intents(station_id) if (p := session_profile(i)) is not None]
        state = git if not extra else replace(git, profiles=(*git.profiles, *extra))
        self._known[station_id] = (policies, version, state)
        return state

    def overridden(self, station_id: str) -> list[Override]:
        return self.state.overrides(station_id)


def _slot(connector: int, profile: ChargingProfile) -> tuple[int, Purpose, int]:
    return connector, profile.purpose, profile.stack_level


def check_override(
    state: DesiredState,
    candidate: Candidate,
    others: Sequence[Override],
    *,
    now: datetime,
    transactions: dict[int, Transaction] | None = None,
) -> None:
    """Raise LayerError when `candidate` may not join the station's desired state."""
    profile = candidate.profile
    station = state.station
    if candidate.connector_id < 0 or candidate.connector_id > station.connectors:
        raise LayerError(
            400, f"connector_id {candidate.connector_id} does not exist on {station.name} (0..{station.connectors})"
        )
    if not 1 <= profile.charging_profile_id <= MAX_ID:
        raise LayerError(400, f"chargingProfileId must be between 1 and {MAX_ID}")
    top = station.context.capabilities.max_stack_level
    if not 0 <= profile.stack_level <= top:
        raise LayerError(
            400, f"stackLevel {profile.stack_level} is outside 0..{top} (ChargeProfileMaxStackLevel of {station.name})"
        )
    if profile.purpose is Purpose.CHARGE_POINT_MAX and candidate.connector_id != 0:
        raise LayerError(400, "a ChargePointMaxProfile goes on connector_id 0")
    if profile.purpose is Purpose.TX and candidate.connector_id == 0:
        raise LayerError(400, "a TxProfile goes on the connector of its transaction (connector_id 1..N)")
    periods = profile.schedule.periods
    if any(p.limit < 0 for p in periods):
        raise LayerError(400, "limits must be 0 or more")
    if len(periods) > station.context.capabilities.max_periods:
        raise LayerError(
            400,
            f"{len(periods)} periods exceed ChargingScheduleMaxPeriods "
            f"{station.context.capabilities.max_periods} of {station.name}",
        )
    for item in state.profiles:
        same_id = item.profile.charging_profile_id == profile.charging_profile_id
        same_slot = _slot(item.connector_id, item.profile) == _slot(candidate.connector_id, profile)
        if same_id or same_slot:
            what = (
                f"chargingProfileId {profile.charging_profile_id}"
                if same_id
                else (
                    f"the slot (connector {candidate.connector_id}, {profile.purpose.value}, stackLevel "
                    f"{profile.stack_level})"
                )
            )
            raise LayerError(
                409,
                f"{what} belongs to policy {item.policy} ({item.location}); choose another id "
                "and stack level, or change the policy in git",
            )
    for other in others:
        theirs = override_profile(other)
        if theirs is None:
            continue
        if theirs.profile.charging_profile_id == profile.charging_profile_id or _slot(
            theirs.connector_id, theirs.profile
        ) == _slot(candidate.connector_id, profile):
            raise LayerError(
                409, f"override #{other.id} already uses that id or slot; DELETE /overrides/{other.id} first"
            )
    check_site_cap(state, candidate, now=now, transactions=transactions)


def check_site_cap(
    state: DesiredState,
    candidate: Candidate,
    *,
    now: datetime,
    transactions: dict[int, Transaction] | None = None,
    horizon: int = 7 * 86_400,
) -> None:
    """An override may not let the station draw more than its Site allows, at any instant of the
    coming week (the station total: connector 0 as the sum of its connectors, capped)."""
    limit = state.site_limit_w
    if limit is None:
        return
    station = state.station
    installed = [(p.connector_id, p.profile) for p in state.profiles] + [(candidate.connector_id, candidate.profile)]
    context = station.context.with_(uncovered=type(station.context.uncovered).NO_LIMIT, limit_step=None)
    composite = compute_composite(
        installed,
        connector_id=0,
        now=now,
        duration=horizon,
        unit=RateUnit.W,
        context=context,
        transactions=transactions or {},
    )
    hardware = station.connectors * station.max_power_w
    for period in composite.periods:
        value = hardware if period.limit is None else min(period.limit, hardware)
        if value > limit * 1.001 + 1:
            at = period.start_period
            raise LayerError(
                400,
                f"this override would let {station.name} draw {value:.0f} W ({at} s from now), above the "
                f"{limit:.0f} W its Site {state.site} allows; lower the limit",
            )


def free_slot(
    state: DesiredState, others: Sequence[Override], ledger_ids: set[int], connector_id: int, purpose: Purpose
) -> tuple[int, int]:
    """(chargingProfileId, stackLevel) for a scenario override: an id nobody uses and the lowest
    stack level above every git profile and override of that purpose on that connector (connector
    0's TxDefaultProfiles count on every connector), so it governs."""
    taken = {p.profile.charging_profile_id for p in state.profiles} | set(ledger_ids)
    taken |= {int(o.profile.get("chargingProfileId", 0)) for o in others}
    profile_id = SCENARIO_IDS
    while profile_id in taken:
        profile_id += 1
    levels = [
        p.profile.stack_level
        for p in state.profiles
        if p.profile.purpose is purpose and (p.connector_id == connector_id or p.connector_id == 0 or connector_id == 0)
    ]
    for other in others:  # and above the other overrides of that purpose there, so both can be held
        theirs = override_profile(other)
        if (
            theirs is not None
            and theirs.profile.purpose is purpose
            and (theirs.connector_id in (connector_id, 0) or connector_id == 0)
        ):
            levels.append(theirs.profile.stack_level)
    level = max(levels, default=-1) + 1
    top = state.station.context.capabilities.max_stack_level
    if level > top:
        raise LayerError(
            409,
            f"no stack level above the policies' {purpose.value} profiles is left on "
            f"{state.station.name} (ChargeProfileMaxStackLevel {top})",
        )
    return profile_id, level
