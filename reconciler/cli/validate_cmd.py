"""`reconciler validate`: the policy loader's diagnostics for people and for CI.

Edge of the policy flow: reads the clock once (`reconciler.clock.now()`), calls `load_policies`
and renders its diagnostics as text, JSON or GitHub Actions annotations. Exit 0 when clean (or
only warnings), 1 on any error (with --strict warnings count as errors).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, TextIO

import typer

from reconciler import clock
from reconciler.policy import PolicySet, load_policies
from reconciler.policy.diagnostics import summary
from reconciler.policy.schema import SchemaMissing

HELP = """Check policy files without any charger: schema, then semantic checks. For CI and editors.

PATH is a policy file or directory (searched recursively for .yaml/.yml; hidden entries are
skipped); default: policies/. YAML files that hold no reconciler document (a CI workflow, a
pre-commit config) are skipped. Every problem is reported at once, as
`file:line:col: error: what. how to fix. [code]`.

\b
Exit status: 0 clean or warnings only; 1 errors (or warnings with --strict).
--format text   one line per diagnostic and a summary (default)
--format json   {"ok", "revision", "files", "skipped", "stations", "diagnostics": [...]}
--format github `::error file=F,line=L,col=C,title=CODE::message` workflow annotations
"""

FORMATS = ("text", "json", "github")


def render(policies: PolicySet, fmt: str, out: TextIO) -> None:
    files = len(policies.files)
    if fmt == "json":
        payload: dict[str, Any] = {
            "ok": policies.ok,
            "revision": policies.revision,
            "files": list(policies.files),
            "skipped": list(policies.skipped),
            "stations": len(policies.stations),
            "errors": len(policies.errors),
            "warnings": len(policies.warnings),
            "diagnostics": [d.to_json() for d in policies.diagnostics],
        }
        out.write(json.dumps(payload, indent=2) + "\n")
        return
    for diagnostic in policies.diagnostics:
        if fmt == "github":
            out.write(diagnostic.format_github() + "\n")
        else:
            out.write(f"{diagnostic.format_text()} [{diagnostic.code}]\n")
    count = len(policies.stations)
    line = summary(policies.diagnostics, files) + f", {count} station{'' if count == 1 else 's'}"
    if policies.skipped:
        line += f" ({len(policies.skipped)} non-policy YAML files skipped)"
    if policies.revision:
        line += f" at {policies.revision}"
    out.write(line + "\n")


def run(paths: list[str], fmt: str, strict: bool, out: TextIO) -> int:
    try:
        policies = load_policies(paths, now=clock.now(), strict=strict)
    except SchemaMissing as exc:
        sys.stderr.write(f"error: {exc}; reinstall reconciler from its repository\n")
        return 1
    render(policies, fmt, out)
    return 0 if policies.ok else 1


def register(app: typer.Typer) -> None:
    @app.command("validate", help=HELP)
    def validate(
        paths: Annotated[
            list[str] | None, typer.Argument(metavar="[PATH]...", help="policy files or directories")
        ] = None,
        fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="text, json or github")] = "text",
        strict: Annotated[bool, typer.Option("--strict", help="treat warnings as errors")] = False,
    ) -> None:
        if fmt not in FORMATS:
            raise typer.BadParameter(f"unknown format {fmt!r}; use text, json or github", param_hint="--format")
        raise typer.Exit(run(paths or ["policies"], fmt, strict, sys.stdout))
