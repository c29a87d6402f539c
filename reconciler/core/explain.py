"""Why a composite period has its limit: the candidates of each purpose at its start, and the winner.

Flow: (cli explain) desired profiles -> `explain_composite` -> `Explanation` per period -> text.
It re-derives, for one instant, what `composite.py` decides for the whole window: within a purpose
the highest stackLevel with a period covering the instant governs; TxProfile replaces
TxDefaultProfile; ChargePointMaxProfile caps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.core.composite import Composite, CompositePeriod, compute_composite
from reconciler.core.context import StationContext, Transaction
from reconciler.core.entries import profile_entries
from reconciler.core.profiles import ChargingProfile, Purpose, RateUnit, epoch_seconds
from reconciler.core.units import convert


@dataclass(frozen=True, slots=True)
class Candidate:
    connector_id: int
    profile: ChargingProfile
    limit: float  # in the composite's unit
    wins: bool


@dataclass(frozen=True, slots=True)
class Explanation:
    period: CompositePeriod
    candidates: Mapping[Purpose, tuple[Candidate, ...]]  # highest stack first
    reason: str


def _candidates(
    installed: Sequence[tuple[int, ChargingProfile]], connector_id: int, at: int, unit: RateUnit,
    ctx: StationContext, transactions: Mapping[int, Transaction],
) -> dict[Purpose, list[tuple[int, ChargingProfile, float]]]:  # fmt: skip
    found: dict[Purpose, list[tuple[int, ChargingProfile, float]]] = {p: [] for p in Purpose}
    transaction = transactions.get(connector_id)
    session = epoch_seconds(transaction.start) if transaction is not None else None
    for where, profile in installed:
        applies = where == 0 or where == connector_id
        if profile.purpose is Purpose.CHARGE_POINT_MAX:
            applies = where == 0
        if not applies:
            continue
        for entry in profile_entries(profile, at, at + 1, session, ctx):
            if entry[0] <= at < entry[1]:
                phases = entry[3] or ctx.default_number_phases
                limit = convert(entry[2], profile.schedule.charging_rate_unit, unit, ctx.supply_voltage, phases)
                found[profile.purpose].append((where, profile, limit))
                break
    for items in found.values():
        items.sort(key=lambda item: -item[1].stack_level)
    return found


def explain_composite(
    installed: Sequence[tuple[int, ChargingProfile]],
    *,
    connector_id: int,
    now: datetime,
    duration: int,
    unit: RateUnit,
    context: StationContext,
    transactions: Mapping[int, Transaction] | None = None,
) -> tuple[Composite, list[Explanation]]:
    transactions = transactions or {}
    composite = compute_composite(
        installed, connector_id=connector_id, now=now, duration=duration, unit=unit, context=context,
        transactions=transactions,
    )  # fmt: skip
    start = epoch_seconds(composite.schedule_start)
    out = []
    for period in composite.periods:
        found = _candidates(installed, connector_id, start + period.start_period, unit, context, transactions)
        tx_source = Purpose.TX if found[Purpose.TX] else Purpose.TX_DEFAULT
        candidates = {
            purpose: tuple(
                Candidate(c, p, limit, wins=i == 0 and purpose in (tx_source, Purpose.CHARGE_POINT_MAX))
                for i, (c, p, limit) in enumerate(items)
            )
            for purpose, items in found.items()
        }
        out.append(Explanation(period, candidates, _reason(period, candidates, tx_source)))
    return composite, out


def _reason(period: CompositePeriod, candidates: Mapping[Purpose, tuple[Candidate, ...]], tx_source: Purpose) -> str:
    governor = period.governor
    if governor is None:
        return "no profile covers this period: the charger's default applies"
    if governor.summed:
        return "connector 0: the sum of each connector's composite"
    rivals = candidates.get(governor.purpose or Purpose.TX_DEFAULT, ())
    parts = []
    if len(rivals) > 1:
        others = ", ".join(f"#{c.profile.charging_profile_id} stack {c.profile.stack_level}" for c in rivals[1:])
        parts.append(f"highest stackLevel of its purpose (over {others})")
    if governor.purpose is Purpose.CHARGE_POINT_MAX:
        lane = candidates.get(tx_source, ())
        if lane:
            parts.append(f"caps #{lane[0].profile.charging_profile_id}'s {lane[0].limit:.1f}")
        else:
            parts.append("the only limit: no Tx/TxDefault profile covers this period")
    else:
        if governor.purpose is Purpose.TX and candidates.get(Purpose.TX_DEFAULT):
            parts.append("a TxProfile replaces the TxDefaultProfile")
        caps = candidates.get(Purpose.CHARGE_POINT_MAX, ())
        if caps:
            parts.append(
                f"below the ChargePointMaxProfile #{caps[0].profile.charging_profile_id} ({caps[0].limit:.1f})"
            )
    return "; ".join(parts) or "the only profile covering this period"
