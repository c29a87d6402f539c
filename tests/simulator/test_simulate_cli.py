"""`reconciler simulate`: help and option errors (running it is covered by the fleet tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.main import app
from reconciler.cli.simulate_cmd import parse_quirks
from reconciler.simulator.quirks import UncoveredReport


def test_help_lists_options_and_quirks() -> None:
    result = CliRunner().invoke(app, ["simulate", "--help"])
    assert result.exit_code == 0
    options = ["--stations", "--url", "--connectors", "--max-current", "--prefix", "--password", "--quirks"]
    for text in [*options, "--state-dir", "lose_profiles_on_reboot", "composite_unsupported"]:
        assert text in result.output


def test_bad_quirk_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["simulate", "--quirks", "colour=blue"])
    assert result.exit_code == 2
    assert "unknown quirk" in result.output


def test_quirks_file_then_pairs(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"uncovered": "rejected", "max_stack_level": 3}))
    quirks = parse_quirks([str(path), "whole_amps=true"])
    assert (quirks.uncovered, quirks.max_stack_level, quirks.whole_amps) == (UncoveredReport.REJECTED, 3, True)
    with pytest.raises(ValueError, match="no such quirks file"):
        parse_quirks([str(tmp_path / "missing.json")])
