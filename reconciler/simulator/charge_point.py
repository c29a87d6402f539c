"""One simulated charge point: its state and its answers to the Central System's calls.

Flow: a Central System call (over the websocket in `client`, or in-process via
`transport.memory.MemoryGateway`) -> `SimulatedChargePoint.handle(action, payload)` -> the
CallResult payload, or `SimCallError` (sent as a CallError). Smart charging runs on the core: the
SetChargingProfile/ClearChargingProfile rules of `core.installed` and the composite engine of
`core.composite`, with a `StationContext` built from the station's `Quirks`, so the simulator and
the reconciler's expectations share one definition of "what the charger holds".

Charger-initiated messages (StartTransaction, StatusNotification, MeterValues...) go out through
`sender`, an async function the transport installs. For tests, every received call is counted in
`calls`, and after each one the station can record what it enforces (`history`, `on_change`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reconciler import clock as wall_clock
from reconciler.core.composite import Composite
from reconciler.core.context import StationContext, Transaction
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import ProfileError, Purpose, format_time, from_epoch, profile_from_ocpp
from reconciler.simulator.configuration import Configuration
from reconciler.simulator.ev import LocalPolicy, PowerSource, SimulatedEV
from reconciler.simulator.quirks import BeforeBoot, Quirks, UncoveredReport
from reconciler.simulator.reporting import Snapshot, composite_reply, enforced_composite
from reconciler.simulator.storage import StationStorage

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Sender = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any] | None]]


class SimCallError(Exception):
    """Answer the call with an OCPP CallError."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


