"""Change detection's rules, one by one: the sweep's schedule, the phones a source shows moved,
the pending statuses followed and their bound, the uncovered phones kept in the state, and where the
router starts a phone's read for them."""

from collections import Counter
from unittest.mock import patch

from source_smstools.components import changes
from source_smstools.components.book import Book, sweep_due
from source_smstools.components.changes import live_pending, moved, next_pending, uncovered_of
from source_smstools.components.discovery import PhonePartitionRouter
from source_smstools.components.state import Saved
from source_smstools.components.sources import SourceRead

DAY = 86_400
AT = 1_749_200_000  # the sync's time


def test_the_sweep_reads_every_phone_within_a_period_of_its_last_read_spread_over_half_of_it():
    phones = [f"39333{n:07d}" for n in range(1000)]
    start = 1_749_113_086
    period = 7 * DAY
    last = {p: start for p in phones}  # a first sync read them all
    reads = Counter()
    gaps = []
    for hour in range(1, 3 * 7 * 24 + 1):  # hourly syncs for three periods; each phone due is read
        at = start + hour * 3600
        for p in phones:
            if sweep_due(p, last[p], at, 7):
                gaps.append(at - last[p])
                last[p], reads[at // DAY] = at, reads[at // DAY] + 1
    # never sooner than half a period after a phone's last read, never later than a period (plus the hour)
    assert min(gaps) >= period // 2 and max(gaps) <= period + 3600
    # nothing due in the first half period after the first sync; after it, about 1000 / 5.25 days a day,
    # never a third of the phones in one day (a first sync's phones are spread over half a period)
    assert sum(n for day, n in reads.items() if day < (start + period // 2) // DAY) == 0
    assert all(n <= 320 for n in reads.values()) and all(
        100 <= n for day, n in reads.items() if (start + period) // DAY < day < (start + 3 * period) // DAY - 1
    ), sorted(reads.items())
    # never read: due
    assert all(sweep_due(p, None, start, 7) for p in phones)


def read_of(*entries):
    return SourceRead(entries=[(p, d, i) for p, d, i in entries])


def test_a_source_shows_moved_the_phones_with_entries_after_their_cursor_or_new_since_the_last_sync():
    position = {"newest": AT - 100, "ids": ["7"]}
    cursors = {"a": AT - 50, "b": AT - 200, "c": AT - 300, "d": AT - 100, "e": AT - 100}
    read = read_of(
        ("a", AT - 40, "1"),  # after its cursor
        ("b", AT - 100, "8"),  # at the last position, not listed then, after its cursor
        ("c", AT - 500, "9"),  # older than the position: seen by the last sync
        ("d", AT - 100, "7"),  # listed at the last sync, at its cursor
        ("e", None, "10"),  # no date we can read
        ("f", AT - 90, "11"),  # no cursor: a phone not known
        ("g", AT + 3600, "12"),  # dated in the future
        (None, AT - 10, "13"),  # no phone
    )
    assert moved(read, position, cursors, AT, 0, 0) == {"a", "b", "e", "f"}
    # no position: every entry is new; an entry at or after a cursor minus the lookback moves it
    assert moved(read_of(("c", AT - 500, "1")), None, cursors, AT, 0, 0) == set()
    assert moved(read_of(("c", AT - 500, "1")), None, cursors, AT, 300, 0) == {"c"}
    # the log read a lookback window further: an entry sent within it of now moves its phone
    log = read_of(("d", AT - 100, "7"))
    assert moved(log, position, cursors, AT, 0, 0) == set()
    assert moved(log, position, cursors, AT, DAY, DAY) == {"d"}


def test_entries_of_the_last_positions_second_without_ids_to_compare_are_new_by_their_date():
    cursors = {"a": AT - 100, "b": AT - 100, "c": AT - 100}
    read = read_of(("a", AT - 100, None), ("b", AT - 100, "7"), ("c", AT - 100, "8"))
    # the IDs kept: the entry without an ID, and the one not kept, are new; the one kept is not
    assert moved(read, {"newest": AT - 100, "ids": ["7"]}, cursors, AT, 0, 0) == {"a", "c"}
    # none kept (an entry had no ID, or too many): every entry of that second is new
    assert moved(read, {"newest": AT - 100}, cursors, AT, 0, 0) == {"a", "b", "c"}
    assert moved(read, {"newest": AT - 100, "ids": None}, cursors, AT, 0, 0) == {"a", "b", "c"}


def test_pending_statuses_are_followed_for_seven_days_and_a_phone_read_keeps_only_what_its_records_showed():
    # b: sent more than 7 days ago; f: scheduled, not sent yet; c, d: no time
    pending = {"a": AT - 7 * DAY, "b": AT - 7 * DAY - 1, "c": "x", "d": True, "e": AT - 60, "f": AT + 60}
    assert live_pending(pending, AT) == {"a": (AT - 7 * DAY, AT - 7 * DAY), "e": (AT - 60, AT - 60)}
    assert live_pending(None, AT) == {}
    # read this sync: what was observed (nothing for e: its status became final); not read: kept
    before = {"a": (AT - DAY, AT - DAY), "e": (AT - 60, AT - 60)}
    assert next_pending(before, {"f": (AT - 30, AT - 30)}, {"e", "f"}, AT) == {"a": AT - DAY, "f": AT - 30}


def test_a_phones_oldest_pending_status_past_seven_days_leaves_its_later_ones_followed_from_the_bound():
    bound = AT - 7 * DAY
    pending = {"a": [bound - DAY, AT - DAY], "b": [bound - DAY, bound - 1], "c": [AT - 60, AT - 120], "d": [1, 2, 3], "e": ["x", AT]}
    # a: read from the bound (its later message is followed); b: both past it; c, d, e: not two times in order
    assert live_pending(pending, AT) == {"a": (bound, AT - DAY)}
    # a phone read keeps the oldest and newest its records showed; one time where they are one
    assert next_pending({}, {"a": (AT - 2 * DAY, AT - DAY), "g": (AT - 5, AT - 5)}, {"a", "g"}, AT) == {
        "a": [AT - 2 * DAY, AT - DAY], "g": AT - 5,
    }


def test_the_uncovered_phones_of_a_state_keep_only_the_sources_it_names():
    state = {"uncovered": {"a": ["inbox", "message_log"], "b": ["contacts"], "c": "inbox"}}
    assert uncovered_of(state) == {"a": ["inbox", "message_log"], "b": []}
    assert uncovered_of({"uncovered": ["a"]}) == {} and uncovered_of({}) == {}


def router(saved, **config):
    part_config = {"client_id": "x", "client_secret": "y", **config}
    made = PhonePartitionRouter(config=part_config, parameters={})
    made._saved = saved
    return made


def test_a_phones_read_starts_at_its_cursor_minus_the_lookback_or_back_to_a_pending_status_within_the_bound():
    book = Book({"a": (AT - 100, AT - 3600), "b": (AT - 100, AT - 3600), "c": (AT - 30, AT - 3600), "d": (None, AT - 3600)})
    saved = Saved(book, {"at": AT - 3600, "pending": {"a": AT - 2 * DAY, "b": AT - 8 * DAY, "c": AT - 30}})
    pending = live_pending(saved.changes["pending"], AT)  # b: past the 7 days, no longer followed
    plain, lookback = router(saved), router(saved, lookback_window_days=1)
    floored = router(saved, start_date="2025-06-05T00:00:00Z")
    assert {p: plain._read_from(p, pending) for p in "abcd"} == {"a": AT - 2 * DAY, "b": AT - 100, "c": AT - 30, "d": 0}
    # the lookback window before the cursor; a pending status further back still reached
    assert lookback._read_from("b", pending) == AT - 100 - DAY and lookback._read_from("a", pending) == AT - 2 * DAY
    # never before the start date (AT is 2025-06-06 08:53: two days back is before 2025-06-05)
    assert floored._read_from("a", pending) == 1_749_081_600
    # a phone not in the book: from the start date, or this once from an earlier release's one cursor
    assert plain._read_from("new", pending) == 0
    assert router(Saved(book, {}, default=AT - 3 * DAY))._read_from("new", pending) == AT - 3 * DAY
