"""The state lock: one writer per state file (apply, plan, the `watch` daemon, `state rm`).

Flow: a command that may write the state takes `StateLock(state_path)` before it opens the store
and keeps it until it exits; a second one waits up to its `--lock-timeout`, then stops with a
message naming the holder (pid, host, command, since when, lock id).

How it works: the lock is the file `<state>.lock` beside the state file. Its holder keeps an
exclusive `flock` on it and writes who it is into it as JSON. The kernel drops the `flock` when
the holder exits, however it exits (kill -9 too), so a lock whose holder died is never stuck: the
next taker finds the file unlocked, says it took over a stale lock, and writes itself in. When the
holder releases normally it removes the file. A taker checks, once it has the `flock`, that the
file it locked is still the one at the path (a releaser or `force-unlock` may have removed it
meanwhile), and tries again if not.

`force_unlock(state_path, lock_id)` removes the lock file of a holder that is stuck (a hung
process, a host that is gone but whose filesystem does not release locks): only when the id
matches the one the holder wrote, as Terraform's force-unlock. The stuck holder, should it come
back, never removes the new holder's file (it compares inodes first).

Pure standard library; nothing here reads the clock except through the `now` parameter.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from reconciler import clock
from reconciler.core.profiles import format_time


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds (or held) a state lock."""

    id: str
    pid: int
    host: str
    command: str
    since: str  # ISO 8601 UTC

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid} on {self.host}, since {self.since}, lock id {self.id})"

    def alive(self) -> bool | None:
        """Whether the holder process still runs: True/False on this host, None for another host."""
        if self.host != socket.gethostname():
            return None
        return pid_alive(self.pid)


class LockHeld(RuntimeError):
    """Another process holds the state lock; the message names it and says what to do."""

    def __init__(self, path: Path, holder: Holder | None, waited: float) -> None:
        self.path = path
        self.holder = holder
        who = holder.describe() if holder is not None else "another process (it has not written its name yet)"
        hint = "wait for it to finish, or pass --lock-timeout SECONDS to wait longer"
        if holder is not None and holder.alive() is False:
            hint = (f"that process is not running on this host any more; if nothing else uses {path}, "
                    f"run: reconciler force-unlock {holder.id} --db {path.with_suffix('')}")  # fmt: skip
        elif holder is not None:
            hint += f"; if it is stuck, stop it, or run: reconciler force-unlock {holder.id}"
        waited_text = f" (waited {waited:g} s)" if waited else ""
        super().__init__(f"the state is locked by {who}{waited_text}: {path}; {hint}")


class LockError(RuntimeError):
    """The lock file cannot be used at all (permissions, a directory in the way...)."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


def _parse(text: str) -> Holder | None:
    try:
        data = json.loads(text)
        return Holder(str(data["id"]), int(data["pid"]), str(data["host"]), str(data["command"]), str(data["since"]))
    except (ValueError, KeyError, TypeError):
        return None


def read_holder(state_path: Path) -> Holder | None:
    """Who is written in the lock file (None when there is none or it is empty)."""
    try:
        return _parse(lock_path(state_path).read_text(encoding="utf-8"))
    except OSError:
        return None


def _command() -> str:
    name = Path(sys.argv[0]).name if sys.argv else "python"
    verb = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    if name in ("__main__.py", "main.py"):
        name = "reconciler"
    return f"{name} {verb}".strip()


class StateLock:
    """Exclusive lock on a state file. `with StateLock(path, timeout=5): ...` or acquire()/release().

    `stale` is set after acquire() when a previous holder died without releasing (its `Holder`)."""

    def __init__(
        self, state_path: str | Path, *, command: str | None = None, now: Callable[[], datetime] = clock.now
    ) -> None:
        self.state_path = Path(state_path)
        self.path = lock_path(self.state_path)
        self.command = command or _command()
        self.now = now
        self.holder: Holder | None = None
        self.stale: Holder | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(
        self, timeout: float = 0.0, *, poll: float = 0.1, waiting: Callable[[Holder | None], None] | None = None
    ) -> Holder:
        """Take the lock, waiting up to `timeout` seconds; raise LockHeld naming the holder if it
        stays taken. `waiting` is called once, with the holder, when we start to wait."""
        if self._fd is not None:
            raise LockError(f"{self.path}: this process already holds the lock")
        started = clock.monotonic()
        told = False
        while True:
            holder = self._try()
            if holder is None:
                assert self.holder is not None
                return self.holder
            waited = clock.monotonic() - started
            if waited >= timeout:
                raise LockHeld(self.path, holder if holder.id else None, round(waited, 1))
            if waiting is not None and not told:
                waiting(holder if holder.id else None)
                told = True
            time.sleep(min(poll, max(0.0, timeout - waited)))

    def _try(self) -> Holder | None:
        """One attempt: None when we now hold the lock, else who holds it (id "" if unknown)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockError(f"{self.path}: cannot create the state lock ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise LockError(f"{self.path}: cannot lock ({exc.strerror or exc})") from None
            return read_holder(self.state_path) or Holder("", 0, "?", "?", "?")
        try:
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                raise FileNotFoundError  # removed (released or force-unlocked) after we opened it
        except FileNotFoundError:
            os.close(fd)
            return Holder("", 0, "?", "?", "?")  # try again at once is fine: the caller loops
        previous = _parse(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
        self.stale = previous  # the file still names a holder that no longer holds the flock
        holder = Holder(uuid.uuid4().hex[:12], os.getpid(), socket.gethostname(), self.command,
                        format_time(self.now()))  # fmt: skip
        data = json.dumps(asdict(holder)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self._fd, self.holder = fd, holder
        return None

    def release(self) -> None:
        """Remove the lock file (only if it is still ours) and drop the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    self.path.unlink()
        finally:
            os.close(fd)

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def force_unlock(state_path: str | Path, lock_id: str) -> Holder:
    """Remove the lock of a stuck holder, given the lock id its message showed. Raises LockError
    when there is no lock or the id differs (then nothing is removed)."""
    path = lock_path(Path(state_path))
    holder = read_holder(Path(state_path))
    if holder is None:
        if not path.exists():
            raise LockError(f"{path}: the state is not locked")
        raise LockError(f"{path}: the lock names no holder yet; try again in a moment")
    if holder.id != lock_id:
        raise LockError(f"{path}: the lock id is {holder.id}, not {lock_id}; nothing was removed")
    path.unlink()
    return holder


def lock_status(state_path: str | Path) -> dict[str, Any] | None:
    """The holder as JSON for `status`, or None when the state is not locked (or its holder died)."""
    path = lock_path(Path(state_path))
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            holder = read_holder(Path(state_path))
            return asdict(holder) if holder is not None else {"id": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
