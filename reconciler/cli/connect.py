"""How `plan` and `apply` reach chargers: an inject endpoint, or the embedded Central System.

`--via URL`: an OCPP proxy's `POST /api/inject/{id}` (or a running `reconciler watch`); basic
auth from `--user` or RECONCILER_INJECT_USER, and the password from `--password-file FILE` or
RECONCILER_INJECT_PASSWORD (`--password` still works, with a warning: `ps` shows it). Credentials
written into the URL (`http://ops:PW@host`) are used, with a warning, and taken out of it, so no
reason, event, log line or JSON output repeats them.
`--listen HOST:PORT`: start the embedded Central System for the duration of the command
(stations connect to `--path-prefix` + their id); the selected stations must connect within
`--wait` seconds. Station passwords (OCPP Security Profile 1) come from `--station-password-file
FILE` or RECONCILER_STATION_PASSWORD (one for all; the old `--station-password` warns) or a
`--passwords FILE` (YAML or JSON mapping station id -> password); unknown stations are refused.
Where secrets come from is `credentials.py`.
`--tls-cert/--tls-key` serve `wss://` (OCPP Security Profile 2, TLS 1.2 or newer); Basic auth
over plain `ws://` on a non-loopback address is warned about, since the passwords then cross the
network in clear. Stations are admitted when declared (`admit`); the command waits only for the
ones it works on, and says how many have connected while it waits. For a lab whose test chargers
cannot send a password, `--no-station-auth` turns authentication off, loudly, and only on a
loopback address unless `--allow-no-auth-off-loopback` is given too.
"""

from __future__ import annotations

import gc
import ipaddress
import os
import ssl
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import typer

from reconciler import clock
from reconciler.cli.credentials import INJECT_PASSWORD, INJECT_USER_ENV, STATION_PASSWORD, read_passwords_file, secret
from reconciler.cli.credentials import warn as _warn
from reconciler.daemon.settings import host_port
from reconciler.transport.central_system import CentralSystem
from reconciler.transport.gateway import Gateway
from reconciler.transport.inject import InjectGateway, split_credentials


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
    tls_cert: Path | None = None
    tls_key: Path | None = None
    no_station_auth: bool = False  # lab only: stations connect without a password
    auth_off_loopback: bool = False  # ... also on an address other than loopback
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
    if not host or not port.isdigit():  # both required here (the daemon's `host_port` has defaults)
        raise typer.BadParameter(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:9000", param_hint="--listen")
    try:
        return host_port(value, 9000)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--listen") from None


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def tls_context(connection: Connection) -> ssl.SSLContext | None:
    """The server TLS context for wss:// (TLS 1.2 or newer), or None for plain ws://."""
    if connection.tls_cert is None and connection.tls_key is None:
        return None
    if connection.tls_cert is None:
        raise typer.BadParameter("--tls-key needs --tls-cert (the certificate chain, PEM)", param_hint="--tls-cert")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(connection.tls_cert), str(connection.tls_key) if connection.tls_key else None)
    except (OSError, ssl.SSLError) as exc:
        raise typer.BadParameter(
            f"{connection.tls_cert}: cannot load the certificate and key ({exc}); both must be PEM files",
            param_hint="--tls-cert",
        ) from None
    return context


