"""Phone discovery end to end: with no `phone_numbers`, the installed CLI finds the phones in the
emulator's contacts, inbox and message log, reads each conversation once, and keeps a state per
phone, so that a number found later gets its whole history."""

from __future__ import annotations

import math
from collections import Counter
from unittest.mock import patch

import pytest
from airbyte_cdk.sources.declarative.incremental.concurrent_partition_cursor import (
    ConcurrentPerPartitionCursor,
)

from integration_tests import cli
from smstools_emulator import Emulator, make_contact, make_conversation
from source_smstools.components.state import phone_cursors

# A and B are contacts who wrote and were written to; C only wrote (inbox only), D was only
# written to (message log only). Each is written differently in each place.
A, B, C, D = "+393331000000", "+393331000001", "+32470123456", "+4915112345678"
NORMAL = {A: "393331000000", B: "393331000001", C: "32470123456", D: "4915112345678"}
SIZES = {A: 2300, B: 120, C: 30, D: 25}


def only(direction: str, messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["direction"] == direction]


@pytest.fixture
def account():
    conversations = {
        A: make_conversation(A, SIZES[A], seed=5),
        B: make_conversation(B, SIZES[B], seed=5),
        C: only("inbound", make_conversation(C, 3 * SIZES[C], seed=5))[: SIZES[C]],
        D: only("outbound", make_conversation(D, 3 * SIZES[D], seed=5))[: SIZES[D]],
    }
    with Emulator(conversations) as emulator:
        emulator.set_contacts([
            make_contact("+39 333 100 0000", 1),
            make_contact("0039-333-1000001", 2),
            make_contact("393331000000", 3, firstname="Giulia", memo="the same person, saved twice"),
            make_contact("", 4, firstname="Ufficio"),
            make_contact("n/d", 5),
        ])
        emulator.forms = {
            NORMAL[A]: {"inbox": "+393331000000", "log": "0039 333 1000000"},
            NORMAL[B]: {"inbox": "393331000001", "log": "+39-333-1000001"},
            NORMAL[C]: {"inbox": "0032 470 12 34 56"},
            NORMAL[D]: {"log": "+49 151 12345678"},
        }
        yield emulator


def discovering(emulator: Emulator, **overrides) -> dict:
    # discovery as such: every phone found is asked every sync (change detection, which reads
    # only the phones that moved, has its own tests: test_changes.py)
    return cli.config(emulator, phone_numbers=None, **{"change_detection": False, **overrides})


def read(emulator: Emulator, config: dict, state=None, in_process: bool = True) -> cli.Output:
    """A read in this process (cli.call) unless `in_process` is False: discovery is about the
    requests and the records, not the command."""
    if in_process:
        out = cli.in_process(config, cli.catalog("incremental"), state)
    else:
        out = cli.run("read", config, cli.catalog("incremental"), state)
    assert out.returncode == 0 and not out.errors, out.errors or out.stderr[-2000:]
    return out


def every_message(emulator: Emulator, phone: str, since: int = 0) -> set[int]:
    return {m["unixDatetime"] for m in emulator.conversation(phone) if m["unixDatetime"] >= since}


def conversation_requests(emulator: Emulator) -> Counter:
    return Counter(r["phone"] for r in emulator.conversation_requests())


def source_requests(emulator: Emulator) -> Counter:
    return Counter(r["path"] for r in emulator.requests if not r["path"].startswith("/v1/conversation/"))


def cursors(out: cli.Output) -> dict[str, int]:
    state = out.last_state[0]["stream"]["stream_state"]
    assert state["use_global_cursor"] is True and "states" not in state  # the CDK's one cursor; the phones are the book's
    return phone_cursors(state)


def newest(emulator: Emulator, phone: str) -> int:
    return max(m["unixDatetime"] for m in emulator.conversation(phone))


def test_every_phone_of_contacts_inbox_and_log_is_read_once_in_one_form(account):
    out = read(account, discovering(account))
    # every number in one form (digits with country code), whatever its spelling in each source
    assert cli.records_by_phone(out) == {NORMAL[p]: every_message(account, p) for p in (A, B, C, D)}
    # A is in the contacts twice, in the inbox and in the log: its conversation is read once
    assert conversation_requests(account) == {NORMAL[p]: math.ceil(SIZES[p] / 2000) for p in (A, B, C, D)}
    # each source read whole, once, page by page; the account's virtual numbers asked for once
    # (one number: its inbox is the account's, test_numbers.py has two)
    assert source_requests(account) == {
        "/v1/contact": 1,
        "/v1/message/inbox": math.ceil(len(account.inbox()) / 2000),
        "/v1/message/logging": math.ceil(len(account.message_log()) / 2000),
        "/v1/vmn": 1,
    }
    assert cursors(out) == {NORMAL[p]: newest(account, p) for p in (A, B, C, D)}
    logs = [m["log"]["message"] for m in out.of_type("LOG")]
    assert "Phone discovery: 4 phone numbers from contacts, inbox, message_log; left out 2 value(s) that are not phone numbers." in logs


def test_the_sources_option_chooses_where_phones_are_found(account):
    cases = {
        ("contacts",): {A, B},
        ("inbox",): {A, B, C},
        ("message_log",): {A, B, D},
        ("inbox", "message_log"): {A, B, C, D},
    }
    for sources, phones in cases.items():
        account.clear_requests()
        out = read(account, discovering(account, phone_sources=list(sources)))
        assert set(cli.records_by_phone(out)) == {NORMAL[p] for p in phones}, sources
        paths = {"contacts": "/v1/contact", "inbox": "/v1/message/inbox", "message_log": "/v1/message/logging"}
        # the inbox's with the account's virtual numbers (an inbox may list one number alone)
        assert set(source_requests(account)) == {paths[s] for s in sources} | ({"/v1/vmn"} if "inbox" in sources else set()), sources


