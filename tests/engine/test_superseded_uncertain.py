"""Why an uncertain ledger entry superseded by a later Set of the same id is not compacted away.

OCPP replaces a profile with the same id, so one might drop an entry once a later Set of its id
was answered Accepted. But "Accepted" is what the chargers the ledger doubts say without acting on
it: the `accepted_not_enforced` charger answers Accepted and keeps the earlier profile of that id
in force. Here #1 v1 (10 A, below v0's 16 A and v2's 18 A) is accepted and enforced late (after
its read-back gave up: NotEnforced), then v2 (same id) is answered Accepted and ignored: the charger
ends with v1 although a later Set of #1 was accepted. The ledger keeps v1 as a possible state, so
the next plan explains the charger and converges. With v1's entry dropped, no state the ledger
allows explains 10 A: the plan was blocked blaming a foreign cap (tried: "blocked: connector 1
extra ... expected 18 A, observed 10 A"). Real websockets, simulated charger, SQLite.
(A regression guard: it passes before and after.)"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from reconciler.core.status import Status
from tests.daemon.kit import limit_a
from tests.engine.fleetkit import WAIT, cap_policy, load, rig, station_doc, write

CP = "CP-0001"


def files(limit: float) -> dict[str, str]:
    return {"s.yaml": station_doc(CP, "x"), "cap.yaml": cap_policy("cap", [CP], limit, profile_id=1, stack=0)}


async def test_a_version_enforced_late_after_a_later_accepted_set_of_its_id_is_still_explained(tmp_path: Path):
    async with rig(tmp_path, 1) as r:
        cp = r.fleet[CP]
        first = await r.reconciler(load(write(tmp_path / "p", files(16)))).reconcile_station(CP)
        assert first.status is Status.SYNCED, first.reason
        cp.quirks = replace(cp.quirks, enforce_delay_ms=4000)  # far beyond the read-back's attempts
        late = await r.reconciler(load(write(tmp_path / "p", files(10)))).reconcile_station(CP)
        assert late.status is Status.DEGRADED, late.reason
        cp.quirks = replace(cp.quirks, enforce_delay_ms=0, accepted_not_enforced=True)
        ignored = await r.reconciler(load(write(tmp_path / "p", files(18)))).reconcile_station(CP)
        assert ignored.status is Status.DEGRADED, ignored.reason
        states = [(e.profile.id, e.state.value) for e in r.store.ledger(CP)]
        assert states == [(1, "Accepted"), (1, "NotEnforced"), (1, "NotEnforced")], states
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while limit_a(cp) != 10:  # v1 lands now, after v2 of the same id was answered Accepted
            assert loop.time() < deadline, "the late profile never took effect"
            await asyncio.sleep(0.05)
        cp.quirks = replace(cp.quirks, accepted_not_enforced=False)
        planned = (await r.reconciler(load(tmp_path / "p")).plan([CP]))[0]
        assert planned.plan is not None and not planned.plan.blocked and not planned.plan.foreign, planned.reason
        healed = await r.reconciler(load(tmp_path / "p")).reconcile_station(CP)
        assert healed.status is Status.SYNCED, healed.reason
        assert limit_a(cp) == 18
        assert [(e.profile.id, e.state.value) for e in r.store.ledger(CP)] == [(1, "Accepted")]
