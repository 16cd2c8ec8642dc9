"""The conversation's paging against answers that break what it assumes (the emulator's anomalies,
smstools_emulator/anomalies.py): each case with its exact records, state and requests.

One phone of 1,000 messages (3,000 for the purge), a page size of 100 unless said; an incremental
case syncs once, then 500 new messages arrive, then the anomaly is switched on for the second sync.
"""

from __future__ import annotations

import random

import pytest

from integration_tests import cli
from smstools_emulator import Emulator, make_conversation, make_message

PHONE = "+393331000000"
NEWEST = 1_699_999_962  # the newest of the first 1,000 messages (asked for 1_700_000_000, less 38 s); about an hour apart
LATEST = 1_700_299_962  # the newest of the 500 that arrive: 10 minutes apart, after NEWEST


@pytest.fixture
def emulator():
    with Emulator({PHONE: make_conversation(PHONE, 1000, newest=1_700_000_000, seed=7)}) as server:
        yield server


def config(emulator, **overrides):
    return cli.config(emulator, **{"page_size": 100, "change_detection": False, **overrides})


def times(out) -> list:
    return [r.get("unixDatetime") for r in out.records]


def cursor(out) -> str:
    return out.last_state[0]["stream"]["stream_state"]["states"][0]["cursor"]["unixDatetime"]


def warnings(out) -> list[str]:
    return [m["log"]["message"] for m in out.of_type("LOG") if m["log"]["level"] == "WARN"]


def pages(emulator) -> list[tuple[int, int]]:
    return [(r["page"], r["limit"]) for r in emulator.conversation_requests()]


def second_sync(emulator, variation: str, **overrides):
    """The first sync, 500 new messages, then the second sync with `variation` on."""
    first = cli.call("read", config(emulator, **overrides), cli.catalog())
    assert first.returncode == 0 and cursor(first) == str(NEWEST)
    rng = random.Random(3)
    emulator.add_messages(PHONE, [make_message(PHONE, NEWEST + 600 * i, rng, 5000 + i) for i in range(1, 501)])
    emulator.variations = [variation]
    emulator.clear_requests()
    return cli.call("read", config(emulator, **overrides), cli.catalog(), first.last_state)


def stored_times(emulator, count: int) -> list[int]:
    return [m["unixDatetime"] for m in emulator.conversation(PHONE)[:count]]


# -- a well-behaved API: what every case is measured against ----------------------------------


def test_a_well_behaved_api_costs_what_it_did(emulator):
    full = cli.call("read", config(emulator), cli.catalog("full_refresh"))
    assert len(full.records) == 1000 and pages(emulator) == [(1, 100)] + [(p, 100) for p in range(2, 11)]
    second = second_sync(emulator, "bom")  # a variation that changes nothing of the paging
    # the 500 new and the message at the cursor, from 6 pages (the 6th reaches the cursor)
    assert times(second) == stored_times(emulator, 501)
    assert pages(emulator) == [(p, 100) for p in range(1, 7)]
    assert cursor(second) == str(LATEST) and warnings(second) == []


# -- 1. an early stop only on evidence ------------------------------------------------------------


def test_a_message_out_of_order_at_the_end_of_a_page_does_not_stop_the_read(emulator):
    second = second_sync(emulator, "out_of_order")
    expected = stored_times(emulator, 501)
    expected[99] -= 30 * 86_400  # as served: 30 days older than its place, older than the cursor
    assert times(second) == expected  # 0.2.0 stopped at page 1: 99 of the 500
    assert pages(emulator) == [(p, 100) for p in range(1, 7)]
    assert cursor(second) == str(LATEST)


