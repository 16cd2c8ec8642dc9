"""Change detection end to end, against the emulator: an incremental sync reads a known phone's
conversation only when the inbox or the message log shows it moved, when it has messages sent
within the lookback window of now, or when it is due for the weekly sweep. The clock is fixed
(changes.now patched in-process, SMSTOOLS_NOW for the command): nothing depends on today's date."""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from unittest.mock import patch

import pytest

from integration_tests import cli
from smstools_emulator import Emulator, make_contact, make_conversation, make_message, sample_phones
from source_smstools.components import changes, sources
from source_smstools.components.book import Book
from source_smstools.components.discovery import normalize_phone
from source_smstools.components.state import phone_cursors

DAY = 86_400
NEWEST = 1_749_113_086  # the newest message of each sample conversation (2025-06-05)
NOW = NEWEST + 3_600  # the first sync, an hour later
PAGE = 20
PHONES = sample_phones(20)
DIGITS = [p.lstrip("+") for p in PHONES]


def settled(messages: list[dict]) -> list[dict]:
    """The messages with every delivery status final (a PENDING one is followed until it is)."""
    return [dict(m, deliveryStatus="DELIVERED") if m["deliveryStatus"] == "PENDING" else m for m in messages]


@pytest.fixture
def account():
    """20 phones of 6 messages each, found in the contacts (one form per phone) and in the lists;
    every delivery status final."""
    with Emulator({p: settled(make_conversation(p, 6, seed=3)) for p in PHONES}) as emulator:
        emulator.set_contacts([make_contact(p, i + 1) for i, p in enumerate(PHONES)])
        yield emulator


def discovering(emulator: Emulator, **overrides) -> dict:
    return cli.config(emulator, phone_numbers=None, page_size=PAGE, **overrides)


def sync(emulator: Emulator, config: dict, state=None, at: int = NOW) -> cli.Output:
    emulator.clear_requests()
    with patch.object(changes, "now", lambda: at):
        out = cli.in_process(config, cli.catalog("incremental"), state)
    assert out.returncode == 0 and not out.errors, out.errors
    return out


def conversation_requests(emulator: Emulator) -> Counter:
    return Counter(r["phone"] for r in emulator.conversation_requests())


def source_requests(emulator: Emulator) -> Counter:
    return Counter(r["path"] for r in emulator.requests if not r["path"].startswith("/v1/conversation/"))


def pages(entries: list) -> int:
    return max(1, math.ceil(len(entries) / PAGE))


def stream_state(out: cli.Output) -> dict:
    return out.last_state[0]["stream"]["stream_state"]


def cursors(out: cli.Output) -> dict[str, int]:
    return phone_cursors(stream_state(out))


def newest(emulator: Emulator, phone: str) -> int:
    return max(m["unixDatetime"] for m in emulator.conversation(phone))


def new_messages(emulator: Emulator, phone: str, *directions: str) -> list[dict]:
    """New messages of `phone`, one per direction, dated after every message of the account (as
    messages that arrive after a sync are), added to its conversation."""
    top, rng = max(newest(emulator, p) for p in emulator.phones()), random.Random(phone)
    messages = []
    for i, direction in enumerate(directions):
        while True:
            m = make_message(phone, top + 60 * (i + 1), rng, 1000 + i)
            if m["direction"] == direction:
                break
        messages.append(m)
    emulator.add_messages(phone, messages)
    return messages


def warnings(out: cli.Output) -> list[str]:
    return [m["log"]["message"] for m in out.of_type("LOG") if m["log"]["level"] == "WARN"]


def infos(out: cli.Output, start: str) -> list[str]:
    return [m["log"]["message"] for m in out.of_type("LOG") if m["log"]["message"].startswith(start)]


