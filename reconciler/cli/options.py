"""The options `plan` and `apply` share, with the same names, metavars and help everywhere.

Part of the command line's edge (`reconcile_cmd.py` and `common.py` use them); defaults that depend on a saved
plan are None here and resolved there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.saved_plan import HORIZON_MAX

DEFAULT_WAIT = 30.0
DEFAULT_CALL_TIMEOUT = 10.0
DEFAULT_HORIZON = 86_400

PoliciesOpt = Annotated[
    list[Path] | None,
    typer.Option("--policies", "-p", metavar="PATH", help="policy file or directory (repeatable); default policies/"),
]
StationOpt = Annotated[
    list[str] | None, typer.Option("--station", "-s", metavar="ID", help="only this station (repeatable)")
]
SelectorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--selector", "-l", metavar="KEY=VALUE", help="only stations with this label, KEY=VALUE (repeatable, ANDed)"
    ),
]
ViaOpt = Annotated[
    str | None,
    typer.Option(
        "--via",
        metavar="URL",
        help="inject API base URL of an OCPP proxy or a `reconciler watch` (POST URL/api/inject/{id}); "
        "through a daemon, plan with its state: --db <its state file>",
    ),
]
ListenOpt = Annotated[
    str | None, typer.Option("--listen", metavar="HOST:PORT", help="run the embedded Central System on HOST:PORT")
]
WaitOpt = Annotated[
    float | None,
    typer.Option("--wait", metavar="SECONDS", min=0, help="seconds to wait for the stations to connect [default: 30]"),
]
UserOpt = Annotated[
    str | None, typer.Option("--user", metavar="USER", help="inject API user (or RECONCILER_INJECT_USER)")
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password", metavar="PASSWORD", help="inject API password; visible in ps: prefer --password-file (warns)"
    ),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file", metavar="FILE", help="inject API password, from a file (or RECONCILER_INJECT_PASSWORD)"
    ),
]
StationPasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--station-password", metavar="PASSWORD",
        help="password every station uses; visible in ps: prefer --station-password-file (warns)",
    ),
]  # fmt: skip
StationPasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--station-password-file", metavar="FILE",
        help="password every station uses, from a file (or RECONCILER_STATION_PASSWORD)",
    ),
]  # fmt: skip
PathPrefixOpt = Annotated[
    str | None,
    typer.Option("--path-prefix", metavar="PATH", help="--listen: stations connect to PATH{stationId} (default /)"),
]
PasswordsOpt = Annotated[
    Path | None, typer.Option("--passwords", metavar="FILE", help="YAML/JSON file: station id -> password")
]
NoAuthOpt = Annotated[
    bool,
    typer.Option("--no-station-auth", help="LAB ONLY: accept the declared stations without a password (--listen)"),
]
NoAuthNetworkOpt = Annotated[
    bool,
    typer.Option(
        "--allow-no-auth-off-loopback", help="with --no-station-auth: also on a non-loopback --listen address"
    ),
]
TlsCertOpt = Annotated[
    Path | None,
    typer.Option("--tls-cert", metavar="FILE", help="serve wss:// with this certificate chain (PEM; --listen)"),
]
TlsKeyOpt = Annotated[
    Path | None, typer.Option("--tls-key", metavar="FILE", help="the private key of --tls-cert (PEM)")
]
DbOpt = Annotated[
    Path | None,
    typer.Option("--db", metavar="FILE", help="state file; default .reconciler/state.db beside the policies"),
]
HorizonOpt = Annotated[
    int | None,
    typer.Option(
        "--horizon", metavar="SECONDS", min=1, max=HORIZON_MAX,
        help=f"seconds of schedule to compare, 1..{HORIZON_MAX} (31 days) [default: {DEFAULT_HORIZON}]",
    ),
]  # fmt: skip
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--call-timeout", metavar="SECONDS", min=0.001, help="seconds to wait for each charger answer [default: 10]"
    ),
]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", metavar="N", min=1, help="stations worked on at once")]
RateOpt = Annotated[
    float | None,
    typer.Option("--rate-limit", metavar="CALLS_PER_S", min=0.001, help="at most this many calls per second in all"),
]
LockTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--lock-timeout", metavar="SECONDS", min=0, help="wait this long for the state lock (0: fail at once)"
    ),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline-is-error", help="a station that is not reachable is an error (exit 1)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
OutOpt = Annotated[Path | None, typer.Option("--out", metavar="FILE", help="save the plan to apply it later")]
PlanArg = Annotated[Path | None, typer.Argument(help="a plan saved with plan --out (optional)", metavar="[PLAN]")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="show stations in sync and every connector")]
