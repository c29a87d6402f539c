"""How `plan` and `apply` reach chargers: an inject endpoint, or the embedded Central System.

`--via URL`: an OCPP proxy's `POST /api/inject/{id}` (or our own `InjectServer`); basic auth from
`--user` or RECONCILER_INJECT_USER, and the password from `--password-file FILE` or
RECONCILER_INJECT_PASSWORD (`--password` still works, with a warning: `ps` shows it). Credentials
written into the URL (`http://ops:PW@host`) are taken out of it, with a warning, so no reason,
event, log line or JSON output repeats them. `--listen HOST:PORT`: start the embedded Central
System for the duration of the command (stations connect to `--path-prefix` + their id); the
selected stations must connect within `--wait` seconds. Station passwords (OCPP Security Profile 1)
come from `--station-password-file FILE` or RECONCILER_STATION_PASSWORD (one for all; the old
`--station-password` warns) or a `--passwords FILE` (YAML or JSON mapping station id -> password);
unknown stations are refused. Where secrets come from is `credentials.py`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import typer

from reconciler.cli.credentials import (
    INJECT_PASSWORD,
    INJECT_USER_ENV,
    STATION_PASSWORD,
    read_passwords_file,
    secret,
    split_credentials,
    warn,
)
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
    station_password_file: Path | None = None
    password_file: Path | None = None
    path_prefix: str = "/"


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
        passwords.update(read_passwords_file(connection.passwords_file))
    shared = secret(STATION_PASSWORD, connection.station_password, connection.station_password_file)
    if shared:
        passwords["*"] = shared
    return passwords


def inject_gateway(connection: Connection, via: str) -> InjectGateway:
    """The inject client; credentials in the URL are used (with a warning) but never kept in it."""
    url, url_user, url_password = split_credentials(via)
    if url_password is not None:
        warn("a password in the --via URL is visible in ps and shell history; use RECONCILER_INJECT_PASSWORD")
    password = secret(INJECT_PASSWORD, connection.password, connection.password_file)
    user = connection.user or os.environ.get(INJECT_USER_ENV) or url_user
    return InjectGateway(
        url, username=user, password=password if password is not None else url_password,
        timeout=connection.call_timeout,
    )  # fmt: skip


@asynccontextmanager
async def open_gateway(
    connection: Connection, stations: Sequence[str], *, echo: bool = True
) -> AsyncIterator[tuple[Gateway, set[str]]]:
    """The gateway, and which of `stations` are reachable through it."""
    if connection.via and connection.listen:
        raise typer.BadParameter("use either --via or --listen, not both")
    if connection.via:
        yield inject_gateway(connection, connection.via), set(stations)
        return
    if not connection.listen:
        raise typer.BadParameter(
            "say how to reach the chargers: --listen HOST:PORT (embedded Central System) or --via URL (inject API)"
        )
    host, port = parse_listen(connection.listen)
    passwords = station_passwords(connection)
    if not passwords:
        raise typer.BadParameter(
            "stations must authenticate: set RECONCILER_STATION_PASSWORD, --station-password-file FILE "
            "or --passwords FILE"
        )
    central = CentralSystem(
        host=host, port=port, passwords=passwords, known_stations=stations, call_timeout=connection.call_timeout,
        path_prefix=connection.path_prefix,
    )  # fmt: skip
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
