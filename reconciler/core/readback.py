"""What a read-back can verify: the answer a charger should give for any connector (0..N) under
its own reporting conventions.

Flow: (engine) observation + the profiles a charger should hold -> `reported_timeline` -> the
expected side of `diff.compare_connector`. Pure: the window carries `now`.

Connector 0 is the station total. Chargers form it differently (`context.Connector0`), and a lost
ChargePointMaxProfile often shows only there: each connector alone still reports its hardware
maximum, while the total doubles. Its answers are read with the hardware maximum of every
connector together (`Normaliser.for_connector(0)`).
"""

from __future__ import annotations

from reconciler.core.composite import compute_composite
from reconciler.core.diff import expected_timeline
from reconciler.core.installed import InstalledProfiles
from reconciler.core.safety import Window
from reconciler.core.timeline import Timeline


def reported_timeline(window: Window, installed: InstalledProfiles, connector: int) -> Timeline:
    """What a charger holding `installed` reports for `connector`, normalised like its answers."""
    composite = compute_composite(
        installed.pairs(), connector_id=connector, now=window.now, duration=window.horizon, unit=window.unit,
        context=window.context.judged(), transactions=window.transactions,
    )  # fmt: skip
    return expected_timeline(composite, window.normaliser.for_connector(connector))
