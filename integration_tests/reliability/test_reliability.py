"""Reliability: nothing lost under faults, interruptions, bad input and hostile data (issue 5); bad
configs and bad states in test_bad_config.py and test_bad_state.py, helpers in figures.py.

`make test` runs the fast part; `make soak` (pytest -m soak) the long one, with more data, more
examples and every combination. The fast part runs the command in this process (cli.call: the
same code path, its retry waits recorded instead of slept) but where the process matters (kills,
the exit status of a failed sync, check and discover with bad configs); the soak runs every case
as a process of its own. Each test records what it measured; when the module ends, the figures go
to .cache/reliability.json, from which `python -m integration_tests.reliability.report` (run by
`make soak`) writes RELIABILITY.md.

Every run of the connector goes through `Figures.run` (cli.call or cli.run, which fail the test
if the client secret shows in what the command says) or, for the runs that are killed or too big
to hold in memory, through `_spawn`/`_scan`, which do the same scan on what they wrote.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_tests import cli
from smstools_emulator import (
    CLIENT_SECRET,
    FAULT_KINDS,
    Emulator,
    make_conversation,
    sample_phones,
)
from source_smstools.components.records import message_id

from integration_tests.reliability.figures import (
    FIXED_NOW, MAX_ATTEMPTS, SHORT_TIMEOUT, Figures, add, all_ids, assert_each, assert_well_formed, compare, configured,
    conversations, cursors, error_messages, ids_of, newer_messages, parallel, parts, result_of,
)

PARTS = parts()


# -- faults ------------------------------------------------------------------------------------


def read_under_faults(
    figures: Figures, kinds: tuple[str, ...], rate: float, sizes: tuple[int, ...], page_size: int,
    seed: int, new_messages: int = 0,
) -> dict[str, Any]:
    """A multi-phone incremental read with faults injected, then (new_messages > 0) an incremental
    read from its state after that many new messages per phone, with faults still on."""
    convs = conversations(sizes, seed=seed)
    with Emulator(convs) as emulator:
        # at most 3 faults in a row on one request: a random draw never outlasts the 6 attempts
        emulator.set_faults(rate=rate, kinds=kinds, seed=seed, max_consecutive=3, retry_after=1, timeout_seconds=1.5)
        config = cli.config(emulator, page_size=page_size)
        first = figures.run("read", config, cli.catalog("incremental"), None, "--debug", timings=SHORT_TIMEOUT)
        expected = all_ids(convs)
        outcome = {"first": first, "first_expected": expected, "convs": convs, "second": None}
        if new_messages:
            new = {p: newer_messages(emulator, p, new_messages, seed) for p in convs}
            for phone, messages in new.items():
                emulator.add_messages(phone, messages)
            # the inclusive cursor reads each phone's newest message of the first read once more
            boundary = set().union(*(ids_of(p, msgs[:1]) for p, msgs in convs.items()))
            outcome["second_expected"] = all_ids(new) | boundary
            outcome["second"] = figures.run(
                "read", config, cli.catalog("incremental"), first.last_state, "--debug", timings=SHORT_TIMEOUT
            )
        outcome["injected"] = dict(emulator.faults.injected)
        outcome["requests"] = len(emulator.conversation_requests())
    return outcome


def check_fault_outcome(figures: Figures, name: str, rate: float, outcome: dict[str, Any]) -> None:
    first, convs = outcome["first"], outcome["convs"]
    assert first.returncode == 0, error_messages(first)
    assert not first.errors
    tally = compare(first.records, outcome["first_expected"])
    # each phone's cursor is its newest message, so that the next sync starts there
    with_messages = {configured(p): str(msgs[0]["unixDatetime"]) for p, msgs in convs.items() if msgs}
    assert {p: c for p, c in cursors(first.last_state).items() if p in with_messages} == with_messages
    if outcome["second"] is not None:
        second = outcome["second"]
        assert second.returncode == 0, error_messages(second)
        tally = add(tally, compare(second.records, outcome["second_expected"]))
    figures.section("faults")[name] = {"rate": rate, "injected": outcome["injected"], "requests": outcome["requests"], **tally}
    assert outcome["injected"], "no fault was injected"
    assert (tally["lost"], tally["unexpected"], tally["twice"]) == (0, 0, 0), tally


FAST_SIZES = (450, 230, 40)


@pytest.fixture(scope="module")
def fast_fault_outcomes() -> dict[str, Any]:
    """Every kind alone at 30%, one read each (in this process: one at a time)."""
    kinds = list(FAULT_KINDS)
    outcomes = parallel(
        lambda kind: read_under_faults(PARTS["fast"], (kind,), 0.3, FAST_SIZES, 100, seed=11),
        kinds,
        workers=1,
    )
    return dict(zip(kinds, outcomes))


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_alone_loses_nothing(fast_fault_outcomes, kind):
    check_fault_outcome(PARTS["fast"], kind, 0.3, result_of(fast_fault_outcomes, kind))


def test_a_mix_of_every_fault_at_30_percent_loses_nothing_over_two_syncs(figures):
    outcome = read_under_faults(figures, FAULT_KINDS, 0.3, FAST_SIZES, 100, seed=5, new_messages=60)
    check_fault_outcome(figures, "mix of all kinds", 0.3, outcome)


@pytest.mark.soak
def test_soak_every_fault_kind_and_mixes_over_two_syncs(figures):
    sizes = (2000, 1500, 700, 300, 40, 0)
    scenarios = [((kind,), 0.3, kind) for kind in FAULT_KINDS]
    scenarios += [(FAULT_KINDS, 0.3, "mix of all kinds"), (FAULT_KINDS, 0.5, "mix of all kinds, 50%")]
    assert_each(
        scenarios,
        lambda s: read_under_faults(figures, s[0], s[1], sizes, 100, seed=23, new_messages=150),
        lambda s, outcome: check_fault_outcome(figures, s[2], s[1], outcome),
        workers=5,
        label=lambda s: s[2],
    )


# -- persistent faults, Retry-After and the bounds on waiting ------------------------------------

CAUSES = {
    "429": "rate limit", "429_no_retry_after": "rate limit", "500": "HTTP 500", "502": "HTTP 502",
    "503": "HTTP 503", "504": "HTTP 504", "error_105": "error 105", "reset": "Connection reset",
    "timeout": "Read timed out", "truncated": "IncompleteRead", "non_json": "malformed answer",
    "html": "HTTP 502",
}


# the kinds whose failed sync is also resumed in the fast part (all of them in soak)
RESUMED_FAST = {"429", "503", "truncated"}


def persistent_fault(figures: Figures, kind: str, resume: bool = True) -> dict[str, Any]:
    """Page 2 of the first phone always fails with `kind`; then a run without faults resumes."""
    convs = conversations((250, 40), seed=3)
    first_phone = next(iter(convs)).lstrip("+")
    with Emulator(convs) as emulator:
        emulator.set_faults(rate=1.0, kinds=(kind,), pages=(2,), retry_after=1, timeout_seconds=1.5)
        config = cli.config(emulator, page_size=100)
        failed = figures.run("read", config, cli.catalog(), None, "--debug", timings={**SHORT_TIMEOUT, **FIXED_NOW})
        attempts = [r for r in emulator.conversation_requests(first_phone) if r["page"] == 2]
        emulator.set_faults()
        resumed = figures.run("read", config, cli.catalog(), failed.last_state, timings=SHORT_TIMEOUT) if resume else None
    return {"convs": convs, "phone": first_phone, "failed": failed, "attempts": len(attempts), "resumed": resumed}


@pytest.fixture(scope="module")
def persistent_outcomes() -> dict[str, Any]:
    kinds = list(FAULT_KINDS)
    return dict(zip(kinds, parallel(lambda k: persistent_fault(PARTS["fast"], k, k in RESUMED_FAST), kinds, workers=1)))


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_persistent_fault_fails_naming_phone_page_and_cause_and_loses_nothing(persistent_outcomes, kind):
    check_persistent(PARTS["fast"], kind, result_of(persistent_outcomes, kind))


@pytest.mark.soak
def test_soak_every_persistent_fault_then_a_resume(figures):
    assert_each(
        list(FAULT_KINDS),
        lambda kind: persistent_fault(figures, kind),
        lambda kind, outcome: check_persistent(figures, kind, outcome),
        workers=6,
    )


def check_persistent(figures: Figures, kind: str, outcome: dict[str, Any]) -> None:
    failed, convs, phone = outcome["failed"], outcome["convs"], outcome["phone"]
    messages = error_messages(failed)
    figures.section("persistent faults")[kind] = {
        "attempts": outcome["attempts"], "exit_status": failed.returncode, "message": messages[0] if messages else None,
    }
    assert failed.returncode != 0
    assert outcome["attempts"] == MAX_ATTEMPTS
    first = failed.errors[0]
    said = f"{first['message']} {first.get('internal_message') or ''}"
    # phone, page and cause, a body cut short too (its phone is the request's thread's)
    assert first["message"].startswith(f"Phone {phone}, page 2"), said
    assert first["message"].endswith(f"({MAX_ATTEMPTS} tries). The 1 other phone(s) were read and keep what they read."), said
    assert CAUSES[kind] in said, said
    assert first["failure_type"] == "transient_error"
    # the other phone and page 1 arrived; the failed phone's cursor did not move past what it missed
    other, other_messages = list(convs.items())[1]
    assert compare(failed.records, all_ids(convs))["unexpected"] == 0
    assert ids_of(other, other_messages) <= {r["id"] for r in failed.records}
    # the failed phone's read ended its partition, so the CDK saved the state: the other phone
    # keeps its cursor (0.4.0 before this kept none, so a phone failing every sync stopped every
    # other's progress), the failed one is read again by the next sync
    assert cursors(failed.last_state) == {other: str(max(m["unixDatetime"] for m in other_messages))}
    assert failed.last_state[-1]["stream"]["stream_state"]["parent_state"]["changes"]["failed"] == ["+" + phone]
    # run again, the sync ends the job: together the two runs delivered everything
    resumed = outcome["resumed"]
    if resumed is not None:
        assert resumed.returncode == 0
        lost = compare(failed.records + resumed.records, all_ids(convs))["lost"]
        figures.section("persistent faults")[kind]["lost_after_resume"] = lost
        assert lost == 0


def test_retry_after_is_honoured_never_sooner(figures):
    convs = conversations((250, 40), seed=3)
    phone = next(iter(convs)).lstrip("+")
    with Emulator(convs) as emulator:
        emulator.set_faults(rate=1.0, kinds=("429",), pages=(2,), count=3, retry_after=2)
        out = figures.run("read", cli.config(emulator, page_size=100), cli.catalog(), None, "--debug")
        times = [r["time"] for r in emulator.conversation_requests(phone) if r["page"] == 2]
    assert out.returncode == 0 and compare(out.records, all_ids(convs))["lost"] == 0
    # the waits the connector asked for before each retry (recorded, not slept: see cli.call)
    waits = out.waits
    figures.section("retry-after")["honoured"] = {
        "retry_after_s": 2, "waits": len(waits), "shortest_wait_s": round(min(waits), 2), "attempts": len(times),
    }
    assert len(times) == 4  # three 429s, then the page
    assert waits == [2 + 1] * 3  # never sooner than asked: the 2 s of Retry-After, plus the CDK's 1 s


def test_a_retry_after_beyond_the_cap_fails_at_once_naming_phone_and_page(figures):
    convs = conversations((250, 40), seed=3)
    phone = next(iter(convs)).lstrip("+")
    with Emulator(convs) as emulator:
        emulator.set_faults(rate=1.0, kinds=("429",), pages=(2,), retry_after=3600)
        out = figures.run("read", cli.config(emulator, page_size=100), cli.catalog(), None, "--debug")
        attempts = [r for r in emulator.conversation_requests(phone) if r["page"] == 2]
    figures.section("retry-after")["beyond the 900 s cap"] = {
        "retry_after_s": 3600, "attempts": len(attempts), "exit_status": out.returncode, "message": error_messages(out)[0],
    }
    assert out.returncode != 0 and len(attempts) == 1
    assert f"Phone {phone}, page 2" in error_messages(out)[0] and "maximum of 900" in error_messages(out)[0]


# -- kills and resumes -------------------------------------------------------------------------


def _spawn(tmp: Path, config: Any, catalog: Any, state: Any) -> tuple[subprocess.Popen, Path, Path]:
    """The installed command in the background, its stdout and stderr in files (for kills)."""
    argv = [cli.COMMAND, "read"]
    for name, content in (("config", config), ("catalog", catalog), ("state", state)):
        if content is not None:
            (tmp / f"{name}.json").write_text(json.dumps(content))
            argv += [f"--{name}", str(tmp / f"{name}.json")]
    out, err = tmp / "out.jsonl", tmp / "err.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, cwd=tmp, start_new_session=True)
    return proc, out, err


def _scan(figures: Figures, *paths: Path) -> str:
    text = "".join(p.read_text(errors="replace") for p in paths)
    assert CLIENT_SECRET not in text, "the client secret leaked into the output"
    figures.scanned(text)
    return text


def kill_and_resume(figures: Figures, tmp: Path, sizes: tuple[int, ...], page_size: int, prior: bool,
                    new: int, plan: list[tuple[str, int]], seed: int) -> dict[str, Any]:
    """Runs an incremental sync killed (SIGKILL) at each point of `plan`, each time resuming from the
    last state the killed run emitted, then once to the end; returns what every run emitted."""
    convs = conversations(sizes, seed=seed)
    with Emulator(convs, latency=0.02) as emulator:
        config = cli.config(emulator, page_size=page_size)
        catalog = cli.catalog("incremental")
        state, expected, allowed = None, all_ids(convs), all_ids(convs)
        if prior:
            first = figures.run("read", config, catalog)
            assert first.returncode == 0
            state = first.last_state
            added = {p: newer_messages(emulator, p, new, seed) for p in convs}
            for phone, messages in added.items():
                emulator.add_messages(phone, messages)
            expected = all_ids(added)
            allowed = expected | set().union(*(ids_of(p, m[:1]) for p, m in convs.items()))
        records: list[dict[str, Any]] = []
        tally = {"kills": 0, "finished_before_kill": 0, "killed_runs_with_state": 0, "resumes": 0}
        for number, (trigger, amount) in enumerate(plan):
            run_dir = tmp / f"run{number}"
            run_dir.mkdir()
            base = len(emulator.conversation_requests())
            proc, out, err = _spawn(run_dir, config, catalog, state)
            deadline = time.time() + 300
            while proc.poll() is None and time.time() < deadline:
                if trigger == "request" and len(emulator.conversation_requests()) - base >= amount:
                    break
                if trigger == "bytes" and out.stat().st_size >= amount:
                    break
                time.sleep(0.005)
            finished = proc.poll() is not None
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            tally["finished_before_kill" if finished else "kills"] += 1
            messages = cli.parse(_scan(figures, out, err))
            records += [m["record"]["data"] for m in messages if m.get("type") == "RECORD"]
            states = [m["state"] for m in messages if m.get("type") == "STATE"]
            if states:
                tally["killed_runs_with_state"] += not finished
                assert_well_formed(states[-1:])
                state = states[-1:]
            tally["resumes"] += 1
        final = figures.run("read", config, catalog, state)
        assert final.returncode == 0, error_messages(final)
        records += final.records
        assert_well_formed(final.last_state)
        newest = {configured(p): str(emulator.conversation(p)[0]["unixDatetime"]) for p in convs if emulator.conversation(p)}
        assert {p: c for p, c in cursors(final.last_state).items() if p in newest} == newest
    delivered = {r["id"] for r in records}
    return {
        **tally,
        "expected": len(expected),
        "delivered": len(delivered & expected),
        "lost": len(expected - delivered),
        "unexpected": len(delivered - allowed),
        "records_emitted": len(records),
    }


def record_kills(figures: Figures, name: str, outcome: dict[str, Any]) -> None:
    section = figures.section("kills").setdefault(name, {})
    for key, value in outcome.items():
        section[key] = section.get(key, 0) + value
    section["examples"] = section.get("examples", 0) + 1


KILL_POINTS = st.one_of(
    st.tuples(st.just("request"), st.integers(1, 18)),  # before the n-th request is answered
    st.tuples(st.just("bytes"), st.integers(1, 300_000)),  # once n bytes of messages were written
)


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(plan=st.lists(KILL_POINTS, min_size=1, max_size=2), prior=st.booleans(), new=st.integers(0, 120))
def test_killed_syncs_resume_from_their_last_state_and_lose_nothing(figures, tmp_path_factory, plan, prior, new):
    outcome = kill_and_resume(figures, tmp_path_factory.mktemp("kill"), (420, 260, 90, 0), 50, prior, new, plan, seed=9)
    record_kills(figures, "4 phones, 770 messages, pages of 50", outcome)
    assert (outcome["lost"], outcome["unexpected"]) == (0, 0), outcome


@pytest.mark.soak
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.one_of(st.tuples(st.just("request"), st.integers(1, 60)),
                               st.tuples(st.just("bytes"), st.integers(1, 1_500_000))), min_size=1, max_size=4),
       prior=st.booleans(), new=st.integers(0, 400), seed=st.integers(0, 1000))
def test_soak_killed_syncs_resume_and_lose_nothing(figures, tmp_path_factory, plan, prior, new, seed):
    outcome = kill_and_resume(figures, tmp_path_factory.mktemp("kill"), (1200, 800, 500, 300, 100, 0), 50, prior, new, plan, seed)
    record_kills(figures, "6 phones, 2,900 messages, pages of 50", outcome)
    assert (outcome["lost"], outcome["unexpected"]) == (0, 0), outcome


# -- bad state ---------------------------------------------------------------------------------

# -- hostile data ------------------------------------------------------------------------------

EVERY_PLANE = "".join(chr(plane * 0x10000 + 0x4E2D) for plane in range(17))  # one code point in each of the 17 planes
CONTROL = "".join(map(chr, [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, 0xFEFF, 0x200F, 0xFFFE, 0xFFFF]))
FILE_SHAPES = [
    None, [], [{"name": "a.jpg", "image": "https://f/a.jpg", "mime": "image/jpeg"}],
    [{"name": "a.jpg"}, {"name": "b.pdf", "mime": None}], {"name": "r.pdf", "image": "https://f/r.pdf", "mime": "application/pdf"},
    "https://f/only-a-url.jpg", [None], {"name": None, "image": None, "mime": None}, {"nested": {"deep": [1, {"x": None}]}},
]


def hostile_messages(phone: str, newest: int) -> list[dict[str, Any]]:
    digits = phone.lstrip("+")
    crafted: list[dict[str, Any]] = [
        {"messageId": "long", "direction": "outbound", "message": "x" * 1_000_000},
        {"messageId": "long-unicode", "direction": "outbound", "message": "😀" * 250_000},
        {"messageId": "planes", "direction": "outbound", "message": EVERY_PLANE, "sender": EVERY_PLANE},
        {"messageId": "control", "direction": "outbound", "message": CONTROL, "receiver": CONTROL},
        {"messageId": None, "direction": "inbound", "sender": digits, "message": CONTROL + EVERY_PLANE},
        {"messageId": "nulls", "direction": None, "sender": None, "receiver": None, "message": None,
         "file": None, "datetime": None, "deliveryStatus": None, "mine": None},
        {"messageId": None, "direction": None, "sender": None, "receiver": None, "message": None, "file": None},
        {"messageId": "only-id"},
        {"messageId": "ts-null", "unixDatetime": None},
        {"messageId": "ts-text", "unixDatetime": "yesterday"},
        {"messageId": "ts-digits", "unixDatetime": str(newest - 5)},
        {"messageId": 424242, "message": "a numeric messageId"},
        {"messageId": "", "direction": "inbound", "message": "an empty messageId"},
        {"messageId": "unknown-fields", "brandNew": {"nested": [1, 2, {"x": None}]}, "mine": False, "émoji_key_😀": "v"},
        {"messageId": "html", "message": "<script>alert(1)</script>\\\"';--"},
    ]
    crafted += [{"messageId": f"file-{i}", "direction": "outbound", "file": shape} for i, shape in enumerate(FILE_SHAPES)]
    messages = []
    for i, message in enumerate(crafted):
        message.setdefault("unixDatetime", newest - 60 * i)
        messages.append(message)
    return messages


class HostileEmulator(Emulator):
    """The emulator, plus what a hostile API does to some phones:

    `escaped`: bodies in ASCII with \\u escapes, so a lone surrogate can travel; `overlapping`:
    each page repeats the last message of the page before; `arriving`: new messages arrive once
    page 1 was served (the total grows, the pages shift down); `vanishing`: messages of page 1 are
    deleted once it was served (the total shrinks, the pages shift up); `unknown`: the API answers
    an error body, as it may for a number it does not know.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.escaped: set[str] = set()
        self.overlapping: set[str] = set()
        self.arriving: dict[str, list[dict[str, Any]]] = {}
        self.vanishing: dict[str, int] = {}
        self.unknown: set[str] = set()

    def page_body(self, phone: str, page: int, limit: int) -> bytes:
        if page == 2 and phone in self.arriving:
            self.add_messages(phone, self.arriving.pop(phone))
        if page == 2 and phone in self.vanishing:
            current = self.conversation(phone)
            gone = self.vanishing.pop(phone)
            self.set_conversation(phone, current[:3] + current[3 + gone:])
        if phone in self.unknown:
            return json.dumps({"error": 404, "errorMsg": "Unknown number"}).encode()
        if phone in self.escaped or phone in self.overlapping:
            messages = self.conversation(phone)
            start = (page - 1) * limit - (1 if phone in self.overlapping and page > 1 else 0)
            chunk = messages[start : page * limit]
            return json.dumps({"total": len(messages), "shown": len(chunk), "page": page, "limit": limit, "conversation": chunk},
                              ensure_ascii=phone in self.escaped).encode()
        return super().page_body(phone, page, limit)


