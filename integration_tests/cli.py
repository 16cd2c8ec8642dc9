"""Runs the installed `source-smstools` command the way Airbyte does (`run`), or the same command in
this process (`call`), and reads what it says."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import backoff._sync
import orjson
from airbyte_cdk.exception_handler import assemble_uncaught_exception
from airbyte_cdk.logger import AirbyteLogFormatter
from airbyte_cdk.models import AirbyteMessageSerializer
from airbyte_cdk.sources.streams.http import rate_limiting
from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets, update_secrets

from integration_tests.short_waits import sitecustomize as short_waits
from smstools_emulator import CLIENT_ID, CLIENT_SECRET, Emulator
from source_smstools import run as smstools_run

COMMAND = str(Path(sys.executable).with_name("source-smstools"))


# Short retry waits and timeouts for the command run by these tests, test-only (the connector has
# no such setting): integration_tests/short_waits/sitecustomize.py applies them to the manifest in
# the command's process, `short_waits.shortened` in this one. A test of the default waits passes
# `timings={}`.
TIMINGS = {short_waits.FACTOR: "0.05", short_waits.TIMEOUT: "2"}
SHORT_WAITS = str(Path(short_waits.__file__).parent)


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
    waits: list[float] = field(default_factory=list)  # the retry waits asked for (`call` only)

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


def records_by_phone(out: Output) -> dict[str, set[int]]:
    """phone -> the unixDatetime of each record (a set: a record read twice would show in len)."""
    result: dict[str, set[int]] = {}
    for record in out.records:
        result.setdefault(record["phone"], set()).add(record["unixDatetime"])
    assert sum(map(len, result.values())) == len(out.records), "a record came twice"
    return result


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
    program: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Output:
    """Runs `source-smstools COMMAND ...` (or `program COMMAND ...`: another runtime, with `env` added
    to the environment) with these files; checks that the secret never shows."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*(program or [COMMAND]), command]
        for name, content in (("config", config), ("catalog", catalog), ("state", state)):
            if content is not None:
                path = Path(tmp, f"{name}.json")
                path.write_text(content if isinstance(content, str) else json.dumps(content))
                argv += [f"--{name}", str(path)]
        proc = subprocess.run(
            argv + list(args), capture_output=True, text=True, timeout=timeout, cwd=tmp, env={**_env(timings), **(env or {})}
        )
    assert secret not in proc.stdout and secret not in proc.stderr, "the client secret leaked into the output"
    return Output(proc.returncode, proc.stdout, proc.stderr, parse(proc.stdout))


def _env(timings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TIMINGS}
    if any(timings.get(k) for k in TIMINGS):
        # Python imports short_waits/sitecustomize.py at start-up, which applies them
        env["PYTHONPATH"] = os.pathsep.join(p for p in (SHORT_WAITS, env.get("PYTHONPATH")) if p)
    return {**env, **timings}


def call(
    command: str,
    config: dict[str, Any] | str | None = None,
    catalog: dict[str, Any] | None = None,
    state: Any = None,
    *args: str,
    secret: str = CLIENT_SECRET,
    timings: dict[str, str] = TIMINGS,
) -> Output:
    """`source-smstools COMMAND ...` run in this process, for the tests whose behaviour is not about
    the process: the same code path as the command (source_smstools.run builds the source from the
    files and runs its entry point), what it says, as `run` gives it, with returncode 1 where the
    command exits 1. The CDK's retry waits are not slept but recorded in `Output.waits`, so a test
    can check what was asked for without waiting it."""
    with tempfile.TemporaryDirectory() as tmp, _environ(timings), short_waits.shortened(timings), _recorded_waits() as waits:
        argv = [command]
        for name, content in (("config", config), ("catalog", catalog), ("state", state)):
            if content is not None:
                path = Path(tmp, f"{name}.json")
                path.write_text(content if isinstance(content, str) else json.dumps(content))
                argv += [f"--{name}", str(path)]
        argv += list(args)
        update_secrets([])  # nothing hidden but what this command hides itself
        logs = io.StringIO()
        handler = logging.StreamHandler(logs)
        handler.setLevel(logging.DEBUG if "--debug" in args else logging.INFO)
        handler.setFormatter(AirbyteLogFormatter())
        logging.getLogger().addHandler(handler)
        lines, returncode = [], 0
        try:
            source = smstools_run._source(argv)
        except Exception as error:  # the command prints this trace and exits 1 (run.run)
            source, returncode = None, 1
            lines.append(json.dumps({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 0, "error": {
                "message": filter_secrets(f"The connector could not start: {error}"), "failure_type": "config_error"}}}))
        try:
            if source is not None:
                entrypoint = smstools_run._Entrypoint(source)
                for line in entrypoint.run(entrypoint.parse_args(argv)):
                    lines.append(line)
        except Exception as error:  # the command's exception hook prints it as a trace, exits 1
            returncode = 1
            trace = assemble_uncaught_exception(type(error), error).as_airbyte_message()
            lines.append(filter_secrets(orjson.dumps(AirbyteMessageSerializer.dump(trace)).decode()))
        finally:
            logging.getLogger().removeHandler(handler)
    stdout = "\n".join(lines + logs.getvalue().split("\n"))
    assert secret not in stdout, "the client secret leaked into the output"
    out = Output(returncode, stdout, "", parse(stdout))
    out.waits = waits
    return out


def in_process(config: dict[str, Any], catalog: dict[str, Any], state: Any = None) -> Output:
    """`read`, run in this process (see `call`), for tests that patch the CDK or the clock."""
    return call("read", config, catalog, state)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """The command's environment (see TIMINGS; SMSTOOLS_NOW), for a source built in this process."""
    keys = set(TIMINGS) | set(values)  # SMSTOOLS_NOW too: it must not outlive the command
    saved = {k: os.environ.pop(k) for k in keys if k in os.environ}
    os.environ.update(values)
    try:
        yield
    finally:
        for key in keys:
            os.environ.pop(key, None)
        os.environ.update(saved)


class _Clock:
    """The `time` module as the CDK's retry loops see it: `sleep` records the wait instead."""

    def __init__(self, waits: list[float]) -> None:
        self._waits = waits

    def sleep(self, seconds: float) -> None:
        if seconds:  # the CDK's rate-limit loop passes 0 and waits in its handler instead
            self._waits.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def _recorded_waits() -> Iterator[list[float]]:
    # Only the retry loops' sleeps (the backoff library's and the CDK's Retry-After wait): the
    # emulator in this process still sleeps for real, as its `timeout` fault must.
    waits: list[float] = []
    clock = _Clock(waits)
    with mock.patch.object(backoff._sync, "time", clock), mock.patch.object(rate_limiting, "time", clock):
        yield waits


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
