"""What the reliability suite's modules share: the figures each part measures (`Figures`, one set per
test module, written by the fixtures of conftest.py to .cache/reliability.json) and the helpers
that count what a run delivered. The suite is split into modules (faults and kills, bad configs,
bad states) so that pytest-xdist's `loadfile` runs them side by side."""

from __future__ import annotations

import collections
import concurrent.futures
import fcntl
import json
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from integration_tests import cli
from smstools_emulator import Emulator, make_conversation, make_message, sample_phones
from source_smstools.components.records import message_id
from source_smstools.components.state import phone_cursors

FIGURES_FILE = Path(__file__).resolve().parents[2] / ".cache" / "reliability.json"
MAX_ATTEMPTS = 6  # the manifest's max_retries (5) + 1


# -- figures -----------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one part of the suite (fast or soak) measured in this session."""

    in_process: bool = False  # the runs of Figures.run: cli.call, or cli.run (a process each)
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs_scanned: int = 0
    debug_outputs: int = 0
    bytes_scanned: int = 0

    def section(self, name: str) -> dict[str, Any]:
        return self.sections.setdefault(name, {})

    def run(self, command: str, config: Any = None, catalog: Any = None, state: Any = None, *args: str,
            process: bool = False, **kwargs: Any) -> cli.Output:
        """The command, in this process for the fast part unless `process`; asserts that the secret is absent."""
        run = cli.call if self.in_process and not process else cli.run
        out = run(command, config, catalog, state, *args, **kwargs)
        self.scanned(out.stdout + out.stderr, "--debug" in args)
        return out

    def scanned(self, text: str, debug: bool = False) -> None:
        self.outputs_scanned += 1
        self.debug_outputs += debug
        self.bytes_scanned += len(text.encode("utf-8", "surrogatepass"))


def parts() -> dict[str, Figures]:
    """A module's figures: the fast part runs in this process, the soak as processes."""
    return {"fast": Figures(in_process=True), "soak": Figures()}


# a read timeout below the emulator's 1.5 s `timeout` fault, so that the fault is a timeout
SHORT_TIMEOUT = {**cli.TIMINGS, cli.short_waits.TIMEOUT: "1"}
# The connector's clock (SMSTOOLS_NOW) for the runs whose outcome depends on which phone is handed
# out last, which is drawn anew each sync (PhonePartitionRouter._last_safe): at this time the phone
# that fails in them is not the last, so the others' progress is saved (the last fails as it happens)
FIXED_NOW = {"SMSTOOLS_NOW": "1750000002"}


@contextmanager
def _locked() -> Iterator[None]:
    # the modules run in several pytest-xdist workers: one writes the file at a time
    FIGURES_FILE.parent.mkdir(exist_ok=True)
    with open(FIGURES_FILE.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write(module: str, measured: dict[str, Figures]) -> None:
    """Adds a module's figures to the file: a section measured now replaces the one of the last run;
    the secret scan is kept per module (the report adds them up)."""
    with _locked():
        data = json.loads(FIGURES_FILE.read_text()) if FIGURES_FILE.exists() else {}
        for part, figures in measured.items():
            if not figures.sections:
                continue
            entry = data.setdefault(part, {})
            entry.update(figures.sections)
            secrets = entry.get("secrets")
            if not isinstance(secrets, dict) or "outputs_scanned" in secrets:
                secrets = entry["secrets"] = {}  # the file of a run before the split: one scan
            secrets[module] = {
                "outputs_scanned": figures.outputs_scanned,
                "debug_outputs": figures.debug_outputs,
                "bytes_scanned": figures.bytes_scanned,
                "leaks": 0,  # a leak fails the test that saw it
            }
            entry["run_at"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        FIGURES_FILE.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False))


# -- helpers -----------------------------------------------------------------------------------


def conversations(sizes: Iterable[int], seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    return {p: make_conversation(p, n, seed=seed) for p, n in zip(sample_phones(len(list(sizes))), sizes)}


def configured(emulator_phone: str) -> str:
    """The phone as cli.config configures it (the partition value the ids are made from)."""
    return "+" + emulator_phone.lstrip("+")


def ids_of(phone: str, messages: Iterable[dict[str, Any]]) -> set[str]:
    return {message_id(configured(phone), m) for m in messages}


def all_ids(convs: dict[str, list[dict[str, Any]]]) -> set[str]:
    return set().union(*(ids_of(p, msgs) for p, msgs in convs.items())) if convs else set()


def compare(records: list[dict[str, Any]], expected: set[str]) -> dict[str, int]:
    """How the delivered records stand against the expected ids."""
    counts = collections.Counter(r["id"] for r in records)
    return {
        "expected": len(expected),
        "delivered": len(records),
        "lost": len(expected - counts.keys()),
        "unexpected": len(counts.keys() - expected),
        "twice": sum(c - 1 for c in counts.values()),
    }


def add(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {k: total.get(k, 0) + more.get(k, 0) for k in set(total) | set(more)}


def cursors(state: list[dict[str, Any]] | None) -> dict[str, str]:
    if not state:
        return {}
    stream_state = state[-1]["stream"]["stream_state"]
    return {p: str(c) for p, c in phone_cursors(stream_state).items()}


def assert_well_formed(state: list[dict[str, Any]]) -> None:
    """A state the next sync takes as it is: the stream's one cursor, and each phone's in the book."""
    assert len(state) == 1 and state[0]["type"] == "STREAM"
    stream_state = state[0]["stream"]["stream_state"]
    assert state[0]["stream"]["stream_descriptor"]["name"] == "conversation"
    assert stream_state["use_global_cursor"] is True and "states" not in stream_state
    # the stream's one cursor, once a record was read (a state emitted before any has none)
    assert "state" not in stream_state or str(stream_state["state"]["unixDatetime"]).isdigit()
    assert all(isinstance(p, str) and (c is None or isinstance(c, int)) for p, c in phone_cursors(stream_state).items())


def newer_messages(emulator: Emulator, phone: str, count: int, seed: int) -> list[dict[str, Any]]:
    current = emulator.conversation(phone)
    newest = current[0]["unixDatetime"] if current else 1_749_113_086
    rng = random.Random(f"new:{seed}:{phone}")
    return [make_message(phone, newest + 60 * (i + 1), rng, 100_000 + i) for i in range(count)]


def parallel(function: Callable[[Any], Any], items: Iterable[Any], workers: int) -> list[Any]:
    """function(item) for each item, several at once (the runs mostly wait); exceptions returned."""

    def guarded(item: Any) -> Any:
        try:
            return function(item)
        except BaseException as error:  # noqa: BLE001 - reported by the test of that item
            return error

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(guarded, items))


def assert_each(cases: list[Any], run: Callable[[Any], Any], check: Callable[[Any, Any], None], workers: int,
                label: Callable[[Any], str] = str) -> None:
    """run(case) for every case, several at once, then check(case, outcome): one assertion at the
    end lists every case that failed, so a soak run reports them all."""
    failures = []
    for case, outcome in zip(cases, parallel(run, cases, workers)):
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            check(case, outcome)
        except AssertionError as error:
            failures.append(f"{label(case)}: {error}")
    assert not failures, failures


def result_of(results: dict[str, Any], key: str) -> Any:
    result = results[key]
    if isinstance(result, BaseException):
        raise result
    return result


def error_messages(out: cli.Output) -> list[str]:
    return [e["message"] for e in out.errors]