def test_the_first_sync_reads_every_phone_and_the_next_with_nothing_new_reads_no_conversation(account):
    config = discovering(account)
    first = sync(account, config)
    assert cli.records_by_phone(first) == {d: {m["unixDatetime"] for m in account.conversation(d)} for d in DIGITS}
    # the sources read whole once, after the phones (all new) were handed out; the account's
    # virtual numbers asked for once (one number: its inbox is the account's)
    assert source_requests(account) == {
        "/v1/contact": pages(account.contacts()),
        "/v1/message/inbox": pages(account.inbox()),
        "/v1/message/logging": pages(account.message_log()),
        "/v1/vmn": 1,
    }
    assert pages(account.inbox()) > 1 and pages(account.message_log()) > 1
    inbox, log = account.inbox()[0], account.message_log()[0]
    book = stream_state(first)["parent_state"]["changes"]["book"]
    assert stream_state(first)["parent_state"] == {
        "changes": {
            "at": NOW,
            "inbox": {"newest": sources.parse_date(inbox["date"]), "ids": [str(inbox["ID"])]},
            "message_log": {"newest": sources.parse_date(log["date"]), "ids": [str(log["ID"])]},
            "numbers": {"at": NOW, "apart": [], "blind": []},
            # when the contacts were read whole, their total and a checksum of their first page
            "contacts": {"at": NOW, "total": 20, "first": 2707791035},
            "book": book,
        }
    }
    # in the book, each phone: its newest message, and when it was read whole (for the sweep)
    assert Book.decode(book).entries == {d: (newest(account, d), NOW) for d in DIGITS}

    second = sync(account, config, first.last_state, at=NOW + 60)
    assert second.records == []
    assert conversation_requests(account) == {}
    # the contacts' first page (as when they were read whole: not read again); inbox and log: their
    # first page, which reaches the last sync's entries
    assert source_requests(account) == {"/v1/contact": 1, "/v1/message/inbox": 1, "/v1/message/logging": 1}
    assert cursors(second) == cursors(first)
    # the book unchanged: no phone read
    assert stream_state(second)["parent_state"]["changes"] == {**stream_state(first)["parent_state"]["changes"], "at": NOW + 60}
    assert infos(second, "Change detection:") == [
        "Change detection: 0 of 20 phones read: 0 new, 0 with new entries in the inbox or the message log, "
        "0 not covered by them, 0 with a delivery status not final, "
        "0 due for the 7-day sweep; contacts not read again: their first page is as when they were read whole, "
        "less than an hour ago (read whole every 7 days); "
        f"inbox read 1 of {pages(account.inbox())} page(s), down to the last sync's entries; "
        f"message log read 1 of {pages(account.message_log())} page(s), down to the last sync's entries."
    ]


def test_a_changed_phone_costs_its_own_requests_only(account):
    config = discovering(account)
    first = sync(account, config)
    a, b = PHONES[4], PHONES[11]
    before = {p: newest(account, p) for p in (a, b)}
    added_a = new_messages(account, a, "inbound")  # seen in the inbox only
    added_b = new_messages(account, b, "outbound", "outbound")  # in the message log only
    second = sync(account, config, first.last_state, at=NOW + 60)
    # the new messages, and each phone's message at its cursor (the inclusive cursor)
    assert cli.records_by_phone(second) == {
        a.lstrip("+"): {before[a]} | {m["unixDatetime"] for m in added_a},
        b.lstrip("+"): {before[b]} | {m["unixDatetime"] for m in added_b},
    }
    assert conversation_requests(account) == {a.lstrip("+"): 1, b.lstrip("+"): 1}
    assert cursors(second) == {**cursors(first), a.lstrip("+"): newest(account, a), b.lstrip("+"): newest(account, b)}
    # and the sync after it reads nothing again
    third = sync(account, config, second.last_state, at=NOW + 120)
    assert third.records == [] and conversation_requests(account) == {}


def test_the_sweep_reads_each_phone_once_a_week_a_few_each_day_and_finds_what_the_lists_omit(account):
    config = discovering(account)
    state = sync(account, config).last_state
    hidden_phone = PHONES[7]
    before = newest(account, hidden_phone)
    hidden = new_messages(account, hidden_phone, "inbound")[0]
    account.leave_out_of_lists(hidden_phone, hidden["unixDatetime"])
    hidden_date = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(hidden["unixDatetime"]))
    assert hidden_date not in {e["date"] for e in account.inbox()}

    read_per_day = []
    found = None
    for day in range(1, 8):
        out = sync(account, config, state, at=NOW + day * DAY)
        state = out.last_state
        read = conversation_requests(account)
        read_per_day.append(read)
        got = cli.records_by_phone(out)
        if hidden_phone.lstrip("+") in got and found is None:
            found = day
            assert got[hidden_phone.lstrip("+")] == {before, hidden["unixDatetime"]}
    # over a week each phone is read exactly once, spread over the days, never all in one sync;
    # but the phone whose message no list showed: from its sweep on, every sync (test_coverage.py)
    assert found is not None
    assert sum(read_per_day, Counter()) == {d: 1 for d in DIGITS} | {hidden_phone.lstrip("+"): 8 - found}
    assert max(len(r) for r in read_per_day) < len(DIGITS) and sum(1 for r in read_per_day if r) >= 3
    assert cursors(out)[hidden_phone.lstrip("+")] == hidden["unixDatetime"]


