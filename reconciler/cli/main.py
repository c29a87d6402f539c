"""The `reconciler` command line: one Typer app, one module per command family."""

from __future__ import annotations

import typer

from reconciler.cli import (
    composite_cmd,
    demo_cmd,
    doctor_cmd,
    explain_cmd,
    reconcile_cmd,
    simulate_cmd,
    validate_cmd,
    watch_cmd,
)

app = typer.Typer(
    name="reconciler",
    help="Declarative, GitOps-style reconciler for OCPP 1.6J smart charging.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
composite_cmd.register(app)
simulate_cmd.register(app)
validate_cmd.register(app)
reconcile_cmd.register(app)
demo_cmd.register(app)
watch_cmd.register(app)
explain_cmd.register(app)
doctor_cmd.register(app)


@app.callback()
def main() -> None:
    """Declarative, GitOps-style reconciler for OCPP 1.6J smart charging."""


if __name__ == "__main__":  # pragma: no cover
    app()
