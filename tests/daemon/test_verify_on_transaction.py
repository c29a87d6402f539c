"""Synced says what was verified (issue 9 item 7): a charger that counts its TxDefaultProfile only
during a transaction (MicroOcpp) is Synced while idle with "not verifiable while idle" in the
reason, and the daemon verifies it when a transaction starts, not at the next periodic check.
Before, a transaction start queued a reconcile only for stations with per-session profiles."""

from __future__ import annotations

from pathlib import Path

from reconciler.core.context import Connector0
from reconciler.core.status import Status
from reconciler.simulator.quirks import Quirks, UncoveredReport
from tests.daemon.kit import running
from tests.engine.fleetkit import cap_policy, station_doc

IDS = ["CP-0001", "CP-0002"]
MICRO_OCPP = Quirks(uncovered=UncoveredReport.MINUS_ONE, convert_units=False, tx_default_when_idle=False,
                    connector0=Connector0.CAP_ONLY)  # fmt: skip


def files() -> dict[str, str]:
    stations = "---\n".join(station_doc(s, "depot").replace("spec: {", "spec: {model: microocpp, ") for s in IDS)
    default = cap_policy("defaults", IDS, 10, profile_id=5, stack=1)
    default = default.replace("ChargePointMaxProfile", "TxDefaultProfile")
    return {"stations.yaml": stations, "cap.yaml": cap_policy("cap", IDS, 16), "default.yaml": default}


async def test_a_transaction_start_has_the_daemon_verify_what_idle_could_not(tmp_path: Path) -> None:
    async with running(tmp_path, files(), IDS, quirks=MICRO_OCPP) as run:
        await run.synced()

        def reason() -> str:
            condition = run.daemon.conditions()["CP-0001"]
            return condition.reason or ""

        assert "not verifiable while idle (connectors 1, 2)" in reason(), reason()
        transaction = await run.fleet["CP-0001"].start_transaction(1)
        assert transaction is not None
        await run.until(lambda: "not verifiable while idle (connector 2)" in reason(), "connector 1 verified")
        assert run.condition("CP-0001") is Status.SYNCED