def test_a_delivery_status_change_within_the_lookback_window_of_now_is_read(account):
    config = discovering(account, lookback_window_days=2)
    at = NEWEST + 30 * DAY  # a month after the sample conversations
    recent, old = PHONES[3], PHONES[9]
    sent = new_messages(account, recent, "outbound")[0]
    # `sent` goes out a day before `at`: its status may still change
    messages = account.conversation(recent)
    messages[0] = {**sent, "unixDatetime": at - DAY, "deliveryStatus": "PENDING"}
    account.set_conversation(recent, messages)
    first = sync(account, config, at=at)
    old_sent = next(m for m in account.conversation(old) if m["direction"] == "outbound")

    # both get delivered after the first sync
    messages = account.conversation(recent)
    messages[0] = {**messages[0], "deliveryStatus": "DELIVERED"}
    account.set_conversation(recent, messages)
    messages = [dict(m, deliveryStatus="DELIVERED") if m is old_sent else m for m in account.conversation(old)]
    account.set_conversation(old, messages)

    second = sync(account, config, first.last_state, at=at + 60)
    # the phone with a message sent within 2 days of now is read from its cursor minus 2 days;
    # the one whose messages are a month old waits for the sweep
    assert conversation_requests(account) == {recent.lstrip("+"): 1}
    delivered = [r for r in second.records if r["unixDatetime"] == at - DAY]
    assert [r["deliveryStatus"] for r in delivered] == ["DELIVERED"]
    assert {r["phone"] for r in second.records} == {recent.lstrip("+")}
    assert {r["unixDatetime"] for r in second.records} == {
        m["unixDatetime"] for m in account.conversation(recent) if m["unixDatetime"] >= at - DAY - 2 * DAY
    }
    # the message log was read back 2 days before its last position
    assert source_requests(account)["/v1/message/logging"] == 1


def test_a_phone_found_only_in_the_inbox_gets_its_whole_history(account):
    config = discovering(account, start_date="2025-06-01T00:00:00Z")
    first = sync(account, config)
    newcomer = "+32470123456"
    history = [m for m in make_conversation(newcomer, 90, seed=4) if m["direction"] == "inbound"]
    account.set_conversation(newcomer, history)  # not in the contacts, never written to
    second = sync(account, config, first.last_state, at=NOW + 60)
    start = 1_748_736_000  # 2025-06-01
    assert cli.records_by_phone(second) == {"32470123456": {m["unixDatetime"] for m in history if m["unixDatetime"] >= start}}
    assert conversation_requests(account) == {"32470123456": pages(history)}  # and no other phone
    assert cursors(second)["32470123456"] == newest(account, newcomer)


def test_a_phone_added_to_the_contacts_alone_is_found_by_the_next_sync_and_they_are_read_whole_again_each_week(account):
    config = cli.config(account, phone_numbers=None, page_size=8)  # 20 contacts: 3 pages
    first = sync(account, config)
    assert source_pages(account, "/v1/contact") == [1, 1, 2, 3]  # page 1 looked at, then read whole
    quiet = sync(account, config, first.last_state, at=NOW + 3_600)
    assert source_pages(account, "/v1/contact") == [1] and conversation_requests(account) == {}
    # a contact added (the last page): no message, in no other list
    account.add_contact("+393339990001")
    found = sync(account, config, quiet.last_state, at=NOW + 7_200)
    assert source_pages(account, "/v1/contact") == [1, 1, 2, 3]
    assert conversation_requests(account) == {"393339990001": 1}  # its whole history: none yet
    assert cursors(found) == {**cursors(first), "393339990001": None}
    # nothing changed, 6 days after the whole read: page 1 alone; 7 days after it: whole again
    later = sync(account, config, found.last_state, at=NOW + 7_200 + 6 * 86_400)
    assert source_pages(account, "/v1/contact") == [1]
    sync(account, config, later.last_state, at=NOW + 7_200 + 7 * 86_400)
    assert source_pages(account, "/v1/contact") == [1, 1, 2, 3]


