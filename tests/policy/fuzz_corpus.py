"""The policy fuzz corpus: seeded, mutated policy sets, and one run of the loader over each.

Used by tests/policy/test_fuzz.py (a bounded sample in every `make check`, a 2,000-set campaign
marked slow) and by bench/fuzz.py (the figures: inputs tried, tracebacks, slowest run, largest
memory). A policy set is a few files taken from examples/, policies/ and tests/policy/broken/,
then mutated: text edits, hostile scalars (huge integers and floats, explicit tags, extreme
dates), alias bombs, deep nesting, bad bytes. `run_one` writes a set to a temporary directory,
loads it as `validate` and `plan` do, renders every diagnostic in the three output formats and,
when the set is valid, computes each station's expected composite and the OCPP JSON the reconciler
would send: an input that passes validation must not crash later either. Anything raised is a
finding (with its traceback); so is a diagnostic without a code, a message or a location line.

Everything is a function of the seed: `policy_sets(seed, n)` yields the same sets on every machine.
"""

from __future__ import annotations

import json
import random
import re
import resource
import signal
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from reconciler.cli.validate_cmd import render
from reconciler.core.composite import compute_composite
from reconciler.core.profiles import profile_to_ocpp
from reconciler.policy import load_policies

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)
HOSTILE_SCALARS = (
    "9" * 400,
    "-" + "9" * 400,
    "9" * 5000,
    "1.0e+308",
    "-1.0e+308",
    "1e400",
    "4.9e-324",
    ".nan",
    ".inf",
    "-.inf",
    "!!float abc",
    "!!float ''",
    "!!int x",
    "!!int ''",
    "!!bool maybe",
    "!!binary aGVsbG8=",
    "!!timestamp 2001-12-14",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!python/object:os.system ls",
    "2147483647",
    "2147483648",
    "-2147483649",
    "18446744073709551616",
    "0x7FFFFFFF",
    "0o777",
    "1_000_000",
    "18:00",
    "190:20:30",
    '"0001-01-01T00:00:00+01:00"',
    '"9999-12-31T23:59:59-01:00"',
    '"0001-01-01T00:00:00Z"',
    '"9999-12-31T23:59:59Z"',
    '"1970-01-01T00:00:00Z"',
    '"2024-02-30T00:00:00Z"',
    '"2024-01-01T00:00:00+25:00"',
    "0",
    "-1",
    "0.05",
    "1e-300",
    "true",
    "null",
    "~",
    "''",
    '"\\0\\x07\\u202e"',
    "*undefined_alias",
    "&anchor 5",
    "[]",
    "{}",
    "[[[[[[]]]]]]",
    "{a: {b: {c: {d: {}}}}}",
    '"' + "x" * 10_000 + '"',
    "|\n  a block\n  scalar",
    "? complex\n: key",
)
TAGS = ("!!float", "!!int", "!!str", "!!bool", "!!null", "!!map", "!!seq", "!custom")
JUNK = " :-[]{}&*!|>'\"#\n\t,0a9%@`?"
_VALUE = re.compile(r"(?m)(:\s+)([^\s{\[#][^\n#,}\]]*)")


@dataclass(frozen=True, slots=True)
class Input:
    """One mutated policy set: file name -> bytes, and what was done to it."""

    name: str
    files: dict[str, bytes]
    mutations: tuple[str, ...]


@dataclass(slots=True)
class Outcome:
    """What one run of the loader over an input did."""

    seconds: float
    peak_bytes: int
    ok: bool
    diagnostics: int
    failure: str | None = None  # a traceback or a broken diagnostic: a finding
    codes: set[str] = field(default_factory=set)


