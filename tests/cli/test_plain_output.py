"""Diagnostics and user- or charger-provided text are printed as they are: no rich markup, no
emoji codes (`p.yaml:100:1` once printed as `p.yaml💯1`), no highlighting (issue 8 item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.main import app
from reconciler.cli.render import plain_console

BROKEN_AT_LINE_100 = "\n" * 98 + "apiVersion: reconciler/v1\nkind: Nope\nmetadata: {name: x}\nspec: {}\n"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "p.yaml").write_text(BROKEN_AT_LINE_100)
    return folder


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_plan_and_apply_print_diagnostics_verbatim(command: str, policies: Path) -> None:
    result = CliRunner().invoke(
        app, [command, "--policies", str(policies), "--listen", "127.0.0.1:0", "--db", str(policies / "s.db")],
        env={"RECONCILER_STATION_PASSWORD": "x"},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "p.yaml:100:" in result.output, result.output
    assert "\N{HUNDRED POINTS SYMBOL}" not in result.output


def test_watch_prints_diagnostics_verbatim(policies: Path) -> None:
    result = CliRunner().invoke(
        app, ["watch", "--policies", str(policies), "--db", str(policies / "s.db")],
        env={"RECONCILER_STATION_PASSWORD": "x", "RECONCILER_API_PASSWORD": "y"},
    )  # fmt: skip
    assert result.exit_code == 1
    assert "p.yaml:100:" in result.output and "\N{HUNDRED POINTS SYMBOL}" not in result.output, result.output


@pytest.mark.parametrize("command", [["apply"], ["show"]])
def test_a_saved_plan_path_is_printed_verbatim(tmp_path: Path, command: list[str]) -> None:
    name = tmp_path / ":100: [bold]x[/bold].json"
    result = CliRunner().invoke(app, [*command, str(name)])
    assert result.exit_code == 1
    assert ":100: [bold]x[/bold].json" in result.output, result.output


def test_no_command_builds_its_own_rich_console() -> None:
    """Every console comes from render.plain_console, so no command can reintroduce markup or emoji."""
    cli = Path(__file__).resolve().parents[2] / "reconciler" / "cli"
    offenders = [p.name for p in cli.glob("*.py") if p.name != "render.py" and "Console(" in p.read_text()]
    assert offenders == []


def test_the_plain_console_keeps_markup_emoji_codes_and_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    console = plain_console(stderr=False)
    console.print("CP:100:X [red]reason[/red] :smile:")
    console.rule("policies [b]p[/b] :100:")
    out = capsys.readouterr().out
    assert "CP:100:X [red]reason[/red] :smile:" in out
    assert "policies [b]p[/b] :100:" in out
