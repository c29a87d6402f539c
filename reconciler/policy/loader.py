"""`load_policies`: the policy directory in, a `PolicySet` out. The entry point of the policy room.

Runs the whole flow: find the YAML files (`files`: any layout; `.yaml` and `.yml`, hidden files and
folders skipped; a path that cannot be read is an error, never skipped) -> read them with
locations (`source`) -> check each document against the JSON Schema (`schema`) -> build typed
specs (`documents`) -> resolve each station's desired state and run the semantic checks
(`resolve`, `checks`). Every problem becomes a diagnostic; nothing raises for bad input (a bug of
ours becomes an `internal-error` diagnostic, so even then nothing is applied). A YAML file none of
whose documents has a reconciler `apiVersion` or `kind` (a CI workflow, a pre-commit config) is
skipped and listed in `PolicySet.skipped`.

`now` is a parameter (templates anchor on it and "never active in the coming 7 days" counts from
it); the CLI passes `reconciler.clock.now()`. The git revision of the policy directory is read
with `git` and fails soft to None.

A long-lived caller (the watch daemon, reloading on every save) passes a `FileCache`: a file whose
bytes did not change is not parsed, schema-checked or built again; its documents, typed specs and
diagnostics are reused (they depend on the file alone), and so is the `Station` built of an
unchanged spec. Resolution and the semantic checks always run over the whole set, so the result is
the same as a cold load.
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
from reconciler.policy.files import SUFFIXES as SUFFIXES  # re-exported: the daemon watches these
from reconciler.policy.files import display, find_files
from reconciler.policy.model import PolicySet, Station
from reconciler.policy.resolve import Parsed, resolve
from reconciler.policy.schema import KINDS, check_document, readable_part
from reconciler.policy.source import Document, parse_bytes, read_bytes


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

    def result(self, path: Path, display_name: str) -> _FileResult:
        diagnostics = Collector()
        raw = read_bytes(path, display_name, diagnostics)
        if raw is None:  # unreadable, not a regular file, too large: said in the diagnostics, never cached
            self._files.pop(path, None)
            return _FileResult(True, tuple(diagnostics.items), Parsed())
        digest = hashlib.blake2b(raw, digest_size=20).digest()
        known = self._files.get(path)
        if known is not None and known[0] == display_name and known[1] == digest:
            return known[2]
        result = _read(raw, display_name)
        self._files[path] = (display_name, digest, result)
        self.parsed_files += 1
        return result

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

    def keep_only(self, paths: Sequence[Path]) -> None:
        """Forget the files not loaded this time, and the stations not built this time."""
        for gone in set(self._files) - set(paths):
            del self._files[gone]
        for key in set(self._stations) - self._used:
            del self._stations[key]
        self._used = set()


def _read(raw: bytes, display_name: str) -> _FileResult:
    diagnostics = Collector()
    documents = parse_bytes(raw, display_name, diagnostics)
    if documents and not any(_is_ours(d) for d in documents) and not diagnostics.items:
        return _FileResult(False, (), Parsed())
    parsed = Parsed()
    for doc in documents:
        try:
            _collect(doc, parsed, diagnostics)
        except Exception as exc:  # a bug of ours, not of the input; still no traceback for the user
            _internal_error(diagnostics, doc.at(()), exc)
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
        display_name = display(path)
        result = cache.result(path, display_name)
        if not result.ours:
            skipped.append(display_name)
            continue
        loaded.append(display_name)
        diagnostics.extend(result.diagnostics)
        parsed.stations.extend(result.parsed.stations)
        parsed.models.extend(result.parsed.models)
        parsed.sites.extend(result.parsed.sites)
        parsed.policies.extend(result.parsed.policies)
    try:
        stations, desired, models = resolve(parsed, now, diagnostics, build=cache.station)
    except Exception as exc:  # ditto: with an error diagnostic nothing is planned or applied
        _internal_error(diagnostics, None, exc)
        stations, desired, models = {}, {}, ()
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
        models=models,
    )


def _internal_error(diagnostics: Collector, where: Location | None, exc: Exception) -> None:
    detail = f"{type(exc).__name__}: {exc}"
    diagnostics.error(
        "internal-error",
        where,
        f"the policy loader failed on this input ({detail[:200]})",
        "please report this with the file; meanwhile nothing is planned or applied",
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
        readable = readable_part(doc)  # report its semantic errors too, where it can still be read
        if readable is None:
            return
        doc = readable
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
