"""Answers written the way a PHP JSON backend writes them (numbers as strings, a BOM, a list as an
object, the list under another key, ...), end to end: the installed CLI against the emulator, under
the DEFAULT backoff (`timings={}`), gives the same records, state and requests as against the
documented shape; an answer of a shape it cannot read ends in seconds, naming keys and JSON types."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections import Counter

import pytest
import requests as http

from integration_tests import cli
from source_smstools.components.book import Book
from smstools_emulator import VARIATIONS, Emulator, make_conversation, sample_phones

OTHERS = [name for name in cli.STREAMS if name != "conversation"]
EVERYTHING = list(cli.STREAMS)
START = "2025-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def account():
    """Conversations of 2,500, 1,900 and 40 messages (3, 2 and 1 pages of 1,000), and the account's
    other data derived from them."""
    phones = sample_phones(3)
    with Emulator({p: make_conversation(p, n, seed=11) for p, n in zip(phones, (2500, 1900, 40))}) as emulator:
        yield emulator


def read(emulator: Emulator, config: dict, catalog: dict, state=None, at: str | None = None) -> cli.Output:
    emulator.clear_requests()
    # the default waits: no test-only shortening; `at`, the connector's clock (SMSTOOLS_NOW)
    return cli.run("read", config, catalog, state, timings={"SMSTOOLS_NOW": at} if at else {})


def requests(emulator: Emulator) -> Counter:
    return Counter((r["path"], r["page"], r["status"]) for r in emulator.requests)


def of(out: cli.Output, stream: str) -> list[dict]:
    return [m["record"]["data"] for m in out.of_type("RECORD") if m["record"]["stream"] == stream]


def by_id(records: list[dict]) -> dict[str, dict]:
    result = {r["id"]: r for r in records}
    assert len(result) == len(records), "a record came twice"
    return result


def last_states(out: cli.Output) -> dict[str, dict]:
    """Each stream's last state, without what differs from run to run: the conversation's
    `lookback_window` (the seconds the previous sync took) and the time of the sync."""
    states = {s["stream"]["stream_descriptor"]["name"]: dict(s["stream"]["stream_state"]) for s in out.states}
    for state in states.values():
        state.pop("lookback_window", None)
        changes = state.get("parent_state", {}).get("changes")
        if changes:
            # the time of the sync, which change detection keeps for its sweep
            # and in the book, each phone's last read
            kept = {k: v for k, v in changes.items() if k not in ("at", "book")}
            if "book" in changes:
                kept["book"] = {p: c for p, (c, _) in Book.decode(changes["book"]).entries.items()}
            if "numbers" in changes:  # when the account's numbers were checked: the time of the sync
                kept["numbers"] = {k: v for k, v in changes["numbers"].items() if k != "at"}
            if "contacts" in changes:  # when the contacts were read whole: the time of the sync
                kept["contacts"] = {k: v for k, v in changes["contacts"].items() if k != "at"}
            state["parent_state"] = {**state["parent_state"], "changes": kept}
    return states


def warnings(out: cli.Output) -> list[str]:
    return [m["log"]["message"] for m in out.of_type("LOG") if m["log"]["level"] == "WARN"]


def discovering(emulator: Emulator) -> dict:
    return cli.config(emulator, phone_numbers=None, page_size=1000, start_date=START)


def listing(emulator: Emulator) -> dict:
    # every listed phone asked (no change detection): the paging and early stop are under test
    return cli.config(emulator, page_size=1000, start_date=START, change_detection=False)


def mid_state(emulator: Emulator) -> list[dict]:
    """A conversation state whose cursors fall on page 2, 1 and 1: an incremental read stops there."""
    states = []
    for phone, index in zip(emulator.phones(), (1500, 300, 20)):
        cursor = emulator.conversation(phone)[index]["unixDatetime"]
        states.append({"partition": {"phone": "+" + phone}, "cursor": {"unixDatetime": str(cursor)}})
    return [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "conversation"},
                                          "stream_state": {"use_global_cursor": False, "states": states}}}]


@pytest.fixture(scope="module")
def documented(account):
    """The reads of the documented shape that every variation must give again."""
    account.variations = set()
    everything = read(account, discovering(account), cli.catalog("incremental", EVERYTHING))
    everything_requests = requests(account)
    early_stop = read(account, listing(account), cli.catalog("incremental"), mid_state(account))
    early_stop_requests = requests(account)
    for out in (everything, early_stop):
        assert out.returncode == 0 and not out.errors, out.errors or out.stderr[-2000:]
    # the reads are worth comparing: every stream has records, and the incremental read stopped early
    assert all(of(everything, s) for s in EVERYTHING if s != "outbox") and len(of(everything, "outbox")) == 2
    first, second, third = account.phones()  # 3, 2 and 1 pages; the cursors on pages 2, 1 and 1
    assert Counter(path for path, _, _ in early_stop_requests) == {
        f"/v1/conversation/{first}": 2, f"/v1/conversation/{second}": 1, f"/v1/conversation/{third}": 1}
    return {"everything": everything, "everything_requests": everything_requests,
            "early_stop": early_stop, "early_stop_requests": early_stop_requests}


@pytest.fixture
def varied(account):
    yield account
    account.variations = set()


@pytest.mark.parametrize("variation", sorted(VARIATIONS) + ["all at once"])
def test_each_variation_reads_like_the_documented_shape(varied, documented, variation):
    varied.variations = set(VARIATIONS) if variation == "all at once" else {variation}
    out = read(varied, discovering(varied), cli.catalog("incremental", EVERYTHING))
    everything_requests = requests(varied)
    early = read(varied, listing(varied), cli.catalog("incremental"), mid_state(varied))

    base = documented["everything"]
    assert out.returncode == 0 and not out.errors, out.errors or out.stderr[-2000:]
    assert warnings(out) == warnings(base)
    # the conversation, found by discovery in contacts, inbox and message log: the same records exactly
    assert by_id(of(out, "conversation")) == by_id(of(base, "conversation"))
    # the other streams: the same records, each field in its schema's type whatever the API sent
    for stream in OTHERS:
        assert sorted(of(out, stream), key=repr) == sorted(of(base, stream), key=repr), stream
    # the same state, and not one request more
    assert last_states(out) == last_states(base)
    assert everything_requests == documented["everything_requests"]

    # an incremental read from a saved state stops at the cursor, as on the documented shape
    assert early.returncode == 0 and not early.errors, early.errors
    assert by_id(of(early, "conversation")) == by_id(of(documented["early_stop"], "conversation"))
    assert last_states(early) == last_states(documented["early_stop"])
    assert requests(varied) == documented["early_stop_requests"]


# -- answers we cannot read: in seconds, naming keys and types, never values ----------------------


def data_values(emulator: Emulator) -> list[str]:
    """Values of the emulator's data that an error message must never quote."""
    values = [m["message"] for p in emulator.phones() for m in emulator.conversation(p)[:50]]
    values += [c["email"] for c in emulator.contacts()] + [c["firstname"] for c in emulator.contacts()]
    return [v for v in values if v]