def seed_files() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(valid seeds from examples/ and policies/, broken seeds from tests/policy/broken/)."""
    found: list[list[tuple[str, str]]] = []
    for folders in ([ROOT / "examples", ROOT / "policies"], [ROOT / "tests" / "policy" / "broken"]):
        found.append([])
        for folder in folders:
            for path in sorted(folder.rglob("*.yaml")):
                text = path.read_text(encoding="utf-8", errors="replace")
                if len(text) < 20_000:
                    found[-1].append((path.name, text))
    return found[0], found[1]


# --- mutations ------------------------------------------------------------------------------------


def _text_edit(rng: random.Random, text: str) -> tuple[str, str]:
    where = rng.randrange(len(text) + 1)
    action = rng.choice(["delete", "insert", "duplicate-line", "swap-lines", "truncate"])
    if action == "delete":
        return text[:where] + text[where + rng.randint(1, 40) :], action
    if action == "insert":
        junk = "".join(rng.choice(JUNK) for _ in range(rng.randint(1, 8)))
        return text[:where] + junk + text[where:], action
    if action == "truncate":
        return text[:where], action
    lines = text.splitlines(keepends=True)
    if len(lines) < 2:
        return text, action
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    if action == "duplicate-line":
        lines.insert(i, lines[i])
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines), action


def _hostile_value(rng: random.Random, text: str) -> tuple[str, str]:
    matches = list(_VALUE.finditer(text))
    if not matches:
        return text, "hostile-value(none)"
    match = rng.choice(matches)
    value = rng.choice(HOSTILE_SCALARS)
    if "\n" in value:  # a block scalar or a complex key only parses on its own lines
        indent = " " * (len(match.group(0)) - len(match.group(0).lstrip()) + 2)
        value = value.replace("\n", "\n" + indent)
    return text[: match.start(2)] + value + text[match.end(2) :], f"hostile-value({value[:24]!r})"


def _tag(rng: random.Random, text: str) -> tuple[str, str]:
    matches = list(_VALUE.finditer(text))
    if not matches:
        return text, "tag(none)"
    match = rng.choice(matches)
    tag = rng.choice(TAGS)
    return text[: match.start(2)] + tag + " " + text[match.start(2) :], f"tag({tag})"


def _alias_bomb(rng: random.Random, text: str) -> tuple[str, str]:
    width, depth = rng.randint(2, 12), rng.randint(3, 12)
    lines = ['    l0: &l0 ["lol"' + ', "lol"' * (width - 1) + "]"]
    for level in range(1, depth):
        lines.append(f"    l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    bomb = "\n".join(lines)
    document = (
        "---\napiVersion: reconciler/v1\nkind: Station\nmetadata: {name: BOMB-1}\n"
        f"spec:\n  connectors: 1\n  maxCurrentA: 16\n  configuration:\n{bomb}\n"
    )
    return (text + "\n" + document if rng.random() < 0.5 else document), f"alias-bomb({width}^{depth})"


def _deep(rng: random.Random, text: str) -> tuple[str, str]:
    depth = rng.choice([65, 200, 1000, 5000])
    flow = "[" * depth + "]" * depth if rng.random() < 0.5 else "{a: " * depth + "1" + "}" * depth
    matches = list(_VALUE.finditer(text))
    if not matches:
        return text + "\n---\n" + flow + "\n", f"deep({depth})"
    match = rng.choice(matches)
    return text[: match.start(2)] + flow + text[match.end(2) :], f"deep({depth})"


def _structural(rng: random.Random, text: str) -> tuple[str, str]:
    try:  # the generator's own parse of a possibly broken seed: PyYAML may raise anything
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except Exception:
        return text, "structural(unparsable)"
    if not documents:
        return text, "structural(empty)"
    hostile: list[object] = [
        10**400, -(10**400), 2**64, 2**31, 1e308, -1e308, float("nan"), float("inf"), "", "x" * 300,
        [], {}, None, True, [[[]]], {"": None}, "2024-01-01T00:00:00+01:00", -1, 0, 0.05,
    ]  # fmt: skip
    for _ in range(rng.randint(1, 3)):
        doc = rng.choice(documents)
        paths = _paths(doc)
        path = rng.choice(paths)
        if not path:
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[path[-1]]
        else:
            parent[path[-1]] = rng.choice(hostile)
    try:  # e.g. a recursive structure PyYAML cannot dump
        return yaml.safe_dump_all(documents, allow_unicode=True), "structural"
    except Exception:
        return text, "structural(undumpable)"


def _paths(node: object, limit: int = 5_000) -> list[tuple[object, ...]]:
    """Paths to the nodes of a parsed document, at most `limit` (an alias bomb has billions)."""
    out: list[tuple[object, ...]] = []
    stack: list[tuple[object, tuple[object, ...]]] = [(node, ())]
    while stack and len(out) < limit:
        value, prefix = stack.pop()
        out.append(prefix)
        if isinstance(value, dict):
            stack.extend((v, (*prefix, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*prefix, i)) for i, v in enumerate(value))
    return out


MUTATIONS = (_text_edit, _hostile_value, _hostile_value, _tag, _structural, _structural, _deep, _alias_bomb)


def _bytes(rng: random.Random, text: str) -> tuple[bytes, str | None]:
    data = text.encode("utf-8")
    roll = rng.random()
    if roll < 0.03:
        return b"\xef\xbb\xbf" + data, "bom"
    if roll < 0.06:
        where = rng.randrange(len(data) + 1)
        return data[:where] + rng.choice([b"\xff\xfe", b"\x00", b"\xc3\x28", b"\r"]) + data[where:], "bad-bytes"
    return data, None


def policy_sets(seed: int, count: int) -> Iterator[Input]:
    """`count` mutated policy sets, the same for the same seed."""
    rng = random.Random(seed)
    valid, broken = seed_files()
    for n in range(count):
        chosen = rng.sample(valid, rng.randint(1, 4))
        if rng.random() < 0.25:
            chosen.append(rng.choice(broken))
        texts = {f"{i}-{name}": text for i, (name, text) in enumerate(chosen)}
        done: list[str] = []
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):  # some sets stay valid: the later stages run too
            target = rng.choice(list(texts))
            mutated, what = rng.choice(MUTATIONS)(rng, texts[target])
            texts[target] = mutated
            done.append(f"{target}:{what}")
        files = {}
        for name, text in texts.items():
            data, what = _bytes(rng, text)
            files[name] = data
            if what:
                done.append(f"{name}:{what}")
        yield Input(f"seed{seed}-{n:05d}", files, tuple(done))


# --- one run --------------------------------------------------------------------------------------


def _exercise(folder: Path, outcome: Outcome) -> None:
    policies = load_policies([folder], now=NOW)
    outcome.ok = policies.ok
    outcome.diagnostics = len(policies.diagnostics)
    for diagnostic in policies.diagnostics:
        outcome.codes.add(diagnostic.code)
        location = diagnostic.location
        if not diagnostic.code or not diagnostic.message or location is None or location.line < 1:
            raise AssertionError(f"a diagnostic without code, message or location: {diagnostic}")
        if diagnostic.code == "internal-error":
            raise AssertionError(f"the loader failed inside: {diagnostic.format_text()}")
        if len(diagnostic.format_text()) > 2_000:
            raise AssertionError(f"a diagnostic echoes too much: {diagnostic.format_text()[:200]}...")
    sink = _Sink()
    for fmt in ("text", "json", "github"):
        render(policies, fmt, sink)
    if not policies.ok:
        return
    for state in policies.desired.values():
        station = state.station
        for profile in state.profiles:
            json.dumps(profile_to_ocpp(profile.profile), allow_nan=False)
        for connector in range(station.connectors + 1):
            compute_composite(
                state.installed().pairs(), connector_id=connector, now=NOW, duration=86_400, unit=None,
                context=station.context,
            )  # fmt: skip


class _Sink:
    def write(self, text: str) -> int:
        return len(text)


class RunTooLong(Exception):
    """Raised inside a run that exceeds its time limit (SIGALRM; main thread only)."""


def _alarm(signum: int, frame: object) -> None:
    raise RunTooLong(f"the run took more than its time limit (signal {signum})")


def run_one(item: Input, *, measure_memory: bool = True, time_limit: float | None = None) -> Outcome:
    """Load one policy set as `validate`/`plan` would; never raises. With `time_limit` (seconds)
    a run that hangs is stopped and reported as a failure instead of blocking the campaign."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        folder = Path(tmp)
        for name, data in item.files.items():
            (folder / name).write_bytes(data)
        outcome = Outcome(0.0, 0, False, 0)
        if measure_memory:
            tracemalloc.start()
        if time_limit is not None:
            previous = signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, time_limit)
        started = time.perf_counter()
        try:
            _exercise(folder, outcome)
        except Exception:
            outcome.failure = traceback.format_exc(limit=12)
        finally:
            outcome.seconds = time.perf_counter() - started
            if time_limit is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
            if measure_memory:
                outcome.peak_bytes = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
        return outcome


