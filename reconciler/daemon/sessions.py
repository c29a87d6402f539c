"""Per-session intents (`sessions:` in a policy): a transaction's start writes a TxProfile intent per
session profile, bound to the transaction, and asks for a reconcile that installs them; its stop
ends them (the charger drops a TxProfile with its transaction: the ledger forgets it, nothing is
sent). A transaction on a connector whose TxDefaultProfile could not be verified while idle is the
time to verify it.

Flow: (Central System) StartTransaction/StopTransaction -> `Daemon._on_event` -> here -> the
daemon state's intents (`store.daemon_state`) and the work queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.core.profiles import profile_to_ocpp
from reconciler.transport.gateway import StationEvent

if TYPE_CHECKING:
    from reconciler.daemon.service import Daemon


def session_started(daemon: Daemon, station_id: str, event: StationEvent) -> None:
    sessions = daemon.policies.desired[station_id].sessions
    transaction_id = event.data.get("transactionId")
    if not sessions or not isinstance(transaction_id, int):
        if unverified_while_idle(daemon, station_id, event.data.get("connectorId")):
            daemon.queue.request(station_id, "a transaction started: verify what idle could not")
        return
    connector = int(event.data.get("connectorId", 1))
    assert daemon.state is not None
    for item in sessions:
        body = profile_to_ocpp(item.profile)
        body.update(chargingProfilePurpose="TxProfile", transactionId=transaction_id)
        daemon.state.start_intent(station_id, transaction_id, connector, item.policy, body, daemon.now())
    daemon.queue.request(station_id, f"transaction {transaction_id} started")


def unverified_while_idle(daemon: Daemon, station_id: str, connector: object) -> bool:
    """The last outcome could not verify this connector while idle (a charger that counts its
    TxDefaultProfile only during a transaction): a transaction on it is the time to verify."""
    outcome = daemon.latest.get(station_id)
    return outcome is not None and any(
        limit.code == "tx-default-idle" and (not limit.connectors or connector in limit.connectors)
        for limit in outcome.limitations
    )


def session_stopped(daemon: Daemon, station_id: str, event: StationEvent) -> None:
    transaction_id = event.data.get("transactionId")
    if not isinstance(transaction_id, int):
        return
    assert daemon.state is not None and daemon.store is not None
    for intent in daemon.state.end_intents(station_id, transaction_id, daemon.now()):
        # The charger drops a TxProfile when its transaction ends: the ledger forgets it, nothing is sent.
        profile_id = intent.profile.get("chargingProfileId")
        daemon.store.record_clear(
            None,
            station_id,
            profile_id,
            daemon.now(),
            daemon.policies.revision,
            (
                "intent.ended",
                f"transaction {transaction_id} stopped: session profile #{profile_id} ended with it",
                None,
            ),
        )