def test_messages_with_odd_times_are_synced_and_do_not_move_the_cursor(emulator):
    second = second_sync(emulator, "odd_times")
    expected = stored_times(emulator, 501) + [0]  # position 599, an old message with time 0: passed too
    for position, value in ((99, -5), (199, 0), (299, None), (399, None), (499, -5)):
        expected[position] = value  # -5, 0, missing, 2100-01-01 (passed empty), -5
    assert times(second) == expected
    odd = [r for r in second.records if r.get("unixDatetime") in (None, 0, -5)]
    assert [r.get("datetime_utc") for r in odd] == [None] * 6
    assert [r["datetime"] for r in odd][3] == emulator.conversation(PHONE)[399]["datetime"]  # the API's text, as sent
    assert pages(emulator) == [(p, 100) for p in range(1, 7)]  # the same pages as a well-behaved API
    assert cursor(second) == str(LATEST)  # not 2100
    assert warnings(second)[0].startswith("Phone 393331000000, page 1: messages whose time cannot place them: 1 with a")


def test_a_time_of_zero_with_a_start_date_is_synced_and_the_read_goes_on(emulator):
    emulator.variations = ["odd_times"]
    start = emulator.conversation(PHONE)[998]["unixDatetime"]
    out = cli.call("read", config(emulator, start_date=_iso(start)), cli.catalog())
    # the 999 at or after the start date (0.2.0: 99, the read stopped at the first page ending in 0
    # or -5), and the last message, older, whose time 0 says nothing: passed too
    assert len(out.records) == 1000 and times(out)[-1] == 0
    assert pages(emulator) == [(p, 100) for p in range(1, 11)]
    assert cursor(out) == str(NEWEST)


# -- 2. paging that always ends and never loops ---------------------------------------------------


def test_an_inflated_total_ends_at_the_first_empty_page(emulator):
    emulator.variations = ["total_inflated"]
    out = cli.call("read", config(emulator), cli.catalog())
    assert out.returncode == 0 and len(out.records) == 1000
    assert pages(emulator) == [(p, 100) for p in range(1, 12)]  # 0.2.0: 1,922 requests in 90 s, and on
    assert cursor(out) == str(NEWEST)
    assert warnings(out) == [
        "Phone 393331000000, page 11: an empty page, where the conversation's total (1000000000) promised more; "
        "the phone's read ends here."
    ]


@pytest.mark.parametrize(
    "variation, error",
    [
        ("page_repeated", "Phone 393331000000, page 2: the answer repeats page 1 (100 messages)"),
        ("page_ignored", "Phone 393331000000, page 2: the answer says it is page 1, not the page asked for"),
    ],
)
def test_a_page_that_is_not_the_one_asked_for_fails_the_phone_at_once(emulator, variation, error):
    second = second_sync(emulator, variation)
    assert second.returncode == 1
    assert second.errors[0]["message"] == f"{error}; its cursor stays where it was, the next sync reads it again."
    assert second.errors[0]["failure_type"] == "system_error"
    assert times(second) == stored_times(emulator, 100)  # page 1, read before page 2 came
    assert pages(emulator) == [(1, 100), (2, 100)]  # 0.2.0: 1,500 requests in 90 s, and on
    assert cursor(second) == str(NEWEST)


# -- 3. shifts, seen by what the pages hold -------------------------------------------------------


def test_messages_arriving_during_the_read_are_read_once(emulator):
    emulator.variations = ["arrivals"]
    out = cli.call("read", config(emulator), cli.catalog())
    # each answer is followed by a new message at the top: page 2 starts with page 1's last, and so
    # on; the one message that each page shares with the page before is passed once
    assert sorted(times(out), reverse=True) == times(out) == [m["unixDatetime"] for m in emulator.conversation(PHONE)[-1000:]]
    assert pages(emulator) == [(p, 100) for p in range(1, 12)]  # 1,010 messages at the end: 11 pages
    assert cursor(out) == str(NEWEST) and warnings(out) == []


