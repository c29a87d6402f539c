"""Fuzzing the loader: mutated documents give diagnostics, never an uncaught exception."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.policy import PolicySet, load_policies
from reconciler.policy.schema import fast_validator, validator

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml"))]
SEEDS += [p.read_text() for p in sorted((ROOT / "policies").rglob("*.yaml"))]
NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["A", "W", "Daily", "Recurring", "TxProfile", "2024-01-01T00:00:00Z", "18:00", "0", "-1"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def load_text(text: str) -> PolicySet:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "fuzz.yaml").write_text(text, encoding="utf-8")
        return load_policies([folder], now=NOW)


def assert_only_diagnostics(result: PolicySet) -> None:
    for diagnostic in result.diagnostics:
        assert diagnostic.severity in ("error", "warning")
        assert diagnostic.message and diagnostic.code
        diagnostic.format_text()
        diagnostic.format_github()


def _mutate(doc: Any, data: st.DataObject, times: int, *, may_delete: bool) -> None:
    """Replace (or, when allowed, delete) `times` randomly chosen nodes of a parsed document."""
    for _ in range(times):
        path = data.draw(st.sampled_from(_paths(doc)))
        if not path:
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if may_delete and data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(values)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_text_mutations(seed: str, data: st.DataObject) -> None:
    text = seed
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["delete", "insert", "duplicate-line"]))
        if action == "delete":
            text = text[:where] + text[where + data.draw(st.integers(1, 20)) :]
        elif action == "insert":
            text = text[:where] + data.draw(st.text(alphabet=" :-[]{}&*!|>'\"#\n\t,0a9", max_size=8)) + text[where:]
        else:
            lines = text.splitlines(keepends=True)
            if lines:
                i = data.draw(st.integers(0, len(lines) - 1))
                lines.insert(i, lines[i])
            text = "".join(lines)
    assert_only_diagnostics(load_text(text))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_structural_mutations(seed: str, data: st.DataObject) -> None:
    documents = [d for d in yaml.safe_load_all(seed) if d is not None]
    for doc in documents:
        _mutate(doc, data, data.draw(st.integers(0, 3)), may_delete=True)
    text = yaml.safe_dump_all(documents, allow_unicode=True)
    assert_only_diagnostics(load_text(text))


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_fast_schema_pass_is_never_looser_than_jsonschema(seed: str, data: st.DataObject) -> None:
    fast = fast_validator()
    assert fast is not None
    for doc in (d for d in yaml.safe_load_all(seed) if d is not None):
        _mutate(doc, data, data.draw(st.integers(1, 3)), may_delete=False)
        try:
            fast(doc)
        except Exception:
            continue
        assert validator().is_valid(doc), doc
