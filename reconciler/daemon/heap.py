"""Keep the idle daemon's garbage collection cheap: `gc.freeze` what lives as long as the daemon.

Once the fleet has connected and nothing is being reconciled, what is alive (policies, stations,
connections) is moved out of the collector's reach: each full collection walking it took over a
second at 10,000 stations. Again whenever the fleet has grown by a tenth since, and after
unfreezing (so that it is collected) what the connections that ended left behind: when a tenth of
the frozen fleet's connections ended, or any did and `refreeze_every` (an hour) has passed since.

From then on a full collection waits for FULL_COLLECTION_EVERY collections of the middle generation
(Python's default is 10): each drift check's outcome lives until the station's next one, so a round
of checks promotes every station's outcome to the oldest generation, and with the default a
10,000-station fleet ran 4 full collections a round, 40% of the daemon's CPU when idle
(bench/watch.py (c)). Cyclic garbage that reached the oldest generation waits longer (minutes); the
rest is freed by reference counting as before. `restore()` puts the thresholds back at shutdown.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import TYPE_CHECKING

from reconciler import clock
from reconciler.daemon.settings import FULL_COLLECTION_EVERY

if TYPE_CHECKING:
    from reconciler.daemon.service import Daemon

log = logging.getLogger("reconciler.daemon")


class HeapFreezer:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.threshold: tuple[int, int, int] | None = None  # the collector's thresholds before the first freeze

    async def run(self) -> None:
        daemon = self.daemon
        assert daemon.gateway is not None
        frozen, previous, ended, frozen_at = 0, -1, 0, 0.0
        while True:
            await asyncio.sleep(daemon.settings.freeze_check)
            connected = len(daemon.gateway.connected_stations())
            # settled: the same stations as last time, each reconciled at least once, none running now
            settled = connected == previous and len(daemon.latest) >= connected and daemon.queue.busy == 0
            previous = connected
            if not settled:
                continue
            # Frozen objects are never collected: what a station's connection left when it ended (its
            # websocket, its buffers: cycles) stays until the next freeze, which first unfreezes.
            gone = (daemon.central.connections_ended if daemon.central is not None else 0) - ended
            if (
                connected > frozen * 1.1
                or gone > frozen / 10
                or (gone and clock.monotonic() - frozen_at >= daemon.settings.refreeze_every)
            ):
                gc.unfreeze()
                gc.collect()
                gc.freeze()
                if self.threshold is None:
                    self.threshold = gc.get_threshold()
                    gc.set_threshold(*self.threshold[:2], max(self.threshold[2], FULL_COLLECTION_EVERY))
                frozen, ended, frozen_at = connected, ended + gone, clock.monotonic()
                log.debug("%d connected station(s) settled: %d objects frozen", connected, gc.get_freeze_count())

    def restore(self) -> None:
        if self.threshold is not None:
            gc.set_threshold(*self.threshold)
