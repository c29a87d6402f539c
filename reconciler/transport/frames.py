"""OCPP-J frames from an untrusted peer: text in, a checked message (or the CALLERROR to send) out.

Flow: charger --text frame--> `central_system` --`read_frame`--> `Message` | `FrameError`. A charger
is a hostile peer: nothing it sends may crash the connection handler. This module has no I/O and
does not import `ocpp`; `central_system` turns a `FrameError` into a CALLERROR frame (when the frame
carried a unique id it can answer to) and keeps the connection.

What is checked, before any schema or handler sees the payload:
- JSON: invalid JSON, or nesting beyond what the parser survives (20,000 brackets), is a
  FormationViolation; in a charger's Call, an integer outside int32 (a 5,000-digit one is never
  converted), a float that overflows and NaN/Infinity are a PropertyConstraintViolation, found
  while parsing. The unique id is then recovered from the frame's first bytes. An answer to one of
  our calls keeps its values (the engine judges them and names the field) unless it cannot be
  parsed at all.
- shape: `[2, id, action, payload]`, `[3, id, payload]`, `[4, id, code, description, details]`;
  the message type an integer 2..4, the id a string of at most 36 characters (OCPP-J), the action
  a non-empty string, the payload an object. Wrong element counts are a ProtocolError, the rest a
  FormationViolation.
- bounds: nesting deeper than MAX_DEPTH is a FormationViolation, a `timestamp` whose offset takes
  it outside the years 1..9999 in UTC a PropertyConstraintViolation. The payload is walked for them
  only when its text has enough brackets or a `timestamp` key; the walk is iterative, so depth
  cannot exhaust the stack. `payload_problem` checks every bound on any parsed value.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

CALL, CALL_RESULT, CALL_ERROR = 2, 3, 4
MAX_DEPTH = 16  # the deepest OCPP 1.6 payload (SetChargingProfile) nests 6 levels
MAX_UNIQUE_ID = 36
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_LENGTHS = {CALL: 4, CALL_RESULT: 3, CALL_ERROR: 5}
_HEAD = re.compile(r'\s*\[\s*([234])\s*,\s*"((?:[^"\\]|\\.){1,36})"')


class Message(NamedTuple):  # a tuple: built for every frame, so it has to be cheap
    """A well-formed frame: a Call (action and payload), a CallResult (payload) or a CallError."""

    kind: int
    unique_id: str
    action: str = ""
    payload: Any = None
    error_code: str = ""
    error_description: str = ""


class FrameError(Exception):
    """A frame that cannot be used. `unique_id` and `kind` are known when the frame carried them,
    so a Call can be answered with a CALLERROR and a CallResult can fail its pending call."""

    def __init__(self, code: str, description: str, unique_id: str | None = None, kind: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.unique_id = unique_id
        self.kind = kind


def read_frame(raw: str) -> Message:
    """The message in one text frame; FrameError (never anything else) when it cannot be used."""
    try:
        data = _DECODER.decode(raw)
    except _OutOfRange as exc:
        data = _answer_as_sent(raw, _salvaged(raw, "PropertyConstraintViolation", str(exc)))
    except RecursionError:
        raise _salvaged(raw, "FormationViolation", "the frame nests too deep to be read") from None
    except ValueError:  # JSONDecodeError, or anything else the parser refuses
        raise _salvaged(raw, "FormationViolation", "the frame is not valid JSON") from None
    if not isinstance(data, list) or not data:
        raise FrameError("FormationViolation", "an OCPP-J frame is a JSON array")
    kind, unique_id = data[0], data[1] if len(data) > 1 else None
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= MAX_UNIQUE_ID:
        raise FrameError("FormationViolation", "the unique id must be a string of 1 to 36 characters")
    if isinstance(kind, bool) or kind not in (CALL, CALL_RESULT, CALL_ERROR):
        raise FrameError("FormationViolation", f"unknown message type {str(kind)[:20]}", unique_id, CALL)
    expected = _LENGTHS[kind]
    if len(data) != expected:
        raise FrameError("ProtocolError", f"a frame of type {kind} has {expected} elements, not {len(data)}",
                         unique_id, kind)  # fmt: skip
    if kind == CALL_ERROR:
        code, description = data[2], data[3]
        return Message(kind, unique_id, error_code=str(code)[:64], error_description=str(description)[:500])
    payload = data[3] if kind == CALL else data[2]
    if kind == CALL:
        action = data[2]
        if not isinstance(action, str) or not action or len(action) > 64:
            raise FrameError("FormationViolation", "the action must be an OCPP action name", unique_id, kind)
    if not isinstance(payload, dict):
        raise FrameError("FormationViolation", "the payload is not a JSON object", unique_id, kind)
    # numbers were bounded while parsing; depth and timestamps are walked only when the text could hide them
    deep_enough = raw.count("[") + raw.count("{") > MAX_DEPTH
    problem = payload_problem(payload, values=kind == CALL) if deep_enough or "timestamp" in raw else None
    if problem is not None:
        raise FrameError(problem[0], problem[1], unique_id, kind)
    return Message(kind, unique_id, data[2] if kind == CALL else "", payload)


class _OutOfRange(ValueError):
    """A number the parser met that OCPP 1.6 cannot carry (raised from the parse hooks)."""


def _int32(text: str) -> int:
    if len(text) > 11:  # checked before int(): a 5,000-digit literal is never converted
        raise _OutOfRange(f"an integer of {len(text):,} digits: OCPP 1.6 integers are 32-bit")
    value = int(text)
    if not INT32_MIN <= value <= INT32_MAX:
        raise _OutOfRange(f"{value} is beyond the 32-bit integers of OCPP 1.6")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange("a number too large to be finite")
    return value


def _constant(name: str) -> float:
    raise _OutOfRange(f"{name} is not a number OCPP 1.6 allows")


# Integers, decimals and NaN/Infinity are bounded as they are parsed (about 3 µs a frame, in the
# C scanner's callbacks), so a frame of ordinary size costs no walk at all.
_DECODER = json.JSONDecoder(parse_int=_int32, parse_float=_finite, parse_constant=_constant)


def _answer_as_sent(raw: str, error: FrameError) -> Any:
    """An answer to one of our calls (CallResult/CallError) is parsed without the number bounds: its
    values are the engine's to judge (observe says which field is wrong and degrades that station).
    Only what cannot be parsed at all (a 5,000-digit integer) stays a FrameError."""
    if error.kind not in (CALL_RESULT, CALL_ERROR):
        raise error
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise error from None


def payload_problem(payload: Any, *, values: bool = True) -> tuple[str, str] | None:
    """(CALLERROR code, description) for a payload beyond OCPP 1.6's bounds, else None. With
    `values` False (an answer to our call) only the nesting is checked."""
    stack: list[tuple[Any, int, str]] = [(payload, 1, "")]
    while stack:
        value, depth, key = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                return "FormationViolation", f"the payload nests deeper than {MAX_DEPTH} levels"
            stack.extend((v, depth + 1, k) for k, v in value.items())
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                return "FormationViolation", f"the payload nests deeper than {MAX_DEPTH} levels"
            stack.extend((v, depth + 1, key) for v in value)
        elif not values or isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not INT32_MIN <= value <= INT32_MAX:
                return "PropertyConstraintViolation", f"{key or 'a value'}: an OCPP 1.6 integer is 32-bit"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return "PropertyConstraintViolation", f"{key or 'a value'}: not a finite number"
        elif isinstance(value, str) and key == "timestamp" and _out_of_range(value):
            return "PropertyConstraintViolation", "timestamp: outside the years 1 to 9999 in UTC"
    return None


def _out_of_range(text: str) -> bool:
    value = text.strip()
    if value.endswith(("z", "Z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False  # not a date-time: the schema or the handler decides
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return True
    return False


def _salvaged(raw: str, code: str, description: str) -> FrameError:
    """A FrameError for a frame the JSON parser refused, with the id if its first bytes hold one."""
    head = _HEAD.match(raw[:128])
    if head is None:
        return FrameError(code, description)
    try:
        unique_id = json.loads(f'"{head.group(2)}"')
    except ValueError:
        return FrameError(code, description)
    return FrameError(code, description, unique_id, int(head.group(1)))
