"""`reconciler doctor STATION`: how a charger reports, as a ChargerModel to commit, with the evidence.

Edge of the doctor flow: reaches the station like `plan` does (`connect.py`: --listen or --via),
waits for its boot, runs `engine.doctor.examine` (reads; probes with --active) and prints the
findings as a ChargerModel YAML document whose every line carries its evidence as a comment, then
what could not be told and why (or `--json`). Hardware facts come from the station's declaration in
the policies when there is one, else from --connectors/--max-current/--phases/--voltage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from reconciler import clock
from reconciler.cli.common import run_async
from reconciler.cli.connect import Connection, open_gateway
from reconciler.cli.options import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_WAIT,
    ListenOpt,
    NoAuthNetworkOpt,
    NoAuthOpt,
    PasswordFileOpt,
    PasswordOpt,
    PasswordsOpt,
    StationPasswordFileOpt,
    StationPasswordOpt,
    TimeoutOpt,
    UserOpt,
    ViaOpt,
    WaitOpt,
)
from reconciler.cli.render import plain_console
from reconciler.engine.calls import Caller, RateLimit, RetryPolicy
from reconciler.engine.doctor import Findings, Hardware, examine
from reconciler.engine.readiness import booted
from reconciler.policy import load_policies

CLOCK_TOLERANCE = 30.0
PoliciesOpt = Annotated[
    list[Path] | None,
    typer.Option("--policies", "-p", metavar="PATH", help="policies declaring the station (default policies/)"),
]
ActiveOpt = Annotated[
    bool,
    typer.Option("--active", help="also install harmless probe profiles (above the hardware maximum, two minutes "
                 "each, removed at once) on a charger that reports no cap"),
]  # fmt: skip


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def findings_yaml(station_id: str, findings: Findings, hardware: Hardware, *, active: bool) -> str:
    """The ChargerModel document, each line with its evidence; then what could not be told."""
    boot = findings.boot
    name = "-".join(str(boot.get(k) or "") for k in ("vendor", "model")).strip("-").lower().replace(" ", "-") or (
        "my-charger"
    )
    lines = [
        f"# reconciler doctor {station_id}: how this charger reports, as a ChargerModel to commit",
        f"# {hardware.connectors} connector(s), {hardware.max_current_a:g} A, {hardware.phases} phase(s), "
        f"{hardware.voltage:g} V; " + ("read, then probed (--active)" if active else "read only (--active probes)"),
        "apiVersion: reconciler/v1",
        "kind: ChargerModel",
        f"metadata: {{name: {name[:60] or 'my-charger'}}}",
        "spec:",
    ]
    for key, field in (("vendor", "vendor"), ("model", "model"), ("firmware", "firmware")):
        if boot.get(field):
            lines.append(f'  {key}: "{boot[field]}"'.ljust(40) + f"  # BootNotification {field}")
    for section, values in (("capabilities", findings.capabilities), ("conventions", findings.conventions)):
        if values:
            lines.append(f"  {section}:")
            for key, value in values.items():
                lines.append(f"    {key}: {_yaml(value)}".ljust(40) + f"  # {findings.evidence.get(key, '')}")
    for key, why in findings.undetermined.items():
        lines.append(f"# not determined: {key}: {why}")
    if findings.clock_skew is not None:
        state = "within" if abs(findings.clock_skew) <= CLOCK_TOLERANCE else "MORE THAN"
        lines.append(f"# clock skew: {findings.clock_skew:+.1f} s ({state} the {CLOCK_TOLERANCE:g} s the reconciler "
                     "allows; its schedules run on its clock)")  # fmt: skip
    lines.extend(f"# note: {note}" for note in findings.notes)
    return "\n".join(lines)


def findings_json(station_id: str, findings: Findings) -> dict[str, Any]:
    return {
        "station": station_id, "boot": findings.boot, "capabilities": findings.capabilities,
        "conventions": findings.conventions, "evidence": findings.evidence, "undetermined": findings.undetermined,
        "clockSkewSeconds": findings.clock_skew, "notes": findings.notes,
    }  # fmt: skip


def hardware_of(station_id: str, policies: list[Path], flags: dict[str, Any]) -> Hardware:
    """The station's declaration when the policies have one, the flags over it."""
    base = Hardware()
    paths = policies or ([Path("policies")] if Path("policies").is_dir() else [])
    if paths:
        loaded = load_policies(paths, now=clock.now())
        station = loaded.stations.get(station_id)
        if station is not None:
            base = Hardware(station.connectors, station.max_current_a, station.phases, station.voltage)
    given = {k: v for k, v in flags.items() if v is not None}
    return Hardware(**{**base.__dict__, **given}) if given else base


