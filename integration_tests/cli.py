"""Runs the installed `source-smstools` command the way Airbyte does, and reads what it says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airbyte_cdk.models import (
    AirbyteMessageSerializer,
    AirbyteStateMessageSerializer,
    ConfiguredAirbyteCatalogSerializer,
)
from airbyte_cdk.test import entrypoint_wrapper
from airbyte_cdk.test.models.outcome import ExpectedOutcome

from smstools_emulator import CLIENT_ID, CLIENT_SECRET, Emulator
from source_smstools.source import SourceSmstools

COMMAND = str(Path(sys.executable).with_name("source-smstools"))


# Short retry waits and timeouts for the command run by these tests (see source_smstools/source.py);
# a test of the default waits passes `timings={}`.
TIMINGS = {"SMSTOOLS_BACKOFF_FACTOR": "0.05", "SMSTOOLS_READ_TIMEOUT": "2"}


def config(emulator: Emulator, **overrides: Any) -> dict[str, Any]:
    """A config for the emulator's conversations."""
    base = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "phone_numbers": ["+" + p for p in emulator.phones()],
        "base_url": emulator.url,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


# each stream's cursor (None: full refresh only) and primary key, as `discover` gives them
STREAMS: dict[str, tuple[list[str] | None, list[list[str]] | None]] = {
    "conversation": (["unixDatetime"], [["id"]]),
    "contacts": (None, [["ID"]]),
    "groups": (None, [["ID"]]),
    "inbox": (["date"], [["ID"]]),
    "outbox": (None, [["ID"]]),
    "message_log": (["date"], [["ID"]]),
    "optouts": (["date"], [["number"]]),
    "message_templates": (None, [["ID"]]),
    "sender_ids": (None, [["ID"]]),
    "virtual_numbers": (None, [["ID"]]),
    "balance": (None, None),
    "statistics": (["month_start"], [["year"], ["month"]]),
}


def catalog(sync_mode: str = "incremental", stream: str | list[str] = "conversation") -> dict[str, Any]:
    """A configured catalog of `stream` (a name or a list of names); a stream without a cursor is
    always full refresh."""
    entries = []
    for name in [stream] if isinstance(stream, str) else stream:
        cursor, key = STREAMS[name]
        mode = sync_mode if cursor else "full_refresh"
        entry: dict[str, Any] = {
            "stream": {
                "name": name,
                "json_schema": {},
                "supported_sync_modes": ["full_refresh", "incremental"] if cursor else ["full_refresh"],
            },
            "sync_mode": mode,
            "destination_sync_mode": "append_dedup" if mode == "incremental" and key else ("append" if mode == "incremental" else "overwrite"),
            "cursor_field": cursor if mode == "incremental" else None,
        }
        if key:
            entry["primary_key"] = key
        entries.append(entry)
    return {"streams": entries}


@dataclass
class Output:
    returncode: int
    stdout: str
    stderr: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    @property
    def records(self) -> list[dict[str, Any]]:
        return [m["record"]["data"] for m in self.of_type("RECORD")]

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.of_type("STATE")]

    @property
    def last_state(self) -> list[dict[str, Any]] | None:
        """The last state message, as a state file for the next run."""
        return [self.states[-1]] if self.states else None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m["trace"]["error"] for m in self.of_type("TRACE") if m["trace"].get("type") == "ERROR"]

    @property
    def connection_status(self) -> dict[str, Any]:
        return self.of_type("CONNECTION_STATUS")[-1]["connectionStatus"]


def parse(stdout: str) -> list[dict[str, Any]]:
    messages = []
    # "\n" only, as Airbyte reads them: splitlines() also cuts at U+2028, U+0085 and other
    # characters a message text may carry unescaped, and would drop that record unseen.
    for line in stdout.split("\n"):
        try:
            message = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(message, dict):
            messages.append(message)
    return messages


def run(
    command: str,
    config: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    state: Any = None,
    *args: str,
    timeout: float = 300,
    secret: str = CLIENT_SECRET,
    timings: dict[str, str] = TIMINGS,
) -> Output:
    """Runs `source-smstools COMMAND ...` with these files; checks that the secret never shows."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [COMMAND, command]
        for name, content in (("config", config), ("catalog", catalog), ("state", state)):
            if content is not None:
                path = Path(tmp, f"{name}.json")
                path.write_text(content if isinstance(content, str) else json.dumps(content))
                argv += [f"--{name}", str(path)]
        proc = subprocess.run(
            argv + list(args), capture_output=True, text=True, timeout=timeout, cwd=tmp, env=_env(timings)
        )
    assert secret not in proc.stdout and secret not in proc.stderr, "the client secret leaked into the output"
    return Output(proc.returncode, proc.stdout, proc.stderr, parse(proc.stdout))


def _env(timings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TIMINGS}
    return {**env, **timings}


def in_process(config: dict[str, Any], catalog: dict[str, Any], state: Any = None) -> Output:
    """`read`, run in this process (the CDK's entrypoint_wrapper), for tests that patch the CDK or
    the clock: what it says, as `run` gives it (returncode 1 when it ended in an error)."""
    catalog_model = ConfiguredAirbyteCatalogSerializer.load(catalog)
    state_models = [AirbyteStateMessageSerializer.load(s) for s in state] if state else None
    source = SourceSmstools(config=config, catalog=catalog_model, state=state_models)
    output = entrypoint_wrapper.read(
        source, config, catalog_model, state_models, expected_outcome=ExpectedOutcome.ALLOW_ANY
    )
    messages = [AirbyteMessageSerializer.dump(m) for m in output.get_message_iterator()]
    out = Output(0, "", "", messages)
    out.returncode = 1 if out.errors else 0
    return out


def start(command: str, files: dict[str, Any], tmp: Path) -> subprocess.Popen:
    """Starts a run in the background (for kill tests); its stdout goes to tmp/out.jsonl."""
    argv = [COMMAND, command]
    for name, content in files.items():
        if content is not None:
            path = tmp / f"{name}.json"
            path.write_text(json.dumps(content))
            argv += [f"--{name}", str(path)]
    out = open(tmp / "out.jsonl", "w")
    return subprocess.Popen(
        argv, stdout=out, stderr=subprocess.DEVNULL, cwd=tmp, start_new_session=True, env=_env(TIMINGS)
    )


def kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
