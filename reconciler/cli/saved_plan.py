"""Saved plans (`plan --out FILE`, `apply FILE`, `show FILE`): written, read back, checked, judged stale.

Flow: `plan` -> `saved_plan()` -> JSON file -> `read_saved_plan()` (JSON Schema first: a hand-edited
or truncated file is a clear error, never a traceback) -> `apply` re-observes every station and
`stale_problems()` compares: if any station's charger, desired state or needed actions changed,
the whole plan is refused before anything is sent (Terraform's "saved plan is stale").

A saved plan carries how to reach the chargers (listen address, inject URL without credentials,
passwords *file* paths, TLS files, timeouts, path prefix), the state file and the policy paths, so
`apply FILE` needs no flags again. Secrets are never written: a shared station password or an
inject password comes from the environment, its file (or the flags) when the plan is applied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jsonschema

from reconciler.cli.connect import Connection
from reconciler.cli.render import outcomes_json
from reconciler.core.diff import timelines_agree
from reconciler.core.plan import StationPlan
from reconciler.core.profiles import RateUnit, format_time, from_epoch
from reconciler.core.status import Status
from reconciler.core.timeline import Timeline
from reconciler.core.wire import MAX_DURATION
from reconciler.engine.observe import Observation
from reconciler.engine.outcome import Outcome, action_digest, desired_digest, observed_json
from reconciler.policy import PolicySet

FORMAT = "reconciler-plan/v1"
HORIZON_MAX = MAX_DURATION  # seconds; also the bound of --horizon and of composite/explain --duration
_EPOCH = {"type": "integer", "minimum": 0, "maximum": 253_402_300_799}  # up to 9999-12-31
_LIMIT = {"type": ["number", "null"], "minimum": -1, "maximum": 1e9}
_OPTIONAL_TEXT = {"type": ["string", "null"], "maxLength": 4096}

_TIMELINE = {
    "type": "object",
    "required": ["start", "end", "unit", "steps"],
    "additionalProperties": False,
    "properties": {
        "start": _EPOCH,
        "end": _EPOCH,
        "unit": {"enum": ["A", "W"]},
        "steps": {
            "type": "array",
            "maxItems": 100_000,
            "items": {"type": "array", "minItems": 2, "maxItems": 2, "prefixItems": [_EPOCH, _LIMIT]},
        },
    },
}
_STATION = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"enum": [s.value for s in Status]},
        "desired": _OPTIONAL_TEXT,
        "observed": {
            "type": "object",
            "propertyNames": {"pattern": "^[0-9]{1,3}$"},
            "additionalProperties": _TIMELINE,
        },
        "configuration": {"type": "object"},
        "actions": {"type": "array", "maxItems": 10_000, "items": {"type": "string", "maxLength": 4096}},
        "removed": {"type": "boolean"},
    },
}
_SHOWN_ACTION = {
    "type": "object",
    "required": ["symbol", "kind", "description"],
    "properties": {
        "symbol": {"type": "string", "maxLength": 4}, "kind": {"type": "string"},
        "description": {"type": "string"}, "reason": _OPTIONAL_TEXT, "source": _OPTIONAL_TEXT,
    },
}  # fmt: skip
PLAN_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "reconciler saved plan (reconciler plan --out FILE)",
    "type": "object",
    "required": ["format", "policies", "horizon", "stations"],
    "properties": {
        "format": {"const": FORMAT},
        "createdAt": {"type": "string"},
        "revision": _OPTIONAL_TEXT,
        "policies": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "horizon": {"type": "integer", "minimum": 1, "maximum": HORIZON_MAX},
        "db": _OPTIONAL_TEXT,
        "selector": {"type": "object", "additionalProperties": {"type": "string"}},
        "connection": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "via": _OPTIONAL_TEXT,
                "listen": _OPTIONAL_TEXT,
                "user": _OPTIONAL_TEXT,
                "passwordsFile": _OPTIONAL_TEXT,
                "tlsCert": _OPTIONAL_TEXT,
                "tlsKey": _OPTIONAL_TEXT,
                "stationPasswordFile": _OPTIONAL_TEXT,
                "passwordFile": _OPTIONAL_TEXT,
                "pathPrefix": _OPTIONAL_TEXT,
                "wait": {"type": "number", "minimum": 0, "maximum": 86_400},
                "callTimeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
            },
        },
        "stations": {"type": "object", "minProperties": 1, "additionalProperties": _STATION},
        "plan": {
            "type": "object",
            "properties": {
                "stations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["station", "status"],
                        "properties": {
                            "station": {"type": "string"},
                            "status": {"type": "string"},
                            "reason": _OPTIONAL_TEXT,
                            "actions": {"type": "array", "items": _SHOWN_ACTION},
                        },
                    },
                },
                "summary": {"type": "object"},
            },
        },
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(PLAN_SCHEMA)


class PlanFileError(ValueError):
    """A saved plan that cannot be used; the message names the file, the place and what to do."""


@dataclass(frozen=True, slots=True)
class SavedPlan:
    path: Path
    data: dict[str, Any]

    @property
    def stations(self) -> dict[str, dict[str, Any]]:
        stations: dict[str, dict[str, Any]] = self.data["stations"]
        return stations

    @property
    def policies(self) -> list[Path]:
        return [Path(p) for p in self.data["policies"]]

    @property
    def horizon(self) -> int:
        return int(self.data["horizon"])

    @property
    def connection(self) -> dict[str, Any]:
        connection: dict[str, Any] = self.data.get("connection") or {}
        return connection

    @property
    def db(self) -> Path | None:
        db = self.data.get("db")
        return Path(db) if db else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_saved_plan(path: Path) -> SavedPlan:
    """Read and check a saved plan; raise PlanFileError with a message a person can act on."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"{path}: cannot read the saved plan ({exc})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise PlanFileError(
            f"{path}: not JSON ({exc}), so not a saved plan; give the file `reconciler plan --out PLAN.json` wrote"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PlanFileError(f'{path}: not a plan saved by `reconciler plan --out` (no "format": "{FORMAT}")')
    try:
        error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(data))
    except RecursionError:
        raise PlanFileError(f"{path}: nested too deeply to be a saved plan") from None
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "(top)"
        message = error.message if len(error.message) < 200 else error.message[:200] + "..."
        raise PlanFileError(
            f"{path}: {where.lstrip('.')}: {message}; the file was changed or damaged since `plan --out` "
            "wrote it: run plan again"
        )
    return SavedPlan(path, data)


