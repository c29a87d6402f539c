"""Notifications: POST a JSON event to each `--notify URL` when something needs a person's eye.

Flow: the daemon -> `Notifier.send(event)` (never blocks: the event joins one bounded queue per
receiver; when one is full its oldest goes) -> one background task per receiver POSTs its queue in
order with httpx, retrying with exponential backoff and jitter (a few attempts, then the event is
dropped and counted). A slow, hanging or failing receiver delays only its own notifications: never
reconciling, never another receiver.

Events: condition changes to Degraded or Offline, healed drift, an invalid policy commit, a station
given up on for now. Body: `{"kind", "station_id", "condition", "reason", "revision", "at"}`.
Receiver URLs may carry credentials; they are never logged (only the host is).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import httpx

log = logging.getLogger(__name__)


class Notifier:
    def __init__(
        self,
        urls: Sequence[str],
        *,
        attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 10.0,
        timeout: float = 5.0,
        maxsize: int = 1000,
        counted: Callable[[str], None] | None = None,
    ) -> None:
        self.urls = list(urls)
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.counted = counted
        self._queues: list[asyncio.Queue[dict[str, Any]]] = [asyncio.Queue(maxsize) for _ in self.urls]
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random()

    def send(self, event: dict[str, Any]) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self._count("dropped")
            queue.put_nowait(event)

    def _count(self, result: str) -> None:
        if self.counted is not None:
            self.counted(result)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(url, queue), name=f"notifier {httpx.URL(url).host}")
                for url, queue in zip(self.urls, self._queues, strict=True)
            ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, url: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while True:
                event = await queue.get()
                await self._deliver(client, url, event)

    async def _deliver(self, client: httpx.AsyncClient, url: str, event: dict[str, Any]) -> None:
        host = httpx.URL(url).host
        for attempt in range(self.attempts):
            try:
                response = await client.post(url, json=event)
                if response.status_code < 300:
                    self._count("delivered")
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = exc.__class__.__name__
            if attempt + 1 < self.attempts:
                ceiling = min(self.max_delay, self.base_delay * 2**attempt)
                await asyncio.sleep(self._rng.uniform(ceiling / 2, ceiling))
        log.warning(
            "notification %s to %s failed after %d attempts (%s)", event.get("kind"), host, self.attempts, problem
        )
        self._count("failed")
