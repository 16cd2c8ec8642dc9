"""The conversation stream's state, tested directly: the book (components/book.py) and the state
migration (components/state.py) from every earlier form, nothing a phone was waiting for lost."""

from unittest.mock import patch

import random

import pytest
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components.book import DAY, Book, BookError, shard_of, spread
from source_smstools.components.conversation import conversation_of
from source_smstools.components.state import PerPhoneState

AT = 1_749_200_000
WEEK = 7 * DAY


def migrated(state, **config):
    config = {"client_id": "x", **config}
    with patch("time.time", lambda: AT):
        cdk = PerPhoneState(config=config).migrate(state)
    return cdk, conversation_of(config).saved


def test_a_book_is_one_compact_string_that_reads_back_as_it_was_written():
    book = Book({"393331000001": (1749113086, AT), "+32470123456": (None, AT - 60)})
    text = book.encode()
    assert text.startswith("v1:") and Book.decode(text).entries == book.entries
    # 100,000 phones of random numbers, cursors over 4 months and last reads over a week (the worst
    # for compression: no shared prefixes, no shared times): under 2 MB of state (1,876,435 bytes)
    rng = random.Random(1)
    large = Book({str(rng.randrange(10**10, 10**12)): (AT - rng.randrange(10**7), AT - rng.randrange(7 * 86_400)) for _ in range(100_000)})
    assert len(large.encode()) < 2_000_000


@pytest.mark.parametrize("text, why", [
    (17, "expected a string starting with 'v1:', got int"),
    ("v2:abc", "expected a string starting with 'v1:', got str"),
    ("v1:not base64!", "not base64 of zlib-compressed text (Error)"),
])
def test_a_book_that_is_not_one_says_what_came_and_never_its_phones(text, why):
    with pytest.raises(BookError) as error:
        Book.decode(text)
    assert str(error.value) == why


def test_a_phone_read_keeps_the_newest_cursor_it_had_or_found():
    book = Book({"a": (100, 10)})
    book.read("a", 90, 20)  # a lookback re-read found nothing newer
    book.read("b", None, 20)  # read whole, no message
    assert book.entries == {"a": (100, 20), "b": (None, 20)}


def test_a_shard_is_a_stable_hash_of_the_number_in_one_form():
    phones = [f"39333{n:07d}" for n in range(4000)]
    shards = [shard_of(p, 4) for p in phones]
    assert shard_of("393331000000", 4) == 3 and shard_of("393331000001", 4) == 0  # pinned: the same in every run
    assert all(900 <= shards.count(s) <= 1100 for s in range(4))


def test_a_first_sync_gives_the_cdk_one_cursor_and_the_router_an_empty_book():
    cdk, saved = migrated({})
    assert cdk == {"use_global_cursor": True}
    assert (saved.book.entries, saved.changes, saved.default) == ({}, {}, None)


def test_a_cursor_per_phone_of_0_2_0_or_0_3_0_goes_into_the_book_each_with_its_place_in_the_sweep():
    state = {
        "use_global_cursor": False,
        "states": [{"partition": {"phone": "+393331000000"}, "cursor": {"unixDatetime": "1749113086"}},
                   {"partition": {"phone": "393331000001"}, "cursor": {"unixDatetime": "1000"}},
                   {"partition": {"phone": "393331000002"}, "cursor": {"unixDatetime": str(AT + 2 * DAY)}}],
        "state": {"unixDatetime": "1749113086"}, "lookback_window": 5,
        "parent_state": {"changes": {"at": AT - 3600, "inbox": {"newest": AT - 4000, "ids": ["7"]}, "floor": AT - WEEK}},
    }
    cdk, saved = migrated(state, start_date="2025-01-01T00:00:00Z")
    assert saved.book.entries == {
        "+393331000000": (1749113086, AT - 3600 - spread("+393331000000", WEEK)),
        "393331000001": (1735689600, AT - 3600 - spread("393331000001", WEEK)),  # raised to start_date
        # the future cursor is dropped: that phone is read again from the start date
    }
    assert saved.changes == {"at": AT - 3600, "inbox": {"newest": AT - 4000, "ids": ["7"]}} and saved.default is None
    assert cdk == {"use_global_cursor": True, "parent_state": {"changes": {**saved.changes, "book": saved.book.encode()}}}


def test_one_cursor_for_all_phones_of_0_3_0_past_its_partition_limit_starts_every_phone_at_its_floor_once():
    state = {
        "use_global_cursor": True, "state": {"unixDatetime": str(AT - 60)}, "lookback_window": 12,
        "parent_state": {"changes": {"at": AT - 3600, "floor": AT - 3 * DAY}},
    }
    _, saved = migrated(state)
    assert saved.default == AT - 3 * DAY and saved.book.entries == {}
    _, later = migrated({**state, "state": {"unixDatetime": str(AT - 4 * DAY)}})  # a floor after the cursor: the cursor
    assert later.default == AT - 4 * DAY


def test_a_bare_cursor_for_all_phones_starts_them_there():
    _, saved = migrated({"unixDatetime": "1749113086"})
    assert saved.default == 1749113086


def test_this_releases_state_reads_back_as_it_was_written():
    book = Book({"393331000000": (1749113086, AT - 3600)})
    state = {"use_global_cursor": True, "state": {"unixDatetime": "1749113086"}, "lookback_window": 3,
             "parent_state": {"changes": {"at": AT - 3600, "book": book.encode()}}}
    cdk, saved = migrated(state)
    assert saved.book.entries == book.entries and saved.default is None
    assert cdk == {"use_global_cursor": True, "parent_state": {"changes": {"at": AT - 3600, "book": book.encode()}}}


@pytest.mark.parametrize("state, reason", [
    ({"states": "x"}, '"states" must be a list'),
    ({"states": [{"partition": {}}]}, "entry {'partition': {}} has no partition.phone and cursor.unixDatetime"),
    ({"states": [{"partition": {"phone": "a"}, "cursor": {"unixDatetime": "soon"}}]},
     "the cursor of phone a is 'soon', not a unix time in seconds"),
    ({"parent_state": {"changes": {"book": "v1:!!"}}},
     "parent_state.changes.book is not a book of phones: not base64 of zlib-compressed text (Error)"),
    ({"foo": 1}, "keys ['foo'] are neither this connector's state"),
])
def test_a_state_that_cannot_be_trusted_is_refused_naming_why(state, reason):
    with pytest.raises(AirbyteTracedException) as refused:
        migrated(state)
    assert refused.value.message.startswith(f"The saved state of the conversation stream is not usable: {reason}")
    assert refused.value.failure_type.value == "config_error"