def test_a_state_from_the_version_before_is_read_and_its_first_sync_reads_every_phone_once(account):
    # the state as 0.2.0 wrote it: one CDK cursor per phone, no parent_state
    before = sync(account, discovering(account, change_detection=False))
    old_state = {
        "use_global_cursor": False,
        "states": [{"partition": {"phone": d}, "cursor": {"unixDatetime": c}} for d, c in cursors(before).items()],
        "state": {"unixDatetime": max(cursors(before).values())},
        "lookback_window": 0,
    }
    old = [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "conversation"}, "stream_state": old_state}}]
    config = discovering(account)
    first = sync(account, config, old, at=NOW + 60)
    # no sweep done before: every known phone is read, from its own cursor (one message each)
    assert cli.records_by_phone(first) == {d: {c} for d, c in cursors(before).items()}
    assert conversation_requests(account) == {d: 1 for d in DIGITS}
    assert cursors(first) == cursors(before)
    assert stream_state(first)["parent_state"]["changes"]["at"] == NOW + 60
    second = sync(account, config, first.last_state, at=NOW + 120)
    assert second.records == [] and conversation_requests(account) == {}


@pytest.mark.parametrize("how", ["403", "error"])
def test_an_unreadable_inbox_falls_back_to_every_phone_with_one_warning(account, how):
    config = discovering(account)
    first = sync(account, config)
    account.forbid("/v1/message/inbox", how)
    changed = PHONES[2]
    new_messages(account, changed, "outbound")
    second = sync(account, config, first.last_state, at=NOW + 60)
    assert conversation_requests(account) == {d: 1 for d in DIGITS}
    assert set(cli.records_by_phone(second)) == set(DIGITS)
    fallback = [w for w in warnings(second) if w.startswith("Change detection is off")]
    assert len(fallback) == 1, warnings(second)
    assert fallback[0].startswith("Change detection is off for this sync: the inbox could not be read (")
    assert fallback[0].endswith(
        "Every phone's conversation is read (20 phones, at least one request each) instead of only those that changed."
    )
    # and, as a source of phones, one warning that phones only the inbox lists are missed
    missed = [w for w in warnings(second) if w.startswith("Phone discovery:")]
    assert len(missed) == 1 and missed[0].startswith(
        "Phone discovery: inbox cannot be read, so phones that only inbox lists are missed this sync ("
    ), missed
    # the inbox goes on from where it was, the log from where it got
    before, after = stream_state(first)["parent_state"]["changes"], stream_state(second)["parent_state"]["changes"]
    assert after["inbox"] == before["inbox"]
    assert after["message_log"]["newest"] == newest(account, changed)

    account.forbid("/v1/message/inbox", None)
    third = sync(account, config, second.last_state, at=NOW + 120)
    assert third.records == [] and conversation_requests(account) == {}


def test_lists_not_in_any_order_are_read_whole_and_still_tell_what_changed(account):
    config = discovering(account)
    account.list_order = "shuffled"
    first = sync(account, config)
    changed = PHONES[5]
    new_messages(account, changed, "inbound", "outbound")
    second = sync(account, config, first.last_state, at=NOW + 60)
    assert conversation_requests(account) == {changed.lstrip("+"): 1}
    # never more requests than reading them whole
    assert source_requests(account) == {
        "/v1/contact": pages(account.contacts()),
        "/v1/message/inbox": pages(account.inbox()),
        "/v1/message/logging": pages(account.message_log()),
    }
    [summary] = infos(second, "Change detection:")
    assert "inbox read whole: its entries are not newest first" in summary


def source_pages(emulator: Emulator, path: str) -> list[int]:
    """The pages of `path` asked for, in order."""
    return [r["page"] for r in emulator.requests if r["path"] == path]


