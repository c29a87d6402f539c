"""`frames.read_frame` and its bounds, as pure functions (the websocket suite is test_hostile_frames)."""

from __future__ import annotations

import json

import pytest

from reconciler.transport.frames import MAX_DEPTH, FrameError, read_frame


def nested(depth: int) -> object:
    value: object = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_a_well_formed_call_result_and_error() -> None:
    call = read_frame('[2, "1", "Heartbeat", {}]')
    assert (call.kind, call.unique_id, call.action, call.payload) == (2, "1", "Heartbeat", {})
    result = read_frame('[3, "2", {"status": "Accepted"}]')
    assert (result.kind, result.payload) == (3, {"status": "Accepted"})
    error = read_frame('[4, "3", "NotSupported", "no", {}]')
    assert (error.kind, error.error_code, error.error_description) == (4, "NotSupported", "no")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"v": 2**31 - 1}, None),
        ({"v": 2**31}, "PropertyConstraintViolation"),
        ({"v": -(2**31)}, None),
        ({"v": -(2**31) - 1}, "PropertyConstraintViolation"),
        (nested(MAX_DEPTH), None),
        (nested(MAX_DEPTH + 1), "FormationViolation"),
        ({"timestamp": "0001-01-01T00:00:00Z"}, None),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "PropertyConstraintViolation"),
        ({"timestamp": "9999-12-31T23:59:59-01:00"}, "PropertyConstraintViolation"),
        ({"timestamp": "not a date"}, None),  # the schema or the handler decides about that
        ({"v": 1.5, "w": True, "x": None}, None),
    ],
)
def test_the_payload_bounds(payload: object, code: str | None) -> None:
    frame = json.dumps([2, "id", "DataTransfer", payload])
    if code is None:
        assert read_frame(frame).payload == payload
    else:
        with pytest.raises(FrameError) as refused:
            read_frame(frame)
        assert (refused.value.code, refused.value.unique_id, refused.value.kind) == (code, "id", 2)


@pytest.mark.parametrize(
    ("frame", "unique_id"),
    [('[2, "x\\"y", "A", ' + "[" * 50_000 + "]" * 50_000 + "]", 'x"y'), ("[3, 1, {}]", None), ("nonsense", None)],
)
def test_the_unique_id_is_recovered_only_when_the_frame_carries_one(frame: str, unique_id: str | None) -> None:
    with pytest.raises(FrameError) as refused:
        read_frame(frame)
    assert refused.value.unique_id == unique_id


def test_an_answer_keeps_its_values_for_the_engine_to_judge() -> None:
    answer = read_frame('[3, "a", {"limit": NaN, "big": 99999999999, "huge": ' + "9" * 400 + "}]")
    assert answer.kind == 3 and answer.payload["big"] == 99_999_999_999 and answer.payload["huge"] == 10**400 - 1
    with pytest.raises(FrameError) as unreadable:
        read_frame('[3, "a", {"x": ' + "9" * 5000 + "}]")
    assert (unreadable.value.code, unreadable.value.unique_id, unreadable.value.kind) == (
        "PropertyConstraintViolation",
        "a",
        3,
    )