def test_hostile_data_arrives_whole_and_nothing_is_lost(figures):
    phones = sample_phones(7)
    hostile, escaped, overlapping, arriving, vanishing, empty, unknown_to_api = phones
    newest = 1_749_113_086
    surrogates = [{"messageId": "lone-surrogate", "message": "a\ud800b\udfffc", "unixDatetime": newest},
                  {"messageId": "pair", "message": "😀 travels as a pair of escapes", "unixDatetime": newest - 60}]
    convs = {
        hostile: hostile_messages(hostile, newest),
        escaped: surrogates + hostile_messages(escaped, newest - 120)[2:5],
        overlapping: make_conversation(overlapping, 60, seed=1),
        arriving: make_conversation(arriving, 50, seed=2),
        vanishing: make_conversation(vanishing, 50, seed=3),
        empty: [],
    }
    emulator = HostileEmulator(convs)
    emulator.escaped.add(escaped.lstrip("+"))
    emulator.overlapping.add(overlapping.lstrip("+"))
    late = newer_messages(emulator, arriving, 9, seed=1)
    emulator.arriving[arriving.lstrip("+")] = late
    emulator.vanishing[vanishing.lstrip("+")] = 4
    with emulator:
        config = cli.config(emulator, page_size=7, phone_numbers=[configured(p) for p in phones[:6]] + [configured(unknown_to_api)])
        out = figures.run("read", config, cli.catalog(), None, "--debug")
        assert out.returncode == 0, error_messages(out)
        section = figures.section("hostile data")
        by_phone = collections.defaultdict(list)
        for record in out.records:
            by_phone[record["phone"]].append(record)

        # every message arrives, with every value the API sent (the serializer leaves out nulls)
        for phone in (hostile, escaped):
            tally = compare(by_phone[configured(phone)], ids_of(phone, convs[phone]))
            section["hostile messages" if phone == hostile else "lone surrogates, escaped bodies"] = tally
            assert (tally["lost"], tally["unexpected"], tally["twice"]) == (0, 0, 0), tally
            for message in convs[phone]:
                record = next(r for r in by_phone[configured(phone)] if r["id"] == message_id(configured(phone), message))
                for key, value in message.items():
                    if key == "unixDatetime" and isinstance(value, str) and value.isdigit():
                        value = int(value)  # MessageFields makes a numeric string the integer it is
                    if key == "messageId" and isinstance(value, int):
                        continue
                    if key in ("messageId", "file") and (value is False or value == ""):
                        assert key not in record  # a PHP backend's way of saying there is none: null, left out
                        continue
                    if key == "file" and isinstance(value, dict):
                        value = [value]  # MessageFields makes a single attachment a list of one
                    if value is not None:
                        assert record[key] == value, (message.get("messageId"), key)

        # the last message of each page again at the start of the next: each message once (the
        # repeat is seen as the previous page's last, and passed once)
        tally = compare(by_phone[configured(overlapping)], ids_of(overlapping, convs[overlapping]))
        section["duplicates on page boundaries"] = tally
        assert (tally["lost"], tally["unexpected"], tally["twice"]) == (0, 0, 0), tally

        # new messages mid-sync push the pages down: the old ones all arrive (some twice), the new
        # ones that moved onto later pages too, the others with the next sync
        first_ids = {r["id"] for r in by_phone[configured(arriving)]}
        tally = compare(by_phone[configured(arriving)], ids_of(arriving, convs[arriving]))
        tally["unexpected"] = len(first_ids - ids_of(arriving, convs[arriving] + late))
        section["total grows while paging"] = tally
        assert (tally["lost"], tally["unexpected"]) == (0, 0), tally

        # messages deleted mid-sync pull the pages up: the boundaries are read again, nothing still there is skipped
        still_there = emulator.conversation(vanishing)
        tally = compare(by_phone[configured(vanishing)], ids_of(vanishing, convs[vanishing]))
        tally["lost"] = len(ids_of(vanishing, still_there) - {r["id"] for r in by_phone[configured(vanishing)]})
        section["total shrinks while paging"] = tally
        assert tally["lost"] == 0, tally
        assert any("where the conversation's total fell, were read again whole" in m["log"]["message"] for m in out.of_type("LOG"))

        assert not by_phone[configured(empty)] and not by_phone[configured(unknown_to_api)]
        section["an empty conversation"] = {"expected": 0, "delivered": 0, "lost": 0}
        section["a phone the API has nothing for"] = {"expected": 0, "delivered": 0, "lost": 0}

        # the next sync brings the messages that arrived mid-sync, and the state holds every phone
        again = figures.run("read", config, cli.catalog(), out.last_state)
        arrived = first_ids | {r["id"] for r in again.records if r["phone"] == configured(arriving)}
        assert ids_of(arriving, late) <= arrived
        section["total grows while paging"]["new_messages_by_next_sync"] = len(ids_of(arriving, late) & arrived)
        assert_well_formed(again.last_state)


