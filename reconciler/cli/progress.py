"""Progress of a fleet run on stderr: a live bar on a terminal, a line every few seconds otherwise.

Flow: `plan`/`apply` -> `FleetProgress(err, label, total)` -> the engine's progress callback
(`station_id, phase`) -> rich's bar (terminal) or `  reading: 1200 of 5000 station(s) (10 s)`
lines (CI logs, pipes), so a run over thousands of stations never sits silent.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reconciler import clock

EVERY = 5.0  # seconds between lines when stderr is not a terminal


class FleetProgress:
    """Counts stations done; `print_phases` also prints each station's end state (apply, no terminal)."""

    def __init__(
        self, err: Console, label: str, total: int, *, print_phases: bool = False, every: float = EVERY
    ) -> None:
        self.err, self.label, self.total = err, label, total
        self.print_phases = print_phases
        self.every = every
        self.done = 0
        self.started = clock.monotonic()
        self.said = self.started
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.bar = Progress(*columns, console=err, transient=True, disable=not err.is_terminal or total == 0)
        self.task = self.bar.add_task(label, total=total)

    def __enter__(self) -> FleetProgress:
        self.bar.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bar.__exit__(exc_type, exc, tb)

    def __call__(self, station_id: str, phase: str) -> None:
        if phase == "started":
            return
        self.done += 1
        self.bar.update(self.task, advance=1, description=f"{self.label}: {station_id} {phase}")
        if self.err.is_terminal:
            return
        if self.print_phases:
            self.err.print(f"{station_id}: {phase}", markup=False, highlight=False)
            return
        now = clock.monotonic()
        if now - self.said >= self.every and self.done < self.total:
            self.err.print(f"  {self.label}: {self.done} of {self.total} station(s) ({now - self.started:.0f} s)",
                           markup=False, highlight=False)  # fmt: skip
            self.said = now
