"""Change detection's rules, one by one: the sweep's schedule, the phones a source shows moved,
the pending statuses followed and their bound, the uncovered phones kept in the state, the floor
kept for a switch to one cursor, and the state migration lowering the cursors they need."""

from collections import Counter
from unittest.mock import patch

from source_smstools.components import changes
from source_smstools.components.changes import floor, live_pending, moved, next_pending, sweep_due, uncovered_of
from source_smstools.components.sources import SourceRead
from source_smstools.components.state import PerPhoneState

DAY = 86_400
AT = 1_749_200_000  # the sync's time


def test_the_sweep_reads_every_phone_once_per_period_spread_over_the_days():
    phones = [f"39333{n:07d}" for n in range(1000)]
    start = 1_749_113_086
    due_per_day = [
        {p for p in phones if sweep_due(p, start + (day - 1) * DAY, start + day * DAY, 7)} for day in range(1, 8)
    ]
    assert Counter(p for due in due_per_day for p in due) == {p: 1 for p in phones}
    # about a seventh each day (a hash, not an exact share)
    assert all(100 <= len(due) <= 190 for due in due_per_day), [len(d) for d in due_per_day]
    # hourly syncs: the same, in smaller steps
    hourly = Counter(p for h in range(1, 7 * 24 + 1) for p in phones if sweep_due(p, start + (h - 1) * 3600, start + h * 3600, 7))
    assert hourly == {p: 1 for p in phones}
    # never swept before: every phone; syncs further apart than the period: every phone
    assert all(sweep_due(p, None, start, 7) for p in phones)
    assert all(sweep_due(p, start, start + 8 * DAY, 7) for p in phones)


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


def test_pending_statuses_are_followed_for_seven_days_and_a_phone_read_keeps_only_what_its_records_showed():
    # b: sent more than 7 days ago; f: scheduled, not sent yet; c, d: no time
    pending = {"a": AT - 7 * DAY, "b": AT - 7 * DAY - 1, "c": "x", "d": True, "e": AT - 60, "f": AT + 60}
    assert live_pending(pending, AT) == {"a": AT - 7 * DAY, "e": AT - 60}
    assert live_pending(None, AT) == {}
    # read this sync: what was observed (nothing for e: its status became final); not read: kept
    assert next_pending({"a": AT - DAY, "e": AT - 60}, {"f": AT - 30}, {"e", "f"}, AT) == {"a": AT - DAY, "f": AT - 30}


def test_the_uncovered_phones_of_a_state_keep_only_the_sources_it_names():
    state = {"uncovered": {"a": ["inbox", "message_log"], "b": ["contacts"], "c": "inbox"}}
    assert uncovered_of(state) == {"a": ["inbox", "message_log"], "b": []}
    assert uncovered_of({"uncovered": ["a"]}) == {} and uncovered_of({}) == {}


def test_the_floor_is_the_oldest_point_a_phone_not_read_may_still_need():
    cursors = {"quiet": AT - 30 * DAY, "busy": AT - 60, "waiting": AT - DAY, "read": AT - 2 * DAY}
    # the quiet phone: what its sweep has not looked at yet, a week at most; the waiting one: its
    # pending status; the one read this sync: its pending status only
    assert floor(cursors, {"read"}, {"waiting": AT - 3 * DAY}, AT, 7) == AT - 7 * DAY
    assert floor({"busy": AT - 60, "waiting": AT - DAY}, set(), {"waiting": AT - 3 * DAY}, AT, 7) == AT - 3 * DAY
    assert floor({"read": AT - 2 * DAY}, {"read"}, {"read": AT - 5 * DAY}, AT, 7) == AT - 5 * DAY
    assert floor({"read": AT - 2 * DAY}, {"read"}, {}, AT, 7) is None


def per_phone(parent, **cursors):
    return {
        "use_global_cursor": False,
        "states": [{"partition": {"phone": p}, "cursor": {"unixDatetime": str(c)}} for p, c in cursors.items()],
        "parent_state": {"changes": parent},
    }


def test_the_state_migration_lowers_a_pending_phones_cursor_to_reach_its_message_within_the_bound():
    parent = {"at": AT - 3600, "pending": {"a": AT - 2 * DAY, "b": AT - 8 * DAY, "c": AT - 30}}
    state = per_phone(parent, a=AT - 100, b=AT - 100, c=AT - 30, d=AT - 100)
    with patch.object(changes, "now", lambda: AT):
        plain = PerPhoneState(config={}).migrate(state)
        lookback = PerPhoneState(config={"lookback_window_days": 1}).migrate(state)
        floored = PerPhoneState(config={"start_date": "2025-06-05T00:00:00Z"}).migrate(state)
    cursors = lambda s: {e["partition"]["phone"]: int(e["cursor"]["unixDatetime"]) for e in s["states"]}  # noqa: E731
    # a: two days back; b: past the 7 days, left as it was; c: its pending message is at its cursor
    assert cursors(plain) == {"a": AT - 2 * DAY, "b": AT - 100, "c": AT - 30, "d": AT - 100}
    # the CDK reads a lookback window before the cursor: the cursor is lowered that much less
    assert cursors(lookback) == {"a": AT - DAY, "b": AT - 100, "c": AT - 30, "d": AT - 100}
    # never before the start date (AT is 2025-06-06 08:53: two days back is before 2025-06-05)
    assert cursors(floored)["a"] == 1_749_081_600
    assert plain["parent_state"] == state["parent_state"]


def test_a_state_with_one_cursor_for_all_phones_starts_at_the_floor_kept_at_the_switch():
    state = {
        "use_global_cursor": True, "state": {"unixDatetime": str(AT - 60)}, "lookback_window": 12,
        "parent_state": {"changes": {"at": AT - 3600, "floor": AT - 3 * DAY}},
    }
    with patch.object(changes, "now", lambda: AT):
        migrated = PerPhoneState(config={}).migrate(state)
        # a floor after the cursor changes nothing
        later = PerPhoneState(config={}).migrate({**state, "state": {"unixDatetime": str(AT - 4 * DAY)}})
    assert migrated == {**state, "state": {"unixDatetime": str(AT - 3 * DAY)}}
    assert later["state"] == {"unixDatetime": str(AT - 4 * DAY)}
