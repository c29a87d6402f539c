"""The JSON Schema gate: each document is checked against `schemas/policy.schema.json`.

Second step of the policy flow (source -> schema -> documents -> resolve -> checks). The schema
file is the one source of truth: it ships inside the package (`reconciler/policy/schemas/`, so an
installed reconciler finds it), the repository's `schemas/policy.schema.json` is a link to it for
editors (yaml-language-server), and this module compiles that very file once and validates every
document with it. Each schema error becomes a `Diagnostic` at the file:line:col of the offending value (or
of the unknown key, or of the object missing a field), with a hint phrased for a person.

Speed: the same schema file is also compiled to Python by fastjsonschema (about 25x faster than
jsonschema). A document it accepts is valid; one it rejects goes through jsonschema, which names
every error. The fast pass may only be stricter, never looser: a property test checks it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
from jsonschema.exceptions import ValidationError

from reconciler.policy.diagnostics import Collector, shown
from reconciler.policy.source import Document

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"  # package data; schemas/ in the repo links here
SCHEMA_FILE = SCHEMA_DIR / "policy.schema.json"
API_VERSION = "reconciler/v1"
KINDS = ("Station", "ChargingPolicy", "Site", "ChargerModel")
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)  # OCPP 1.6 integers (ids, stack levels, periods)

_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
}


class SchemaMissing(RuntimeError):
    """The schema file is not where the package expects it (a broken installation, not bad input)."""


@cache
def load_schema(path: Path = SCHEMA_FILE) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaMissing(f"cannot read the policy schema {path}: {exc}") from exc
    return schema


@cache
def validator(path: Path = SCHEMA_FILE) -> jsonschema.protocols.Validator:
    """The compiled validator for the schema file (compiled once per process)."""
    schema = load_schema(path)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


@cache
def fast_validator(path: Path = SCHEMA_FILE) -> Callable[[Any], Any] | None:
    """The schema compiled by fastjsonschema, or None if it cannot compile it (then jsonschema alone)."""
    try:
        compiled: Callable[[Any], Any] = fastjsonschema.compile(load_schema(path))
        return compiled
    except Exception:  # an unsupported keyword: the slower validator still checks everything
        return None


def check_document(doc: Document, diagnostics: Collector, schema_path: Path = SCHEMA_FILE) -> bool:
    """Validate one document; report every schema error. True when it is valid."""
    fast = fast_validator(schema_path)
    if fast is not None:
        try:
            fast(doc.data)
            return True
        except Exception:  # JsonSchemaException, or anything odd: let jsonschema decide and explain
            pass
    errors = list(_leaf_errors(validator(schema_path).iter_errors(doc.data)))
    seen: set[tuple[str, tuple[str | int, ...], str]] = set()
    for error in errors:
        if error.instance is None and tuple(error.absolute_path) in doc.unreadable:
            continue  # its value could not be read: said once, where it was read ([yaml-bad-scalar])
        for path, code, message, hint in _explain(error):
            key = (code, path, message)
            if key in seen:
                continue
            seen.add(key)
            diagnostics.error(code, doc.at(path), message, hint)
    return not errors


def readable_part(doc: Document, schema_path: Path = SCHEMA_FILE) -> Document | None:
    """The document without what its schema errors point at, when that leaves a valid document:
    unknown fields are dropped, and an invalid entry of `spec.profiles` is left out. Its semantic
    checks then still run (next to the schema errors already reported, so nothing is applied);
    None when the errors are elsewhere (metadata, kind, a whole spec)."""
    data = copy.deepcopy(doc.data)
    drop_profiles: set[int] = set()
    for error in _leaf_errors(validator(schema_path).iter_errors(doc.data)):
        path = tuple(error.absolute_path)
        if len(path) >= 3 and path[:2] == ("spec", "profiles") and isinstance(path[2], int):
            drop_profiles.add(path[2])
        elif error.validator == "additionalProperties" and path[:1] == ("spec",):
            parent = _get(data, path)
            allowed = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
            if isinstance(parent, dict):
                for name in [k for k in parent if k not in allowed]:
                    del parent[name]
        else:
            return None
    if drop_profiles and isinstance(_get(data, ("spec", "profiles")), list):
        data["spec"]["profiles"] = [p for i, p in enumerate(data["spec"]["profiles"]) if i not in drop_profiles]
    if next(iter(validator(schema_path).iter_errors(data)), None) is not None:
        return None
    return Document(doc.file, doc.index, data, doc.locations, doc.unreadable)


def _get(data: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _leaf_errors(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        if error.context:  # anyOf / oneOf: report what each branch needs
            yield from _leaf_errors(iter(error.context))
        else:
            yield error


def _where(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def _article(kinds: Any) -> str:
    names = [kinds] if isinstance(kinds, str) else list(kinds)
    return " or ".join(_TYPE_NAMES.get(k, k) for k in names)


def _choices(values: Sequence[Any]) -> str:
    return ", ".join(json.dumps(v) if not isinstance(v, str) else v for v in values)


def _explain(error: ValidationError) -> Iterator[tuple[tuple[str | int, ...], str, str, str]]:
    """(path, code, message, hint) for one schema error; one error may name several fields."""
    path = tuple(error.absolute_path)
    where = _where(path)
    kind = error.validator
    value = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if kind == "required":
        present = value if isinstance(value, Mapping) else {}
        required: Any = error.validator_value
        for name in required:
            if name not in present:
                if not path and name == "apiVersion":
                    yield (
                        path,
                        "missing-api-version",
                        "the document has no apiVersion",
                        f"add `apiVersion: {API_VERSION}`",
                    )
                elif not path and name == "kind":
                    yield (
                        path,
                        "missing-kind",
                        "the document has no kind",
                        f"add `kind:` with one of {', '.join(KINDS)}",
                    )
                else:
                    yield path, "schema-required", f"{where} needs `{name}`", f"add `{name}:`"
    elif kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        present = value if isinstance(value, Mapping) else {}
        for name in present:
            if name not in schema.get("properties", {}):
                hint = f"remove it or fix the spelling; allowed here: {', '.join(allowed)}" if allowed else "remove it"
                yield (*path, name), "schema-unknown-field", f"unknown field `{name}` in {where}", hint
    elif kind == "type":
        yield (
            path,
            "schema-type",
            f"{where} is {shown(value)}; expected {_article(error.validator_value)}",
            _type_hint(error),
        )
    elif kind in ("enum", "const"):
        choices: Any = error.validator_value if kind == "enum" else [error.validator_value]
        if path == ("apiVersion",):
            yield (
                path,
                "unknown-api-version",
                f"apiVersion {shown(value)} is not supported",
                f"use `apiVersion: {API_VERSION}`",
            )
        elif path == ("kind",):
            yield (
                path,
                "unknown-kind",
                f"kind {shown(value)} is not a policy document kind",
                f"use one of {', '.join(KINDS)}",
            )
        else:
            yield path, "schema-enum", f"{where} is {shown(value)}", f"use one of: {_choices(choices)}"
    elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = error.validator_value
        relation = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        hint = f"use a value {relation} {bound:g}" if isinstance(bound, float) else f"use a value {relation} {bound}"
        if bound in (INT32_MAX, INT32_MIN):
            hint = f"OCPP 1.6 integers are 32-bit: {hint}"
        yield path, "schema-range", f"{where} is {shown(value)}, out of range", hint
    elif kind in ("minItems", "minProperties"):
        yield path, "schema-empty", f"{where} is empty", "add at least one entry"
    elif kind == "pattern":
        hint = schema.get("description") or "rename it"
        yield path, "schema-pattern", f"{where} {shown(value)} is not a valid name", hint
    elif kind == "uniqueItems":
        yield path, "schema-duplicate-item", f"{where} lists the same value twice", "list each value once"
    else:
        yield path, f"schema-{kind}", f"{where}: {error.message}", "see schemas/policy.schema.json"


def _type_hint(error: ValidationError) -> str:
    want = error.validator_value
    value = error.instance
    if isinstance(value, str) and want in ("integer", "number"):
        clock_time = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(:\d{2})?\s*", value)
        if clock_time and want == "integer":
            return f"write the hour as a whole number, e.g. {int(clock_time.group(1))} for {value.strip()}"
        try:
            float(value)
        except ValueError:
            return f"use {_article(want)}"
        return "write the number without quotes"
    if want == "string" and isinstance(value, int | float | bool):
        if isinstance(value, bool):
            return 'quote it: "true" / "false"'
        return f'quote it: "{value}"' if shown(value) == repr(value) else "quote it"
    if want == "integer" and isinstance(value, float):
        return "use a whole number"
    return f"use {_article(want)}"
