"""`reconciler doctor` against each simulator quirk setting prints the convention it implies (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import clock
from reconciler.cli.doctor_cmd import findings_yaml
from reconciler.core.context import Connector0, ReplyUnit
from reconciler.engine.calls import Caller, RateLimit, RetryPolicy
from reconciler.engine.doctor import PROBE_ID, Hardware, examine
from reconciler.simulator.quirks import Quirks, UncoveredReport
from tests.engine.fleetkit import rig

STATION = "CP-0001"
HARDWARE = Hardware(connectors=2, max_current_a=32, phases=3, voltage=230)


async def doctor(tmp: Path, quirks: Quirks, *, active: bool = True) -> str:
    async with rig(tmp, 1, quirks=quirks) as r:
        assert (await r.cs.wait_booted(STATION, 10)).ok
        caller = Caller(r.cs, RetryPolicy(call_timeout=5.0), RateLimit(None))
        info = r.cs.station(STATION)
        boot = {"vendor": info.vendor, "model": info.model, "firmware": info.firmware}
        findings = await examine(caller, STATION, HARDWARE, active=active, now=clock.now, boot=boot)
        assert r.fleet[STATION].installed.by_id(PROBE_ID) is None  # every probe removed
        return findings_yaml(STATION, findings, HARDWARE, active=active)


UNDETERMINED_TX = "# not determined: simulateTransactionActive: neither probe showed"
CASES = {
    "defaults": (Quirks(), ["uncoveredTime: default_limit", "defaultLimitA: 32", "connector0: sum",
                            "simulateTransactionActive: true", "convertUnits: true", "limitStep: 0.1",
                            "replyUnit: requested", "rebaseRecurring: true", "ChargeProfileMaxStackLevel: 20",
                            'vendor: "reconciler"']),
    "uncovered=minus_one": (Quirks(uncovered=UncoveredReport.MINUS_ONE), ["uncoveredTime: minus_one",
                                                                          "capOnConnectors: true"]),
    "uncovered=empty": (Quirks(uncovered=UncoveredReport.EMPTY), ["uncoveredTime: no_limit"]),
    "uncovered=rejected": (Quirks(uncovered=UncoveredReport.REJECTED), ["uncoveredTime: rejected"]),
    "convert_units=false": (Quirks(convert_units=False), ["convertUnits: false"]),
    "whole_amps=true": (Quirks(whole_amps=True), ["limitStep: 1 "]),
    "connector0=stack": (Quirks(connector0=Connector0.STACK), ["connector0: stack"]),
    "connector0=cap_only": (Quirks(connector0=Connector0.CAP_ONLY), ["connector0: cap_only"]),
    "connector0=connector_sum": (Quirks(connector0=Connector0.CONNECTOR_SUM), ["connector0: connector_sum"]),
    "connector0=unsupported": (Quirks(connector0=Connector0.UNSUPPORTED), ["connector0: unsupported"]),
    # Uncovered time at the default limit hides the harmless cap probe too: no probe shows, which a
    # charger that does not enforce what it accepts would answer as well. Not a guess: undetermined.
    "tx_default_when_idle=false": (Quirks(tx_default_when_idle=False), [UNDETERMINED_TX]),
    "tx_default_when_idle=false, uncovered=minus_one": (
        Quirks(tx_default_when_idle=False, uncovered=UncoveredReport.MINUS_ONE),
        ["simulateTransactionActive: false", "capOnConnectors: true"]),
    "reply_unit=profile": (Quirks(reply_unit=ReplyUnit.PROFILE), ["replyUnit: profile"]),
    "cap_on_connectors=false": (Quirks(cap_on_connectors=False, uncovered=UncoveredReport.MINUS_ONE),
                                ["capOnConnectors: false"]),
    "rebase_recurring=false": (Quirks(rebase_recurring=False), ["rebaseRecurring: false"]),
    "report_stack_level=false": (Quirks(report_stack_level=False), ["ChargeProfileMaxStackLevel is not reported"]),
    "max_stack_level=8": (Quirks(max_stack_level=8, max_periods=24, max_profiles=10),
                          ["ChargeProfileMaxStackLevel: 8", "ChargingScheduleMaxPeriods: 24"]),
    "clock_offset=-120": (Quirks(clock_offset=-120), ["# clock skew: -12", "MORE THAN the 30 s"]),
    "accepted_not_enforced=true": (Quirks(accepted_not_enforced=True), ["reported none of them", UNDETERMINED_TX]),
    "composite_unsupported=true": (Quirks(composite_unsupported=True), ["NotSupported"]),
    # An A-only charger refuses a probe in W: the probes go in A, and the other unit is W.
    "allowed_units=A": (Quirks(allowed_units="A"), ["ChargingScheduleAllowedChargingRateUnit: [A]",
                        "simulateTransactionActive: true", "replyUnit: requested", "convertUnits: true",
                        "limitStep: 0.1", "connector0: sum", "rebaseRecurring: true"]),
    "allowed_units=A, convert_units=false": (
        Quirks(allowed_units="A", convert_units=False, uncovered=UncoveredReport.MINUS_ONE),
        ["simulateTransactionActive: true", "convertUnits: false", "capOnConnectors: true"]),
    "allowed_units=W": (Quirks(allowed_units="W"), ["ChargingScheduleAllowedChargingRateUnit: [W]",
                        "simulateTransactionActive: true", "convertUnits: true"]),
    "micro_ocpp": (Quirks(uncovered=UncoveredReport.MINUS_ONE, convert_units=False, tx_default_when_idle=False,
                          connector0=Connector0.CAP_ONLY),
                   ["uncoveredTime: minus_one", "simulateTransactionActive: false", "connector0: cap_only",
                    "capOnConnectors: true"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
async def test_doctor_prints_the_convention_a_quirk_implies(tmp_path: Path, case: str):
    quirks, expected = CASES[case]
    printed = await doctor(tmp_path, quirks)
    for line in expected:
        assert line in printed, f"{case}: {line!r} not in\n{printed}"


async def test_reading_alone_sends_no_profile_and_says_what_it_cannot_tell(tmp_path: Path):
    printed = await doctor(tmp_path, Quirks(uncovered=UncoveredReport.MINUS_ONE), active=False)
    assert "uncoveredTime: minus_one" in printed and "simulateTransactionActive" not in printed.split("# not")[0]
    assert "# not determined: convertUnits: reading alone cannot tell: run with --active" in printed


async def test_a_probe_whose_answer_was_lost_is_removed_all_the_same(tmp_path: Path):
    # The charger stores each probe but its answer never comes: the probe may be on the charger.
    async with rig(tmp_path, 1, quirks=Quirks(lose_answers="SetChargingProfile")) as r:
        assert (await r.cs.wait_booted(STATION, 10)).ok
        caller = Caller(r.cs, RetryPolicy(attempts=1, call_timeout=0.3), RateLimit(None))
        findings = await examine(caller, STATION, HARDWARE, active=True, now=clock.now)
        assert any("refused" in note for note in findings.notes)
        assert r.fleet[STATION].installed.by_id(PROBE_ID) is None  # never left behind, unowned


async def test_a_charger_that_enforces_a_moment_after_accepting_is_read_when_the_probe_is_in_force(tmp_path: Path):
    # enforce_delay_ms: SetChargingProfile is Accepted at once and in force 1.5 s later. A single
    # read-back right after the Set called it `simulateTransactionActive: false` (wrong), learnt
    # nothing of units or connector 0, and the Clear sent before the probe was stored answered
    # Unknown: the probe was left on the charger with a "clear it by hand" warning.
    printed = await doctor(tmp_path, Quirks(enforce_delay_ms=1500))
    for line in ("simulateTransactionActive: true", "convertUnits: true", "limitStep: 0.1", "connector0: sum",
                 "rebaseRecurring: true"):  # fmt: skip
        assert line in printed, f"{line!r} not in\n{printed}"
    assert "could not be cleared" not in printed and "reported none of them" not in printed, printed
