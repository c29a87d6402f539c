"""Station conditions: the one word every reconcile ends with, and what each means."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    SYNCED = "Synced"  # the composite read-back matches the desired state (verified)
    OUT_OF_SYNC = "OutOfSync"  # differs, and the plan says what would fix it
    PROGRESSING = "Progressing"  # an apply is under way
    DEGRADED = "Degraded"  # the charger refused or cannot be verified; needs a person (reason says why)
    OFFLINE = "Offline"  # not connected, or timed out
    SUSPENDED = "Suspended"  # reconciling paused by an operator

    @property
    def healthy(self) -> bool:
        return self is Status.SYNCED
