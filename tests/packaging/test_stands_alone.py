"""The repository stands alone (issue 12 item 8): the documents a user reads (README, docs/, the
JSON Schema an editor shows, the ChargerModel library, examples/) name no document that is not in
the repository (the design notes it was built from live outside it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USER_FACING = ["README.md", "docs/*.md", "schemas/*.json", "reconciler/policy/schemas/*.json",
               "reconciler/policy/models/*.yaml", "examples/**/*"]  # fmt: skip
DOCUMENT = re.compile(r"[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b")


def test_user_facing_files_name_only_documents_that_are_in_the_repository() -> None:
    missing = []
    for pattern in USER_FACING:
        for path in sorted(ROOT.glob(pattern)):
            if not path.is_file():
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                for name in DOCUMENT.findall(line):
                    if not (ROOT / name).is_file() and not (path.parent / name).is_file():
                        missing.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    assert not missing, "\n".join(missing)
