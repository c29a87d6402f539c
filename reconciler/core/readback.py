"""What a read-back can verify: the answer a charger should give for any connector (0..N) under
its own reporting conventions.

Flow: (engine) observation + the profiles a charger should hold -> `reported_timeline` -> the
expected side of `diff.compare_connector`; `judge_unknown_start` for a transaction whose start
nobody saw. Pure: the window carries `now`.

Connector 0 is the station total. Chargers form it differently (`context.Connector0`), and a lost
ChargePointMaxProfile often shows only there: each connector alone still reports its hardware
maximum, while the total doubles. Its answers are read with the hardware maximum of every
connector together (`Normaliser.for_connector(0)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from reconciler.core.composite import compute_composite
from reconciler.core.context import Connector0, StationContext, Transaction
from reconciler.core.diff import ConnectorDrift, DriftClass, Normaliser, compare_connector, expected_timeline
from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import ChargingProfile, Kind, Purpose, epoch_seconds, format_time, from_epoch
from reconciler.core.safety import Window
from reconciler.core.timeline import Timeline


def reported_timeline(window: Window, installed: InstalledProfiles, connector: int) -> Timeline:
    """What a charger holding `installed` reports for `connector`, normalised like its answers."""
    composite = compute_composite(
        installed.pairs(), connector_id=connector, now=window.now, duration=window.horizon, unit=window.unit,
        context=window.context.judged(), transactions=window.transactions,
    )  # fmt: skip
    return expected_timeline(composite, window.normaliser.for_connector(connector))


# --- transactions whose start was not seen -----------------------------------------------------------

MAX_CANDIDATES = 64
_WEEK = 7 * 86_400


def relative_profiles(installed: InstalledProfiles, connector: int) -> list[ChargingProfile]:
    """The Relative profiles (anchored at a transaction's start) that apply to a connector; every
    connector's for connector 0."""
    return [
        e.profile
        for e in installed
        if e.profile.kind is Kind.RELATIVE
        and e.profile.purpose is not Purpose.CHARGE_POINT_MAX
        and (connector == 0 or e.connector_id in (0, connector))
    ]


def _candidate_starts(observed: Timeline, profiles: Sequence[ChargingProfile], now: int, placeholder: int) -> list[int]:
    """Starts that would put a period boundary of the profiles where the charger shows one."""
    offsets = {p.start_period for profile in profiles for p in profile.schedule.periods}
    offsets |= {profile.schedule.duration for profile in profiles if profile.schedule.duration is not None}
    starts = [placeholder]
    for boundary, _ in observed.steps[1:]:
        for offset in sorted(offsets):
            start = boundary - offset
            if now - _WEEK <= start <= now and start not in starts:
                starts.append(start)
    return starts[:MAX_CANDIDATES]


def judge_unknown_start(
    window: Window, installed: InstalledProfiles, connector: int, observed: Timeline, normaliser: Normaliser,
    drift: ConnectorDrift, inferred: dict[int, int],
) -> ConnectorDrift:  # fmt: skip
    """A connector where a transaction runs whose start was not seen, with Relative profiles anchored
    at that start: the charger's answer is not blamed on a foreign profile.

    The start is inferred when one puts the profiles' period boundaries where the charger shows
    them (`inferred` keeps it per connector, for connector 0 after the others); otherwise the
    connector is judged only against the ChargePointMaxProfile (never above the station cap, never
    uncapped where it caps) and the comparison says what it could not verify."""
    unknown = {
        c: tx for c, tx in window.transactions.items()
        if not tx.start_known and (connector in (0, c)) and relative_profiles(installed, c)
    }  # fmt: skip
    if not unknown:
        return drift
    known = {c: replace(tx, start=from_epoch(inferred[c])) for c, tx in unknown.items() if c in inferred}
    open_ = [c for c in unknown if c not in inferred]
    names = ", ".join(f"transaction {unknown[c].transaction_id or '(id unknown)'} on connector {c}" for c in unknown)
    if not open_ and known:
        here = replace(window, transactions={**window.transactions, **known})
        again = compare_connector(connector, reported_timeline(here, installed, connector), observed, normaliser)
        if again.in_sync:
            return replace(again, note=f"{names}: its start was not seen; inferred from the charger's answers")
    if len(open_) == 1 and not drift.in_sync:
        c = open_[0]
        transaction = unknown[c]
        now = epoch_seconds(window.now)
        for start in _candidate_starts(observed, relative_profiles(installed, c), now, transaction.start_s):
            assumed = {**window.transactions, **known, c: replace(transaction, start=from_epoch(start))}
            here = replace(window, transactions=assumed)
            again = compare_connector(connector, reported_timeline(here, installed, connector), observed, normaliser)
            if again.in_sync:
                inferred[c] = start
                when = format_time(from_epoch(start))
                return replace(again, note=f"{names}: its start was not seen; the charger's answers agree with {when}")
    if drift.in_sync:
        return replace(drift, note=f"{names}: its start was not seen; the charger's answers agree with one assumed now")
    caps = InstalledProfiles(tuple(e for e in installed if e.profile.purpose is Purpose.CHARGE_POINT_MAX))
    bound = compare_connector(connector, reported_timeline(window, caps, connector), observed, normaliser)
    above = tuple(m for m in bound.mismatches if m.drift in (DriftClass.MISSING, DriftClass.SHADOWED))
    note = (
        f"Relative profiles cannot be verified on connector {connector}: {names} started before the "
        "reconciler was listening (its start was not seen); checked only that the ChargePointMaxProfile holds"
    )
    classes = tuple(c for c in (DriftClass.MISSING, DriftClass.SHADOWED) if any(m.drift is c for m in above))
    return ConnectorDrift(connector, not above, classes, above, bound.expected, observed, note)


# --- what a read-back cannot show ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limitation:
    """Something a `Synced` could not verify. `code` is stable for programs: a daemon re-verifies a
    station with `tx-default-idle` when a transaction starts on one of its `connectors`."""

    code: str  # tx-default-idle | transaction-start-unknown | connector0-unsupported | no-boot
    message: str
    connectors: tuple[int, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "connectors": list(self.connectors)}


def limitations(
    context: StationContext, transactions: Mapping[int, Transaction], desired: InstalledProfiles,
    drift: Sequence[ConnectorDrift] = (),
) -> list[Limitation]:  # fmt: skip
    """What the charger's answers cannot show about the desired profiles, by its conventions."""
    out: list[Limitation] = []
    if not context.tx_default_when_idle:
        idle = [
            c for c in range(1, context.number_of_connectors + 1)
            if c not in transactions
            and any(e.profile.purpose is Purpose.TX_DEFAULT and e.connector_id in (0, c) for e in desired)
        ]  # fmt: skip
        if idle:
            where = f"connector {idle[0]}" if len(idle) == 1 else "connectors " + ", ".join(map(str, idle))
            out.append(Limitation(
                "tx-default-idle",
                f"TxDefaultProfile not verifiable while idle ({where}): this charger counts it only during a "
                "transaction; it is verified when one runs",
                tuple(idle),
            ))  # fmt: skip
    if context.connector0 is Connector0.UNSUPPORTED and context.number_of_connectors > 1:
        out.append(Limitation(
            "connector0-unsupported",
            "the station total (connector 0) is not verifiable: this charger does not report it",
            (0,),
        ))  # fmt: skip
    for d in drift:
        if d.note is not None:
            out.append(Limitation("transaction-start-unknown", d.note, (d.connector_id,)))
    return out
