"""`reconciler doctor --active`: the probe profiles and what their read-backs say.

Flow: (doctor.examine) an uncapped charger -> `run_probes`: three probes, one after the other, each
installed for two minutes from a minute ahead, read back (again, bounded, until it is in force: some
chargers enforce a moment after accepting), cleared by id. Probes are in W; on a charger that allows
A only, in A (and the other unit asked is then W):
1. a TxDefaultProfile on connector 1 in W, at (maxCurrentA + 1.37 A) per phase: shown while idle
   (simulateTransactionActive), the unit of the answer when asked in A (replyUnit), its value in A
   (convertUnits; limitStep from how 1.37 was rounded), and connector 0's answer (its convention:
   the probe alone = stack, the probe plus the other connectors' default = connector_sum, every
   connector's default = libocpp's sum (it converts a W lane at the default in A), nothing = cap_only);
2. a ChargePointMaxProfile at that times the connectors: connector 0 answers it or not, connector 1
   shows it (capOnConnectors) where uncovered time is not reported at the default limit;
3. a Daily Recurring profile anchored an hour ago whose second period starts two minutes from now:
   the charger reports the change then (rebaseRecurring) or an hour later.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from reconciler.engine.doctor import PROBE_STEP_A, Answer, Doctor, probe_window

WINDOW = 120  # seconds a probe lasts


async def run_probes(doctor: Doctor, before: Mapping[int, Answer], cap_doubt: str | None = None) -> None:
    hw, f = doctor.hw, doctor.findings
    top = int(f.capabilities.get("ChargeProfileMaxStackLevel", 8))
    per_a = hw.max_current_a + PROBE_STEP_A
    default_a = float(f.conventions.get("defaultLimitA", hw.max_current_a))
    start = probe_window(doctor, before)
    visible = await _tx_default_probe(doctor, start, top, per_a, default_a)
    if cap_doubt is None:
        cap_shown = await _cap_probe(doctor, start, top, per_a, default_a, visible)
    else:
        cap_shown = False
        f.notes.append(f"no ChargePointMaxProfile probe: {cap_doubt}")
        f.unknown("capOnConnectors", "no ChargePointMaxProfile probe was sent")
    await _recurring_probe(doctor, top, per_a, visible, cap_shown)


def _mid(answer: Answer, start: datetime) -> int:
    """The middle of a probe window, in seconds from an answer's own start (the charger's now)."""
    return int((start - answer.start).total_seconds()) + WINDOW // 2 if answer.start else 60 + WINDOW // 2


async def _tx_default_probe(doctor: Doctor, start: datetime, top: int, per_a: float, default_a: float) -> bool:
    hw, f = doctor.hw, doctor.findings
    limit_w = round(per_a * hw.per_amp, 1)
    refused = await doctor.install(doctor.probe("TxDefaultProfile", limit_w, start, top, schedule={"duration": WINDOW}))
    if refused is not None:
        f.notes.append(f"the TxDefaultProfile probe was refused ({refused})")
        return False

    def shows_probe(answer: Answer) -> bool:
        value = doctor.amps(answer, _mid(answer, start))
        return value is not None and abs(value - per_a) < 0.06

    own = doctor.unit  # the probe's unit; asked in the other one, the charger converts (or not)
    other = "A" if own == "W" else "W"
    in_own = await doctor.read_until(1, own, shows_probe)
    in_other = await doctor.composite(1, other)
    total = await doctor.composite(0, own) if hw.connectors > 1 else None
    await doctor.remove()
    visible = shows_probe(in_own)
    if visible:
        f.found("conventions", "simulateTransactionActive", True,
                "connector 1 reported the probe TxDefaultProfile while no transaction ran")  # fmt: skip
    else:
        f.found("conventions", "simulateTransactionActive", False,
                "connector 1 did not report the probe TxDefaultProfile while no transaction ran")  # fmt: skip
        for key in ("convertUnits", "limitStep", "replyUnit"):
            f.unknown(key, "the probe TxDefaultProfile did not show while idle; run again during a transaction")
        return False
    asked = f"asked in {other} about a profile in {own}"
    if in_other.unit == own:
        f.found("conventions", "replyUnit", "profile", f"{asked}, it answered in {own}")
    else:
        f.found("conventions", "replyUnit", "requested", f"{asked}, it answered in {other}")
        converted = in_other.at(_mid(in_other, start))
        if converted is not None and converted >= 0 and other == "W":
            converted /= hw.per_amp
        if converted is None or converted < 0 or abs(converted - default_a) < 0.06:
            why = f"asked in {other}, it did not report the probe set in {own} (answered in {own} it did)"
            f.found("conventions", "convertUnits", False, why)
        else:
            raw = in_own.at(_mid(in_own, start)) if own == "A" else in_other.at(_mid(in_other, start))
            assert raw is not None  # shown (own) or converted (other): a limit in A is there
            f.found("conventions", "convertUnits", True,
                    f"asked in {other}, it reported the probe set in {own} as {in_other.at(_mid(in_other, start)):g} "
                    f"{other}")  # fmt: skip
            step = None if abs(raw - per_a) < 0.005 else 0.1 if abs(raw - round(per_a, 1)) < 0.005 else (
                1.0 if abs(raw - round(per_a)) < 0.005 else -1.0)  # fmt: skip
            if step is None:
                f.notes.append(f"limitStep: none: {per_a:g} A came back unrounded")
            elif step > 0:
                f.found("conventions", "limitStep", step, f"{per_a:g} A came back as {raw:g} A")
    if total is not None:
        value = doctor.amps(total, _mid(total, start))
        n = hw.connectors
        if total.status in ("Rejected", "Error"):
            pass  # decided by the ChargePointMaxProfile probe: cap_only (it answers a cap) or unsupported
        elif value is None or abs(value - default_a) < 0.06:
            f.found("conventions", "connector0", "cap_only",
                    "connector 0 did not report the connector-1 probe (only its uncovered form)")  # fmt: skip
        elif abs(value - per_a) < 0.06:
            f.found("conventions", "connector0", "stack",
                    f"connector 0 reported the connector-1 probe alone ({value:g} A)")  # fmt: skip
        elif abs(value - (per_a + (n - 1) * default_a)) < 0.06:
            f.found("conventions", "connector0", "connector_sum",
                    f"connector 0 reported {value:g} A: the probe plus {n - 1} connector(s) at "
                    f"{default_a:g} A")  # fmt: skip
        elif abs(value - n * default_a) < 0.06:
            f.found("conventions", "connector0", "sum",
                    f"connector 0 reported {value:g} A: every connector at its default"
                    + (" (libocpp sums a lane in W at the default when asked in A)" if own == "W" else ""))  # fmt: skip
        else:
            f.unknown("connector0", f"connector 0 reported {value:g} A during the probe, which no known form explains")
    return True


async def _cap_probe(
    doctor: Doctor, start: datetime, top: int, per_a: float, default_a: float, tx_visible: bool
) -> bool:
    hw, f = doctor.hw, doctor.findings
    cap_a = per_a * hw.connectors
    limit_w = round(cap_a * hw.per_amp, 1)
    probe = doctor.probe("ChargePointMaxProfile", limit_w, start, top, schedule={"duration": WINDOW})
    refused = await doctor.install(probe)
    if refused is not None:
        f.notes.append(f"the ChargePointMaxProfile probe was refused ({refused})")
        return False
    one = await doctor.composite(1, doctor.unit)
    total = await doctor.composite(0, doctor.unit) if hw.connectors > 1 else None
    await doctor.remove()
    shown = False
    if total is not None:
        value = doctor.amps(total, _mid(total, start))
        if total.status in ("Rejected", "Error"):
            if f.conventions.get("uncoveredTime") == "rejected" and not tx_visible:
                f.unknown("connector0", "connector 0 answered Rejected to a ChargePointMaxProfile and otherwise")
            else:
                f.found("conventions", "connector0", "unsupported",
                        f"connector 0 answered {total.error or 'Rejected'} though a ChargePointMaxProfile "
                        "applied")  # fmt: skip
        elif value is not None and abs(value - cap_a) < 0.06:
            shown = True
            if "connector0" not in f.conventions:
                f.found("conventions", "connector0", "cap_only",
                        f"connector 0 reported the ChargePointMaxProfile probe ({value:g} A) but not a TxDefaultProfile"
                        + ("" if tx_visible else " (stack and cap_only agree while no transaction runs)"))  # fmt: skip
        elif value is not None and "connector0" not in f.conventions:
            f.found("conventions", "connector0", "sum",
                    f"connector 0 reported {value:g} A, its connectors' defaults, under a {cap_a:g} A cap")  # fmt: skip
    if f.conventions.get("uncoveredTime") == "default_limit":
        f.unknown("capOnConnectors", f"uncovered time reads {default_a:g} A, below any harmless cap; cannot tell")
    else:
        value = doctor.amps(one, _mid(one, start))
        on_connectors = value is not None and abs(value - cap_a) < 0.06
        f.found(
            "conventions",
            "capOnConnectors",
            on_connectors,
            "connector 1 " + ("reported" if on_connectors else "did not report") + " the ChargePointMaxProfile",
        )
        shown = shown or on_connectors
    if not shown and not tx_visible:
        f.notes.append("the charger accepted the probes but reported none of them: it may accept profiles "
                       "without enforcing them")  # fmt: skip
        f.conventions.pop("simulateTransactionActive", None)  # idle TxDefault, or nothing enforced: no telling
        f.evidence.pop("simulateTransactionActive", None)
        f.unknown(
            "simulateTransactionActive",
            "neither probe showed: TxDefaultProfile may count only during a "
            "transaction, or the charger may not enforce what it accepts; run again during a transaction",
        )
    return shown


async def _recurring_probe(doctor: Doctor, top: int, per_a: float, tx_visible: bool, cap_shown: bool) -> None:
    hw, f = doctor.hw, doctor.findings
    if not tx_visible and not cap_shown:
        f.unknown("rebaseRecurring", "no probe showed, so a Recurring one would not either")
        return
    first = await doctor.composite(1, doctor.unit, duration=60)
    now = first.start or doctor.now()
    anchor = now - timedelta(hours=1)
    purpose, connector = ("TxDefaultProfile", 1) if tx_visible else ("ChargePointMaxProfile", 0)
    scale = 1 if tx_visible else hw.connectors
    low, high = round(per_a * scale * hw.per_amp, 1), round((per_a + 1) * scale * hw.per_amp, 1)
    payload = doctor.probe(purpose, low, anchor, top, chargingProfileKind="Recurring", recurrencyKind="Daily")
    payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"].append(
        {"startPeriod": 3600 + WINDOW, "limit": doctor.in_unit(high)}
    )
    refused = await doctor.install(payload)
    if refused is not None:
        f.notes.append(f"the Recurring probe was refused ({refused})")
        return
    answer = await doctor.composite(connector, doctor.unit, duration=3 * 3600)
    await doctor.remove()
    high_shown, near = (high, 1.0) if answer.unit != "A" else (high / hw.per_amp, 0.3)
    change = next((begin for begin, limit in answer.periods if abs(limit - high_shown) < near), None)
    if answer.start is None or change is None:
        f.unknown("rebaseRecurring", "the Recurring probe's second period did not show")
        return
    at = (answer.start + timedelta(seconds=change) - now).total_seconds()
    if abs(at - WINDOW) <= 5:
        f.found("conventions", "rebaseRecurring", True, "a Daily profile's next period showed when it starts")
    elif abs(at - (3600 + WINDOW)) <= 5:
        f.found("conventions", "rebaseRecurring", False,
                "a Daily profile anchored an hour ago was reported as if it started at the request")  # fmt: skip
    else:
        f.unknown("rebaseRecurring", f"the Recurring probe's second period showed {at:.0f} s ahead, which fits neither")
