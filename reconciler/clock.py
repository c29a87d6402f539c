"""The one place that reads the wall clock. Everything else takes time as a parameter."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    """The current instant, tz-aware UTC."""
    return datetime.now(UTC)


def monotonic() -> float:
    """Seconds on a clock that never goes back (for timeouts and durations)."""
    return time.monotonic()
