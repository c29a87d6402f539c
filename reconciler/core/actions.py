"""What a plan is made of: actions to send, the ledger entries they act on, configuration values.

Flow: (plan) decides `Action`s from `LedgerEntry`s and `ConfigValue`s -> (engine) `Action.ocpp()`
sends them -> (render) `Action.describe()` shows them. An action *is* its symbol: `+` set,
`~` replace or configure, `-` clear (a profile the ledger owns), `!` prune (a foreign slot).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any

from reconciler.core.profiles import ChargingProfile, Purpose, profile_to_ocpp


class ActionKind(enum.StrEnum):
    CONFIGURE = "configure"
    SET = "set"
    REPLACE = "replace"
    CLEAR = "clear"
    PRUNE = "prune"

    @property
    def symbol(self) -> str:
        return {"configure": "~", "set": "+", "replace": "~", "clear": "-", "prune": "!"}[self.value]


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    reason: str
    connector_id: int | None = None
    profile: ChargingProfile | None = None  # SET, REPLACE
    profile_id: int | None = None  # CLEAR
    key: str | None = None  # CONFIGURE
    value: str | None = None
    purpose: Purpose | None = None  # CLEAR (what the cleared profile was, for ordering), PRUNE (the filter)
    stack_level: int | None = None
    digest: str | None = None  # content_hash of a profile being set

    def ocpp(self) -> tuple[str, dict[str, Any]]:
        """(OCPP action, payload) that carries this action out."""
        if self.kind is ActionKind.CONFIGURE:
            return "ChangeConfiguration", {"key": self.key, "value": self.value}
        if self.kind in (ActionKind.SET, ActionKind.REPLACE):
            assert self.profile is not None and self.connector_id is not None
            return "SetChargingProfile", {
                "connectorId": self.connector_id,
                "csChargingProfiles": profile_to_ocpp(self.profile),
            }
        if self.kind is ActionKind.CLEAR:
            return "ClearChargingProfile", {"id": self.profile_id}
        payload: dict[str, Any] = {"connectorId": self.connector_id}
        if self.purpose is not None:
            payload["chargingProfilePurpose"] = self.purpose.value
        if self.stack_level is not None:
            payload["stackLevel"] = self.stack_level
        return "ClearChargingProfile", payload

    @property
    def slot(self) -> tuple[Purpose, int]:
        """(purpose, stackLevel) of the profile this action sets or clears, for ordering."""
        if self.profile is not None:
            return self.profile.purpose, self.profile.stack_level
        return self.purpose or Purpose.TX_DEFAULT, self.stack_level or 0

    def describe(self) -> str:
        if self.kind is ActionKind.CONFIGURE:
            return f"{self.key} = {self.value!r}"
        if self.profile is not None:
            p = self.profile
            where = f"on connector {self.connector_id}"
            return f"profile #{p.charging_profile_id} {p.purpose.value} stack {p.stack_level} {where}"
        if self.kind is ActionKind.CLEAR:
            return f"profile #{self.profile_id}"
        purpose = self.purpose.value if self.purpose else "every purpose"
        level = "every stack level" if self.stack_level is None else f"stack {self.stack_level}"
        return f"foreign profiles: {purpose}, {level}, connector {self.connector_id}"


class LedgerState(enum.StrEnum):
    """How sure the reconciler is that a profile it sent reached the charger and is in force."""

    ACCEPTED = "Accepted"  # accepted, and no read-back since contradicted it
    UNCONFIRMED = "Unconfirmed"  # sent before an interruption: its answer was never recorded
    UNVERIFIED = "Unverified"  # accepted; the read-back that would show it in force has not happened yet
    NOT_ENFORCED = "NotEnforced"  # accepted, but the read-back showed the charger without it

    @property
    def certain(self) -> bool:
        return self is LedgerState.ACCEPTED


# Why an entry is uncertain (its `doubt`) when its own Set's answer is not the reason.
DOUBT_CLEAR_UNANSWERED = "a ClearChargingProfile of it went unanswered: it may be gone"
DOUBT_RESTARTED = "the charger restarted since it was accepted: no read-back has shown it kept it"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A SetChargingProfile the reconciler sent to a station: the inventory it may clear.

    The ledger is a log in installation order (`seq`): an entry whose arrival is uncertain does not
    erase the entries it would have replaced, so the reconciler knows every state the charger may
    be in (`core.holdings`)."""

    connector_id: int
    profile: ChargingProfile
    content_hash: str
    revision: str | None = None
    state: LedgerState = LedgerState.ACCEPTED
    seq: int = 0
    doubt: str | None = None  # why it is uncertain, when not its own Set's answer (a lost Clear, a restart)

    @property
    def confirmed(self) -> bool:
        return self.state.certain

    def replaces(self, other: LedgerEntry) -> bool:
        """Would this profile, arriving, replace `other` on the charger (same id, or same slot)?"""
        mine, theirs = self.profile, other.profile
        return mine.charging_profile_id == theirs.charging_profile_id or (
            self.connector_id == other.connector_id
            and mine.purpose is theirs.purpose
            and mine.stack_level == theirs.stack_level
        )


@dataclass(frozen=True, slots=True)
class ConfigValue:
    value: str | None  # None: the charger does not know the key
    readonly: bool = False


def content_hash(connector_id: int, profile: ChargingProfile) -> str:
    """A stable digest of what would be sent: same hash, same SetChargingProfile."""
    return hashlib.sha256(repr((connector_id, sorted(profile_to_ocpp(profile).items()))).encode()).hexdigest()[:16]