def test_oldest_first_lists_are_read_from_their_last_pages_back_to_the_last_sync(account):
    config = cli.config(account, phone_numbers=None, page_size=8)
    account.list_order = "oldest_first"
    first = sync(account, config)
    assert (len(account.inbox()), len(account.message_log())) == (37, 83)  # 5 and 11 pages of 8
    # the first sync, with no position yet, pages through them whole
    assert source_pages(account, "/v1/message/inbox") == [1, 2, 3, 4, 5]
    a, b = PHONES[4], PHONES[11]
    before = {p: newest(account, p) for p in (a, b)}
    added_a = new_messages(account, a, "inbound", "outbound")
    added_b = []
    for _ in range(5):  # with a's, 11 entries more in the log: 94, the 11 newest on pages 11 and 12
        added_b += new_messages(account, b, "outbound", "outbound")
    second = sync(account, config, first.last_state, at=NOW + 60)
    assert cli.records_by_phone(second) == {
        a.lstrip("+"): {before[a]} | {m["unixDatetime"] for m in added_a},
        b.lstrip("+"): {before[b]} | {m["unixDatetime"] for m in added_b},
    }
    # b: 11 messages from its cursor, 2 pages of 8
    assert conversation_requests(account) == {a.lstrip("+"): 1, b.lstrip("+"): 2}
    # page 1 (oldest first), then back from the last page to the one holding the last sync's newest entry:
    # the inbox (38: the last sync's newest, 37th, and the new one on page 5), the log (94: the last
    # sync's newest, 83rd, on page 11)
    assert source_pages(account, "/v1/message/inbox") == [1, 5]
    assert source_pages(account, "/v1/message/logging") == [1, 12, 11]
    # the contacts: their first page, as when they were read whole
    assert source_pages(account, "/v1/contact") == [1]
    # the positions move as with lists newest first: the newest entry of each
    inbox, log = account.inbox()[0], account.message_log()[0]
    assert stream_state(second)["parent_state"]["changes"] == {
        "at": NOW + 60,
        "inbox": {"newest": sources.parse_date(inbox["date"]), "ids": [str(inbox["ID"])]},
        "message_log": {"newest": sources.parse_date(log["date"]), "ids": [str(log["ID"])]},
        "numbers": {"at": NOW, "apart": [], "blind": []},  # checked by the first sync: again in 7 days
        "contacts": {"at": NOW, "total": 20, "first": 3757320309},  # read whole by the first sync
        "book": stream_state(second)["parent_state"]["changes"]["book"],
    }
    assert cursors(second) == {**cursors(first), **{p.lstrip("+"): newest(account, p) for p in (a, b)}}
    assert infos(second, "Change detection:") == [
        "Change detection: 2 of 20 phones read: 0 new, 2 with new entries in the inbox or the message log, "
        "0 not covered by them, 0 with a delivery status not final, 0 due for the 7-day sweep; contacts not read "
        "again: their first page is as when they were read whole, less than an hour ago (read whole every 7 days); "
        "inbox read 2 of 5 page(s), down to the last sync's entries (oldest first: "
        "page 1, then from the last page back); message log read 3 of 12 page(s), down to the last sync's "
        "entries (oldest first: page 1, then from the last page back)."
    ]
    # and the sync after it: page 1 and the last page of each, no conversation
    third = sync(account, config, second.last_state, at=NOW + 120)
    assert third.records == [] and conversation_requests(account) == {}
    assert source_pages(account, "/v1/message/inbox") == [1, 5] and source_pages(account, "/v1/message/logging") == [1, 12]


def test_listed_phones_are_read_when_they_changed_and_every_sync_without_change_detection(account):
    listed = PHONES[:3]
    config = cli.config(account, phone_numbers=listed, page_size=PAGE)
    first = sync(account, config)
    assert set(cli.records_by_phone(first)) == set(listed)  # as typed, with their +
    added = new_messages(account, listed[1], "inbound")
    new_messages(account, PHONES[10], "inbound")  # not listed: not read
    second = sync(account, config, first.last_state, at=NOW + 60)
    assert conversation_requests(account) == {listed[1].lstrip("+"): 1}
    assert cli.records_by_phone(second) == {listed[1]: {cursors(first)[listed[1]], added[0]["unixDatetime"]}}
    assert source_requests(account) == {"/v1/message/inbox": 1, "/v1/message/logging": 1}

    for off in ({"change_detection": False}, {"full_sweep_days": 0}):
        every = sync(account, {**config, **off}, second.last_state, at=NOW + 120)
        assert conversation_requests(account) == {p.lstrip("+"): 1 for p in listed}, off
        assert source_requests(account) == {}, off
        assert cli.records_by_phone(every) == {p: {c} for p, c in cursors(second).items()}, off


