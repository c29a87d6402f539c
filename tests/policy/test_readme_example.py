"""The README's policy example validates as written (docs stay true)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_yaml_example_validates(tmp_path: Path):
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "the README shows a policy example"
    for i, block in enumerate(blocks):
        (tmp_path / f"readme-{i}.yaml").write_text(block)
    run = subprocess.run(
        [sys.executable, "-m", "reconciler.cli.main", "validate", str(tmp_path), "--strict"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
