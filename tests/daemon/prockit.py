"""Test kit for `reconciler watch` as a real process: free loopback ports, the daemon started with
its output captured to files, waits on its API, a clean SIGTERM; and notification receivers (real
HTTP servers on 127.0.0.1 in a thread) that record, fail first, or hang."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.engine.fleetkit import WAIT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Watch:
    process: asyncio.subprocess.Process
    api: str
    ws: str
    auth: tuple[str, str]
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.api, auth=self.auth, timeout=WAIT) as http:
            return await http.get(path, **kwargs)

    async def poll(self, path: str, check: Callable[[Any], bool], what: str, timeout: float = 45.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        async with httpx.AsyncClient(base_url=self.api, auth=self.auth, timeout=WAIT) as http:
            while loop.time() < deadline:
                assert self.process.returncode is None, f"the daemon exited:\n{self.output()}"
                try:
                    response = await http.get(path)
                    if response.status_code == 200:
                        last = response.json()
                        if check(last):
                            return last
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{what}: not within {timeout:g}s; last {path}: {last}\n{self.output()[-3000:]}")

    async def conditions(self, ids: list[str], condition: str = "Synced", timeout: float = 45.0) -> Any:
        return await self.poll(
            "/stations",
            lambda body: {s["id"]: s["condition"] for s in body if s["id"] in ids} == dict.fromkeys(ids, condition),
            f"{ids} {condition}",
            timeout,
        )


@asynccontextmanager
async def watch_process(
    tmp: Path,
    args: list[str],
    env: dict[str, str],
    auth: tuple[str, str],
    *,
    cwd: Path | None = None,
    listen: bool = True,
) -> AsyncIterator[Watch]:
    """`reconciler watch ARGS [--listen] --http` on free ports; ready once /readyz answers 200."""
    ws, api = free_port(), free_port()
    out, err = tmp / f"watch-{api}.out", tmp / f"watch-{api}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reconciler.cli.main", "watch", *args,
            *(["--listen", f"127.0.0.1:{ws}"] if listen else []), "--http", f"127.0.0.1:{api}",
            env={**os.environ, **env}, stdout=stdout, stderr=stderr, cwd=cwd,
        )  # fmt: skip
    running = Watch(process, f"http://127.0.0.1:{api}", f"ws://127.0.0.1:{ws}", auth, out, err)
    try:
        await running.poll("/readyz", lambda body: body.get("status") == "ready", "the daemon ready")
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


@dataclass
class Receiver:
    """A notification receiver: records every POSTed JSON body; `fail_first` answers 500 that many
    times first; `hang` holds every request until `release` is set (or the test ends)."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    fail_first: int = 0
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)

    def kinds(self) -> list[str]:
        return [str(b.get("kind")) for b in list(self.bodies)]


@contextmanager
def receiver(**kwargs: Any) -> Iterator[Receiver]:
    state = Receiver(**kwargs)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                state.attempts += 1
                failing = state.attempts <= state.fail_first
            if state.hang:
                state.release.wait(60)
            if failing:
                self.send_response(500)
                self.end_headers()
                return
            with lock:
                state.bodies.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def environment(password: str, api_password: str) -> dict[str, str]:
    return {"RECONCILER_STATION_PASSWORD": password, "RECONCILER_API_PASSWORD": api_password}