def test_the_command_keeps_change_detection_in_one_state_message_per_sync(account):
    config = discovering(account)
    timings = {**cli.TIMINGS, "SMSTOOLS_NOW": str(NOW)}
    first = cli.run("read", config, cli.catalog(), None, timings=timings)
    assert first.returncode == 0 and not first.errors
    assert {s["stream"]["stream_descriptor"]["name"] for s in first.states} == {"conversation"}
    account.clear_requests()
    timings["SMSTOOLS_NOW"] = str(NOW + 60)
    second = cli.run("read", config, cli.catalog(), first.last_state, timings=timings)
    assert second.returncode == 0 and not second.errors
    assert second.records == [] and conversation_requests(account) == {}
    assert len(second.states) == 1 and second.states[0]["stream"]["stream_descriptor"] == {"name": "conversation"}
    state = second.states[0]["stream"]["stream_state"]
    assert state["parent_state"]["changes"]["at"] == NOW + 60
    assert len(phone_cursors(state)) == 20 and "states" not in state
    # what change detection adds besides the book is the same for 20 phones as for 20,000
    assert len(json.dumps({k: v for k, v in state["parent_state"]["changes"].items() if k != "book"})) < 300


def test_a_message_scheduled_in_the_future_neither_hides_the_replies_before_it_nor_is_read_early(account):
    config = discovering(account)
    phone = PHONES[6]
    first = sync(account, config)
    scheduled = new_messages(account, phone, "outbound")[0]
    messages = account.conversation(phone)
    messages[0] = {**scheduled, "unixDatetime": NOW + 2 * DAY, "deliveryStatus": "SCHEDULED"}
    account.set_conversation(phone, messages)
    second = sync(account, config, first.last_state, at=NOW + 60)
    assert conversation_requests(account) == {}  # nothing to read before its time
    # the log's position stays at what is past: a reply dated before the scheduled message is seen
    assert stream_state(second)["parent_state"]["changes"]["message_log"] == stream_state(first)["parent_state"]["changes"]["message_log"]
    other = PHONES[8]
    new_messages(account, other, "inbound")
    messages = account.conversation(other)
    messages[0] = {**messages[0], "unixDatetime": NOW + 90}  # a reply, between the syncs
    account.set_conversation(other, messages)
    third = sync(account, config, second.last_state, at=NOW + 120)
    assert cli.records_by_phone(third) == {other.lstrip("+"): {cursors(second)[other.lstrip("+")], NOW + 90}}
    assert conversation_requests(account) == {other.lstrip("+"): 1}


def test_a_sync_that_fails_keeps_the_last_positions_so_the_next_one_reads_the_same_changes(account):
    config = discovering(account)
    first = sync(account, config)
    changed = PHONES[12]
    added = new_messages(account, changed, "inbound")
    account.set_faults(rate=1.0, kinds=("503",))  # every conversation request fails for good
    account.clear_requests()
    with patch.object(changes, "now", lambda: NOW + 60), patch("time.sleep"):
        failed = cli.in_process(config, cli.catalog("incremental"), first.last_state)
    assert failed.returncode == 1 and failed.errors
    assert set(conversation_requests(account)) == {changed.lstrip("+")}
    # the state it emits, which Airbyte keeps, holds the first sync's positions
    kept = failed.last_state
    assert kept[0]["stream"]["stream_state"]["parent_state"] == stream_state(first)["parent_state"]
    account.set_faults()
    again = sync(account, config, kept, at=NOW + 120)
    assert cli.records_by_phone(again) == {changed.lstrip("+"): {cursors(first)[changed.lstrip("+")], added[0]["unixDatetime"]}}


