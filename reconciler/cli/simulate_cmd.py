"""`reconciler simulate`: run N simulated OCPP 1.6J charge points against a Central System.

Flow: command line -> `Quirks` (from --quirks FILE and/or key=value pairs) -> `simulator.Fleet`
on one event loop (uvloop when installed) -> runs until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from reconciler.cli.credentials import STATION_ENV, SecretSource, secret
from reconciler.simulator.fleet import Fleet, station_ids
from reconciler.simulator.quirks import Quirks
from reconciler.simulator.sessions import Sessions
from reconciler.transport.inject import split_credentials

HELP = """Run simulated OCPP 1.6J charge points that connect to a Central System.

Each station (ids PREFIX0001, PREFIX0002, ...) opens ws://URL/{id} with subprotocol ocpp1.6,
sends BootNotification, answers SetChargingProfile, ClearChargingProfile and
GetCompositeSchedule with the same rules and composite engine as the reconciler's core,
GetConfiguration/ChangeConfiguration (smart-charging keys), Remote Start/Stop, Reset and
TriggerMessage, and sends MeterValues for a simulated EV while a transaction runs. Limits in
GetCompositeSchedule replies are rounded to 0.1; time no profile covers is reported at
--max-current. Stations reconnect with backoff when the Central System goes away. Runs until
Ctrl-C.

\b
Examples:
  reconciler simulate --stations 10 --url ws://127.0.0.1:9000
  reconciler simulate --stations 2 --quirks uncovered=minus_one --quirks whole_amps=true
  reconciler simulate --stations 5 --quirks quirks.json --state-dir /tmp/sim

The stations' basic auth password (username = station id) comes from --password-file FILE or the
environment variable RECONCILER_STATION_PASSWORD; --password still works but is visible in ps and
prints a warning.

\b
Quirks (--quirks key=value, repeatable, or a JSON/YAML file of key: value):
  uncovered=default_limit|minus_one|empty|rejected   how uncovered time is reported
  convert_units=true|false       false: no A<->W conversion
  whole_amps=true|false          round reported limits to whole amps
  connector0=sum|connector_sum|stack|cap_only|unsupported   how connector 0 is reported
  reply_unit=requested|profile   profile: answers in the profile's unit, whatever was asked
  cap_on_connectors=true|false   false: ChargePointMaxProfile left out of connectors 1..N
  rebase_recurring=true|false    false: Recurring periods reported from the request, not shifted
  tx_default_when_idle=true|false  false: TxDefaultProfile counts only during a transaction
  lose_profiles_on_reboot=true|false  profiles vanish on Reset
  lose_on_reboot=ID|PURPOSE,...  only these profiles vanish on Reset
  reboot_after=ACTION[:N]        restart once, right after answering the Nth such call
  accepted_not_enforced=true|false   SetChargingProfile says Accepted but stores nothing
  enforce_delay_ms=N             an Accepted SetChargingProfile takes effect N ms later
  lose_answers=ACTION,...        these calls are carried out but never answered
  late_answers=ACTION,...        these calls are carried out at once, answered answer_delay_ms=N later
  composite_unsupported=true|false   GetCompositeSchedule answers CallError NotSupported
  boot_delay=SECONDS              BootNotification this long after connecting
  before_boot=answer|refuse|silent   calls before the boot is accepted (refuse: SecurityError)
  epoch_clock_until_boot=true|false  the clock is at 1970 until the boot is accepted
  clock_offset=SECONDS           the clock is off by this much (may be negative)
  boot_on_reconnect=true|false   false: only a power-up sends BootNotification
  report_stack_level=true|false  false: ChargeProfileMaxStackLevel is not reported
  max_stack_level=N  max_periods=N  max_profiles=N   capability keys (20, 48, 32)
  allowed_units=A,W|A|W          ChargingScheduleAllowedChargingRateUnit

