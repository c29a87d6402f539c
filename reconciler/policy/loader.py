"""`load_policies`: the policy directory in, a `PolicySet` out. The entry point of the policy room.

Runs the whole flow: find the YAML files (any layout; `.yaml` and `.yml`, hidden files and folders
skipped) -> read them with locations (`source`) -> check each document against the JSON Schema
(`schema`) -> build typed specs (`documents`) -> resolve each station's desired state and run the
semantic checks (`resolve`, `checks`). Every problem becomes a diagnostic; nothing raises for bad
input. A YAML file none of whose documents has a reconciler `apiVersion` or `kind` (a CI workflow,
a pre-commit config) is skipped and listed in `PolicySet.skipped`.

`now` is a parameter (templates anchor on it and "never active in the coming 7 days" counts from
it); the CLI passes `reconciler.clock.now()`. The git revision of the policy directory is read
with `git` and fails soft to None.

A long-lived caller (the watch daemon, reloading on every save) passes a `FileCache`: a file whose
bytes did not change is not parsed, schema-checked or built again; its documents, typed specs and
diagnostics are reused (they depend on the file alone). Resolution and the semantic checks always
run over the whole set, so the result is the same as a cold load.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reconciler.policy.diagnostics import Collector, Diagnostic, Location, sort_key
from reconciler.policy.documents import (
    ModelSpec,
    StationSpec,
    build_model,
    build_policy,
    build_site,
    build_station,
    build_station_spec,
)
from reconciler.policy.model import PolicySet, Station
from reconciler.policy.resolve import Parsed, resolve
from reconciler.policy.schema import KINDS, check_document
from reconciler.policy.source import Document, parse_bytes

SUFFIXES = (".yaml", ".yml")


def _display(path: Path) -> str:
    """Paths as the user would type them: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def find_files(paths: Sequence[str | Path], diagnostics: Collector) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                diagnostics.warning(
                    "no-policy-files", Location(str(path), 1, 1), "no .yaml or .yml files here", "check the path"
                )
            found.extend(files)
        else:
            diagnostics.error(
                "path-not-found", Location(str(path), 1, 1), "no such file or directory", "check the path and spelling"
            )
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def _is_ours(doc: Document) -> bool:
    data = doc.data
    if not isinstance(data, dict):
        return False
    version = data.get("apiVersion")
    return (isinstance(version, str) and version.startswith("reconciler")) or data.get("kind") in KINDS


def revision(paths: Sequence[str | Path]) -> str | None:
    """Short git HEAD of the first path's repository, `+dirty` when it has uncommitted changes there."""
    if not paths:
        return None
    first = Path(paths[0])
    where = first if first.is_dir() else first.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not head:
        return None
    return head + ("+dirty" if status else "")


@dataclass(frozen=True, slots=True)
class _FileResult:
    """What one file contributes, whatever the other files say."""

    ours: bool  # False: a YAML file with no reconciler document (skipped)
    diagnostics: tuple[Diagnostic, ...]
    parsed: Parsed


class FileCache:
    """Per-file results of the last load, keyed by path, display name and a digest of the bytes; and
    the `Station` built of each (spec, model) pair, while both come unchanged from the cache."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[str, bytes, _FileResult]] = {}
        self._stations: dict[tuple[int, int], tuple[StationSpec, ModelSpec | None, Station, tuple[Diagnostic, ...]]]
        self._stations = {}
        self._used: set[tuple[int, int]] = set()
        self.parsed_files = 0  # files parsed by the last load (the others came from the cache)

    def station(self, spec: StationSpec, model: ModelSpec | None, diagnostics: Collector) -> Station:
        """`build_station`, reusing the result for the very same (cached) spec and model objects."""
        key = (id(spec), id(model))
        self._used.add(key)
        known = self._stations.get(key)
        if known is not None and known[0] is spec and known[1] is model:
            diagnostics.extend(known[3])
            return known[2]
        local = Collector()
        built = build_station(spec, model, local)
        diagnostics.extend(local.items)
        self._stations[key] = (spec, model, built, tuple(local.items))
        return built

    def result(self, path: Path, display: str) -> _FileResult:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self._files.pop(path, None)
            diagnostics = Collector()
            diagnostics.error("unreadable-file", Location(display, 1, 1), f"cannot read the file: {exc.strerror}")
            return _FileResult(True, tuple(diagnostics.items), Parsed())
        digest = hashlib.blake2b(raw, digest_size=20).digest()
        known = self._files.get(path)
        if known is not None and known[0] == display and known[1] == digest:
            return known[2]
        result = _read(raw, display)
        self._files[path] = (display, digest, result)
        self.parsed_files += 1
        return result

    def keep_only(self, paths: Sequence[Path]) -> None:
        """Forget the files not loaded this time, and the stations not built this time."""
        for gone in set(self._files) - set(paths):
            del self._files[gone]
        for key in set(self._stations) - self._used:
            del self._stations[key]
        self._used = set()


def _read(raw: bytes, display: str) -> _FileResult:
    diagnostics = Collector()
    documents = parse_bytes(raw, display, diagnostics)
    if documents and not any(_is_ours(d) for d in documents) and not diagnostics.items:
        return _FileResult(False, (), Parsed())
    parsed = Parsed()
    for doc in documents:
        _collect(doc, parsed, diagnostics)
    return _FileResult(True, tuple(diagnostics.items), parsed)


def load_policies(
    paths: Sequence[str | Path], *, now: datetime, strict: bool = False, cache: FileCache | None = None
) -> PolicySet:
    """Load, validate and resolve policy files and directories. Never raises for bad input."""
    diagnostics = Collector()
    files = find_files(paths, diagnostics)
    cache = cache or FileCache()
    cache.parsed_files = 0
    parsed = Parsed()
    loaded: list[str] = []
    skipped: list[str] = []
    for path in files:
        display = _display(path)
        result = cache.result(path, display)
        if not result.ours:
            skipped.append(display)
            continue
        loaded.append(display)
        diagnostics.extend(result.diagnostics)
        parsed.stations.extend(result.parsed.stations)
        parsed.models.extend(result.parsed.models)
        parsed.sites.extend(result.parsed.sites)
        parsed.policies.extend(result.parsed.policies)
    stations, desired = resolve(parsed, now, diagnostics, build=cache.station)
    cache.keep_only(files)
    items = sorted(diagnostics.items, key=sort_key)
    if strict:
        items = [d.as_error() for d in items]
    return PolicySet(
        stations=stations,
        desired=desired,
        diagnostics=tuple(items),
        revision=revision(paths),
        files=tuple(loaded),
        skipped=tuple(skipped),
    )


def _collect(doc: Document, parsed: Parsed, diagnostics: Collector) -> None:
    if not isinstance(doc.data, dict):
        diagnostics.error(
            "not-a-document",
            doc.at(()),
            f"document {doc.index + 1} is a {type(doc.data).__name__}, not a mapping",
            "a document is a mapping with apiVersion, kind, metadata and spec",
        )
        return
    if not check_document(doc, diagnostics):
        return
    kind = doc.data["kind"]
    name = str(doc.data["metadata"]["name"])
    if kind == "Station":
        parsed.stations.append(build_station_spec(doc, name))
    elif kind == "ChargerModel":
        parsed.models.append(build_model(doc, name))
    elif kind == "Site":
        parsed.sites.append(build_site(doc, name))
    elif kind == "ChargingPolicy":
        parsed.policies.append(build_policy(doc, name, diagnostics))