def test_a_phone_that_fails_every_sync_does_not_stop_the_others(account):
    """0.4.0 before this kept the state the sync started from when any phone failed: a phone
    failing every sync (here every request for it answers HTTP 503) stopped every other phone's
    progress, their new messages read again and again, their cursors never saved. Now a failed
    phone ends its read, the others' are saved, and the stream fails once they are read; only the
    last phone handed out fails as it happens (the CDK reads it after the router has ended), and
    which phone goes last is drawn anew each sync among those read equally recently."""
    config = discovering(account)
    first = sync(account, config)
    broken, b, c = PHONES[3], PHONES[7], PHONES[12]
    for phone in (broken, b, c):
        new_messages(account, phone, "inbound")
    account.set_faults(rate=1.0, kinds=("503",), phones=(broken,))
    state, outcomes = first.last_state, []
    for n in range(1, 4):  # three syncs, a minute apart, the broken phone failing in each
        account.clear_requests()
        with patch.object(changes, "now", lambda: NOW + 60 * n), patch("time.sleep"):
            out = cli.in_process(config, cli.catalog("incremental"), state)
        saved = phone_cursors(out.last_state[0]["stream"]["stream_state"]) != phone_cursors(state[0]["stream"]["stream_state"])
        outcomes.append((out.returncode, saved, sorted(conversation_requests(account).items())))
        state = out.last_state
        if saved:
            break
    # the first failing sync drew the broken phone last: it failed as it happened, and the sync
    # kept the state it started from; the next drew another, and saved b's and c's progress
    requests = [(broken.lstrip("+"), 6), (b.lstrip("+"), 1), (c.lstrip("+"), 1)]
    assert outcomes == [(1, False, requests), (1, True, requests)]
    assert out.errors[0]["message"] == (
        f"Phone {broken.lstrip('+')}, page 1 (HTTP 503): Smstools server error (error 105: Server error) (6 tries). "
        "The 2 other phone(s) were read and keep what they read."
    )
    moved = {p.lstrip("+"): newest(account, p) for p in (b, c)}
    assert cursors(out) == {**cursors(first), **moved}
    assert stream_state(out)["parent_state"]["changes"]["failed"] == [broken.lstrip("+")]

    # still failing, and a new message for b: b's arrives and is saved, the broken phone (handed out
    # first: a failed phone is) is asked again
    added = new_messages(account, b, "inbound")
    account.clear_requests()
    with patch.object(changes, "now", lambda: NOW + 600), patch("time.sleep"):
        again = cli.in_process(config, cli.catalog("incremental"), out.last_state)
    assert again.returncode == 1 and conversation_requests(account) == {broken.lstrip("+"): 6, b.lstrip("+"): 1}
    assert added[0]["unixDatetime"] in cli.records_by_phone(again)[b.lstrip("+")]
    assert cursors(again)[b.lstrip("+")] == added[0]["unixDatetime"]

    # mended: the broken phone is read from its old cursor, and nothing else is asked
    account.set_faults()
    mended = sync(account, config, again.last_state, at=NOW + 900)
    assert set(cli.records_by_phone(mended)) == {broken.lstrip("+")}
    assert newest(account, broken) in cli.records_by_phone(mended)[broken.lstrip("+")]
    assert cursors(mended)[broken.lstrip("+")] == newest(account, broken)
    assert "failed" not in stream_state(mended)["parent_state"]["changes"]


def generic_sync(emulator: Emulator, config: dict, state=None, at: int = NOW):
    """A sync as Airbyte's generic runtime (source-declarative-manifest) runs the manifest: the
    CDK's ConcurrentDeclarativeSource over the manifest dict, no SourceSmstools, no run.py."""
    from airbyte_cdk.models import AirbyteStateMessageSerializer, ConfiguredAirbyteCatalogSerializer
    from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
    from airbyte_cdk.test.entrypoint_wrapper import read
    from airbyte_cdk.utils.yaml_loader import safe_load_yaml

    from source_smstools.source import MANIFEST

    catalog = ConfiguredAirbyteCatalogSerializer.load(cli.catalog("incremental"))
    messages = [AirbyteStateMessageSerializer.load(s) for s in state] if state else None
    emulator.clear_requests()
    with patch.object(changes, "now", lambda: at):
        source = ConcurrentDeclarativeSource(
            source_config=safe_load_yaml(MANIFEST.read_text()), config=config, catalog=catalog, state=messages
        )
        out = read(source, config, catalog, messages)
    assert not out.errors, out.errors
    records = [m.record.data for m in out.records]
    last = AirbyteStateMessageSerializer.dump(out.state_messages[-1].state)
    return records, last


def test_the_generic_runtime_detects_changes_from_the_saved_state_as_our_command_does(account):
    config = cli.config(account, phone_numbers=PHONES[:3], page_size=PAGE)
    requests_of = lambda: sorted(r["path"] for r in account.requests)  # noqa: E731

    first, state = generic_sync(account, config)
    assert len(first) == 18 and requests_of() == [
        "/v1/conversation/" + d for d in sorted(DIGITS[:3])] + ["/v1/message/inbox", "/v1/message/logging"]
    # nothing new: page 1 of the inbox and of the message log, no conversation, no record
    second, _ = generic_sync(account, config, [state], at=NOW + 60)
    assert second == []
    assert requests_of() == ["/v1/message/inbox", "/v1/message/logging"]

    ours = sync(account, config, [state], at=NOW + 60)
    assert ours.records == []
    assert requests_of() == ["/v1/message/inbox", "/v1/message/logging"]