def _public_url(url: str | None) -> str | None:
    """The URL without user:password (never written to a plan file)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def connection_json(connection: Connection) -> dict[str, Any]:
    def path(p: Path | None) -> str | None:
        return str(p.resolve()) if p is not None else None

    return {
        "via": _public_url(connection.via), "listen": connection.listen, "wait": connection.wait,
        "user": connection.user, "passwordsFile": path(connection.passwords_file),
        "callTimeout": connection.call_timeout, "tlsCert": path(connection.tls_cert),
        "tlsKey": path(connection.tls_key), "stationPasswordFile": path(connection.station_password_file),
        "passwordFile": path(connection.password_file), "pathPrefix": connection.path_prefix,
    }  # fmt: skip


def saved_plan(
    outcomes: Sequence[Outcome], *, revision: str | None, digests: Mapping[str, str], horizon: int, at: int,
    policies: Sequence[str], connection: Connection, db: Path, selector: Mapping[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The `--out` document: what was seen and decided, and how to reach the chargers again."""
    stations = {}
    for outcome in outcomes:
        entry: dict[str, Any] = {"status": outcome.status.value, "desired": digests.get(outcome.station_id)}
        if outcome.observation is not None:
            entry["observed"] = observed_json(outcome.observation)
            entry["configuration"] = {k: v.value for k, v in outcome.observation.configuration.items()}
        if outcome.plan is not None:
            entry["actions"] = action_digest(outcome.plan.actions)
        if outcome.removed:
            entry["removed"] = True
        stations[outcome.station_id] = entry
    return {
        "format": FORMAT,
        "createdAt": format_time(from_epoch(at)),
        "revision": revision,
        "policies": list(policies),
        "horizon": horizon,
        "db": str(db.resolve()),
        "selector": dict(selector),
        "connection": connection_json(connection),
        "stations": stations,
        "plan": outcomes_json(outcomes, revision),
    }


def station_stale(
    entry: Mapping[str, Any] | None, desired: str | None, observation: Observation | None, plan: StationPlan | None
) -> str | None:
    """Why a saved plan no longer holds for one station (None when it does)."""
    if entry is None:
        return "the station was not in the saved plan"
    if entry.get("desired") != desired:
        return "the policies changed since the plan was saved"
    if plan is not None and entry.get("actions", []) != action_digest(plan.actions):
        return "the actions needed changed since the plan was saved"
    if observation is None:
        return None
    for connector, then in (entry.get("observed") or {}).items():
        starts = [s for s, _ in then["steps"]]
        if not then["start"] < then["end"] or starts != sorted(set(starts)) or (starts and starts[0] < then["start"]):
            return f"the saved observation of connector {connector} is malformed (the file was edited)"
        now = observation.timelines.get(int(connector))
        old = Timeline(then["start"], then["end"], RateUnit(then["unit"]), tuple((s, v) for s, v in then["steps"]))
        if now is None or not timelines_agree(old, now, observation.normaliser):
            return f"the charger changed since the plan was saved (connector {connector})"
    return None


def stale_problems(saved: SavedPlan, policies: PolicySet, planned: Sequence[Outcome]) -> list[tuple[str, str]]:
    """Every (station, why) for which the saved plan no longer holds, given a fresh plan."""
    fresh = {o.station_id: o for o in planned}
    problems = []
    for station_id, entry in sorted(saved.stations.items()):
        outcome = fresh.get(station_id)
        if outcome is None:
            problems.append((station_id, "no longer declared in the policies (and the ledger owns nothing on it)"))
            continue
        if outcome.status is Status.OFFLINE and not outcome.removed:
            continue  # unreachable now: nothing will be sent to it; reported as Offline
        state = policies.desired.get(station_id)
        desired = desired_digest(state) if state is not None else None
        why = station_stale(entry, desired, outcome.observation, outcome.plan)
        if why is not None:
            problems.append((station_id, why))
    return problems


def stale_checker(saved: SavedPlan, policies: PolicySet) -> Any:
    """The engine's per-station guard during apply (a second check, right before each station's
    calls: the whole plan was already checked before anything was sent)."""

    def check(station_id: str, observation: Observation, plan: StationPlan) -> str | None:
        state = policies.desired.get(station_id)
        desired = desired_digest(state) if state is not None else None
        why = station_stale(saved.stations.get(station_id), desired, observation, plan)
        return None if why is None else f"{why}; run plan again"

    return check
