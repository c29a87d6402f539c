"""`reconciler watch --via` as a real process: what `GET /stations` says of `connected` is what the
proxy said at the last call, not a constant. Daemon A holds the chargers (embedded Central System,
two simulated stations of three connected); daemon B reaches them through A's inject API with
credentials in its `--via` URL. The station A does not hold is `connected: false`, Offline with the
proxy's reason (no credentials in it) on B, and becomes connected once it connects to A (B's next
check finds it; no request needed). When the chargers leave A, B's drift checks turn them
`connected: false` and Offline, and notify it (no disconnect event comes through a proxy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.fleet import Fleet
from tests.daemon.prockit import environment, receiver, watch_process
from tests.engine.fleetkit import PASSWORD, cap_policy, station_doc, write

pytestmark = pytest.mark.slow
IDS = ["CP-0001", "CP-0002", "CP-0003"]
A_AUTH = ("admin", "via-a-api-pw-5e1c")
B_AUTH = ("admin", "via-b-api-pw-90d2")


def away_checks(output: str) -> list[str]:
    """B's log lines of its checks of CP-0003 while A does not hold it."""
    return [line for line in output.splitlines() if "CP-0003 Offline in" in line]


async def test_via_daemon_shows_the_proxys_not_connected_station_as_offline(tmp_path: Path) -> None:
    policies = write(tmp_path / "policies", {"stations.yaml": "---\n".join(station_doc(s, "depot") for s in IDS),
                                             "caps.yaml": cap_policy("caps", IDS, 16)})  # fmt: skip
    a_args = ["-p", str(policies), "--db", str(tmp_path / "a.db")]
    with receiver() as notices:
        async with watch_process(tmp_path, a_args, environment(PASSWORD, A_AUTH[1]), A_AUTH) as a:
            fleet = Fleet(a.ws, 0, backoff_initial=0.05, backoff_max=0.3)
            for station in IDS[:2]:
                fleet.add(SimulatedChargePoint(station, connectors=2, max_current=32), password=PASSWORD)
            async with fleet:
                await a.conditions(IDS[:2])
                via = f"http://{A_AUTH[0]}:{A_AUTH[1]}@{a.api.removeprefix('http://')}/"
                b_args = [
                    "-p",
                    str(policies),
                    "--db",
                    str(tmp_path / "b.db"),
                    "--via",
                    via,
                    "--drift-interval",
                    "2",
                    "--notify",
                    notices.url,
                ]
                b_env = {"RECONCILER_API_PASSWORD": B_AUTH[1], "RECONCILER_STATION_PASSWORD": ""}
                async with watch_process(tmp_path, b_args, b_env, B_AUTH, listen=False) as b:
                    listed = await b.poll(
                        "/stations",
                        lambda body: (
                            {s["id"]: s["condition"] for s in body}.get("CP-0003") == "Offline"
                            and all(s["condition"] not in (None, "Progressing") for s in body)
                        ),
                        "every station judged once on B",
                    )
                    by_id = {s["id"]: s for s in listed}
                    # A holds CP-0001/2: B reached them (their caps are A's, foreign to B's ledger: not Synced)
                    assert by_id["CP-0001"]["connected"] is True and by_id["CP-0002"]["connected"] is True
                    offline = by_id["CP-0003"]
                    assert offline["connected"] is False, offline
                    assert "not connected" in offline["reason"], offline
                    assert A_AUTH[1] not in (await b.get("/stations")).text
                    detail = (await b.get("/stations/CP-0003")).json()
                    assert detail["connected"] is False and detail["condition"] == "Offline"
                    # away from the proxy is not a failure: checked again at the drift interval (2 s), no
                    # backoff (which grows to 5 min), no "gave up" (before: backoff from the first check)
                    await b.poll("/readyz", lambda _: len(away_checks(b.output())) >= 3, "CP-0003 re-checked")
                    assert all("next check in ~2s" in line for line in away_checks(b.output()))
                    assert "giving up for now" not in b.output()

                    # CP-0003 connects to A: B's next check (a retry, no request) finds it connected
                    fleet.add(SimulatedChargePoint("CP-0003", connectors=2, max_current=32), password=PASSWORD)
                    await b.poll(
                        "/stations",
                        lambda body: (
                            {s["id"]: (s["connected"], s["condition"]) for s in body}["CP-0003"][0] is True
                            and {s["id"]: s["condition"] for s in body}["CP-0003"] != "Offline"
                        ),
                        "CP-0003 connected on B",
                    )

                    # the chargers leave A: B's next drift check finds each not connected, and says so
                    await fleet.stop()
                    await b.poll(
                        "/stations",
                        lambda body: all(not s["connected"] and s["condition"] == "Offline" for s in body),
                        "every station Offline and not connected on B",
                    )
                    await b.poll(
                        "/readyz",
                        lambda _: (
                            {(n.get("kind"), n.get("station_id")) for n in notices.bodies}
                            >= {("condition.Offline", s) for s in IDS}
                        ),
                        "condition.Offline notified for each",
                    )
                    assert all(A_AUTH[1] not in str(n) for n in notices.bodies)
                assert A_AUTH[1] not in b.output()
