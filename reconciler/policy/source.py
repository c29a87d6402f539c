"""Policy files -> plain documents that remember where every value came from.

First step of the policy flow (files -> source -> schema -> documents -> resolve -> checks). YAML
is composed into nodes (libyaml when available), then turned into plain dicts, lists and scalars
while recording the 1-based line and column of each value under its JSON path, e.g.
`("spec", "profiles", 0, "stackLevel")`. Later stages report problems at those places.

Deliberate departures from a plain `yaml.safe_load`:
- timestamps stay strings (OCPP fields are ISO 8601 strings; the profile parser reads them);
- `18:00` (YAML 1.1 base-60 integer) stays the string "18:00", so a mistake reads as one;
- mapping keys are their source text (`on:` is "on", not True);
- a key given twice in one mapping is an error (PyYAML silently keeps the last one);
- aliases are followed, within a budget: an alias cycle, or aliases that expand to more than
  ALIAS_BUDGET extra values in one file (a "billion laughs" bomb), is an error, never a hang;
- a scalar its explicit tag cannot hold (`!!float abc`, `!!float ''`, `!!int x`), an integer of
  thousands of digits and a float that overflows (`1e400`) are errors at their line;
- a file that is not a regular file or is larger than MAX_FILE_BYTES is not read.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.policy.diagnostics import Collector, Location

PathKey = tuple[str | int, ...]
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = yaml.constructor.SafeConstructor()
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
MAX_DEPTH = 64
MAX_FILE_BYTES = 8 << 20  # 8 MiB: a policy file is text a person writes
ALIAS_BUDGET = 10_000  # values aliases may add to one file; a YAML "billion laughs" needs millions
_INF_OR_NAN = re.compile(r"^[-+]?\.(inf|nan)$", re.IGNORECASE)


@dataclass(slots=True)
class Document:
    """One YAML document of a policy file, as plain data with a location for every node."""

    file: str
    index: int
    data: Any
    locations: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    unreadable: set[PathKey] = field(default_factory=set)  # bad scalars, reported and left as None

    def at(self, path: Sequence[str | int]) -> Location:
        """The location of `path`, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key not in self.locations and key:
            key = key[:-1]
        line, column = self.locations.get(key, (1, 1))
        return Location(self.file, line, column)

    def get(self, *path: str | int) -> Any:
        value = self.data
        for part in path:
            if isinstance(part, int):
                if not isinstance(value, list) or not -len(value) <= part < len(value):
                    return None
                value = value[part]
            else:
                if not isinstance(value, dict):
                    return None
                value = value.get(part)
        return value


class _OverBudget(Exception):
    def __init__(self, path: PathKey) -> None:
        super().__init__("alias expansion budget exceeded")
        self.path = path


