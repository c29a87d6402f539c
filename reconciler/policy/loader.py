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
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from reconciler.policy.diagnostics import Collector, Location, sort_key
from reconciler.policy.documents import build_model, build_policy, build_site, build_station_spec
from reconciler.policy.files import SUFFIXES as SUFFIXES  # re-exported: the daemon watches these
from reconciler.policy.files import display, find_files
from reconciler.policy.model import PolicySet
from reconciler.policy.resolve import Parsed, resolve
from reconciler.policy.schema import KINDS, check_document, readable_part
from reconciler.policy.source import Document, read_file


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
        display_name = display(path)
        file_diagnostics = Collector()
        documents = read_file(path, display_name, file_diagnostics)
        if documents and not any(_is_ours(d) for d in documents) and not file_diagnostics.items:
            skipped.append(display_name)
            continue
        loaded.append(display_name)
        diagnostics.extend(file_diagnostics.items)
        for doc in documents:
            try:
                _collect(doc, parsed, diagnostics)
            except Exception as exc:  # a bug of ours, not of the input; still no traceback for the user
                _internal_error(diagnostics, doc.at(()), exc)
    try:
        stations, desired, models = resolve(parsed, now, diagnostics)
    except Exception as exc:  # ditto: with an error diagnostic nothing is planned or applied
        _internal_error(diagnostics, None, exc)
        stations, desired, models = {}, {}, ()
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
