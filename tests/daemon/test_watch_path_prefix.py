"""`reconciler watch --path-prefix PATH`: as for plan/apply, stations connect to PATH{stationId};
one connecting anywhere else is refused (404) and stays Offline (issue 10)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from reconciler.simulator.fleet import Fleet
from tests.daemon.kit import limit_a
from tests.daemon.prockit import environment, watch_process
from tests.engine.fleetkit import PASSWORD, cap_policy, station_doc, write

pytestmark = pytest.mark.slow
AUTH = ("admin", "prefix-api-pw")
IDS = ["CP-0001", "CP-0002"]


async def test_watch_serves_stations_on_the_path_prefix_only(tmp_path: Path) -> None:
    policies = write(tmp_path / "p", {"s.yaml": "---\n".join(station_doc(s, "x") for s in IDS),
                                      "c.yaml": cap_policy("caps", IDS, 16)})  # fmt: skip
    args = ["-p", str(policies), "--db", str(tmp_path / "state.db"), "--path-prefix", "/ocpp/"]
    async with watch_process(tmp_path, args, environment(PASSWORD, AUTH[1]), AUTH) as daemon:
        assert f"{daemon.ws}/ocpp/{{stationId}}" in daemon.output()
        basic = base64.b64encode(f"CP-0002:{PASSWORD}".encode()).decode()
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"{daemon.ws}/CP-0002", subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                                          additional_headers={"Authorization": f"Basic {basic}"}):  # fmt: skip
                pass
        assert refused.value.response.status_code == 404
        assert b"/ocpp/{stationId}" in refused.value.response.body
        async with Fleet(f"{daemon.ws}/ocpp", 1, prefix="CP-", password=PASSWORD, backoff_initial=0.05) as fleet:
            await daemon.conditions(["CP-0001"])
            assert limit_a(fleet["CP-0001"], 0) == 16
        stations = await daemon.conditions(["CP-0002"], "Offline")
        assert not next(s for s in stations if s["id"] == "CP-0002")["connected"]
    assert "refused a connection to '/CP-0002'" in daemon.output()