def test_messages_deleted_above_are_recovered_by_re_reading_the_boundary(emulator):
    before = [m["unixDatetime"] for m in emulator.conversation(PHONE)]
    emulator.variations = ["delete_read"]
    out = cli.call("read", config(emulator), cli.catalog())
    # each answer's first message is deleted once it is answered: the next page starts later, and
    # the messages in between are found by a small page holding both sides of the boundary
    assert sorted(times(out), reverse=True) == before  # 0.2.0: restarted once, then failed
    assert pages(emulator) == [
        (1, 100), (2, 100), (17, 6), (3, 100), (29, 7), (4, 100), (38, 8), (5, 100), (67, 6), (6, 100), (63, 8),
        (7, 100), (86, 7), (8, 100), (117, 6), (9, 100), (73, 11), (10, 100), (129, 7),
    ]
    assert cursor(out) == str(NEWEST)
    assert warnings(out)[0] == (
        "Phone 393331000000, page 2: the conversation shrank from 1000 to 999 messages while it was read; "
        "messages found by reading the boundary again: 1 (page 17 of 6 messages)."
    )


def test_a_continuous_purge_of_the_oldest_message_completes(emulator):
    emulator.set_conversation(PHONE, make_conversation(PHONE, 3000, newest=1_700_000_000, seed=7))
    before = [m["unixDatetime"] for m in emulator.conversation(PHONE)]
    emulator.variations = ["purge_oldest"]
    out = cli.call("read", config(emulator, page_size=300), cli.catalog())
    assert out.returncode == 0  # 0.2.0: "shrank again", every sync
    # every message but the 17 oldest, which the purge deleted before the read reached them (the
    # last page is read by the 18th request), each once
    assert times(out) == before[:2983]
    # each boundary re-read, as `total` shrinks between any two answers: the purge is below the
    # read, which the re-read shows (nothing found between the pages)
    assert pages(emulator) == [
        (1, 300), (2, 300), (38, 8), (3, 300), (86, 7), (4, 300), (129, 7), (5, 300), (93, 13), (6, 300), (188, 8),
        (7, 300), (164, 11), (8, 300), (263, 8), (9, 300), (267, 9), (10, 300), (386, 7),
    ]
    assert cursor(out) == str(NEWEST)


def test_a_deletion_balanced_by_an_insertion_is_not_seen(emulator):
    # the known limit: 7 messages of page 1 deleted after it was read and 7 older ones inserted
    # further down leave `total` and the pages' order as they were; only a second read of page 1
    # would show it, and reading every page twice is not what a well-behaved API should cost
    before = [m["unixDatetime"] for m in emulator.conversation(PHONE)]
    emulator.variations = ["swap_first_page"]
    out = cli.call("read", config(emulator), cli.catalog())
    assert len(out.records) == 1000 and len(pages(emulator)) == 10
    assert sorted(set(before) - set(times(out)), reverse=True) == before[100:107]


# -- 4. unstable order within a second ------------------------------------------------------------


@pytest.mark.parametrize("size, group, requests", [(100, 7, 18), (95, 10, 16), (100, 10, 10)])
def test_shuffled_ties_cut_by_a_boundary_are_read_whole(emulator, size, group, requests):
    messages = emulator.conversation(PHONE)
    for i, message in enumerate(messages):
        message.update(unixDatetime=NEWEST - (i // group) * 60, messageId=f"m{i}")
    emulator.set_conversation(PHONE, messages)
    emulator.variations = ["shuffle_ties"]
    out = cli.call("read", config(emulator, page_size=size), cli.catalog())
    assert {r["id"] for r in out.records} == {f"m{i}" for i in range(1000)}  # 0.2.0: 311 of 1,000 lost
    # one re-read per boundary inside a second (none when every boundary falls between seconds)
    assert len(pages(emulator)) == requests
    assert cursor(out) == str(NEWEST)


# -- 5. bytes that are not UTF-8 -----------------------------------------------------------------


def test_bytes_that_are_not_utf8_are_read_as_replacement_characters(emulator):
    emulator.variations = ["not_utf8"]
    out = cli.call("read", config(emulator), cli.catalog())
    assert out.returncode == 0 and len(out.records) == 1000  # 0.2.0: 5 minutes of retries, then the phone failed
    assert pages(emulator) == [(p, 100) for p in range(1, 11)]
    assert sum("\ufffd" in r["message"] for r in out.records) == 1
    assert warnings(out) == ["Phone 393331000000, page 2: the answer holds bytes that are not UTF-8; they are read as U+FFFD."]


def _iso(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
