"""A charger's model is chosen from its BootNotification when the policies name none (issue 9:
"A model library as data"): a MicroOcpp station is read by MicroOcpp's conventions without a line
of configuration, and says what those conventions cannot show."""

from __future__ import annotations

from pathlib import Path

from reconciler.cli.render import outcome_json
from reconciler.core.context import Connector0
from reconciler.core.status import Status
from reconciler.simulator.charge_point import SimulatedChargePoint
from reconciler.simulator.quirks import Quirks, UncoveredReport
from tests.engine.fleetkit import PASSWORD, WAIT, cap_policy, load, rig, station_doc, write

MICRO_OCPP = Quirks(
    uncovered=UncoveredReport.MINUS_ONE, convert_units=False, tx_default_when_idle=False,
    connector0=Connector0.CAP_ONLY, max_stack_level=8, max_periods=24, max_profiles=10,
)  # fmt: skip
STATION = "MO-0001"


def policies(tmp: Path):
    default = cap_policy("defaults", [STATION], 10, profile_id=5, stack=1).replace(
        "ChargePointMaxProfile", "TxDefaultProfile"
    )
    return load(write(tmp / "p", {"s.yaml": station_doc(STATION, "x"), "cap.yaml": cap_policy("cap", [STATION], 16),
                                  "d.yaml": default}))  # fmt: skip


async def test_a_micro_ocpp_charger_is_read_by_the_library_model_its_boot_names(tmp_path: Path):
    async with rig(tmp_path, 0) as r:
        cp = SimulatedChargePoint(STATION, quirks=MICRO_OCPP, identity=("MicroOcpp", "MicroOcpp Simulator", "1.2.0"))
        r.cs.add_station(STATION, PASSWORD)
        r.fleet.add(cp, password=PASSWORD, backoff_initial=0.05, backoff_max=0.3)
        assert await r.cs.wait_for_stations([STATION], WAIT) == {STATION}
        outcome = (await r.reconciler(policies(tmp_path)).apply([STATION]))[0]
        assert outcome.status is Status.SYNCED, outcome.reason
        assert "TxDefaultProfile not verifiable while idle" in (outcome.reason or "")
        planned = (await r.reconciler(policies(tmp_path)).plan([STATION]))[0]
        assert planned.status is Status.SYNCED and not planned.plan.actions, planned.reason
        document = outcome_json(planned)
        assert document["chargerModel"].startswith("microocpp (from the library, chosen by its BootNotification")
        assert "MicroOcpp / MicroOcpp Simulator / 1.2.0" in document["chargerModel"]