class SimulatedChargePoint:
    """A spec-faithful OCPP 1.6 charge point with quirk knobs. Not tied to any transport."""

    def __init__(
        self,
        station_id: str,
        *,
        connectors: int = 2,
        max_current: float = 32.0,
        voltage: float = 230.0,
        phases: int = 3,
        quirks: Quirks | None = None,
        state_dir: Path | None = None,
        clock: Callable[[], datetime] | None = None,
        context: StationContext | None = None,
        local_policy: LocalPolicy | None = None,
        identity: tuple[str, str, str] = ("reconciler", "PySim", "sim-1.0"),
    ) -> None:
        self.station_id = station_id
        self.identity = identity  # (vendor, model, firmware) its BootNotification gives
        self.connectors = connectors
        self.max_current = max_current
        self.voltage = voltage
        self.phases = phases
        self.quirks = quirks or Quirks()
        self.wall_clock = clock or wall_clock.now  # the Central System's time
        self.clock: Callable[[], datetime] = self._own_time  # the station's own clock (quirks apply)
        self.powered_at = self.wall_clock()
        self.boot_accepted = False  # since power-up: a BootNotification was answered Accepted
        self.context = context or self.quirks.context(
            connectors=connectors, max_current=max_current, voltage=voltage, phases=phases
        )
        caps = self.context.capabilities
        self.configuration = Configuration.standard(
            connectors=connectors,
            max_stack_level=caps.max_stack_level,
            max_periods=caps.max_periods,
            max_profiles=caps.max_profiles,
            allowed_units=",".join(u.value for u in caps.allowed_units),
        )
        if not self.quirks.report_stack_level:
            self.configuration.drop("ChargeProfileMaxStackLevel")
        self.installed = InstalledProfiles()
        self.transactions: dict[int, Transaction] = {}
        self.evs = {c: SimulatedEV(c, max_current, phases, voltage) for c in range(1, connectors + 1)}
        self.local_policy = local_policy or LocalPolicy()
        self.calls: Counter[str] = Counter()  # received calls by action
        self.sent: Counter[str] = Counter()  # calls this station sent, by action
        self.history: list[Snapshot] = []
        self.record_history = False
        self.history_window = 3600
        self.on_change: Callable[[SimulatedChargePoint, str], None] | None = None
        self.sender: Sender | None = None
        self.reset_requested: str | None = None
        self.crashing = False  # restarting on its own (reboot_after): the connection drops right after the answer
        self._reboot_counted: tuple[str, int] = ("", 0)  # (reboot_after, matching calls received since it was set)
        self.boots = 0
        self._local_tx = 0
        self._reported_status: dict[int, str] = {}  # connectorId -> the last status sent
        self._tasks: set[asyncio.Task[Any]] = set()
        self.storage = StationStorage(state_dir, station_id) if state_dir is not None else None
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "SetChargingProfile": self._set_profile,
            "ClearChargingProfile": self._clear_profile,
            "GetCompositeSchedule": self._composite_schedule,
            "GetConfiguration": self._get_configuration,
            "ChangeConfiguration": self._change_configuration,
            "RemoteStartTransaction": self._remote_start,
            "RemoteStopTransaction": self._remote_stop,
            "Reset": self._reset,
            "TriggerMessage": self._trigger,
        }
        self._restore()

    # --- answering the Central System -------------------------------------------------------------

    def _own_time(self) -> datetime:
        """What the station's clock says: 1970 plus its uptime until a boot is accepted (with the
        epoch_clock_until_boot quirk), the Central System's time otherwise, off by clock_offset."""
        now = self.wall_clock()
        if self.quirks.epoch_clock_until_boot and not self.boot_accepted:
            return EPOCH + (now - self.powered_at)
        return now + timedelta(seconds=self.quirks.clock_offset) if self.quirks.clock_offset else now

    def boot_answered(self, answer: dict[str, Any] | None) -> bool:
        """The Central System answered our BootNotification; True when it was accepted."""
        if answer is None or answer.get("status") != "Accepted":
            return False
        self.boot_accepted = True
        return True

    @property
    def silent(self) -> bool:
        """Leave Central System calls unanswered for now (before_boot=silent, not booted yet)."""
        return self.quirks.before_boot is BeforeBoot.SILENT and not self.boot_accepted

    async def boot(self) -> bool:
        """Send BootNotification; True when the Central System accepted it."""
        return self.boot_answered(await self.send("BootNotification", self.boot_payload()))

    def handle(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The CallResult payload for a Central System call; raises SimCallError for a CallError."""
        self.calls[action] += 1
        if self.quirks.before_boot is BeforeBoot.REFUSE and not self.boot_accepted:
            raise SimCallError("SecurityError", "the charge point is not accepted by the Central System yet")
        handler = self._handlers.get(action)
        if handler is None:
            raise SimCallError("NotImplemented", f"{action} is not implemented by this charge point")
        try:
            answer = handler(payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise SimCallError("FormationViolation", f"{action}: {exc}") from None
        self.log(f"<- {action} {answer.get('status', '')}")
        if self._restart_due(action):
            self.reset_requested, self.crashing = "Hard", True
        self.changed(action)
        if action in ("SetChargingProfile", "ClearChargingProfile") and self.transactions:
            self.update_evs()  # the EV follows the new limit at once (and the status says if it stops)
        return answer

    def _restart_due(self, action: str) -> bool:
        """The reboot_after quirk: is this the call after whose answer the station restarts?"""
        spec = self.quirks.reboot_after
        if self._reboot_counted[0] != spec:
            self._reboot_counted = (spec, 0)  # counted from when the knob was set
        trigger = self.quirks.reboot_trigger()
        if trigger is None or action != trigger[0]:
            return False
        seen = self._reboot_counted[1] + 1
        self._reboot_counted = (spec, seen)
        return seen == trigger[1]

    def changed(self, action: str) -> None:
        """Record (if asked to) what the station enforces now, and tell the hook."""
        if self.record_history:
            now = self.clock()
            composites = {c: self.enforced_composite(c, now, self.history_window) for c in range(self.connectors + 1)}
            self.history.append(Snapshot(action, now, composites))
        if self.on_change is not None:
            self.on_change(self, action)

    def _set_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector_id = int(payload["connectorId"])
        try:
            profile = profile_from_ocpp(payload.get("csChargingProfiles"))
        except ProfileError as exc:
            raise SimCallError("FormationViolation", str(exc)) from None
        if not self.configuration.flag("SmartChargingEnabled"):
            return {"status": "Rejected"}
        installed, verdict = self.installed.set_profile(
            connector_id, profile, context=self.context, transactions=self.transactions, now=self.clock()
        )
        if not verdict.accepted:
            self.log(f"   rejected profile {profile.charging_profile_id}: {verdict.reason}")
            return {"status": "Rejected"}
        if self.quirks.accepted_not_enforced:
            return {"status": "Accepted"}
        if self.quirks.enforce_delay_ms > 0:
            asyncio.get_running_loop().call_later(self.quirks.enforce_delay_ms / 1000, self._enforce_later, payload)
            return {"status": "Accepted"}
        self.installed = installed
        self.save()
        return {"status": "Accepted"}

    def _enforce_later(self, payload: dict[str, Any]) -> None:
        """`enforce_delay_ms`: the accepted profile takes effect now (on what is installed by then)."""
        profile = profile_from_ocpp(payload.get("csChargingProfiles"))
        installed, verdict = self.installed.set_profile(
            int(payload["connectorId"]), profile, context=self.context, transactions=self.transactions, now=self.clock()
        )
        if verdict.accepted:
            self.installed = installed
            self.save()
            self.changed("SetChargingProfile (enforced late)")

    def _clear_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        purpose = payload.get("chargingProfilePurpose")
        installed, result = self.installed.clear(
            profile_id=payload.get("id"),
            connector_id=payload.get("connectorId"),
            purpose=None if purpose is None else Purpose(purpose),
            stack_level=payload.get("stackLevel"),
        )
        self.installed = installed
        if result.cleared:
            self.save()
        return {"status": result.status}

    def _composite_schedule(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.quirks.composite_unsupported:
            raise SimCallError("NotSupported", "GetCompositeSchedule is not supported by this charge point")
        if not self.configuration.flag("SmartChargingEnabled"):
            return {"status": "Rejected"}
        return composite_reply(
            self.installed.pairs(),
            payload,
            now=self.clock(),
            context=self.context,
            transactions=self.transactions,
            empty_when_uncovered=self.quirks.uncovered is UncoveredReport.EMPTY,
        )

    def _get_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.configuration.get_configuration(payload.get("key"))

    def _change_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        status = self.configuration.change(str(payload["key"]), str(payload["value"]))
        if status in ("Accepted", "RebootRequired"):
            self.save()
        return {"status": status}

    def _remote_start(self, payload: dict[str, Any]) -> dict[str, Any]:
        requested = payload.get("connectorId")
        free = [c for c in self.evs if c not in self.transactions]
        connector_id = requested if requested is not None else (free[0] if free else None)
        if connector_id not in self.evs or connector_id in self.transactions:
            return {"status": "Rejected"}
        profile = None
        if payload.get("chargingProfile") is not None:
            try:
                profile = profile_from_ocpp(payload["chargingProfile"], "chargingProfile")
            except ProfileError as exc:
                raise SimCallError("FormationViolation", str(exc)) from None
            if profile.purpose is not Purpose.TX:
                return {"status": "Rejected"}
        self.spawn(self.start_transaction(int(connector_id), str(payload.get("idTag", "")), profile))
        return {"status": "Accepted"}

    def _remote_stop(self, payload: dict[str, Any]) -> dict[str, Any]:
        transaction_id = payload.get("transactionId")
        for connector_id, tx in self.transactions.items():
            if tx.transaction_id == transaction_id:
                self.spawn(self.stop_transaction(connector_id, "Remote"))
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    def _reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        kind = payload.get("type")
        if kind not in ("Soft", "Hard"):
            raise SimCallError("PropertyConstraintViolation", "Reset type must be Soft or Hard")
        self.reset_requested = kind
        return {"status": "Accepted"}

    def _trigger(self, payload: dict[str, Any]) -> dict[str, Any]:
        message = payload.get("requestedMessage")
        connector_id = payload.get("connectorId")
        if message == "Heartbeat":
            self.spawn(self.send("Heartbeat", {}))
        elif message == "StatusNotification":
            self.spawn(self.send_status(int(connector_id or 0)))
        elif message == "MeterValues" and connector_id in self.evs:
            self.spawn(self.send_meter_values(int(connector_id)))
        elif message == "BootNotification":
            self.spawn(self.boot())
        else:
            return {"status": "NotImplemented"}
        return {"status": "Accepted"}

    # --- what the station enforces ------------------------------------------------------------

    def enforced_composite(self, connector_id: int, now: datetime, duration: int) -> Composite:
        """The limits the hardware applies (amps, uncovered = None), regardless of reporting quirks."""
        return enforced_composite(
            self.installed.pairs(),
            connector_id,
            now=now,
            duration=duration,
            context=self.context,
            transactions=self.transactions,
        )

    def offered_current(self, connector_id: int, at: datetime | None = None) -> tuple[float, PowerSource]:
        """What the connector may draw now (A per phase) and which source decides it."""
        now = at or self.clock()
        composite = self.enforced_composite(connector_id, now, 1)
        limit = composite.periods[0].limit if composite.accepted and composite.periods else None
        if limit is not None:
            if limit < self.max_current:
                return limit, PowerSource.OCPP_PROFILE
            return self.max_current, PowerSource.HARDWARE_LIMIT
        if self.configuration.flag("LocalPolicyEnabled") or self.local_policy.enabled:
            policy = replace(self.local_policy, enabled=True)
            if policy.blocks(now) is not None:
                return 0.0, PowerSource.LOCAL_POLICY
        return self.max_current, PowerSource.HARDWARE_LIMIT

    # --- charger-initiated messages -----------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        self.sent[action] += 1
        if self.sender is None:
            return None
        return await self.sender(action, payload)

    def boot_payload(self) -> dict[str, Any]:
        vendor, model, firmware = self.identity
        return {
            "chargePointVendor": vendor,
            "chargePointModel": model,
            "chargePointSerialNumber": self.station_id[-25:],
            "firmwareVersion": firmware,
        }

    def connector_status(self, connector_id: int, offered_a: float | None = None) -> str:
        """OCPP 1.6 ChargePointStatus: Charging while a transaction draws, SuspendedEVSE while the
        station offers it nothing (a 0 limit, or the local policy blocks), Available otherwise."""
        if connector_id not in self.transactions:
            return "Available"
        if offered_a is None:
            offered_a = self.offered_current(connector_id)[0]
        return "SuspendedEVSE" if offered_a <= 0 else "Charging"

    async def send_status(self, connector_id: int, status: str | None = None) -> None:
        if status is None:
            status = self.connector_status(connector_id)
        self._reported_status[connector_id] = status
        payload = {"connectorId": connector_id, "errorCode": "NoError", "status": status}
        await self.send("StatusNotification", {**payload, "timestamp": format_time(self.clock())})

    async def start_transaction(self, connector_id: int, id_tag: str = "SIM-EV", profile: Any = None) -> int | None:
        """Plug an EV in and start a transaction; returns its id (None if the connector is busy)."""
        if connector_id not in self.evs or connector_id in self.transactions:
            return None
        now = from_epoch(int(self.clock().timestamp()))
        ev = self.evs[connector_id]
        ev.plugged = True
        payload = {
            "connectorId": connector_id,
            "idTag": id_tag[:20] or "SIM-EV",
            "meterStart": int(ev.energy_wh),
            "timestamp": format_time(now),
        }
        answer = await self.send("StartTransaction", payload)
        if answer is not None and isinstance(answer.get("transactionId"), int):
            transaction_id = int(answer["transactionId"])
        else:
            self._local_tx += 1
            transaction_id = self._local_tx
        self.transactions[connector_id] = Transaction(connector_id, transaction_id, now)
        if profile is not None:
            bound = replace(profile, transaction_id=transaction_id)
            self.installed, _ = self.installed.set_profile(
                connector_id, bound, context=self.context, transactions=self.transactions, now=now
            )
        self.log(f"-> transaction {transaction_id} started on connector {connector_id}")
        self.changed("StartTransaction")
        await self.send_status(connector_id)
        self.update_evs()
        return transaction_id

    async def stop_transaction(self, connector_id: int, reason: str = "Local") -> bool:
        transaction = self.transactions.pop(connector_id, None)
        if transaction is None:
            return False
        ev = self.evs[connector_id]
        self.update_evs()
        ev.plugged = reason not in ("EVDisconnected",)
        self.installed = self.installed.without_transaction(connector_id)
        payload = {"transactionId": transaction.transaction_id, "meterStop": int(ev.energy_wh),
                   "timestamp": format_time(self.clock()), "reason": reason}  # fmt: skip
        await self.send("StopTransaction", payload)
        self.log(f"-> transaction {transaction.transaction_id} stopped ({reason})")
        self.changed("StopTransaction")
        await self.send_status(connector_id, "Finishing" if ev.plugged else "Available")
        return True

    def station_cap_a(self, at: datetime | None = None) -> float | None:
        """The ChargePointMaxProfile's limit now (A per phase): what every connector together may draw."""
        caps = [(c, p) for c, p in self.installed.pairs() if p.purpose is Purpose.CHARGE_POINT_MAX]
        if not caps:
            return None
        composite = enforced_composite(caps, 1, now=at or self.clock(), duration=1, context=self.context,
                                       transactions=self.transactions)  # fmt: skip
        return composite.periods[0].limit if composite.accepted and composite.periods else None

    def update_evs(self) -> None:
        """Every EV draws under what its connector offers now; a connector whose transaction starts
        or stops being offered energy says so with a StatusNotification (Charging / SuspendedEVSE).
        The ChargePointMaxProfile bounds the station: connectors in a transaction share it, in
        connector order (an EV taking less than it is offered leaves the rest to the next)."""
        now = self.clock()
        left = self.station_cap_a(now)
        for connector_id, ev in self.evs.items():
            offered, source = self.offered_current(connector_id, now)
            charging = connector_id in self.transactions
            if left is not None and charging and ev.plugged:
                if offered > left:
                    offered, source = left, PowerSource.OCPP_PROFILE
                left = max(0.0, left - min(offered, ev.max_current_a))
            ev.update(now, offered, source, charging)
            if connector_id in self.transactions and self.sender is not None:
                status = self.connector_status(connector_id, offered)
                if self._reported_status.get(connector_id, status) != status:
                    self._reported_status[connector_id] = status
                    self.spawn(self.send_status(connector_id, status))

    async def send_meter_values(self, connector_id: int) -> None:
        self.update_evs()
        tx = self.transactions.get(connector_id)
        ev = self.evs[connector_id]
        await self.send("MeterValues", ev.meter_values(self.clock(), tx.transaction_id if tx else None))

    # --- reboot and persistence ---------------------------------------------------------------

    def reboot(self) -> None:
        """Restart: transactions end, pending configuration applies, profiles survive on disk
        (or vanish, all with the lose_profiles_on_reboot quirk, those it names with lose_on_reboot)."""
        self.reset_requested, self.crashing = None, False
        self.transactions.clear()
        self.configuration.reboot()
        self.boots += 1
        self.powered_at = self.wall_clock()
        self.boot_accepted = False
        if self.quirks.lose_profiles_on_reboot:
            self.installed = InstalledProfiles()
        else:
            self._restore()
        kept = [e for e in self.installed if not self.quirks.lost_on_reboot(e.profile.charging_profile_id,
                                                                           e.profile.purpose.value)]  # fmt: skip
        if len(kept) != len(self.installed):
            self.installed = InstalledProfiles(tuple(kept))
        self.log("rebooted")
        self.changed("Reset")

    def save(self) -> None:
        if self.storage is not None:
            profiles = None if self.quirks.lose_profiles_on_reboot else self.installed
            self.storage.save(profiles, self.configuration.writable_values())

    def _restore(self) -> None:
        if self.storage is None:
            return
        profiles, configuration = self.storage.load()
        self.configuration.restore(configuration)
        if profiles is not None and not self.quirks.lose_profiles_on_reboot:
            self.installed = profiles

    def log(self, line: str) -> None:
        if self.storage is not None:
            self.storage.log(f"{format_time(self.clock())} {self.station_id} {line}")
