"""Secrets stay out of `ps`, out of error messages and out of reasons, events and JSON (issue 8
item 14; issue 12 item 10's "passwords from files or the environment"). Real processes: the
simulator and `plan` run as subprocesses, their command lines are read from /proc, the Central
System and an HTTP endpoint standing in for a proxy run on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli.main import app
from reconciler.transport.central_system import CentralSystem
from tests.engine.fleetkit import cap_policy, station_doc, write

WAIT = 20.0
SECRET = "s3cret-Pw-7f2b"
ROOT = Path(__file__).resolve().parents[2]


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


async def spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reconciler.cli.main", *args, cwd=ROOT, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


async def finish(process: asyncio.subprocess.Process) -> tuple[str, str]:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), WAIT)
    return out.decode(), err.decode()


@pytest.fixture
async def central() -> AsyncIterator[CentralSystem]:
    async with CentralSystem(port=0, passwords={"SEC-0001": SECRET}) as cs:
        yield cs


def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "station.pw"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


# --- the simulator ---------------------------------------------------------------------------


async def test_the_simulator_reads_its_password_from_a_file(central: CentralSystem, tmp_path: Path) -> None:
    process = await spawn("simulate", "--stations", "1", "--prefix", "SEC-", "--url", central.url,
                          "--password-file", str(secret_file(tmp_path)))  # fmt: skip
    try:
        assert await central.wait_for_stations(["SEC-0001"], WAIT) == {"SEC-0001"}
        assert SECRET not in cmdline(process.pid)
    finally:
        _, err = await finish(process)
    assert "warning" not in err


async def test_the_simulator_reads_its_password_from_the_environment(central: CentralSystem) -> None:
    process = await spawn("simulate", "--stations", "1", "--prefix", "SEC-", "--url", central.url,
                          env={"RECONCILER_STATION_PASSWORD": SECRET})  # fmt: skip
    try:
        assert await central.wait_for_stations(["SEC-0001"], WAIT) == {"SEC-0001"}
        assert SECRET not in cmdline(process.pid)
    finally:
        await finish(process)


async def test_the_simulator_password_flag_still_works_and_warns(central: CentralSystem) -> None:
    process = await spawn("simulate", "--stations", "1", "--prefix", "SEC-", "--url", central.url,
                          "--password", SECRET)  # fmt: skip
    try:
        assert await central.wait_for_stations(["SEC-0001"], WAIT) == {"SEC-0001"}
    finally:
        _, err = await finish(process)
    assert "warning: --password puts the password in the process list (ps)" in err
    assert "--password-file" in err and SECRET not in err


# --- plan: station passwords ----------------------------------------------------------------------


def policies(tmp_path: Path) -> Path:
    files = {"s.yaml": station_doc("SEC-0001", "x"), "cap.yaml": cap_policy("c", ["SEC-0001"], 16)}
    return write(tmp_path / "p", files)


async def run_plan(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await spawn("plan", "--policies", str(policies(tmp_path)), "--db", str(tmp_path / "state.db"),
                          "--wait", "1", *args, env=env)  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def passwords_error(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    result = CliRunner().invoke(
        app, ["plan", "--policies", str(policies(tmp_path)), "--listen", "127.0.0.1:0", "--passwords", str(path),
              "--db", str(tmp_path / "state.db")],
    )  # fmt: skip
    assert result.exit_code in (1, 2), result.output  # a usage error, before anything listens
    return result.output


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("p.yaml", f'SEC-0001: "{SECRET}\nSEC-0002: x\n', "line 3"),
        ("p.yaml", f"SEC-0001: {SECRET}\n  SEC-0002: [{SECRET}\n", "line 2"),
        ("p.yaml", f"SEC-0001: {SECRET}\n\tSEC-0002: {SECRET}\n", "line 2"),
        ("p.yaml", f"SEC-0001: &pw {SECRET}\nSEC-0002: *pw\n", "line 2"),
        ("p.json", f'{{"SEC-0001": "{SECRET}",\n "SEC-0002": {SECRET}}}', "line 2"),
    ],
    ids=["unterminated-quote", "bad-indent", "tab", "alias", "json"],
)
def test_a_broken_passwords_file_is_reported_without_its_content(tmp_path: Path, name: str, text: str,
                                                                 where: str) -> None:  # fmt: skip
    output = passwords_error(tmp_path, name, text)
    assert SECRET not in output and SECRET[:6] not in output, output
    assert str(tmp_path / name)[-20:] in output.replace("\n", "") and where in output


def test_passwords_are_taken_as_written(tmp_path: Path) -> None:
    from reconciler.cli.credentials import read_passwords_file

    path = tmp_path / "p.yaml"
    path.write_text("CP-1: 007\nCP-2: ~\nCP-3: 'yes'\nCP-4: 1e3\n")
    path.chmod(0o600)
    assert read_passwords_file(path) == {"CP-1": "007", "CP-2": "~", "CP-3": "yes", "CP-4": "1e3"}


async def test_plan_takes_the_station_password_from_a_file(tmp_path: Path) -> None:
    from reconciler.simulator.fleet import Fleet

    port = free_port()
    async with Fleet(f"ws://127.0.0.1:{port}", 1, prefix="SEC-", password=SECRET, backoff_initial=0.05,
                     backoff_max=0.2):  # fmt: skip
        process = await spawn("plan", "--policies", str(policies(tmp_path)), "--db", str(tmp_path / "state.db"),
                              "--listen", f"127.0.0.1:{port}", "--wait", str(WAIT),
                              "--station-password-file", str(secret_file(tmp_path)))  # fmt: skip
        assert SECRET not in cmdline(process.pid)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert "1 of 1 station(s) connected" in err.decode(), err.decode()
    assert "SEC-0001" in out.decode() and "warning" not in err.decode()


async def test_the_station_password_flag_warns(tmp_path: Path) -> None:
    _, out, err = await run_plan(tmp_path, "--listen", "127.0.0.1:0", "--station-password", SECRET)
    assert "warning: --station-password puts the password in the process list (ps)" in err
    assert "--station-password-file" in err and SECRET not in out + err


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- plan --via: credentials in the URL -----------------------------------------------------------


class Proxy:
    """A loopback HTTP endpoint standing in for an OCPP proxy: it records each request and answers
    404 (station not connected to the proxy), so the station ends Offline with a reason."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
        await reader.readexactly(length)
        self.requests.append(head)
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.mark.parametrize("proxy_up", [True, False], ids=["proxy-answers-404", "proxy-unreachable"])
async def test_credentials_in_the_via_url_are_used_and_never_repeated(tmp_path: Path, proxy_up: bool) -> None:
    proxy = Proxy()
    port = free_port()
    if proxy_up:
        proxy.server = await asyncio.start_server(proxy.handle, "127.0.0.1", port)
    try:
        via = f"http://ops:{SECRET}@127.0.0.1:{port}"
        code, out, err = await run_plan(tmp_path, "--via", via, "--call-timeout", "2", "--json")
    finally:
        if proxy.server is not None:
            proxy.server.close()
    assert code == 1
    station = json.loads(out)["stations"][0]
    assert station["status"] == "Offline"
    assert f"127.0.0.1:{port}" in station["reason"] or "HTTP 404" in station["reason"], station
    assert SECRET not in out and SECRET not in err
    assert "warning: a password in the --via URL" in err
    assert SECRET.encode() not in (tmp_path / "state.db").read_bytes()
    for extra in ("state.db-wal", "state.db-journal"):
        if (tmp_path / extra).exists():
            assert SECRET.encode() not in (tmp_path / extra).read_bytes()
    if proxy_up:
        head = proxy.requests[0].decode()
        token = base64.b64encode(f"ops:{SECRET}".encode()).decode()
        assert f"Authorization: Basic {token}" in head
        assert SECRET not in head.replace(token, "")  # not in the Host header, not in the path
