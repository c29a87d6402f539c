"""One bad charger never aborts a fleet's run (issue 8, safety 5).

Six stations over real websockets; one answers GetCompositeSchedule with something no charger
should send but the schema lets through (a scheduleStart in year 1 or 9999 with an offset, a NaN
or absurdly large limit). That station ends Degraded with the reason, the five others converge,
none is left Progressing with pending intents. An unexpected exception inside one station's
reconcile is that station's one-line Degraded reason (the traceback only at debug level)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.status import Status
from reconciler.engine.reconcile import Reconciler
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.store.sqlite import Store
from reconciler.transport.gateway import Reply
from reconciler.transport.memory import MemoryGateway
from tests.engine import test_cli_apply as processes
from tests.engine.fleetkit import FAST, cap_policy, load, rig, station_doc, write

IDS = [f"CP-{i:04d}" for i in range(1, 7)]
CLI_IDS = IDS[:2]
BAD = IDS[2]

HOSTILE: dict[str, tuple[dict[str, Any], str]] = {  # what the reply carries, what the reason must say
    "year 1": ({"scheduleStart": "0001-01-01T00:30:00+01:00"}, "scheduleStart"),
    "year 9999": ({"scheduleStart": "9999-12-31T23:59:59-01:00"}, "scheduleStart"),
    "NaN limit": ({"limit": float("nan")}, "limit nan is not a finite number"),
    "huge limit": ({"limit": 10**400}, "too large"),
}


def corrupt(reply: str, case: str) -> str:
    """The honest GetCompositeSchedule reply frame with one field made hostile."""
    frame = json.loads(reply)
    change = HOSTILE[case][0]
    if "scheduleStart" in change:
        frame[2].update(change)
    else:
        frame[2]["chargingSchedule"]["chargingSchedulePeriod"][0].update(change)
    return json.dumps(frame)  # NaN is written as the bare token NaN, as a careless charger would


@pytest.mark.slow
@pytest.mark.parametrize("case", HOSTILE)
async def test_one_hostile_composite_reply_degrades_only_its_station(tmp_path: Path, case: str):
    policies_ = load(write(tmp_path / "p", {
        "s.yaml": "---\n".join(station_doc(s, "x") for s in IDS),
        "cap.yaml": cap_policy("cap", IDS, 16),
    }))  # fmt: skip
    async with rig(tmp_path, len(IDS)) as r:
        client = r.fleet.clients[BAD]
        honest_answer = client._answer

        def hostile(action: str, payload: Any, unique_id: str) -> str | None:
            reply = honest_answer(action, payload, unique_id)
            return corrupt(reply, case) if action == "GetCompositeSchedule" and reply else reply

        client._answer = hostile
        outcomes = {o.station_id: o for o in await r.reconciler(policies_).apply(IDS)}
        assert set(outcomes) == set(IDS)
        bad = outcomes[BAD]
        assert bad.status is Status.DEGRADED, bad.reason
        assert HOSTILE[case][1] in bad.reason and "\n" not in bad.reason
        for station in IDS:
            if station != BAD:
                assert outcomes[station].status is Status.SYNCED, outcomes[station].reason
        conditions = r.store.conditions()
        assert all(conditions[s].status is not Status.PROGRESSING for s in IDS)
        assert not r.store.pending()


class BrokenGateway(MemoryGateway):
    """A gateway whose call for one station raises something nobody anticipated."""

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Reply:
        if station_id == "CP-2" and action == "GetCompositeSchedule":
            raise ZeroDivisionError("the charger's answer divided by zero\nsecond line")
        return await super().call(station_id, action, payload, timeout=timeout)


async def test_an_unexpected_error_in_one_station_is_its_own_degraded_outcome(tmp_path: Path, caplog):
    ids = ["CP-1", "CP-2", "CP-3"]
    loaded = load(write(tmp_path / "p", {"s.yaml": "---\n".join(station_doc(s, "x") for s in ids),
                                         "cap.yaml": cap_policy("cap", ids, 16)}))  # fmt: skip
    store = Store(tmp_path / "s.db")
    engine = Reconciler(BrokenGateway([SimulatedChargePoint(s) for s in ids]), store, loaded, FAST)
    with caplog.at_level(logging.DEBUG, logger="reconciler.engine.reconcile"):
        outcomes = {o.station_id: o for o in await engine.apply(ids)}
    broken = outcomes["CP-2"]
    assert broken.status is Status.DEGRADED
    assert broken.reason == (
        "internal error while reconciling: ZeroDivisionError: the charger's answer divided by zero second line"
    )
    assert outcomes["CP-1"].status is Status.SYNCED and outcomes["CP-3"].status is Status.SYNCED
    assert store.conditions()["CP-2"].status is Status.DEGRADED
    assert any(r.exc_info and r.levelno == logging.DEBUG for r in caplog.records)  # the traceback, at debug
    planned = {o.station_id: o for o in await engine.plan(ids)}
    assert planned["CP-2"].status is Status.DEGRADED and planned["CP-1"].status is Status.SYNCED
    store.close()


def _strict(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.slow
async def test_plan_prints_a_nan_answer_as_a_reason_in_text_and_in_standard_json(tmp_path: Path):
    async with processes.setup(tmp_path, CLI_IDS) as (cli, fleet):
        client = fleet.clients[CLI_IDS[1]]
        honest_answer = client._answer

        def hostile(action: str, payload: Any, unique_id: str) -> str | None:
            reply = honest_answer(action, payload, unique_id)
            return corrupt(reply, "NaN limit") if action == "GetCompositeSchedule" and reply else reply

        client._answer = hostile
        code, out, err = await cli.run("plan")
        assert code == 1 and "Traceback" not in err + out, err
        assert "limit nan is not a finite number" in out
        code, out, err = await cli.run("plan", "--json")
        assert "Traceback" not in err, err
        document = _strict(out)
        text = json.dumps(document)
        assert "limit nan is not a finite number" in text and CLI_IDS[0] in text
