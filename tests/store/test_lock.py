"""The state lock (issue 12 item 2): one holder at a time, named in the refusal; a holder killed
with SIGKILL never leaves the state stuck; force-unlock needs the holder's lock id."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reconciler.store.lock import LockError, LockHeld, StateLock, force_unlock, lock_path, lock_status, read_holder

HOLD = textwrap.dedent("""\
    import sys, time
    from reconciler.store.lock import StateLock
    lock = StateLock(sys.argv[1], command="reconciler apply")
    lock.acquire()
    print(lock.holder.id, flush=True)
    time.sleep(60)
""")


def hold_in_child(state: Path) -> tuple[subprocess.Popen[str], str]:
    """A real process that takes the lock and keeps it; returns it and its lock id."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(state)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    lock_id = child.stdout.readline().strip()
    child.stdout.close()
    assert lock_id, "the child did not take the lock"
    return child, lock_id


def test_second_taker_is_refused_with_the_holder_named(tmp_path: Path):
    state = tmp_path / "state.db"
    child, lock_id = hold_in_child(state)
    try:
        with pytest.raises(LockHeld) as refused:
            StateLock(state).acquire(timeout=0.3, poll=0.05)
        message = str(refused.value)
        assert f"pid {child.pid} on {socket.gethostname()}" in message
        assert "reconciler apply" in message and lock_id in message
        assert "--lock-timeout" in message and "force-unlock" in message
        assert lock_status(state) is not None and lock_status(state)["pid"] == child.pid
    finally:
        child.kill()
        child.wait()


def test_a_holder_killed_with_sigkill_leaves_a_stale_lock_that_is_taken_over(tmp_path: Path):
    state = tmp_path / "state.db"
    child, lock_id = hold_in_child(state)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert read_holder(state) is not None  # the file still names the dead holder
    assert lock_status(state) is None  # but nobody holds it
    lock = StateLock(state)
    lock.acquire(timeout=0)
    try:
        assert lock.stale is not None and lock.stale.pid == child.pid and lock.stale.id == lock_id
        assert lock.stale.alive() is False
        assert read_holder(state).pid == os.getpid()
    finally:
        lock.release()
    assert not lock_path(state).exists()


def test_release_removes_the_file_and_the_next_taker_succeeds_at_once(tmp_path: Path):
    state = tmp_path / "state.db"
    with StateLock(state) as first:
        assert read_holder(state).id == first.holder.id
    assert not lock_path(state).exists()
    with StateLock(state) as second:
        assert second.stale is None


def test_a_waiting_taker_gets_the_lock_once_the_holder_exits(tmp_path: Path):
    state = tmp_path / "state.db"
    child, _ = hold_in_child(state)
    told = []
    try:
        child.terminate()
        lock = StateLock(state)
        lock.acquire(timeout=10, poll=0.05, waiting=told.append)
        lock.release()
    finally:
        child.kill()
        child.wait()


def test_force_unlock_needs_the_right_id_and_the_stuck_holder_never_removes_the_new_lock(tmp_path: Path):
    state = tmp_path / "state.db"
    stuck = StateLock(state, command="reconciler watch")
    stuck.acquire()
    try:
        with pytest.raises(LockError, match="not nope"):
            force_unlock(state, "nope")
        assert lock_path(state).exists()
        removed = force_unlock(state, stuck.holder.id)
        assert removed.command == "reconciler watch"
        new = StateLock(state)
        new.acquire(timeout=0)  # the path is free again although the stuck process still has its flock
        stuck.release()  # the stuck holder comes back: it must not remove the new holder's file
        assert read_holder(state).id == new.holder.id
        new.release()
    finally:
        stuck.release()
    with pytest.raises(LockError, match="not locked"):
        force_unlock(state, "anything")