def test_a_phone_the_api_refuses_fails_by_name_and_the_others_arrive(figures):
    convs = conversations((120, 30), seed=6)
    known, other = convs
    stranger = "+390000000001"
    with HostileEmulator(convs) as emulator:
        emulator.unknown.add(stranger.lstrip("+"))
        config = cli.config(emulator, page_size=50, phone_numbers=[configured(known), stranger, configured(other)])
        # as its own process: the exit status of a failed sync
        out = figures.run("read", config, cli.catalog(), None, "--debug", process=True, timings={**cli.TIMINGS, **FIXED_NOW})
    messages = error_messages(out)
    figures.section("hostile data")["a phone the API answers with an error"] = {
        "exit_status": out.returncode, "message": messages[0] if messages else None, **compare(out.records, all_ids(convs)),
    }
    assert out.returncode != 0
    assert f"Phone {stranger.lstrip('+')}, page 1" in messages[0] and "Unknown number" in messages[0]
    assert compare(out.records, all_ids(convs))["lost"] == 0
    # the refused phone's read ended there: the others keep their cursors, it is read again next sync
    assert cursors(out.last_state) == {configured(p): str(max(m["unixDatetime"] for m in ms)) for p, ms in convs.items()}
    assert out.last_state[-1]["stream"]["stream_state"]["parent_state"]["changes"]["failed"] == [stranger]


