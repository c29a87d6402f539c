"""`reconciler watch`'s settings: how it reaches the chargers, serves its API, checks for drift, keeps
its heap small and its event log bounded (`DaemonSettings`, built from the command line by
`cli/watch_cmd.py`), and `host_port` to read its HOST:PORT options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler.api.auth import Credentials
from reconciler.daemon.retention import EventRetention
from reconciler.daemon.workqueue import QueueSettings
from reconciler.engine.calls import RetryPolicy
from reconciler.engine.reconcile import Settings

# The daemon re-reads a station's capability keys (GetConfiguration) after a BootNotification (a
# firmware update or a reset may change them) and otherwise every hour, not at every drift check.
CONFIG_TTL = 3600.0
# Once the fleet is frozen: a full garbage collection after this many middle-generation ones (default 10).
FULL_COLLECTION_EVERY = 100


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    policies: tuple[Path, ...]
    db: Path
    credentials: Credentials
    listen: str | None = "127.0.0.1:9000"
    path_prefix: str = "/"  # stations connect to {path_prefix}{stationId}
    via: str | None = None
    via_user: str | None = None
    via_password: str | None = None
    station_passwords: dict[str, str] = field(default_factory=dict)
    http: str = "127.0.0.1:8000"
    open_reads: bool = False
    queue: QueueSettings = field(default_factory=QueueSettings)
    engine: Settings = field(default_factory=lambda: Settings(retry=RetryPolicy(attempts=2), config_ttl=CONFIG_TTL))
    call_timeout: float = 10.0
    debounce_ms: int = 50
    override_ttl: float = 3600.0
    pull: float | None = None
    notify: tuple[str, ...] = ()
    shutdown_timeout: float = 10.0
    read_timeout: float = 10.0
    connect_grace: float = 0.5  # after a connect, wait this long for the BootNotification before reconciling
    # Websocket keepalive per station connection (None: off). OCPP-J leaves keepalive pings to the charge
    # point (WebSocketPingInterval); ours notices a dead TCP connection within 300 s. Every 60 s it cost
    # 3% of a core at 10,000 stations (bench/watch.py (c)).
    ping_interval: float | None = 300.0
    # The HeartbeatInterval handed out in BootNotification answers. Over OCPP-J a heartbeat is not needed
    # for liveness (the keepalive above); the spec advises one a day at least, for the charger's clock.
    # 3600 instead of 300 made no measurable difference to the idle daemon at 10,000 stations.
    heartbeat_interval: int = 300
    freeze_check: float = 5.0  # seconds between looks at whether the fleet has settled (gc.freeze)
    # at most this long (seconds) before what stations that disconnected left frozen is collected
    refreeze_every: float = 3600.0
    events: EventRetention = field(default_factory=EventRetention)  # the event log's retention
    demo: bool = False


def host_port(value: str, default_port: int) -> tuple[str, int]:
    """HOST:PORT (HOST alone: `default_port`); ValueError says what is wrong with it."""
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, default_port
    if not port.isdigit():
        raise ValueError(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:{default_port}")
    if int(port) > 65535:
        raise ValueError(f"{value!r}: port {int(port)} is not a TCP port (0-65535; 0 picks a free one)")
    return host.strip("[]") or "127.0.0.1", int(port)
