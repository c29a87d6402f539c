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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from reconciler import clock
from reconciler.engine.reconcile import desired_digest
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
