"""The emulator as users install it (`pip install '.[emulator]'`): the `smstools-emulator` command
starts, says where it listens, serves the API to the emulator's credentials, and stops."""

from __future__ import annotations

import json
import selectors
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

from smstools_emulator import CLIENT_ID, CLIENT_SECRET

COMMAND = Path(sys.executable).with_name("smstools-emulator")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_line(proc: subprocess.Popen, timeout: float) -> str:
    """The command's first line of output, waiting at most `timeout` seconds for it."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return proc.stdout.readline()


def get(url: str, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_extra_is_declared():
    assert "emulator" in (metadata.metadata("source-smstools").get_all("Provides-Extra") or [])


def test_the_installed_command_serves_the_api(tmp_path):
    assert COMMAND.exists(), f"{COMMAND.name} is not installed beside {Path(sys.executable).name}: run `make install`"
    port = free_port()
    started = time.monotonic()
    # from an empty directory: the command must work from the installed package, not the source tree
    proc = subprocess.Popen(
        [str(COMMAND), "--port", str(port), "--phones", "2", "--messages", "30"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = first_line(proc, timeout=60)
        assert line == f"emulator listening on http://127.0.0.1:{port} (2 conversations)\n", (line, proc.poll())
        base = f"http://127.0.0.1:{port}"
        status, body = get(f"{base}/v1/conversation/393331000001?limit=20&page=2",
                           {"X-Client-Id": CLIENT_ID, "X-Client-Secret": CLIENT_SECRET})
        assert status == 200
        assert (body["total"], body["shown"], body["page"], body["limit"]) == (30, 10, 2, 20)
        assert len(body["conversation"]) == 10
        assert {m["receiver"] if m["direction"] == "outbound" else m["sender"] for m in body["conversation"]} == {"393331000001"}
        # other credentials are refused as the API does
        assert get(f"{base}/v1/balance", {"X-Client-Id": CLIENT_ID, "X-Client-Secret": "wrong"}) == (
            401, {"error": 104, "errorMsg": "Invalid client ID or client secret"}
        )
        # the control endpoints: the request log and the conversations
        assert get(f"{base}/_emulator/summary", {}) == (200, {"393331000000": 30, "393331000001": 30})
        served = get(f"{base}/_emulator/requests", {})[1]
        assert [(r["path"], r["page"], r["status"]) for r in served] == [
            ("/v1/conversation/393331000001", 2, 200), ("/v1/balance", None, 401),
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # it stops on SIGTERM without a traceback
    assert proc.returncode == -15
    assert proc.stderr is not None and proc.stderr.read() == ""
    assert time.monotonic() - started < 60
