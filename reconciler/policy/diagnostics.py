"""Diagnostics: what `validate` reports, and the one shape every stage of the policy loader emits.

The flow is YAML text -> nodes with locations (`source`) -> JSON Schema (`schema`) -> typed
documents (`documents`) -> desired state per station (`resolve`) -> semantic checks (`checks`).
Every stage collects `Diagnostic`s instead of raising, so one run reports everything at once.
A diagnostic says what is wrong (`message`), where (`location`, 1-based file:line:col), how to fix
it (`hint`) and which rule fired (`code`, stable, e.g. `duplicate-profile-id`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a policy file; line and column are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    location: Location | None
    message: str
    hint: str | None
    code: str

    def format_text(self) -> str:
        """`file:line:col: error: message. hint.` (the form editors and CI logs understand)."""
        where = f"{self.location}: " if self.location is not None else ""
        text = f"{where}{self.severity}: {_sentence(self.message)}"
        if self.hint:
            text += f" {_sentence(self.hint)}"
        return text

    def to_json(self) -> dict[str, Any]:
        loc = self.location
        return {
            "severity": self.severity,
            "code": self.code,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "message": self.message,
            "hint": self.hint,
        }

    def format_github(self) -> str:
        """A GitHub Actions workflow command: `::error file=F,line=L,col=C,title=CODE::message. hint.`"""
        parts = []
        if self.location is not None:
            parts += [f"file={_property(self.location.file)}", f"line={self.location.line}",
                      f"col={self.location.column}"]  # fmt: skip
        parts.append(f"title={_property(self.code)}")
        body = _sentence(self.message) + (f" {_sentence(self.hint)}" if self.hint else "")
        body = body.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return f"::{self.severity} {','.join(parts)}::{body}"

    def as_error(self) -> Diagnostic:
        return self if self.severity == "error" else replace(self, severity="error")


def shown(value: Any) -> str:
    """A value as a message quotes it: a huge number or a long text is summarised, never echoed."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1:,} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + f"... ({len(text):,} characters)"


def _property(text: str) -> str:
    """A workflow-command property value, escaped as GitHub's toolkit does (`,` and `:` end a property)."""
    return (text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A")
            .replace(",", "%2C"))  # fmt: skip


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."


class Collector:
    """Gathers diagnostics in the order they are found; stages share one."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, code: str, location: Location | None, message: str, hint: str | None = None) -> None:
        self.items.append(Diagnostic("error", location, message, hint, code))

    def warning(self, code: str, location: Location | None, message: str, hint: str | None = None) -> None:
        self.items.append(Diagnostic("warning", location, message, hint, code))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)


def sort_key(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    loc = diagnostic.location
    return (loc.file, loc.line, loc.column, diagnostic.code) if loc else ("", 0, 0, diagnostic.code)


def summary(diagnostics: Iterable[Diagnostic], files: int) -> str:
    counts: Mapping[str, int] = {"error": 0, "warning": 0}
    counts = dict(counts)
    for d in diagnostics:
        counts[d.severity] += 1
    errors, warnings = counts["error"], counts["warning"]
    plural = "s" if files != 1 else ""
    return (
        f"{files} file{plural} checked: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
