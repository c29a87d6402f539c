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
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from reconciler.policy.diagnostics import Collector, Location, sort_key
from reconciler.policy.documents import build_model, build_policy, build_site, build_station_spec
from reconciler.policy.model import PolicySet
from reconciler.policy.resolve import Parsed, resolve
from reconciler.policy.schema import KINDS, check_document, readable_part
from reconciler.policy.source import Document, read_file

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


def load_policies(paths: Sequence[str | Path], *, now: datetime, strict: bool = False) -> PolicySet:
    """Load, validate and resolve policy files and directories. Never raises for bad input."""
    diagnostics = Collector()
    files = find_files(paths, diagnostics)
    parsed = Parsed()
    loaded: list[str] = []
    skipped: list[str] = []
    for path in files:
        display = _display(path)
        file_diagnostics = Collector()
        documents = read_file(path, display, file_diagnostics)
        if documents and not any(_is_ours(d) for d in documents) and not file_diagnostics.items:
            skipped.append(display)
            continue
        loaded.append(display)
        diagnostics.extend(file_diagnostics.items)
        for doc in documents:
            _collect(doc, parsed, diagnostics)
    stations, desired, models = resolve(parsed, now, diagnostics)
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