def test_a_conversation_page_of_an_unexpected_shape_fails_that_phone_in_one_request(varied):
    phone = varied.phones()[2]
    original = varied.page_body

    def odd(p, page, limit):  # the list of messages under a key of its own, beside another list
        if p == phone:
            return b'{"total": 40, "page": 1, "data": [{"message": "secret text 1"}], "more": [1], "x": "Pieter"}'
        return original(p, page, limit)

    varied.page_body = odd
    try:
        # at a time when that phone is not the last handed out (drawn each sync): it ends its read,
        # the others are saved, then the stream fails
        out = read(varied, listing(varied), cli.catalog("incremental"), at="1750000002")
    finally:
        del varied.page_body
    assert out.returncode != 0
    # one request, no retry: under the default backoff a retry would wait 10 s, 20 s, ... (310 s)
    assert len(varied.conversation_requests(phone)) == 1
    message = out.errors[0]["message"]
    assert message == (
        f"Phone {phone}, page 1 (HTTP 200): Smstools answered /v1/conversation/{{phone}} with JSON of an unexpected "
        "shape: expected an object with total (number), page (number) and conversation (array); came an object "
        "with keys total (number), page (number), data (array), more (array), x (string). The 2 other phone(s) "
        "were read and keep what they read."
    )
    assert out.errors[0]["failure_type"] == "system_error"
    # nowhere a value of the answer: not in this message, nor in the internal one, nor in the sync's summary
    said = " ".join(f"{e['message']} {e.get('internal_message') or ''}" for e in out.errors)
    for value in data_values(varied) + ["secret text", "Pieter"]:
        assert value not in said
    # the other phones are read whole, their cursors saved
    got = Counter(r["phone"] for r in out.records)
    assert got == {"+" + p: len(varied.conversation(p)) for p in varied.phones() if p != phone}


# with change detection (the default) and without it, discovery reads its sources by two paths
@pytest.mark.parametrize("detection", [True, False])
def test_discovery_skips_a_source_it_cannot_read_with_one_warning(varied, detection):
    original = varied.contacts
    varied.contacts = lambda: "not a list"  # served as {"total": 10, ..., "contacts": "not a list"}
    try:
        out = read(varied, {**discovering(varied), "change_detection": detection}, cli.catalog("incremental"))
    finally:
        varied.contacts = original
    assert out.returncode == 0 and not out.errors, out.errors
    # every phone is also in the inbox or the message log: every conversation is read whole
    assert Counter(r["phone"] for r in out.records) == {p: len(varied.conversation(p)) for p in varied.phones()}
    assert len(varied.requests_to("/v1/contact")) == 1
    said = [w for w in warnings(out) if "contacts" in w]
    assert said == [
        "Phone discovery: contacts cannot be read, so phones that only contacts lists are missed this sync "
        "(Smstools answered /v1/contact with JSON of an unexpected shape: expected an object with total (number), "
        "page (number) and contacts (array); came an object with keys total (number), shown (number), page (number), "
        "limit (number), contacts (string).)"
    ], warnings(out)