def future_message(figures: Figures, wait_for_it: bool) -> None:
    """A message dated after the sync's clock (a scheduled one) is synced with its unixDatetime
    empty, and the cursor does not jump ahead to it, which would skip the replies dated before it
    that arrive in the meantime; once its time has come, it is read again with its time."""
    phone = sample_phones(1)[0]
    now = int(time.time())
    past = make_conversation(phone, 10, newest=now - 3600, seed=8)
    later = now + 40
    scheduled = {"messageId": "scheduled", "direction": "outbound", "message": "reminder", "unixDatetime": later, "deliveryStatus": "SCHEDULED"}
    with Emulator({phone: [scheduled] + past}) as emulator:
        config = cli.config(emulator)
        first = figures.run("read", config, cli.catalog(), None)
        assert {r["id"] for r in first.records} == ids_of(phone, past) | {"scheduled"}
        assert next(r for r in first.records if r["id"] == "scheduled").get("unixDatetime") is None
        assert cursors(first.last_state) == {configured(phone): str(past[0]["unixDatetime"])}
        reply = {"messageId": None, "direction": "inbound", "message": "a reply", "unixDatetime": int(time.time()) - 1}
        emulator.set_conversation(phone, [scheduled, reply] + past)
        second = figures.run("read", config, cli.catalog(), first.last_state)
        assert ids_of(phone, [reply]) <= {r["id"] for r in second.records}
        outcome = {"first_sync": "synced with unixDatetime empty", "reply_dated_before_it": "delivered by the next sync", "lost": 0}
        if wait_for_it:
            time.sleep(max(0.0, later + 1 - time.time()))
            third = figures.run("read", config, cli.catalog(), second.last_state)
            assert ids_of(phone, [scheduled]) <= {r["id"] for r in third.records}
            outcome["once_its_time_has_come"] = "delivered"
    figures.section("hostile data")["a message dated in the future"] = outcome