# --- a campaign -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Figures:
    """What a campaign found: the figures bench/fuzz.py prints and the slow test asserts on."""

    seed: int
    inputs: int = 0
    valid: int = 0
    tracebacks: int = 0
    slowest_seconds: float = 0.0
    slowest_input: str = ""
    largest_traced_bytes: int | None = None  # per run, tracemalloc peak (with measure_memory)
    largest_input: str = ""
    max_rss_bytes: int = 0  # the process's high-water mark: an upper bound of every run's memory
    seconds: float = 0.0
    codes: int = 0
    findings: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


def campaign(seed: int, count: int, *, measure_memory: bool = False, time_limit: float = 60.0) -> Figures:
    """Run `count` mutated policy sets from `seed`; the first 10 findings are kept in full."""
    figures = Figures(seed)
    codes: set[str] = set()
    valid, _ = seed_files()  # warm up (schema compilation, imports) so run 1 is measured like the rest
    run_one(Input("warm-up", {name: text.encode() for name, text in valid[:2]}, ()), measure_memory=False)
    started = time.perf_counter()
    for item in policy_sets(seed, count):
        outcome = run_one(item, measure_memory=measure_memory, time_limit=time_limit)
        figures.inputs += 1
        figures.valid += outcome.ok
        codes |= outcome.codes
        if outcome.seconds > figures.slowest_seconds:
            figures.slowest_seconds, figures.slowest_input = outcome.seconds, item.name
        if measure_memory and outcome.peak_bytes > (figures.largest_traced_bytes or 0):
            figures.largest_traced_bytes, figures.largest_input = outcome.peak_bytes, item.name
        if outcome.failure is not None:
            figures.tracebacks += 1
            if len(figures.findings) < 10:
                figures.findings.append({"input": item.name, "mutations": list(item.mutations),
                                         "traceback": outcome.failure})  # fmt: skip
    figures.seconds = time.perf_counter() - started
    figures.codes = len(codes)
    figures.max_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return figures


def main(argv: list[str] | None = None) -> None:
    """`python -m tests.policy.fuzz_corpus --seed S --count N [--memory] [--address-space MB]`: one
    campaign in this process, its figures as JSON on stdout. Used as a worker by the slow test and
    bench/fuzz.py, so that runaway memory stops at the address-space limit instead of the machine."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--memory", action="store_true", help="measure each run's peak with tracemalloc (slower)")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds before a run counts as hung")
    parser.add_argument("--address-space", type=int, default=2048, help="MB of address space for this process")
    args = parser.parse_args(argv)
    limit = args.address_space << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    figures = campaign(args.seed, args.count, measure_memory=args.memory, time_limit=args.time_limit)
    print(json.dumps(figures.to_json()))


if __name__ == "__main__":
    main()