@pytest.mark.parametrize("detection", [True, False])
def test_discovery_fails_only_when_no_source_can_be_read(varied, detection):
    for path in ("/v1/contact", "/v1/message/inbox", "/v1/message/logging"):
        varied.forbid(path, "403")
    try:
        out = read(varied, {**discovering(varied), "change_detection": detection}, cli.catalog("incremental"))
    finally:
        for path in ("/v1/contact", "/v1/message/inbox", "/v1/message/logging"):
            varied.forbid(path, None)
    assert out.returncode != 0 and out.records == []
    assert any("could not read any of its sources (contacts, inbox, message_log)" in e["message"]
               and "phone_numbers" in e["message"] for e in out.errors), out.errors
    assert len([w for w in warnings(out) if w.startswith("Phone discovery:")]) == 3
    # the account's virtual numbers asked for too (an inbox may list one alone; one number here: nothing more)
    assert Counter(r["path"] for r in varied.requests) == {"/v1/contact": 1, "/v1/message/inbox": 1, "/v1/message/logging": 1, "/v1/vmn": 1}


def test_a_stream_of_an_unexpected_shape_fails_alone_and_the_others_are_kept(varied, documented):
    original = varied.outbox
    varied.outbox = lambda: "not a list"  # served as {"total": 10, ..., "messages": "not a list"}
    try:
        out = read(varied, listing(varied), cli.catalog("incremental", EVERYTHING))
    finally:
        varied.outbox = original
    assert out.returncode != 0
    assert len(varied.requests_to("/v1/outbox")) == 1  # no retry
    outbox_errors = [e for e in out.errors if "/v1/outbox" in e["message"]]
    assert outbox_errors[0]["message"] == (
        "Smstools answered /v1/outbox with JSON of an unexpected shape: expected an object with total (number), "
        "page (number) and messages (array); came an object with keys total (number), shown (number), "
        "page (number), limit (number), messages (string)."
    )
    # every other stream: its records and its state, as when nothing failed
    base = documented["everything"]
    for stream in EVERYTHING:
        if stream not in ("outbox", "conversation"):
            assert sorted(of(out, stream), key=repr) == sorted(of(base, stream), key=repr), stream
    assert of(out, "outbox") == []
    states = last_states(out)
    for stream, state in last_states(base).items():
        if stream not in ("outbox", "conversation"):
            assert states[stream] == state, stream
    assert Counter(r["phone"] for r in of(out, "conversation")) == {"+" + p: len(varied.conversation(p)) for p in varied.phones()}


# -- the switches: from Python (above), the control endpoint and the command line ------------------


def test_variations_are_set_over_the_control_endpoint(varied):
    answer = http.post(f"{varied.url}/_emulator/variations", json={"variations": ["bom", "paging_as_strings"]})
    assert answer.json() == {"variations": ["bom", "paging_as_strings"]} and varied.variations == {"bom", "paging_as_strings"}
    page = http.get(f"{varied.url}/v1/conversation/{varied.phones()[2]}",
                    headers={"X-Client-Id": cli.CLIENT_ID, "X-Client-Secret": cli.CLIENT_SECRET})
    assert page.content.startswith(b'\xef\xbb\xbf{"total": "40", "shown": "40", "page": "1", "limit": "1000"')
    assert http.post(f"{varied.url}/_emulator/variations", json={"variations": []}).json() == {"variations": []}
    with pytest.raises(ValueError):
        varied.variations = {"no_such_variation"}


def test_variations_are_chosen_on_the_command_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # `smstools-emulator` is this module's main(); run by module, it is the code under test also uninstalled
    emulator = subprocess.Popen(
        [sys.executable, "-m", "smstools_emulator", "--port", str(port), "--phones", "1", "--messages", "3", "--variation", "lists_as_objects",
         "--variation", "text_html"], stdout=subprocess.PIPE, text=True)
    try:
        assert "emulator listening" in emulator.stdout.readline()
        page = http.get(f"http://127.0.0.1:{port}/v1/conversation/393331000000",
                        headers={"X-Client-Id": cli.CLIENT_ID, "X-Client-Secret": cli.CLIENT_SECRET})
        assert page.headers["Content-Type"] == "text/html; charset=UTF-8"
        assert list(page.json()["conversation"]) == ["0", "2", "4"]
    finally:
        emulator.terminate()
        emulator.wait()
