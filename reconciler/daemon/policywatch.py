"""Policy files in, desired state out, while the daemon runs: watch, reload, diff, optional git pull.

Flow: watchfiles (debounced) or `git pull --ff-only` every `--pull` seconds -> `reload()` loads the
policy directory in a worker thread (files whose bytes did not change come from the daemon's
`FileCache`; resolution and checks run over the whole set) -> invalid: every diagnostic (file:line) goes to the log,
the events and the API, nothing is applied, the last good desired state keeps being enforced ->
valid: the stations whose desired state changed (by digest), appeared or disappeared are handed to
the daemon, which reconciles only those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from reconciler import clock
from reconciler.engine.outcome import desired_digest
from reconciler.policy import DesiredState, PolicySet, load_policies
from reconciler.policy.loader import SUFFIXES, FileCache

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    policies: PolicySet
    changed: tuple[str, ...]  # stations whose desired state differs (added ones included)
    removed: tuple[str, ...]
    digests: dict[str, str]  # of the new policies, for the next comparison


def digest(state: DesiredState) -> str:
    """What the daemon acts on for one station: git's desired state, its sync policy and session intents."""
    sessions = ",".join(f"{p.connector_id}:{p.profile}" for p in state.sessions)
    return f"{desired_digest(state)}|sync={state.sync}|site={state.site_limit_w}|{sessions}"


def digests(
    policies: PolicySet, previous: PolicySet | None = None, known: dict[str, str] | None = None
) -> dict[str, str]:
    """Per station, its `digest`; one whose desired state equals the one in `previous` keeps its
    digest from `known` (an equality test is cheaper than hashing every profile again)."""
    out = {}
    for name, state in policies.desired.items():
        if previous is not None and known is not None and name in known and previous.desired.get(name) == state:
            out[name] = known[name]
        else:
            out[name] = digest(state)
    return out


def compare(old: PolicySet, new: PolicySet, known: dict[str, str] | None = None) -> Change:
    """What changed from `old` to `new`; `known`: the digests of `old`, kept from the last comparison."""
    before = known if known is not None else digests(old)
    after = digests(new, old, before)
    changed = tuple(sorted(n for n, d in after.items() if before.get(n) != d))
    removed = tuple(sorted(n for n in before if n not in after))
    return Change(new, changed, removed, after)


async def load(paths: Sequence[Path], cache: FileCache | None = None) -> PolicySet:
    return await asyncio.to_thread(load_policies, list(paths), now=clock.now(), cache=cache)


def _relevant(change: tuple[watchfiles.Change, str]) -> bool:
    path = Path(change[1])
    return path.suffix in SUFFIXES and not any(p.startswith(".") for p in path.parts[-3:])


async def watch(
    paths: Sequence[Path], on_change: Callable[[], Awaitable[None]], stop: asyncio.Event, *, debounce_ms: int = 50
) -> None:
    """Call `on_change` after every debounced burst of changes to policy files under `paths`."""
    existing = [str(p) for p in paths if p.exists()]
    async for changes in watchfiles.awatch(
        *existing,
        debounce=debounce_ms,
        step=min(debounce_ms, 50),
        stop_event=stop,
        watch_filter=None,
        recursive=True,
        rust_timeout=1000,
        yield_on_timeout=False,
    ):
        if any(_relevant(c) for c in changes):
            try:
                await on_change()
            except Exception:
                log.exception("reloading the policies failed")


_CREDENTIALS_IN_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def pull_failure(directory: Path, returncode: int | None, stderr: bytes) -> str:
    """What `git pull --ff-only` said when it failed, credentials in any URL it names masked."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    said = "; ".join(lines[-5:])[:600] or f"exit {returncode}"
    said = _CREDENTIALS_IN_URL.sub(r"\1***@", said)
    return (
        f"git pull --ff-only in {directory} failed: {said}; the policies stay at the last good commit "
        f"(fix the clone by hand, e.g. git -C {directory} status)"
    )


async def pull_forever(
    directory: Path, every: float, stop: asyncio.Event, pulled: Callable[[str | None], None] | None = None
) -> None:
    """`git pull --ff-only` in `directory` every `every` seconds; the file watcher sees what it brings.
    `pulled` is told each outcome: None when it worked, else what went wrong (`pull_failure`)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a remote asking for a password fails, never waits
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        process = None
        try:
            process = await asyncio.create_subprocess_exec(
                "git", "-C", str(directory), "pull", "--ff-only", "--quiet",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
            )  # fmt: skip
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=max(30.0, every))
            problem = None if process.returncode == 0 else pull_failure(directory, process.returncode, stderr)
        except OSError as exc:
            problem = f"git pull --ff-only in {directory} could not run: {exc.strerror or exc.__class__.__name__}"
        except asyncio.CancelledError:  # the daemon stops: no git left behind
            if process is not None and process.returncode is None:
                process.kill()
            raise
        except TimeoutError:
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
            problem = f"git pull --ff-only in {directory} did not finish within {max(30.0, every):g}s"
        if pulled is not None:
            pulled(problem)
        elif problem is not None:
            log.warning("%s", problem)
