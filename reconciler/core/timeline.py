"""Piecewise-constant limits over absolute time: the shape every comparison works on.

A `Timeline` is a step function over [start, end) in epoch seconds, in one unit; a limit of None
means "not restricted". Diff (expected vs observed) and plan (every intermediate state bounded by
the old and the new desired state) both reduce to walking two timelines over their common
breakpoints.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core.profiles import RateUnit

Limit = float | None  # None: not restricted


@dataclass(frozen=True, slots=True)
class Timeline:
    """A piecewise-constant limit over [start, end) in absolute epoch seconds, in one unit."""

    start: int
    end: int
    unit: RateUnit
    steps: tuple[tuple[int, Limit], ...]  # (absolute start second, limit), strictly increasing

    def at(self, moment: int) -> Limit:
        value: Limit = None
        for begin, limit in self.steps:
            if begin > moment:
                break
            value = limit
        return value

    def segments(self) -> list[tuple[int, int, Limit]]:
        out = []
        for i, (begin, limit) in enumerate(self.steps):
            finish = self.steps[i + 1][0] if i + 1 < len(self.steps) else self.end
            if finish > begin:
                out.append((begin, finish, limit))
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [{"start": b, "end": e, "limit": v} for b, e, v in self.segments()]


def merged(steps: Sequence[tuple[int, Limit]]) -> tuple[tuple[int, Limit], ...]:
    """Drop steps that repeat the limit before them."""
    out: list[tuple[int, Limit]] = []
    for begin, limit in steps:
        if out and out[-1][1] == limit:
            continue
        out.append((begin, limit))
    return tuple(out)


def walk(*timelines: Timeline) -> Iterator[tuple[int, int, list[Limit]]]:
    """(segment start, segment end, each timeline's limit there) over the window all of them cover."""
    begin = max(t.start for t in timelines)
    finish = min(t.end for t in timelines)
    points = sorted({begin, *(s for t in timelines for s, _ in t.steps if begin < s < finish)})
    for i, point in enumerate(points):
        stop = points[i + 1] if i + 1 < len(points) else finish
        if stop > point:
            yield point, stop, [t.at(point) for t in timelines]


def loosest(a: Limit, b: Limit) -> Limit:
    """The higher of two limits; None (not restricted) is higher than any number."""
    if a is None or b is None:
        return None
    return a if a >= b else b