Exit: 0 after Ctrl-C, 2 on bad options.
"""


SIMULATOR_PASSWORD = SecretSource("--password", "--password-file", STATION_ENV)


def parse_quirks(values: list[str]) -> Quirks:
    """Files and key=value pairs, applied left to right."""
    quirks = Quirks()
    for value in values:
        if "=" in value:
            quirks = Quirks.from_pairs([value], base=quirks)
        else:
            path = Path(value)
            if not path.is_file():
                known = ", ".join(f.name for f in fields(Quirks))
                raise ValueError(f"{value}: no such quirks file, and not key=value (known quirks: {known})")
            quirks = Quirks.from_file(path)
    return quirks


async def _run(fleet: Fleet) -> None:
    await fleet.run_forever()


def register(app: typer.Typer) -> None:
    @app.command("simulate", help=HELP)
    def simulate(
        stations: Annotated[int, typer.Option("--stations", "-n", metavar="N", min=1, help="how many stations")] = 1,
        url: Annotated[
            str,
            typer.Option("--url", metavar="URL", help="Central System URL (ws://, wss://); the station id is appended"),
        ] = "ws://127.0.0.1:9000",
        connectors: Annotated[int, typer.Option("--connectors", metavar="N", min=1, help="connectors per station")] = 2,
        max_current: Annotated[
            float, typer.Option("--max-current", metavar="AMPS", min=1.0, help="A per phase; the limit with no profile")
        ] = 32.0,
        prefix: Annotated[str, typer.Option("--prefix", metavar="TEXT", help="station id prefix")] = "PY-SIM-",
        start: Annotated[int, typer.Option("--start", metavar="N", min=0, help="number of the first station")] = 1,
        password: Annotated[
            str | None,
            typer.Option(
                "--password", metavar="PASSWORD", help="basic auth password (all); ps shows it: prefer --password-file"
            ),
        ] = None,
        password_file: Annotated[
            Path | None,
            typer.Option(
                "--password-file", metavar="FILE", help="basic auth password (all), from a file (or the environment)"
            ),
        ] = None,
        quirks: Annotated[
            list[str] | None,
            typer.Option("--quirks", metavar="FILE|KEY=VALUE", help="FILE or key=value; repeatable (see above)"),
        ] = None,
        state_dir: Annotated[
            Path | None,
            typer.Option("--state-dir", metavar="DIR", help="persist profiles and write a log per station here"),
        ] = None,
        ev: Annotated[
            bool, typer.Option("--ev", help="plug an EV into connector 1 of each station and start charging")
        ] = False,
        sessions: Annotated[
            bool,
            typer.Option(
                "--sessions",
                help="simulated drivers: EVs plug in, charge 5-30 min under the enforced "
                "limit, leave, and again (seeded by --seed; MeterValues every 10 s)",
            ),
        ] = False,
        seed: Annotated[
            int, typer.Option("--seed", metavar="N", help="seed of --sessions (same seed, same sessions)")
        ] = 0,
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log connections and errors")] = False,
        ca_file: Annotated[
            Path | None,
            typer.Option("--ca-file", metavar="FILE", help="PEM certificates to trust for a wss:// Central System"),
        ] = None,
    ) -> None:
        password = secret(SIMULATOR_PASSWORD, password, password_file)
        try:
            parsed = parse_quirks(quirks or [])
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--quirks") from None
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s")
        context = None
        if ca_file is not None:
            try:
                context = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise typer.BadParameter(f"{ca_file}: {exc}", param_hint="--ca-file") from None
        ids = station_ids(stations, prefix, start)
        shown_url = split_credentials(url)[0]  # a password in the URL is not printed
        try:
            parse_uri(url)  # what the stations' websocket client accepts, checked before any starts
        except InvalidURI:
            raise typer.BadParameter(
                f"{shown_url!r} is not a websocket URL: use ws://HOST:PORT or wss://HOST:PORT", param_hint="--url"
            ) from None
        typer.echo(f"simulating {stations} station(s) {ids[0]}..{ids[-1]} -> {shown_url} (Ctrl-C to stop)")

        async def main() -> None:
            fleet = Fleet(
                url,
                stations,
                prefix=prefix,
                start=start,
                connectors=connectors,
                max_current=max_current,
                password=password,
                quirks=parsed,
                state_dir=state_dir,
                auto_ev=ev,
                ssl_context=context,
                sessions=Sessions(seed=seed) if sessions else None,
            )
            await _run(fleet)

        with contextlib.suppress(KeyboardInterrupt):
            try:
                import uvloop
            except ImportError:  # pragma: no cover
                asyncio.run(main())
            else:
                uvloop.run(main())
        typer.echo("stopped")
