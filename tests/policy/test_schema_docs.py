"""The policy JSON Schema documents itself for editors (issue 12 item 11): a `$id`, a one-line
description on every property (an example where it helps), and `reconciler schema` prints it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from reconciler.policy.schema import SCHEMA_FILE, load_schema


def properties(node: Any, path: str = "", parent: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every declared property (not the `properties` of if/then/else, which test or narrow declared ones)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and parent not in ("if", "then", "else") and isinstance(value, dict):
                for name, prop in value.items():
                    yield f"{path}.{name}", prop
                    yield from properties(prop, f"{path}.{name}", name)
            else:
                yield from properties(value, f"{path}/{key}", key)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from properties(item, f"{path}[{i}]", parent)


def test_every_property_has_a_one_line_description():
    schema = load_schema()
    found = list(properties(schema))
    assert len(found) >= 80
    missing = [p for p, prop in found if not prop.get("description")]
    assert missing == []
    multi_line = [p for p, prop in found if "\n" in prop["description"] or len(prop["description"]) > 160]
    assert multi_line == []
    with_examples = [p for p, prop in found if prop.get("examples")]
    assert len(with_examples) >= 50


def test_the_schema_has_an_id_and_reconciler_schema_prints_it():
    schema = load_schema()
    assert schema["$id"].startswith("urn:ocpp-reconciler:policy")
    done = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "schema"], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert json.loads(done.stdout) == schema
    done = subprocess.run([sys.executable, "-m", "reconciler.cli.main", "schema", "--path"], capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == str(SCHEMA_FILE)
