"""OCPP 1.6 JSON-schema validation for the Central System's messages, compiled once per action.

Flow: `central_system` validates every request it sends (before sending: a bad payload is the
reconciler's bug, refused locally) and every Call and CallResult a charger sends, with the
official schemas shipped in the `ocpp` package (its directory is passed in, so only
`central_system` imports `ocpp`). Validators are compiled once per message type; a valid
outgoing request is remembered by its JSON text, so a profile sent to a thousand stations is
checked once. The `multipleOf: 0.1` keyword is left out: with floats it rejects e.g. 34.8
(34.8 / 0.1 is not an integer in binary floating point); limits are rounded by chargers and
compared with a tolerance by the reconciler instead.

Speed: each schema is also compiled to Python by fastjsonschema (an order of magnitude faster);
a payload it accepts is valid, and one it rejects goes through jsonschema, which says what is wrong
and where. A schema fastjsonschema cannot compile is checked by jsonschema alone.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema

# jsonschema ships without inline types; only Draft4Validator is used (format checks stay off).
Draft4Validator: Any = importlib.import_module("jsonschema").Draft4Validator


class _Checker:
    """A compiled fast pass in front of the jsonschema validator."""

    __slots__ = ("fast", "full")

    def __init__(self, schema: dict[str, Any]) -> None:
        self.full = Draft4Validator(schema)
        try:
            self.fast: Callable[[Any], Any] | None = fastjsonschema.compile(schema)
        except fastjsonschema.JsonSchemaDefinitionException:
            self.fast = None

    def is_valid(self, payload: Any) -> bool:
        if self.fast is not None:
            try:
                self.fast(payload)
                return True
            except fastjsonschema.JsonSchemaValueException:
                pass
        return bool(self.full.is_valid(payload))

    def iter_errors(self, payload: Any) -> Any:
        return self.full.iter_errors(payload)


def _without_multiple_of(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_multiple_of(v) for k, v in node.items() if k != "multipleOf"}
    if isinstance(node, list):
        return [_without_multiple_of(v) for v in node]
    return node


class SchemaValidators:
    """OCPP 1.6 JSON-schema validators, compiled once per (action, request|response)."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._cache: dict[str, Any] = {}
        self._valid: set[str] = set()

    def _validator(self, name: str) -> Any:
        if name not in self._cache:
            path = self._dir / f"{name}.json"
            if not path.is_file():
                self._cache[name] = None
            else:
                schema = json.loads(path.read_text(encoding="utf-8-sig"))
                self._cache[name] = _Checker(_without_multiple_of(schema))
        return self._cache[name]

    def request_problem(self, action: str, payload: Any, body: str) -> str | None:
        """Like `problem` for an outgoing request whose JSON text is `body`. Valid requests are
        remembered by their text: a fleet receives the same profile many times, validated once."""
        key = action + body
        if key in self._valid:
            return None
        problem = self.problem(action, payload, response=False)
        if problem is None:
            if len(self._valid) >= 4096:
                self._valid.clear()
            self._valid.add(key)
        return problem

    def problem(self, action: str, payload: Any, *, response: bool) -> str | None:
        """None when `payload` fits the schema, else what is wrong and where."""
        validator = self._validator(f"{action}Response" if response else action)
        if validator is None:
            return None if response else f"unknown OCPP 1.6 action {action!r}"
        if validator.is_valid(payload):
            return None
        error = next(iter(validator.iter_errors(payload)))
        where = "/".join(str(p) for p in error.absolute_path) or "payload"
        return f"{where}: {error.message}"