def test_a_message_dated_in_the_future_does_not_move_the_cursor_past_later_replies(figures):
    future_message(figures, wait_for_it=False)


@pytest.mark.soak
def test_soak_a_message_dated_in_the_future_arrives_once_its_time_has_come(figures):
    future_message(figures, wait_for_it=True)


# -- load --------------------------------------------------------------------------------------

_PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print(f'peak_rss_kb={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def big_read(figures: Figures, tmp: Path, config: Any, state: Any) -> dict[str, Any]:
    """A read whose output is too big to hold: streamed to a file, scanned and counted from it."""
    argv = [sys.executable, "-c", _PEAK, cli.COMMAND, "read"]
    for name, content in (("config", config), ("catalog", cli.catalog()), ("state", state)):
        if content is not None:
            (tmp / f"{name}.json").write_text(json.dumps(content))
            argv += [f"--{name}", str(tmp / f"{name}.json")]
    out, err = tmp / "out.jsonl", tmp / "err.txt"
    started = time.time()
    with open(out, "w") as stdout, open(err, "w") as stderr:
        code = subprocess.call(argv, stdout=stdout, stderr=stderr, cwd=tmp)
    seconds = time.time() - started
    ids: collections.Counter[str] = collections.Counter()
    last_state, errors = None, []
    with open(out) as lines:
        for line in lines:
            assert CLIENT_SECRET not in line, "the client secret leaked into the output"
            message = json.loads(line)
            if message["type"] == "RECORD":
                ids[message["record"]["data"]["id"]] += 1
            elif message["type"] == "STATE":
                last_state = [message["state"]]
            elif message["type"] == "TRACE" and message["trace"]["type"] == "ERROR":
                errors.append(message["trace"]["error"]["message"])
    stderr_text = _scan(figures, err)
    figures.bytes_scanned += out.stat().st_size
    peak = int(stderr_text.rsplit("peak_rss_kb=", 1)[1].split()[0])
    return {"code": code, "ids": ids, "state": last_state, "errors": errors, "seconds": seconds, "peak_rss_mb": peak // 1024}


@pytest.mark.soak
def test_soak_a_thousand_phones_and_a_million_messages_in_one_sync(figures, tmp_path):
    phones = sample_phones(1000)
    convs = {p: make_conversation(p, 1000, seed=i) for i, p in enumerate(phones)}
    with Emulator(convs) as emulator:
        # every phone asked on the next sync too (no change detection): the state of each must round-trip
        config = cli.config(emulator, change_detection=False)
        first_dir, second_dir = tmp_path / "first", tmp_path / "second"
        first_dir.mkdir(), second_dir.mkdir()
        first = big_read(figures, first_dir, config, None)
        assert first["code"] == 0, first["errors"]
        expected = all_ids(convs)
        tally = compare([{"id": i} for i in first["ids"].elements()], expected)
        state = first["state"]
        assert_well_formed(state)
        assert cursors(state) == {configured(p): str(msgs[0]["unixDatetime"]) for p, msgs in convs.items()}
        requests_first = len(emulator.conversation_requests())
        # the state of 1,000 phones round-trips: the next sync makes one request per phone
        second = big_read(figures, second_dir, config, state)
        assert second["code"] == 0, second["errors"]
        requests_second = len(emulator.conversation_requests()) - requests_first
    figures.section("load")["1,000 phones, 1,000,000 messages"] = {
        **tally,
        "requests": requests_first,
        "seconds": round(first["seconds"], 1),
        "peak_rss_mb": first["peak_rss_mb"],
        "state_bytes": len(json.dumps(state)),
        "state_phones": len(cursors(state)),
        "next_sync_requests": requests_second,
        "next_sync_records": sum(second["ids"].values()),
        "next_sync_peak_rss_mb": second["peak_rss_mb"],
    }
    assert (tally["lost"], tally["unexpected"], tally["twice"]) == (0, 0, 0), tally
    assert requests_second == 1000 and sum(second["ids"].values()) == 1000  # one boundary record per phone
