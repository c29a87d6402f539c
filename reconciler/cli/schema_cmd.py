"""`reconciler schema`: print the policy JSON Schema (the very file the loader validates with).

For editors (yaml-language-server, VS Code, IntelliJ) and other tools: `reconciler schema >
policy.schema.json`, or point the editor at the schema's `$id`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from reconciler.policy.schema import SCHEMA_FILE, SchemaMissing, load_schema


def register(app: typer.Typer) -> None:
    @app.command("schema")
    def schema(
        show_path: Annotated[bool, typer.Option("--path", help="print where the schema file is instead")] = False,
    ) -> None:
        """Print the JSON Schema of policy documents (every property described, with examples)."""
        if show_path:
            typer.echo(str(SCHEMA_FILE))
            return
        try:
            load_schema()
            text = SCHEMA_FILE.read_text(encoding="utf-8")
        except (SchemaMissing, OSError) as exc:
            sys.stderr.write(f"error: {exc}; reinstall reconciler\n")
            raise typer.Exit(1) from None
        typer.echo(text.rstrip("\n"))
