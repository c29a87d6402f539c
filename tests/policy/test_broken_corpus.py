"""The broken-policy corpus: every file gives its own diagnostic at the right line, exit 1, no traceback.

Each file in tests/policy/broken/ starts with `# expect: CODE line N [strict]` (strict: the rule is a
warning, which --strict turns into an error).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.main import app
from reconciler.policy import load_policies
from reconciler.policy.diagnostics import Collector
from reconciler.policy.schema import validator
from reconciler.policy.source import parse_text

BROKEN = Path(__file__).parent / "broken"
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
FILES = sorted(BROKEN.glob("*.yaml"))
EXPECT = re.compile(r"# expect: (?P<code>[a-z0-9-]+) line (?P<line>\d+)(?P<strict> strict)?")
SCHEMA_CODES = ("schema-", "missing-api-version", "unknown-api-version", "unknown-kind", "missing-kind")


def expectation(path: Path) -> tuple[str, int, bool]:
    first = path.read_bytes().split(b"\n", 1)[0].decode()
    match = EXPECT.match(first)
    assert match, f"{path.name} has no `# expect:` header"
    return match["code"], int(match["line"]), bool(match["strict"])


def test_the_corpus_is_large_enough_and_covers_distinct_rules() -> None:
    codes = {expectation(p)[0] for p in FILES}
    assert len(FILES) >= 30
    assert len(codes) >= 30


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_broken_file_reports_its_diagnostic(path: Path) -> None:
    code, line, strict = expectation(path)
    result = load_policies([path], now=NOW, strict=strict)
    assert not result.ok
    hits = [d for d in result.diagnostics if d.code == code]
    assert hits, f"expected {code}, got {[d.format_text() for d in result.diagnostics]}"
    hit = hits[0]
    assert hit.severity == "error"
    assert hit.location is not None
    assert Path(hit.location.file).name == path.name
    assert hit.location.line == line, hit.format_text()
    assert hit.hint, "every diagnostic says how to fix it"
    if not strict:  # the rule is an error on its own, not only with --strict
        assert not load_policies([path], now=NOW).ok


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_validate_cli_exits_1_without_traceback(path: Path) -> None:
    code, line, strict = expectation(path)
    args = ["validate", str(path), *(["--strict"] if strict else [])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f":{line}:" in result.output and f"[{code}]" in result.output


@pytest.mark.parametrize("path", [p for p in FILES if expectation(p)[0].startswith(SCHEMA_CODES)], ids=lambda p: p.stem)
def test_the_schema_file_itself_rejects_schema_level_fixtures(path: Path) -> None:
    docs = parse_text(path.read_text(), path.name, Collector())
    assert docs
    assert any(not validator().is_valid(doc.data) for doc in docs)
