"""The README's API examples run as written against `reconciler demo` (a real process, its printed
credentials): every `curl` line of the API reference, and the three the demo prints itself; each
answer has the status and the JSON the README's `# ...` line after it shows (`...` elides)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.prockit import free_port
from tests.daemon.test_processes import poll

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def readme_curl_examples() -> list[tuple[str, str | None]]:
    """(command, the `# ...` line after it or None), from the README's sh blocks that call the API."""
    text = (ROOT / "README.md").read_text()
    examples: list[tuple[str, str | None]] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        if "curl " not in block:
            continue
        lines = block.replace("\\\n", " ").splitlines()
        for line in lines:
            if line.startswith("curl "):
                examples.append((line, None))
            elif line.startswith("# ") and examples:
                examples[-1] = (examples[-1][0], line[2:])
    return examples


def expected_of(comment: str) -> tuple[int, Any]:
    """`# 400 {...}` or `# {...}`: the status (200 unless said) and the JSON, `...` entries removed."""
    status, body = 200, comment
    found = re.match(r"(\d{3}) (.*)", comment)
    if found:
        status, body = int(found.group(1)), found.group(2)
    body = re.sub(r",\s*\.\.\.", "", body)
    body = re.sub(r"\.\.\.\s*,\s*", "", body)
    return status, json.loads(body)


def contains(actual: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    return bool(actual == expected)


async def shell(command: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def test_readme_curl_examples_against_the_demo(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    examples = readme_curl_examples()
    assert len(examples) >= 5, examples
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reconciler.cli.main", "demo", "--http", f"127.0.0.1:{port}",
        "--state-dir", str(tmp_path / "state"), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    printed: list[str] = []
    try:
        async with asyncio.timeout(90):
            while not any(line.startswith("edit a file") for line in printed):
                line = (await process.stdout.readline()).decode()
                assert line, "".join(printed)
                printed.append(line)
        user, password = re.findall(r"user (\S+)\s+password (\S+)", "".join(printed))[0]
        base = f"http://127.0.0.1:{port}"
        await poll(f"{base}/stations", (user, password), lambda b: all(s["condition"] == "Synced" for s in b))

        # the state file it names answers `reconciler status` (a new user's next command)
        state = re.findall(r"state file:\s+(\S+)", "".join(printed))
        assert state, "".join(printed)
        code, out = await shell(f"{sys.executable} -m reconciler.cli.main status --db {state[0]}")
        assert code == 0 and re.search(r"PY-SIM-0001\s+Synced", out), out

        # the three the demo prints, as printed
        demo_curls = [line.strip() for line in printed if line.strip().startswith("curl ")]
        assert len(demo_curls) == 3
        for command in demo_curls:
            code, out = await shell(command + " -w '\\n%{http_code}'")
            body, status = out.rsplit("\n", 1)
            assert code == 0 and status == "200", (command, out)
            json.loads(body)

        # the README's, with its address and $PW
        for command, comment in examples:
            assert "localhost:8000" in command and "$PW" in command, command
            command = command.replace("localhost:8000", f"127.0.0.1:{port}").replace("admin:$PW", f"{user}:{password}")
            if "|" in command:  # a pipeline (| grep ...): it must find what it looks for
                code, out = await shell(command)
                assert code == 0 and out.strip(), (command, out)
                continue
            code, out = await shell(command + " -w '\\n%{http_code}'")
            body, status = out.rsplit("\n", 1)
            assert code == 0, (command, out)
            answer = json.loads(body)
            if comment is None:
                assert status == "200", (command, out)
                continue
            want_status, want = expected_of(comment)
            assert int(status) == want_status, (command, out)
            assert contains(answer, want), f"{command}\nREADME: {comment}\ngot:    {body}"
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