class _BadScalar(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class _Expansion:
    """What one file's aliases may still add: nodes converted more than once count against it."""

    def __init__(self) -> None:
        # by id, holding the node: a node of an earlier document that was freed could pass its id on to
        # a new one, which would then count as an alias (a false "alias bomb" in a file of many documents)
        self.seen: dict[int, yaml.Node] = {}
        self.remaining = ALIAS_BUDGET
        # every document's locations are keyed by JSON paths, and the documents of one file repeat the
        # same paths (10,000 Station documents: ("metadata", "name") 10,000 times): one tuple per path
        self.paths: dict[PathKey, PathKey] = {}

    def path(self, key: PathKey) -> PathKey:
        return self.paths.setdefault(key, key)


class _Converter:
    def __init__(self, doc: Document, diagnostics: Collector, expansion: _Expansion) -> None:
        self.doc = doc
        self.diagnostics = diagnostics
        self.expansion = expansion
        self.active: set[int] = set()

    def _mark(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _error(self, node: yaml.Node, code: str, message: str, hint: str) -> None:
        line, column = self._mark(node)
        self.diagnostics.error(code, Location(self.doc.file, line, column), message, hint)

    def _count(self, node: yaml.Node, path: PathKey) -> None:
        expansion = self.expansion
        if id(node) not in expansion.seen:
            expansion.seen[id(node)] = node
            return
        expansion.remaining -= 1
        if expansion.remaining < 0:
            raise _OverBudget(path)

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        self._count(node, path)
        if isinstance(node, yaml.ScalarNode):
            try:
                return _scalar(node)
            except _BadScalar as exc:
                self._error(node, "yaml-bad-scalar", exc.message, exc.hint)
                self.doc.unreadable.add(path)
                return None
        if id(node) in self.active or len(path) > MAX_DEPTH:
            self._error(node, "yaml-recursive", "this alias refers to itself (or nests too deep)", "expand it by hand")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                items = []
                for i, item in enumerate(node.value):
                    at = self.expansion.path((*path, i))
                    self.doc.locations[at] = self._mark(item)
                    items.append(self.convert(item, at))
                return items
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return None  # pragma: no cover - the composer makes only the three node kinds
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._error(key_node, "yaml-complex-key", "a mapping key must be a plain name", "write key: value")
                continue
            key = str(key_node.value)
            if key in out:
                first = self.doc.locations.get((*path, key), (0, 0))
                self._error(
                    key_node,
                    "duplicate-key",
                    f"key {_brief(key)} appears twice in this mapping (first at line {first[0]})",
                    "keep one of them; YAML would silently use the last",
                )
                continue
            at = self.expansion.path((*path, key))
            self.doc.locations[at] = self._mark(key_node)
            out[key] = self.convert(value_node, at)
        return out


def _brief(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:30]) + f"... ({len(text):,} characters)"


def _scalar(node: yaml.ScalarNode) -> Any:
    """The value of a scalar; `_BadScalar` when its tag (explicit, as `!!float abc`) cannot hold it."""
    tag = node.tag
    text = node.value
    if tag == _NULL:
        return None
    if tag == _BOOL:
        return text.lower() in ("true", "yes", "on", "y")
    if tag == _INT:
        if ":" in text:
            return text
        try:
            return _SCALARS.construct_yaml_int(node)
        except (ValueError, IndexError):  # IndexError: `!!int ''`
            digits = sum(c.isdigit() for c in text)
            if digits > 100:
                message, hint = f"an integer with {digits:,} digits is far out of range", "use a smaller number"
            else:
                message, hint = f"{_brief(text)} is not an integer", "write a whole number, or drop the !!int tag"
            raise _BadScalar(message, hint) from None
    if tag == _FLOAT:
        if ":" in text:
            return text
        try:
            value = _SCALARS.construct_yaml_float(node)
        except (ValueError, IndexError):
            raise _BadScalar(f"{_brief(text)} is not a number", "write a number such as 16 or 7.5") from None
        if math.isfinite(value):
            return value
        if _INF_OR_NAN.match(text):
            return text  # `.inf` / `.nan` stay text; a number field then says it wants a number
        raise _BadScalar(f"the number {_brief(text)} is out of range", "use a number below 1e300")
    return text


def read_file(path: Path, display: str, diagnostics: Collector) -> list[Document]:
    """Every non-empty document of one YAML file; problems go to `diagnostics`."""
    raw = read_bytes(path, display, diagnostics)
    return [] if raw is None else parse_bytes(raw, display, diagnostics)


def read_bytes(path: Path, display: str, diagnostics: Collector) -> bytes | None:
    """A policy file's bytes (a regular file, not too large), or None with the reason in `diagnostics`."""
    where = Location(display, 1, 1)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore the flag)
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                diagnostics.error("not-a-regular-file", where, "not a regular file; it was not read", "use a file")
                return None
            if info.st_size > MAX_FILE_BYTES:
                diagnostics.error(
                    "file-too-large",
                    where,
                    f"the file has {info.st_size:,} bytes, more than the {MAX_FILE_BYTES:,} a policy file may have",
                    "split it into several files",
                )
                return None
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        diagnostics.error(
            "unreadable-file",
            where,
            f"cannot read the file: {exc.strerror}",
            "make it readable (chmod u+r), or remove it; no policy is planned or applied until it can be read",
        )
        return None
    return raw


def parse_bytes(raw: bytes, display: str, diagnostics: Collector) -> list[Document]:
    """Every non-empty document of a file's content (UTF-8, an optional BOM)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        diagnostics.error("not-utf8", Location(display, line, 1), "the file is not UTF-8 text", "save it as UTF-8")
        return []
    return parse_text(text, display, diagnostics)


def parse_text(text: str, display: str, diagnostics: Collector) -> list[Document]:
    documents: list[Document] = []
    expansion = _Expansion()
    nodes = _compose_all(text)
    index = 0
    while True:
        try:
            node = next(nodes)
        except StopIteration:
            break
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            problem = exc.problem or exc.context or "invalid YAML"
            context = f" ({exc.context})" if exc.context and exc.problem else ""
            diagnostics.error(
                "yaml-syntax",
                Location(display, line, column),
                f"YAML syntax error: {problem}{context}",
                "check the indentation, quoting and the `key: value` spacing here",
            )
            break
        except yaml.YAMLError as exc:
            diagnostics.error("yaml-syntax", Location(display, 1, 1), f"YAML error: {exc}", "fix the YAML syntax")
            break
        if node is None:
            index += 1
            continue
        doc = Document(display, index, None, {(): (node.start_mark.line + 1, node.start_mark.column + 1)})
        try:
            doc.data = _Converter(doc, diagnostics, expansion).convert(node, ())
        except _OverBudget as exc:
            diagnostics.error(
                "yaml-alias-budget",
                doc.at(_up_to_key(exc.path)),
                f"the aliases here expand to more than {ALIAS_BUDGET:,} extra values (an alias bomb?); "
                "the file was not read further",
                "write the values out, or use fewer and smaller aliases",
            )
            break
        index += 1
        if doc.data is not None:
            documents.append(doc)
    return documents


def _up_to_key(path: PathKey) -> PathKey:
    """The path up to its last mapping key: where an alias is used (a list item's mark is the anchor's)."""
    for end in range(len(path), 0, -1):
        if isinstance(path[end - 1], str):
            return path[:end]
    return ()


def _compose_all(text: str) -> Iterator[yaml.Node | None]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()
