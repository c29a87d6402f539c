"""The core is pure: no I/O modules, no wire libraries, no clock reads (STYLE.md rule 1).

import-linter enforces the import graph in `make lint`; this test also catches what it cannot see:
stdlib modules it treats as external, and clock reads anywhere outside reconciler/clock.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "reconciler"
FORBIDDEN_IN_CORE = {
    "asyncio", "socket", "sqlite3", "yaml", "ocpp", "websockets", "http", "urllib", "json", "typer",
    "subprocess", "threading", "time", "os", "random", "reconciler.clock",
}  # fmt: skip
CLOCK_READ = re.compile(r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time)\s*\(")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_core_imports_nothing_impure():
    offenders = []
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        for name in imported_modules(path):
            if name in FORBIDDEN_IN_CORE or name.split(".")[0] in FORBIDDEN_IN_CORE:
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
            if name.startswith("reconciler.") and not name.startswith("reconciler.core"):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert offenders == []


def test_only_the_clock_module_reads_the_clock():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "clock.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if CLOCK_READ.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []
