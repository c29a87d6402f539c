"""Policy files in, desired state out, while the daemon runs: watch, reload, diff, optional git pull.

Flow: watchfiles (debounced) or `git pull --ff-only` every `--pull` seconds -> `reload()` loads the
whole policy directory in a worker thread -> invalid: every diagnostic (file:line) goes to the log,
the events and the API, nothing is applied, the last good desired state keeps being enforced ->
valid: the stations whose desired state changed (by digest), appeared or disappeared are handed to
the daemon, which reconciles only those.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from reconciler import clock
from reconciler.engine.reconcile import desired_digest
from reconciler.policy import PolicySet, load_policies
from reconciler.policy.loader import SUFFIXES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    policies: PolicySet
    changed: tuple[str, ...]  # stations whose desired state differs (added ones included)
    removed: tuple[str, ...]


def digests(policies: PolicySet) -> dict[str, str]:
    """Per station, what the daemon acts on: git's desired state, its sync policy and session intents."""
    out = {}
    for name, state in policies.desired.items():
        sessions = ",".join(f"{p.connector_id}:{p.profile}" for p in state.sessions)
        out[name] = f"{desired_digest(state)}|sync={state.sync}|site={state.site_limit_w}|{sessions}"
    return out


def compare(old: PolicySet, new: PolicySet) -> Change:
    before, after = digests(old), digests(new)
    changed = tuple(sorted(n for n, d in after.items() if before.get(n) != d))
    removed = tuple(sorted(n for n in before if n not in after))
    return Change(new, changed, removed)


async def load(paths: Sequence[Path]) -> PolicySet:
    return await asyncio.to_thread(load_policies, list(paths), now=clock.now())


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


async def pull_forever(directory: Path, every: float, stop: asyncio.Event) -> None:
    """`git pull --ff-only` in `directory` every `every` seconds; the file watcher sees what it brings."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return
        try:
            process = await asyncio.create_subprocess_exec(
                "git",
                "-C",
                str(directory),
                "pull",
                "--ff-only",
                "--quiet",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            await asyncio.wait_for(process.communicate(), timeout=max(30.0, every))
        except (OSError, TimeoutError) as exc:
            log.warning("git pull in %s failed: %s", directory, exc.__class__.__name__)
            continue
        if process.returncode != 0:  # git's message may name a remote URL with credentials: not logged
            log.warning(
                "git pull --ff-only in %s failed (exit %s); run it by hand to see why", directory, process.returncode
            )
