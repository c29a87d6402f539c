"""Before a station is observed: it has booted, and what runs on its connectors is known.

Flow: (reconcile) per station, before its first call -> `booted` (the embedded Central System
waits for an accepted BootNotification, asking a station that connected without one) ->
`learn_connectors` (statuses and transaction ids asked for what was not heard since it
connected) -> `running_transactions` (the store's journal: what this run's Central System and
earlier ones saw) -> `station_context` (its ChargerModel: declared, or chosen by its boot). A
gateway that cannot tell (an OCPP proxy's inject API holds the connection) skips the first two;
the journal then knows what earlier runs saw, the store the last BootNotification.

`restart_epoch` notes what the Central System knew of the station as the run began observing it
(its count of restarts, its connection); `restarted_since` tells a call about to be sent whether the
charger restarted since (`engine.calls` asks it before each Clear and each retry). An inject API
cannot tell (a proxy does not forward BootNotifications): there is no epoch, nothing is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.core.context import StationContext, Transaction
from reconciler.policy.documents import ModelSpec
from reconciler.policy.library import choose, context_with
from reconciler.policy.model import Station
from reconciler.store.sqlite import Store
from reconciler.transport.gateway import BootCheck, Gateway


def attach_journal(gateway: Gateway, store: Store) -> None:
    """Have the gateway's Central System report transactions to the store's journal."""
    attach = getattr(gateway, "use_journal", None)
    if callable(attach):
        attach(store.journal)


async def booted(gateway: Gateway, station_id: str, timeout: float) -> BootCheck:
    """Wait for the station's boot when the gateway can tell (the embedded Central System)."""
    wait = getattr(gateway, "wait_booted", None)
    if not callable(wait):
        return BootCheck(True)  # a proxy holds the connection and its boot
    check: BootCheck = await wait(station_id, timeout)
    return check


@dataclass(frozen=True, slots=True)
class Epoch:
    """What the Central System knew of a station when a run began observing it."""

    restarts: int
    connected_at: datetime | None


def _info(gateway: Gateway, station_id: str) -> Any:
    station = getattr(gateway, "station", None)
    return station(station_id) if callable(station) else None


def restart_epoch(gateway: Gateway, station_id: str) -> Epoch | None:
    """The station's restart count and connection now; None when the gateway cannot tell (a proxy)."""
    info = _info(gateway, station_id)
    restarts = getattr(info, "restarts", None)
    if not isinstance(restarts, int):
        return None
    return Epoch(restarts, info.connected_at)


async def restarted_since(gateway: Gateway, station_id: str, since: Epoch, *, timeout: float, reconnect: bool) -> bool:
    """Did the charger restart since `since`? A charger on a newer connection that has not booted on
    it yet is waited for first (a restarted charger can be called before its BootNotification is
    read); with `reconnect` (its last attempt found it offline) so is its return. Each wait is
    bounded by `timeout` seconds; a charger still away is not waited for again (the call goes out
    and fails offline)."""
    if reconnect and not gateway.is_connected(station_id):
        wait = getattr(gateway, "wait_for_stations", None)
        if callable(wait):
            await wait([station_id], timeout, booted=False)
    info = _info(gateway, station_id)
    if info is None:
        return False
    fresh = info.connected_at != since.connected_at
    unbooted = info.booted_at is None or info.connected_at is None or info.booted_at < info.connected_at
    if gateway.is_connected(station_id) and fresh and unbooted:
        await booted(gateway, station_id, timeout)
        info = _info(gateway, station_id)
    return info is not None and int(getattr(info, "restarts", since.restarts)) != since.restarts


async def learn_connectors(gateway: Gateway, station_id: str, connectors: int, timeout: float) -> None:
    """Know each connector's state before observing (the embedded Central System asks with
    TriggerMessage what it has not heard since the station connected)."""
    learn = getattr(gateway, "learn_connectors", None)
    if callable(learn):
        await learn(station_id, range(1, connectors + 1), timeout)


ContextCache = dict[str, tuple[Station, ModelSpec, StationContext]]  # station id -> the last context built


def station_context(
    station: Station, models: Sequence[ModelSpec], info: Any, stored_boot: Callable[[], Mapping[str, Any] | None],
    cache: ContextCache | None = None,
) -> tuple[StationContext, str | None]:  # fmt: skip
    """The context a station is read with, and which ChargerModel gave it: the one it declares, else
    the first whose globs match its BootNotification (this connection's, else the last one the store
    kept: `stored_boot` is asked only then), else the defaults (EVerest libocpp's conventions), then
    None. With `cache`, the context built for the very same station and model objects is reused."""
    if station.model is not None:
        return station.context, f"{station.model} (declared)"
    if info is not None and getattr(info, "booted_at", None) is not None:
        boot: Mapping[str, Any] | None = {"vendor": info.vendor, "model": info.model, "firmware": info.firmware}
    else:
        boot = stored_boot()
    chosen = choose(models, boot)
    if chosen is None or boot is None:
        return station.context, None
    seen = " / ".join(str(boot.get(k)) for k in ("vendor", "model", "firmware") if boot.get(k))
    origin = "the library" if chosen.builtin else "the policies"
    known = cache.get(station.name) if cache is not None else None
    if known is not None and known[0] is station and known[1] is chosen:
        context = known[2]
    else:
        context = context_with(station, chosen)
        if cache is not None:
            cache[station.name] = (station, chosen, context)
    return context, f"{chosen.name} (from {origin}, chosen by its BootNotification {seen})"


def running_transactions(
    store: Store, station_id: str, now: Callable[[], datetime], info: Any = None
) -> dict[int, Transaction]:
    """What runs on the station: the journal's record, and what this run's Central System saw start
    (`info`, its registry entry) where the journal has nothing. A transaction whose start was not
    seen stands in with `now` and `start_known` False (its Relative profiles are judged without blame)."""
    running: dict[int, Transaction] = {}
    for record in store.journal.running(station_id):
        start = record.started_at or now()
        running[record.connector_id] = Transaction(
            record.connector_id, record.transaction_id, start, start_known=record.started_at is not None
        )
    for connector_id, (transaction_id, start) in (getattr(info, "transactions", None) or {}).items():
        running[connector_id] = Transaction(connector_id, transaction_id, start)  # seen starting: the freshest
    return running