async def run_doctor(station_id: str, hardware: Hardware, connection: Connection, active: bool) -> Findings:
    async with open_gateway(connection, [station_id]) as (gateway, reachable):
        if station_id not in reachable:
            raise typer.BadParameter(f"station {station_id} did not connect within {connection.wait:g} s")
        check = await booted(gateway, station_id, 10.0)
        if not check.ok:
            raise typer.BadParameter(f"station {station_id} did not boot: {check.note}")
        caller = Caller(gateway, RetryPolicy(call_timeout=connection.call_timeout), RateLimit(None))
        info = getattr(gateway, "station", lambda _: None)(station_id)
        boot = {"vendor": info.vendor, "model": info.model, "firmware": info.firmware} if info is not None else {}
        return await examine(caller, station_id, hardware, active=active, now=clock.now, boot=boot)


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(
        station: Annotated[str, typer.Argument(metavar="STATION", help="the station's OCPP identity")],
        policies: PoliciesOpt = None, active: ActiveOpt = False,
        connectors: Annotated[int | None, typer.Option("--connectors", metavar="N", min=1, max=64,
                              help="connectors (default: as declared, else 1)")] = None,
        max_current: Annotated[float | None, typer.Option("--max-current", metavar="AMPS", min=1,
                               help="hardware maximum per phase and connector (default: as declared, else 32)")] = None,
        phases: Annotated[int | None, typer.Option("--phases", metavar="N", min=1, max=3,
                          help="phases (default: as declared, else 3)")] = None,
        voltage: Annotated[float | None, typer.Option("--voltage", metavar="VOLTS", min=100,
                           help="supply voltage (default: as declared, else 230)")] = None,
        via: ViaOpt = None, listen: ListenOpt = None, wait: WaitOpt = None, user: UserOpt = None,
        password: PasswordOpt = None, station_password: StationPasswordOpt = None, passwords: PasswordsOpt = None,
        call_timeout: TimeoutOpt = None, no_station_auth: NoAuthOpt = False,
        auth_off_loopback: NoAuthNetworkOpt = False, station_password_file: StationPasswordFileOpt = None,
        password_file: PasswordFileOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of YAML")] = False,
    ) -> None:  # fmt: skip
        """Infer how a charger reports composite schedules and print the ChargerModel to commit.

        Reads its capability keys, its clock and how it reports uncovered time; with --active also
        probes unit conversion and rounding, connector 0, TxDefaultProfile while idle, the
        ChargePointMaxProfile on connectors and Recurring profiles. Each line says why. Connects like
        plan (--listen or --via). Exit 0, or 1 when the station cannot be reached.
        """
        hardware = hardware_of(station, policies or [], {"connectors": connectors, "max_current_a": max_current,
                                                          "phases": phases, "voltage": voltage})  # fmt: skip
        connection = Connection(
            via, listen, DEFAULT_WAIT if wait is None else wait, user, password, station_password, passwords,
            DEFAULT_CALL_TIMEOUT if call_timeout is None else call_timeout, no_station_auth=no_station_auth,
            auth_off_loopback=auth_off_loopback, station_password_file=station_password_file,
            password_file=password_file,
        )  # fmt: skip
        err = plain_console()
        findings = run_async(run_doctor(station, hardware, connection, active), err, "probe profiles, if any were "
                             "installed, carry the id 2000000001: clear it with ClearChargingProfile")  # fmt: skip
        if as_json:
            typer.echo(json.dumps(findings_json(station, findings), indent=2))
        else:
            typer.echo(findings_yaml(station, findings, hardware, active=active))
