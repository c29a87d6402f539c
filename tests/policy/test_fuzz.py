"""Fuzzing the loader: mutated documents give diagnostics, never an uncaught exception.

Two generators: hypothesis (shrinks a failure to a minimal document) and the seeded corpus of
`fuzz_corpus` (whole mutated policy sets with hostile scalars, tags, alias bombs, deep nesting and
bad bytes; valid sets also go through the expected composite). A bounded sample of the corpus runs
in every `make check`; the 2,000-set campaign is marked slow and runs in a worker process with an
address-space limit, asserting 0 tracebacks and every run under 10 s and 500 MB (issue 8).
`bench/fuzz.py` prints the same figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.policy import PolicySet, load_policies
from reconciler.policy.schema import fast_validator, validator
from tests.policy.fuzz_corpus import HOSTILE_SCALARS, campaign, policy_sets, run_one

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml"))]
SEEDS += [p.read_text() for p in sorted((ROOT / "policies").rglob("*.yaml"))]
NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MB = 1 << 20
LIMIT_SECONDS, LIMIT_BYTES = 10.0, 500 * MB  # per run (issue 8 acceptance)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.sampled_from([2**31, -(2**31) - 1, 2**64, 10**400, -(10**400), 1e308, -1e308]),
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
        action = data.draw(st.sampled_from(["delete", "insert", "duplicate-line", "hostile-scalar"]))
        if action == "delete":
            text = text[:where] + text[where + data.draw(st.integers(1, 20)) :]
        elif action == "insert":
            text = text[:where] + data.draw(st.text(alphabet=" :-[]{}&*!|>'\"#\n\t,0a9", max_size=8)) + text[where:]
        elif action == "hostile-scalar":
            text = text[:where] + " " + data.draw(st.sampled_from(HOSTILE_SCALARS)) + text[where:]
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


SAMPLE_SEED = 20_261_202


def test_a_seeded_sample_of_the_corpus_gives_only_diagnostics() -> None:
    """80 mutated policy sets (a few seconds): no traceback, each run within 10 s and 500 MB."""
    failures, slowest, largest = [], 0.0, 0
    for item in policy_sets(SAMPLE_SEED, 80):
        outcome = run_one(item, measure_memory=True, time_limit=LIMIT_SECONDS)
        if outcome.failure:
            failures.append((item.name, item.mutations, outcome.failure))
        slowest, largest = max(slowest, outcome.seconds), max(largest, outcome.peak_bytes)
    assert not failures, failures[0]
    assert slowest < LIMIT_SECONDS and largest < LIMIT_BYTES, (slowest, largest)


def test_the_corpus_is_seeded_and_hostile() -> None:
    first, again = list(policy_sets(7, 30)), list(policy_sets(7, 30))
    assert [i.files for i in first] == [i.files for i in again]
    mutations = " ".join(m for item in policy_sets(7, 150) for m in item.mutations)
    for kind in ("alias-bomb", "hostile-value", "tag(", "deep(", "structural", "bad-bytes"):
        assert kind in mutations, kind


def test_a_small_campaign_reports_its_figures() -> None:
    figures = campaign(SAMPLE_SEED, 3)
    assert figures.inputs == 3 and figures.tracebacks == 0
    assert figures.slowest_seconds > 0 and figures.max_rss_bytes > 0


@pytest.mark.slow
def test_a_campaign_of_2000_mutated_policy_sets_has_no_traceback_within_10_s_and_500_mb() -> None:
    """In a worker process: every run's time is measured; memory is bounded for every run by the
    worker's high-water mark (ru_maxrss), and the address space is capped so a blow-up fails fast."""
    worker = [sys.executable, "-m", "tests.policy.fuzz_corpus", "--seed", "8", "--count", "2000",
              "--time-limit", str(LIMIT_SECONDS), "--address-space", "1536"]  # fmt: skip
    done = subprocess.run(worker, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["inputs"] == 2000
    assert figures["tracebacks"] == 0, figures["findings"][:2]
    assert figures["slowest_seconds"] < LIMIT_SECONDS, figures
    assert figures["max_rss_bytes"] < LIMIT_BYTES, figures
    assert figures["valid"] > 100 and figures["codes"] > 30  # the campaign reached deep into the loader
