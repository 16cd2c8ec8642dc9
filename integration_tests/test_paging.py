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
from source_smstools.components.state import phone_cursors

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
    return str(phone_cursors(out.last_state[0]["stream"]["stream_state"])[PHONE])


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
    assert warnings(second) == [
        "Phone 393331000000: messages whose time cannot place them: 5 with a unixDatetime that is missing, not an "
        "integer, 0 or negative (passed as sent); 1 with a unixDatetime later than the sync's clock (passed with "
        "unixDatetime empty). They are synced, and the phone's cursor does not move past them."
    ]


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
        "Phone 393331000000: an empty page (page 11), where the conversation's total promised more; the read ends there."
    ]


@pytest.mark.parametrize(
    "variation, said",
    [
        ("page_repeated", "the answer repeats page 1 (100 messages)"),
        ("page_ignored", "the answer says it is page 1, not the page asked for"),
    ],
)
def test_an_api_that_ignores_the_page_is_read_in_one_answer(emulator, variation, said):
    # the same next time: failing would fail every sync; the conversation fits one answer of 2000
    second = second_sync(emulator, variation)
    assert second.returncode == 0 and times(second) == stored_times(emulator, 501)
    assert pages(emulator) == [(1, 100), (2, 100), (1, 2000)]  # 0.2.0: 1,500 requests in 90 s, and on
    assert cursor(second) == str(LATEST)
    assert warnings(second) == [f"Phone 393331000000: {said}: the conversation was read in one answer of 2000."]


def test_an_api_that_ignores_the_page_fails_the_phone_when_the_conversation_does_not_fit(emulator):
    emulator.set_conversation(PHONE, make_conversation(PHONE, 2500, newest=1_700_000_000, seed=7))
    emulator.variations = ["page_ignored"]
    out = cli.call("read", config(emulator), cli.catalog())
    assert out.returncode == 1 and out.errors[0]["message"] == (
        "Phone 393331000000, page 2: the answer says it is page 1, not the page asked for, and the conversation does "
        "not fit in one answer (2000 messages); its cursor stays where it was, the next sync reads it again."
    )
    assert pages(emulator) == [(1, 100), (2, 100), (1, 2000)]


# -- 3. shifts, seen by what the pages hold -------------------------------------------------------


def test_messages_arriving_during_the_read_are_read_once(emulator):
    emulator.variations = ["arrivals"]
    out = cli.call("read", config(emulator), cli.catalog())
    # each answer is followed by a new message at the top: page 2 starts with page 1's last, and so on;
    # seen again with its messageId it is passed once, without one (a twin?) its second is read whole
    assert sorted(times(out), reverse=True) == [m["unixDatetime"] for m in emulator.conversation(PHONE)[-1000:]]
    assert len(set(r["id"] for r in out.records)) == 1000
    assert pages(emulator) == [
        (1, 100), (2, 100), (7, 15), (3, 100), (4, 100), (5, 100), (29, 14), (6, 100), (7, 100), (8, 100), (47, 15),
        (9, 100), (10, 100), (11, 100), (72, 14),
    ]
    assert cursor(out) == str(NEWEST)


def test_messages_deleted_above_are_recovered_by_reading_the_boundary_again(emulator):
    emulator.variations = ["delete_read"]
    out = cli.call("read", config(emulator), cli.catalog())
    left = [m["unixDatetime"] for m in emulator.conversation(PHONE)]
    # each answer's first message is deleted once it is answered (window answers too): `total` falls, and
    # the seconds on both sides of the boundary are read again, with what moved between them (0.2.0:
    # restarted once, then failed). Every message that is still there is synced, once; of the deleted
    # ones, those the later answers no longer show are not (9 of them)
    assert set(left) <= set(times(out)) and len(set(times(out))) == len(out.records) == 991
    assert pages(emulator) == [
        (1, 100), (2, 100), (7, 15), (3, 100), (13, 16), (4, 100), (22, 14), (5, 100), (29, 14), (6, 100), (39, 13),
        (7, 100), (38, 16), (8, 100), (34, 21), (9, 100), (62, 13), (10, 100), (48, 19),
        (1, 2000),  # `total` fell: what was passed, checked against the conversation in one answer
    ]
    assert cursor(out) == str(NEWEST)
    assert warnings(out) == [
        "Phone 393331000000: 9 run(s) of messages that a page boundary cut, or where the conversation's total fell, "
        "were read again whole in one answer.",
        "Phone 393331000000: the conversation's total fell while it was read (messages deleted): it was read "
        "again in 1 answer(s) of 2000 to pass what moved past the pages as they were read.",
        "Phone 393331000000: the conversation's total changed on 9 of 10 pages while it was read.",
    ]


def test_a_continuous_purge_of_the_oldest_message_completes(emulator):
    emulator.set_conversation(PHONE, make_conversation(PHONE, 3000, newest=1_700_000_000, seed=7))
    before = [m["unixDatetime"] for m in emulator.conversation(PHONE)]
    emulator.variations = ["purge_oldest"]
    out = cli.call("read", config(emulator, page_size=300), cli.catalog())
    assert out.returncode == 0  # 0.2.0: "shrank again", every sync
    # every message but the 17 oldest, which the purge deleted before the read reached them, each once
    assert sorted(times(out), reverse=True) == before[:2983]
    # each boundary read again, as `total` falls between any two answers: the purge is below the read
    assert pages(emulator) == [
        (1, 300), (2, 300), (22, 14), (3, 300), (38, 16), (4, 300), (48, 19), (5, 300), (71, 17), (6, 300), (84, 18),
        (7, 300), (139, 13), (8, 300), (162, 13), (9, 300), (172, 14), (10, 300), (129, 21),
        # `total` fell: the conversation read again in answers of 2000, three times, as the purge goes on
        (1, 2000), (2, 2000), (1, 2000), (2, 2000), (1, 2000), (2, 2000),
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


def test_bytes_that_are_not_utf8_are_read_as_the_latin_1_text_they_are(emulator):
    emulator.variations = ["not_utf8"]
    out = cli.call("read", config(emulator), cli.catalog())
    assert out.returncode == 0  # 0.2.0: 5 minutes of retries, then the phone failed
    # every text as it was written (U+FFFD in its place changed one text, and an inbound message's `id`)
    clean = Emulator({PHONE: emulator.conversation(PHONE)}).start()
    try:
        plain = cli.call("read", config(clean), cli.catalog())
    finally:
        clean.stop()
    assert [(r["id"], r["message"]) for r in out.records] == [(r["id"], r["message"]) for r in plain.records]
    assert pages(emulator) == [(p, 100) for p in range(1, 11)]
    assert warnings(out) == [
        "Phone 393331000000, page 2: the answer holds bytes that are not UTF-8; they are read as Windows-1252 (Latin-1)."
    ]


def _iso(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
