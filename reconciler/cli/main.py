"""The `reconciler` command line: one Typer app, one module per command family.

Also the app-wide conventions: `--version`; shell completion (`--install-completion`,
`--show-completion`); and exit codes: a usage error exits 2 as usual, but 1 when
`--detailed-exitcode` is given, where 2 means "changes" and every error must be 1.
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from reconciler.cli import (
    composite_cmd,
    demo_cmd,
    doctor_cmd,
    explain_cmd,
    reconcile_cmd,
    schema_cmd,
    simulate_cmd,
    state_cmd,
    validate_cmd,
    watch_cmd,
)

DISTRIBUTION = "ocpp-reconciler"


# click's UsageError, whether typer vendors click or uses the installed one
UsageError: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class ReconcilerGroup(TyperGroup):
    """Typer's group, with usage errors mapped to exit 1 under --detailed-exitcode."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            if "--detailed-exitcode" in [*sys.argv[1:], *getattr(ctx, "args", [])]:
                object.__setattr__(exc, "exit_code", 1)
            raise


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown (not installed)"


app = typer.Typer(
    name="reconciler",
    help="Declarative, GitOps-style reconciler for OCPP 1.6J smart charging.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    cls=ReconcilerGroup,
)
composite_cmd.register(app)
simulate_cmd.register(app)
validate_cmd.register(app)
reconcile_cmd.register(app)
state_cmd.register(app)
schema_cmd.register(app)
demo_cmd.register(app)
watch_cmd.register(app)
explain_cmd.register(app)
doctor_cmd.register(app)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"reconciler {version()} ({DISTRIBUTION})")
        raise typer.Exit(0)


@app.callback()
def main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Declarative, GitOps-style reconciler for OCPP 1.6J smart charging."""


if __name__ == "__main__":  # pragma: no cover
    app()
