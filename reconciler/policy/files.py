"""Policy paths -> the YAML files to read. A part of the policies that cannot be read is an error.

Step zero of the policy flow (files -> source -> schema -> documents -> resolve -> checks). The
paths given on the command line are files or directories; directories are walked (any layout,
`.yaml` and `.yml`, hidden entries skipped, symlinked directories followed, each real directory
read once). Nothing that might hold policies is skipped in silence: if it were, `plan` would see
its profiles as dropped and `apply` would clear them (DESIGN §6.2, all or nothing). So:

- a directory that cannot be listed (permissions) -> `unreadable-directory`;
- a symlink whose target is missing or loops, named `*.yaml`/`*.yml` or with no suffix at all
  (it may have been a directory) -> `broken-symlink`; one named e.g. `NOTES.txt` cannot hold
  policies and is left alone;
- a `*.yaml` that is not a regular file (a FIFO, a socket, a device) -> `not-a-regular-file`; it is
  never opened, so a FIFO cannot block the loader;
- any other entry that cannot be examined -> `unreadable-path`.

A file that exists but cannot be read is reported by `source.read_file` (`unreadable-file`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from reconciler.policy.diagnostics import Collector, Location

SUFFIXES = (".yaml", ".yml")
_DONT_SKIP = "no policy is planned or applied while a part of the policies cannot be read"
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def display(path: Path) -> str:
    """Paths as the user would type them: relative to the working directory when inside it."""
    try:
        return str(path.absolute().relative_to(Path.cwd().absolute()))
    except ValueError:
        return str(path)


class _Walk:
    def __init__(self, diagnostics: Collector) -> None:
        self.diagnostics = diagnostics
        self.found: list[Path] = []
        self.visited: set[tuple[int, int]] = set()

    def error(self, code: str, path: Path, message: str, hint: str) -> None:
        self.diagnostics.error(code, Location(display(path), 1, 1), message, hint)

    def unresolvable(self, path: Path, exc: OSError) -> None:
        if path.is_symlink():
            what = "a symlink loop" if exc.errno == errno.ELOOP else "a symbolic link to a missing target"
            self.error("broken-symlink", path, f"{what}; it may hold policies", f"fix or remove the link; {_DONT_SKIP}")
        else:
            self.error("unreadable-path", path, f"cannot examine it: {exc.strerror}", f"fix it; {_DONT_SKIP}")

    def file(self, path: Path, mode: int) -> None:
        if stat.S_ISREG(mode):
            self.found.append(path)
            return
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        self.error(
            "not-a-regular-file",
            path,
            f"{kind}, not a regular file; it was not read",
            "policies are plain files; rename it so it does not end in .yaml/.yml, or replace it with a file",
        )

    def directory(self, path: Path, info: os.stat_result) -> None:
        key = (info.st_dev, info.st_ino)
        if key in self.visited:
            return
        self.visited.add(key)
        try:
            with os.scandir(path) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            self.error(
                "unreadable-directory",
                path,
                f"cannot list the directory: {exc.strerror}",
                f"make it readable and searchable (chmod u+rx), or remove it; {_DONT_SKIP}",
            )
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = Path(entry.path)
            suffix = child.suffix
            try:
                child_info = child.stat()
            except OSError as exc:
                if suffix in SUFFIXES or not suffix:
                    self.unresolvable(child, exc)
                continue
            if stat.S_ISDIR(child_info.st_mode):
                self.directory(child, child_info)
            elif suffix in SUFFIXES:
                self.file(child, child_info.st_mode)


def find_files(paths: Sequence[str | Path], diagnostics: Collector) -> list[Path]:
    """The policy files under `paths`, each once, directories' files in name order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        walk = _Walk(diagnostics)
        before = len(diagnostics.items)
        try:
            info = path.stat()
        except OSError as exc:
            if path.is_symlink():
                walk.unresolvable(path, exc)
            elif exc.errno == errno.ENOENT:
                where = Location(str(path), 1, 1)
                diagnostics.error("path-not-found", where, "no such file or directory", "check the path and spelling")
            else:
                walk.error("unreadable-path", path, f"cannot examine it: {exc.strerror}", "check the permissions")
            continue
        if stat.S_ISDIR(info.st_mode):
            walk.directory(path, info)
            if not walk.found and len(diagnostics.items) == before:
                diagnostics.warning(
                    "no-policy-files", Location(str(path), 1, 1), "no .yaml or .yml files here", "check the path"
                )
            found.extend(sorted(walk.found))
        else:
            walk.file(path, info.st_mode)
            found.extend(walk.found)
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())