def outbound(phone: str, at: int, n: int) -> dict:
    """An outbound message of `phone` sent at `at`, its status final."""
    rng = random.Random(f"{phone}:{n}")
    while (m := make_message(phone, at, rng, n))["direction"] != "outbound":
        pass
    return dict(m, deliveryStatus="DELIVERED")


@pytest.mark.parametrize("sent_together", [1, 60])
def test_a_message_of_the_last_positions_second_listed_after_the_sync_is_read_by_the_next(sent_together):
    """Phones whose newest message was sent at one second, the message log's newest; after the first
    sync, a second message of the first phone at that second is listed. With one message there the
    log's entries have no ID (0.3.0 took every entry of the second as seen: 84 hours late, at the
    sweep); with 60, more IDs than 0.3.0 kept (the same)."""
    phones = sample_phones(sent_together + 1)
    with Emulator({p: settled(make_conversation(p, 3, seed=3)) for p in phones}) as emulator:
        if sent_together == 1:
            emulator.entry_ids = "null"
        top = max(newest(emulator, p) for p in phones) + 600
        for n, phone in enumerate(phones[:sent_together]):
            emulator.add_messages(phone, [outbound(phone, top, n)])
        config = cli.config(emulator, page_size=100)
        first = sync(emulator, config, at=top + 3_600)
        late = outbound(phones[0], top, 999)
        emulator.add_messages(phones[0], [late])
        second = sync(emulator, config, first.last_state, at=top + 7_200)
        assert late["messageId"] in {r.get("messageId") for r in second.records}
        told = [w for w in warnings(second) if "newest second" in w]
        if sent_together == 1:
            # no IDs: the phone of each list's newest second is read again (the inbox's too)
            inbox_newest = normalize_phone(emulator.inbox()[0]["sender"])
            assert inbox_newest != phones[0].lstrip("+")
            assert conversation_requests(emulator) == {phones[0].lstrip("+"): 1, inbox_newest: 1}
            assert told == [
                f"Change detection: the {name} cannot say which entries of its newest second are new ({n} of the "
                f"{n} entries read have no ID): the phones of that second are read again in each sync until a newer "
                "entry is listed." for name, n in (("inbox", 3), ("message log", 5))
            ]
        else:
            # the phone of the new entry is read; the IDs kept tell the other 59 apart
            assert conversation_requests(emulator) == {phones[0].lstrip("+"): 1}
            assert told == [] and isinstance(stream_state(second)["parent_state"]["changes"]["message_log"]["ids"], str)


@pytest.mark.parametrize("lookback_days", [0, 1])
@pytest.mark.parametrize("before_cursor", [1_800, 7_200, 3 * DAY])
def test_a_message_listed_late_dated_before_its_phones_cursor_is_read_back_to_by_the_next_sync(lookback_days, before_cursor):
    """The lists' IDs grow as entries are added (a queued inbound SMS, a gateway's delayed insert, is
    listed first, with the highest ID, dated before messages already synced). 0.3.0: with lookback
    0 never synced; with 1 day, 60 to 156 hours late or never."""
    phones = sample_phones(3)
    with Emulator({p: settled(make_conversation(p, 6, seed=3)) for p in phones}) as emulator:
        emulator.entry_ids = "sequential"
        config = cli.config(emulator, page_size=100, lookback_window_days=lookback_days)
        first = sync(emulator, config)
        cursor = cursors(first)[phones[0]]
        rng = random.Random(before_cursor)
        while (late := make_message(phones[0], cursor - before_cursor, rng, 77))["direction"] != "inbound":
            pass
        emulator.add_messages(phones[0], [dict(late, message="late one")])
        assert emulator.inbox()[0]["message"] == "late one"  # listed first, dated before the cursor
        second = sync(emulator, config, first.last_state, at=NOW + 3_600)
        assert [r["unixDatetime"] for r in second.records if r["message"] == "late one"] == [cursor - before_cursor]
        # with a lookback window, the phones with messages sent within it of now are read for their statuses
        read = phones if lookback_days else phones[:1]
        assert conversation_requests(emulator) == {p.lstrip("+"): 1 for p in read}
        third = sync(emulator, config, second.last_state, at=NOW + 7_200)
        assert conversation_requests(emulator) == ({p.lstrip("+"): 1 for p in read} if lookback_days else {})
        assert stream_state(third)["parent_state"]["changes"]["inbox"]["top"] == emulator.inbox()[0]["ID"]
