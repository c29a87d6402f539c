"""What operators do through the API, done the GitOps way: overrides, clears, suspend, reconcile now.

Flow: an API route -> `Operations` -> the store (override, suspension, event: who, when, why) ->
the work queue (the engine applies and verifies) -> the outcome back to the caller. Nothing here
sends a SetChargingProfile by itself: an override is one more layer of desired state
(`layers.py`), so it goes through make-before-break, read-back and the ledger like git's profiles.
A raw clear (`DELETE .../charging_profile`) is what the documents' API does: sent at once; git's
profiles it removes are drift, which self-heal restores (or only reports). The ledger records it as
the engine's own clears (intent first, then which owned profiles are gone, or may be when no answer
came), so self-heal sees the loss for what it is, never as a foreign cap.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from reconciler.core.profiles import ProfileError, profile_from_ocpp
from reconciler.core.status import Status
from reconciler.daemon.layers import Candidate, LayerError, check_override, free_slot
from reconciler.daemon.scenarios import Scenario
from reconciler.daemon.service import Daemon
from reconciler.engine.outcome import Outcome
from reconciler.store.daemon_state import Override
from reconciler.transport.gateway import ReplyKind


class OperationError(Exception):
    """An API error: HTTP status and the message for `{"detail": ...}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Applied:
    override: Override
    outcome: Outcome | None
    csms_status: str | None
    message: str


def not_found(station_id: str) -> OperationError:
    return OperationError(404, f"Station {station_id} not found or not connected")


class Operations:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    @property
    def _state(self) -> Any:
        assert self.daemon.state is not None
        return self.daemon.state

    def require_connected(self, station_id: str) -> None:
        gateway = self.daemon.gateway
        if station_id not in self.daemon.policies.desired or gateway is None or not gateway.is_connected(station_id):
            raise not_found(station_id)

    async def reconcile(self, station_ids: list[str], reason: str, *, wait: float | None) -> dict[str, Outcome]:
        futures = [self.daemon.queue.request(s, reason) for s in station_ids]
        if wait:
            await asyncio.wait(futures, timeout=wait)
        return {s: self.daemon.latest[s] for s in station_ids if s in self.daemon.latest}

    # --- overrides ------------------------------------------------------------------------------------

    async def add_override(
        self,
        station_id: str,
        connector_id: int,
        profile: dict[str, Any],
        *,
        who: str,
        why: str | None,
        ttl: float | None,
        scenario: Scenario | None = None,
        wait: float = 30.0,
    ) -> Applied:
        self.require_connected(station_id)
        daemon = self.daemon
        desired = daemon.policies.desired[station_id]
        active = self._state.overrides(station_id)
        body = dict(profile)
        if scenario is not None:  # a scenario replaces the same scenario's earlier override on the station
            for old in [o for o in active if o.scenario == scenario.name]:
                self._state.remove_override(old.id, daemon.now(), f"replaced by a new {scenario.name}")
            active = self._state.overrides(station_id)
            assert daemon.store is not None
            ledger_ids = {e.profile.charging_profile_id for e in daemon.store.ledger(station_id)}
            try:
                body["chargingProfileId"], body["stackLevel"] = free_slot(
                    desired, active, ledger_ids, connector_id, scenario.purpose
                )
            except LayerError as exc:
                raise OperationError(exc.status, exc.message) from None
        try:
            parsed = profile_from_ocpp(body)
        except (ProfileError, ValueError, TypeError, KeyError) as exc:
            raise OperationError(400, f"profile: {getattr(exc, 'message', None) or exc}") from None
        transactions = daemon.engine.transactions(station_id) if daemon.engine is not None else {}
        try:
            check_override(
                desired, Candidate(connector_id, parsed), active, now=daemon.now(), transactions=transactions
            )
        except LayerError as exc:
            raise OperationError(exc.status, exc.message) from None
        expires = daemon.override_expiry(ttl)
        override = self._state.add_override(
            station_id,
            connector_id,
            body,
            who=who,
            why=why,
            scenario=scenario.name if scenario else None,
            at=daemon.now(),
            expires=expires,
        )
        assert daemon.store is not None
        daemon.store.event(
            "override.added",
            f"override #{override.id} (profile #{parsed.charging_profile_id}) by "
            f"{who}, expires {override.to_json()['expires_at']}",
            daemon.now(),
            station_id=station_id,
            revision=daemon.policies.revision,
            data=override.to_json(),
        )
        daemon.generation += 1
        outcome = (await self.reconcile([station_id], f"override #{override.id}", wait=wait)).get(station_id)
        return self._applied(override, outcome, desired.sync)

    def _applied(self, override: Override, outcome: Outcome | None, sync: str) -> Applied:
        profile_id = override.profile.get("chargingProfileId")
        until = override.to_json()["expires_at"]
        if outcome is None:
            return Applied(override, None, None, f"override #{override.id} recorded; the reconcile is still running")
        if outcome.status is Status.SUSPENDED:
            return Applied(
                override,
                outcome,
                None,
                f"override #{override.id} recorded; the station is suspended, it is applied on resume",
            )
        if sync == "reportOnly":
            return Applied(
                override,
                outcome,
                None,
                f"override #{override.id} recorded; the station is report-only, nothing is sent to it",
            )
        if outcome.status is Status.OFFLINE and "did not answer" in (outcome.reason or ""):
            raise OperationError(504, f"the charger did not answer: {outcome.reason}")
        if outcome.status is Status.SYNCED:
            return Applied(
                override,
                outcome,
                "Accepted",
                f"profile #{profile_id} applied and verified by read-back "
                f"as override #{override.id}; it expires at {until}, then git's state returns",
            )
        reason = outcome.reason or outcome.status.value
        csms = next((w for w in ("Rejected", "NotSupported", "NotImplemented") if w in reason), outcome.status.value)
        return Applied(override, outcome, csms, f"override #{override.id}: {reason}")

    async def remove_override(
        self, override_id: int, who: str, *, wait: float = 30.0
    ) -> tuple[Override, Outcome | None]:
        override = self._state.override(override_id)
        if override is None or override.removed_at is not None:
            raise OperationError(404, f"Override {override_id} not found or no longer active")
        daemon = self.daemon
        self._state.remove_override(override_id, daemon.now(), f"removed by {who}")
        assert daemon.store is not None
        daemon.store.event(
            "override.removed",
            f"override #{override_id} removed by {who}; git's state returns",
            daemon.now(),
            station_id=override.station_id,
            revision=daemon.policies.revision,
        )
        daemon.generation += 1
        outcome = (await self.reconcile([override.station_id], f"override #{override_id} removed", wait=wait)).get(
            override.station_id
        )
        return override, outcome

    # --- raw clear --------------------------------------------------------------------------------------

    async def clear(self, station_id: str, filters: dict[str, Any], who: str) -> dict[str, Any]:
        self.require_connected(station_id)
        daemon = self.daemon
        assert daemon.gateway is not None and daemon.store is not None
        store, revision = daemon.store, daemon.policies.revision
        # Like the engine's calls: the intent is on disk before the charger can act on it, and the
        # ledger learns which of its profiles are gone (answered) or may be (no answer: pending,
        # absorbed by the next reconcile as uncertain), so self-heal sees the loss as ours.
        pending = store.begin_call(station_id, "ClearChargingProfile", filters, daemon.now(), revision=revision)
        await store.durable()
        reply = await daemon.gateway.call(station_id, "ClearChargingProfile", filters)
        event = ("profile.cleared", f"ClearChargingProfile {filters} by {who}: {reply.describe()}", None)
        if reply.kind is ReplyKind.ANSWERED:
            store.record_clear_matching(pending, station_id, filters, daemon.now(), revision, event)
        else:
            if not reply.ambiguous:
                store.settle(pending)
            store.event(*event[:2], daemon.now(), station_id=station_id, revision=revision)
        if reply.kind is ReplyKind.OFFLINE:
            raise not_found(station_id)
        if reply.kind is ReplyKind.TIMEOUT:
            daemon.queue.request(station_id, "a clear through the API was not answered", delay=1.0)
            raise OperationError(504, f"the charger did not answer ClearChargingProfile: {reply.description}")
        csms = reply.status if reply.kind is ReplyKind.ANSWERED else f"{reply.error_code}: {reply.description}"
        removed = [
            o.id
            for o in self._state.overrides(station_id)
            if filters.get("id") in (None, o.profile.get("chargingProfileId"))
        ]
        if "id" in filters:
            for override_id in removed:
                self._state.remove_override(override_id, daemon.now(), f"cleared by {who}")
        state = daemon.policies.desired[station_id]
        git = [p.profile.charging_profile_id for p in state.profiles if _matches(p, filters)]
        suspended = station_id in self._state.suspensions()
        if not git:
            heal = "no profile from git matches these filters; nothing will be restored"
        elif suspended:
            heal = f"the station is suspended: git's profile(s) {_ids(git)} stay cleared until it is resumed"
        elif state.sync == "reportOnly":
            heal = f"the station is report-only: the loss of git's profile(s) {_ids(git)} is shown as drift, not healed"
        else:
            heal = f"self-heal will restore git's profile(s) {_ids(git)}"
            daemon.queue.request(station_id, "profiles cleared through the API", delay=1.0)
        accepted = reply.kind is ReplyKind.ANSWERED
        return {
            "status": "success" if accepted else "error",
            "station_id": station_id,
            "csms_status": csms,
            "message": f"ClearChargingProfile answered {csms}; {heal}",
            "filters": filters,
            "self_heal": bool(git) and not suspended and state.sync != "reportOnly",
        }


def _matches(item: Any, filters: dict[str, Any]) -> bool:
    profile = item.profile
    if "id" in filters:
        return bool(profile.charging_profile_id == filters["id"])
    if "connectorId" in filters and item.connector_id != filters["connectorId"]:
        return False
    if "chargingProfilePurpose" in filters and profile.purpose.value != filters["chargingProfilePurpose"]:
        return False
    return not ("stackLevel" in filters and profile.stack_level != filters["stackLevel"])


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in sorted(ids))
