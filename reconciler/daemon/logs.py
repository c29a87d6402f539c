"""The daemon's log: one line per event, text for people or JSON (`--log-format json`) for machines;
the line each reconcile logs (`log_outcome`) and what the daemon keeps of its outcome (`kept`).

Flow: `logging` records from every module -> `setup_logging` -> stderr. Fields given as
`extra={"fields": {...}}` (station, outcome, duration, next check...) become JSON keys, or
`key=value` pairs in text. Secrets are never passed to the log (the callers redact).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Set
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from reconciler.engine.outcome import Outcome

log = logging.getLogger("reconciler.daemon")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record)


def setup_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("reconciler").setLevel(level)
    logging.getLogger("websockets").setLevel(logging.ERROR)


def log_outcome(
    station_id: str, outcome: Outcome, triggers: Set[str], next_check: float | None, revision: str | None
) -> None:
    """The one line a reconcile logs: station, outcome, duration, calls sent, next check (None: after a
    backoff), what triggered it, and why."""
    sent = ", ".join(f"{n} {k}" for k, n in sorted(outcome.sent.items())) or "nothing sent"
    log.info(
        "%s %s in %.3fs (%s); next check in %s [%s]%s",
        station_id,
        outcome.status.value,
        outcome.seconds,
        sent,
        f"~{next_check:.0f}s" if next_check is not None else "backoff",
        ", ".join(sorted(triggers)),
        f": {outcome.reason}" if outcome.reason else "",
        extra={
            "fields": {
                "station": station_id,
                "outcome": outcome.status.value,
                "duration_s": round(outcome.seconds, 4),
                "sent": dict(outcome.sent),
                "reason": outcome.reason,
                "triggers": sorted(triggers),
                "next_check_s": next_check,
                "revision": revision,
            }
        },
    )


_NOTHING: Mapping[str, Any] = MappingProxyType({})


def kept(outcome: Outcome) -> Outcome:
    """What the daemon keeps of a station's last outcome until its next one (`Daemon.latest`: one per
    station, 10,000 of them): its status and reason, what was sent, the plan's actions, notes and
    verdicts, the observed timelines and the after-apply read-back (the API, the limit in force:
    `in_force.py`). Not kept: the plan's drift and the states it was planned from, and the
    configuration read (about 2 KiB a station; the condition's reason says what differed)."""
    plan, observation = outcome.plan, outcome.observation
    return replace(
        outcome,
        plan=replace(plan, drift=(), starts=()) if plan is not None else None,
        observation=replace(observation, configuration=_NOTHING) if observation is not None else None,
    )