def check_via(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        what = f"{parts.scheme}:// is not supported" if parts.scheme else "not a URL"
        raise typer.BadParameter(
            f"{what}: expected the http:// or https:// URL of an inject API, e.g. https://proxy.example/",
            param_hint="--via",
        )


def station_passwords(connection: Connection) -> dict[str, str]:
    passwords: dict[str, str] = {}
    if connection.passwords_file is not None:
        passwords.update(read_passwords_file(connection.passwords_file))
    shared = secret(STATION_PASSWORD, connection.station_password, connection.station_password_file)
    if shared:
        passwords["*"] = shared
    return passwords


def station_auth(host: str, port: int, passwords: dict[str, str], connection: Connection, stations: int) -> str | None:
    """Whether the embedded Central System may run as asked: stations authenticate (the default),
    or, for a lab whose test chargers cannot send a password, explicitly not, and then only on a
    loopback address unless a second flag says so. Returns the warning to print, raises otherwise."""
    if not connection.no_station_auth:
        if not passwords:
            raise typer.BadParameter(
                "stations must authenticate: set RECONCILER_STATION_PASSWORD, --station-password-file FILE or "
                "--passwords FILE (a lab whose test chargers cannot send a password: --no-station-auth)"
            )
        return None
    if passwords:
        raise typer.BadParameter(
            "--no-station-auth contradicts a station password (--passwords, "
            "--station-password-file, RECONCILER_STATION_PASSWORD): choose one"
        )
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


def inject_gateway(connection: Connection, via: str) -> InjectGateway:
    """The inject client. Credentials in the URL are used, with a warning; `InjectGateway` takes them
    out of the URL it keeps, so reasons and logs never repeat them."""
    _, url_user, url_password = split_credentials(via)
    if url_password is not None:
        _warn("a password in the --via URL is visible in ps and the shell history; use RECONCILER_INJECT_PASSWORD "
              "or --password-file FILE")  # fmt: skip
    password = secret(INJECT_PASSWORD, connection.password, connection.password_file)
    user = connection.user or os.environ.get(INJECT_USER_ENV) or url_user
    return InjectGateway(via, username=user, password=password, timeout=connection.call_timeout)


async def _wait(central: CentralSystem, stations: Sequence[str], wait: float, echo: bool) -> set[str]:
    """Wait for the stations to connect, saying how many have (a line per change on a terminal,
    one every 5 s otherwise), and return those that did."""
    loop_time = clock.monotonic
    started = loop_time()
    last_count, last_said = -1, started
    tty = sys.stderr.isatty()
    while True:
        remaining = wait - (loop_time() - started)
        connected = await central.wait_for_stations(stations, max(0.0, min(1.0, remaining)), booted=False)
        now = loop_time()
        done = len(connected) == len(stations) or remaining <= 1.0
        if echo and not done and len(connected) != last_count and (tty or now - last_said >= 5.0):
            typer.echo(f"  waiting: {len(connected)} of {len(stations)} station(s) connected "
                       f"({now - started:.0f} of {wait:g} s)", err=True)  # fmt: skip
            last_count, last_said = len(connected), now
        if done:
            return connected


@asynccontextmanager
async def open_gateway(
    connection: Connection, stations: Sequence[str], *, echo: bool = True, admit: Iterable[str] = ()
) -> AsyncIterator[tuple[Gateway, set[str]]]:
    """The gateway, and which of `stations` are reachable through it. `admit` lists further
    stations the embedded Central System accepts (declared ones the command does not work on)."""
    if connection.via and connection.listen:
        raise typer.BadParameter("use either --via or --listen, not both")
    if connection.via:
        check_via(connection.via)
        if connection.tls_cert is not None or connection.tls_key is not None:
            raise typer.BadParameter("--tls-cert/--tls-key serve wss:// for --listen; with --via, use an https:// URL")
        if urlsplit(connection.via).scheme == "http" and not is_loopback(urlsplit(connection.via).hostname or ""):
            _warn(f"--via {urlsplit(connection.via).hostname}: the inject API password crosses the network in "
                  "clear over http://; use https://")  # fmt: skip
        gateway = inject_gateway(connection, connection.via)
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
    context = tls_context(connection)
    if context is None and passwords and not is_loopback(host):
        _warn(f"--listen {host}:{port} serves ws:// without TLS: stations send their Basic-auth passwords in "
              "clear; pass --tls-cert/--tls-key for wss:// (OCPP Security Profile 2)")  # fmt: skip
    central = CentralSystem(
        host=host, port=port, passwords=passwords, known_stations=[*stations, *admit],
        call_timeout=connection.call_timeout, ssl_context=context, path_prefix=connection.path_prefix,
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
        connected = await _wait(central, stations, connection.wait, echo)
        settle_heap()
        if echo:
            typer.echo(f"{len(connected)} of {len(stations)} station(s) connected", err=True)
        yield central, connected
    finally:
        await central.stop()