def test_an_empty_list_of_phone_numbers_discovers_too(account):
    out = read(account, cli.config(account, phone_numbers=[]))  # change detection on: the first sync reads every phone
    assert set(cli.records_by_phone(out)) == set(NORMAL.values())


def test_listed_phone_numbers_are_read_as_given_without_discovery(account):
    config = cli.config(account, phone_numbers=[C, "+393331000001"], phone_sources=["contacts"], change_detection=False)
    out = read(account, config)
    assert cli.records_by_phone(out) == {C: every_message(account, C), "+393331000001": every_message(account, B)}
    assert source_requests(account) == {}


def test_a_contact_added_between_syncs_gets_its_whole_history_and_the_others_go_on(account):
    start = 1_740_000_000  # 2025-02-19: nothing older is synced
    config = discovering(account, start_date="2025-02-19T21:20:00Z")
    first = read(account, config)
    assert cli.records_by_phone(first) == {NORMAL[p]: every_message(account, p, start) for p in (A, B, C, D)}

    # between the syncs: a new customer, saved with a spaced national trunk zero, with a long
    # history; new messages for A
    e = "+442079460958"
    account.set_conversation(e, make_conversation(e, 2600, seed=9, newest=newest(account, A) - 7_200))
    account.add_contact("+44 (0)20 7946 0958")
    new_for_a = [dict(m, unixDatetime=newest(account, A) + 60 * (i + 1), messageId=f"new-{i}") for i, m in enumerate(only("outbound", account.conversation(A))[:3])]
    account.add_messages(A, new_for_a)
    account.clear_requests()

    second = read(account, config, first.last_state)
    got = cli.records_by_phone(second)
    # the new phone: every message since start_date, though older than every other cursor
    assert got["442079460958"] == every_message(account, e, start)
    assert min(got["442079460958"]) < min(cursors(first).values())
    # the known ones: from their own cursor (the message at the cursor is read again)
    before = cursors(first)
    assert got[NORMAL[A]] == every_message(account, A, before[NORMAL[A]])
    for p in (B, C, D):
        assert got[NORMAL[p]] == {before[NORMAL[p]]}
    requests = conversation_requests(account)
    assert requests["442079460958"] == math.ceil(len(every_message(account, e, start)) / 2000)
    assert [requests[NORMAL[p]] for p in (A, B, C, D)] == [1, 1, 1, 1]
    assert cursors(second) == {**{NORMAL[p]: newest(account, p) for p in (A, B, C, D)}, "442079460958": newest(account, e)}


def test_a_forbidden_source_is_skipped_with_a_warning_and_the_others_still_count(account):
    account.forbid("/v1/contact", "403")
    out = read(account, discovering(account))
    assert set(cli.records_by_phone(out)) == {NORMAL[p] for p in (A, B, C, D)}  # all in inbox or log
    warnings = [m["log"]["message"] for m in out.of_type("LOG") if m["log"]["level"] == "WARN"]
    assert any("does not let this account read /v1/contact" in w for w in warnings), warnings


def test_check_succeeds_by_discovery(account):
    out = cli.call("check", discovering(account))
    assert out.connection_status["status"] == "SUCCEEDED"


def test_past_the_cdks_partition_limit_each_phone_keeps_its_cursor_and_one_found_late_its_history(account):
    # the CDK's limits (10,000 phones to one cursor, 25,000 kept) lowered to 2 and 3 here, in this
    # process: the book, not the CDK, keeps each phone's cursor
    start = 1_740_000_000
    config = discovering(account, start_date="2025-02-19T21:20:00Z")
    limits = (patch.object(ConcurrentPerPartitionCursor, "SWITCH_TO_GLOBAL_LIMIT", 2),
              patch.object(ConcurrentPerPartitionCursor, "DEFAULT_MAX_PARTITIONS_NUMBER", 3))
    with limits[0], limits[1]:
        first = read(account, config)
        e = "+442079460958"
        account.set_conversation(e, make_conversation(e, 2600, seed=9, newest=newest(account, A) - 7_200))
        account.add_contact("+44 (0)20 7946 0958")
        account.clear_requests()
        second = read(account, config, first.last_state)
    got = cli.records_by_phone(second)
    before = cursors(first)
    assert before == {NORMAL[p]: newest(account, p) for p in (A, B, C, D)}
    assert got == {"442079460958": every_message(account, e, start), **{NORMAL[p]: {before[NORMAL[p]]} for p in (A, B, C, D)}}
    assert [conversation_requests(account)[p] for p in ("442079460958", *(NORMAL[p] for p in (A, B, C, D)))] == [2, 1, 1, 1, 1]
    assert cursors(second) == {**before, "442079460958": newest(account, e)}


def test_0_3_0s_one_cursor_past_its_partition_limit_reads_every_phone_from_it_once_and_warns(account):
    config = discovering(account)
    since = 1_749_000_000
    old = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "conversation"}, "stream_state": {
        "use_global_cursor": True, "state": {"unixDatetime": str(since)}, "lookback_window": 0,
        "parent_state": {"changes": {"floor": since}}}}}]
    second = read(account, config, old)
    warnings = [m["log"]["message"] for m in second.of_type("LOG") if m["log"]["level"] == "WARN"]
    assert sum("one cursor for all phones" in w for w in warnings) == 1, warnings
    assert cli.records_by_phone(second) == {
        NORMAL[p]: every_message(account, p, since) for p in (A, B, C, D) if every_message(account, p, since)
    }
    assert cursors(second) == {NORMAL[p]: newest(account, p) for p in (A, B, C, D)}
