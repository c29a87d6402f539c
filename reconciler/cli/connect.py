"""How `plan` and `apply` reach chargers: an inject endpoint, or the embedded Central System.

`--via URL`: an OCPP proxy's `POST /api/inject/{id}` (or a running `reconciler watch`); basic
auth from `--user`/`--password` or RECONCILER_INJECT_USER / RECONCILER_INJECT_PASSWORD.
`--listen HOST:PORT`: start the embedded Central System for the duration of the command; the
selected stations must connect within `--wait` seconds. Station passwords (OCPP Security
Profile 1) come from `--station-password` / RECONCILER_STATION_PASSWORD (one for all) or a
`--passwords FILE` (YAML or JSON mapping station id -> password); unknown stations are refused.
For a lab whose test chargers cannot send a password, `--no-station-auth` turns authentication
off, loudly, and only on a loopback address unless `--allow-no-auth-off-loopback` is given too.
"""

from __future__ import annotations

import gc
import ipaddress
import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import typer
import yaml

from reconciler.transport.central_system import CentralSystem
from reconciler.transport.gateway import Gateway
from reconciler.transport.inject import InjectGateway


@dataclass(frozen=True, slots=True)
class Connection:
    via: str | None
    listen: str | None
    wait: float
    user: str | None
    password: str | None
    station_password: str | None
    passwords_file: Path | None
    call_timeout: float
    no_station_auth: bool = False  # lab only: stations connect without a password
    auth_off_loopback: bool = False  # ... also on an address other than loopback


def settle_heap() -> None:
    """Once the fleet is connected, move everything allocated so far out of the garbage
    collector's sight: thousands of long-lived connection objects otherwise get rescanned on
    every collection during the reconcile (PERFORMANCE.md: about 1.5x at 10,000 stations)."""
    gc.collect()
    gc.freeze()


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise typer.BadParameter(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:9000", param_hint="--listen")
    return host, int(port)


def station_passwords(connection: Connection) -> dict[str, str]:
    passwords: dict[str, str] = {}
    if connection.passwords_file is not None:
        try:
            text = connection.passwords_file.read_text(encoding="utf-8")
            data = json.loads(text) if connection.passwords_file.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise typer.BadParameter(f"{connection.passwords_file}: {exc}", param_hint="--passwords") from None
        if not isinstance(data, dict) or not all(isinstance(v, str | int) for v in data.values()):
            raise typer.BadParameter(
                f"{connection.passwords_file}: expected a mapping of station id to password", param_hint="--passwords"
            )
        passwords.update({str(k): str(v) for k, v in data.items()})
    shared = connection.station_password or os.environ.get("RECONCILER_STATION_PASSWORD")
    if shared:
        passwords["*"] = shared
    return passwords


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def station_auth(host: str, port: int, passwords: dict[str, str], connection: Connection, stations: int) -> str | None:
    """Whether the embedded Central System may run as asked: stations authenticate (the default),
    or, for a lab whose test chargers cannot send a password, explicitly not, and then only on a
    loopback address unless a second flag says so. Returns the warning to print, raises otherwise."""
    if not connection.no_station_auth:
        if not passwords:
            raise typer.BadParameter(
                "stations must authenticate: set --station-password (or RECONCILER_STATION_PASSWORD) or --passwords "
                "FILE (a lab whose test chargers cannot send a password: --no-station-auth)"
            )
        return None
    if passwords:
        raise typer.BadParameter("--no-station-auth contradicts --station-password/--passwords: choose one")
    if not is_loopback(host) and not connection.auth_off_loopback:
        raise typer.BadParameter(
            f"refusing to accept stations without authentication on {host}, which is not a loopback address: "
            "anyone who reaches it could pose as a declared station and receive its charging profiles. "
            "For a closed lab network add --allow-no-auth-off-loopback; otherwise give the stations passwords",
            param_hint="--no-station-auth",
        )
    return (
        f"WARNING: station authentication is OFF (--no-station-auth). Any client that reaches {host}:{port} can pose "
        f"as one of the {stations} declared station(s) and receive its charging profiles. Lab use only."
    )


@asynccontextmanager
async def open_gateway(
    connection: Connection, stations: Sequence[str], *, echo: bool = True
) -> AsyncIterator[tuple[Gateway, set[str]]]:
    """The gateway, and which of `stations` are reachable through it."""
    if connection.via and connection.listen:
        raise typer.BadParameter("use either --via or --listen, not both")
    if connection.via:
        gateway = InjectGateway(
            connection.via,
            username=connection.user or os.environ.get("RECONCILER_INJECT_USER"),
            password=connection.password or os.environ.get("RECONCILER_INJECT_PASSWORD"),
            timeout=connection.call_timeout,
        )
        try:
            yield gateway, set(stations)
        finally:
            await gateway.aclose()
        return
    if not connection.listen:
        raise typer.BadParameter(
            "say how to reach the chargers: --listen HOST:PORT (embedded Central System) or --via URL (inject API)"
        )
    host, port = parse_listen(connection.listen)
    passwords = station_passwords(connection)
    warning = station_auth(host, port, passwords, connection, len(stations))
    if warning:
        typer.echo(warning, err=True)
    central = CentralSystem(
        host=host, port=port, passwords=passwords, known_stations=stations, call_timeout=connection.call_timeout
    )
    try:
        await central.start()
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", param_hint="--listen"
        ) from None
    try:
        if echo:
            typer.echo(
                f"Central System on {central.url}; waiting up to {connection.wait:g}s for {len(stations)} station(s)",
                err=True,
            )
        connected = await central.wait_for_stations(stations, connection.wait, booted=False)
        settle_heap()
        if echo:
            typer.echo(f"{len(connected)} of {len(stations)} station(s) connected", err=True)
        yield central, connected
    finally:
        await central.stop()
