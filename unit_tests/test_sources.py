"""Reading change detection's sources: their dates, their pages as records, the early stop of a
read, oldest-first sources read from their last pages, and the state migration keeping the
sources' positions."""

import json
import time

import pytest
import requests

from source_smstools.components import sources
from source_smstools.components.sources import PAGE_END, UNREADABLE, Entries, Listed, SourceEntries, parse_date, read_source
from source_smstools.components.discovery import normalize_phone
from source_smstools.components.book import Book
from source_smstools.components.state import PerPhoneState

DAY = 86_400


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("2025-06-05 08:44:46", 1_749_113_086),
        ("2025-06-05T08:44:46Z", 1_749_113_086),
        ("05 Jun 2025, 08:44:46", 1_749_113_086),
        ("2025-06-05", 1_749_081_600),
        ("yesterday", None),
        ("", None),
        (1_749_113_086, None),
        (None, None),
    ],
)
def test_parse_date(value, seconds):
    assert parse_date(value) == seconds




def page(items, page=1, total=None, status=200, key="messages"):
    if items is None:
        body = {"error": 110, "errorMsg": "not enabled"}
    else:
        body = {"total": len(items) if total is None else total, "shown": len(items), "page": page, "limit": 2, key: items}
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(body).encode()
    return r


def test_source_pages_mark_their_end_and_an_error_body_is_no_empty_page():
    extractor = SourceEntries(config={}, parameters={"records_key": "messages"})
    a, b = {"ID": 1, "sender": "393331000000"}, {"ID": 2, "sender": "393331000001"}
    assert list(extractor.extract_records(page([a, b], total=5))) == [a, {**b, PAGE_END: {"page": 1, "total": 5}}]
    assert list(extractor.extract_records(page([]))) == [{PAGE_END: {"page": 1, "total": 0}}]
    [unreadable] = extractor.extract_records(page(None))
    assert unreadable == {UNREADABLE: "HTTP 200, error 110 instead of a list under 'messages'"}


class Stream:
    """A parent stream as the CDK hands it: partitions that read records lazily, page by page."""

    def __init__(self, pages):
        self.pages, self.served = pages, 0

    def generate_partitions(self):
        yield self

    def read(self):
        for number, entries in enumerate(self.pages, start=1):
            self.served += 1
            extractor = SourceEntries(config={}, parameters={"records_key": "messages"})
            yield from extractor.extract_records(page(entries, page=number, total=sum(map(len, self.pages))))


def entry(n, date):
    return {"ID": n, "sender": f"+39333100{n:04d}", "date": date}


def test_a_source_newest_first_is_read_to_the_end_of_the_page_that_passes_the_stop():
    pages = [
        [entry(1, "2025-06-05 10:00:00"), entry(2, "2025-06-05 09:00:00")],
        [entry(3, "2025-06-05 08:00:00"), entry(4, "2025-06-04 08:00:00")],
        [entry(5, "2025-06-03 08:00:00"), entry(6, "2025-06-02 08:00:00")],
    ]
    stream = Stream(pages)
    read = read_source(stream, parse_date("2025-06-05 08:30:00"), "sender", normalize_phone, 2)
    assert stream.served == 2 and not read.whole and read.ordered and (read.pages, read.total_pages) == (2, 3)
    assert [i for _, _, i in read.entries] == ["1", "2", "3", "4"]
    # not newest first on the pages read: read whole
    pages[1].reverse()
    stream = Stream(pages)
    read = read_source(stream, parse_date("2025-06-05 08:30:00"), "sender", normalize_phone, 2)
    assert stream.served == 3 and read.whole and not read.ordered
    # no page at all (HTTP 403, ignored by the error handler): unreadable
    with pytest.raises(sources.Unreadable):
        read_source(Stream([]), None, "sender", normalize_phone, 2)


def test_the_state_migration_keeps_the_sources_positions():
    position = {"changes": {"at": 1_749_200_000, "inbox": {"newest": 1_749_113_086, "ids": ["7"]}}}
    state = {
        "use_global_cursor": False,
        "states": [{"partition": {"phone": "393331000000"}, "cursor": {"unixDatetime": "1749113086"}}],
        "state": {"unixDatetime": "1749113086"},
        "lookback_window": 3,
        "parent_state": position,
    }
    migrated = PerPhoneState().migrate(state)
    book = migrated["parent_state"]["changes"].pop("book")
    assert migrated == {"use_global_cursor": True, "parent_state": position}
    assert Book.decode(book).cursor("393331000000") == 1_749_113_086


def oldest_first(pages):
    """Page 1 as the CDK's paging reads it, and a fetch of any page by number that records the pages asked for."""
    asked = []

    def fetch(number):
        asked.append(number)
        extractor = SourceEntries(config={}, parameters={"records_key": "messages"})
        return extractor.extract_records(page(pages[number - 1], page=number, total=sum(map(len, pages))))

    return Stream(pages), fetch, asked  # served lazily: a page past page 1 served counts in `served`


def rising(n):
    """n entries oldest first, one an hour from 2025-06-01 00:00 (IDs 1..n)."""
    return [entry(i, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_748_736_000 + 3600 * (i - 1)))) for i in range(1, n + 1)]


def test_an_oldest_first_source_is_read_from_its_last_page_back_to_the_page_that_passes_the_stop():
    entries = rising(10)  # pages of 2: [1 2] [3 4] [5 6] [7 8] [9 10]
    pages = [entries[i : i + 2] for i in range(0, 10, 2)]
    stop = parse_date(entries[6]["date"])  # entry 7's date: 7 and after were not seen
    stream, fetch, asked = oldest_first(pages)
    read = read_source(stream, stop, "sender", normalize_phone, 2, fetch)
    # page 1, then the last and the one before it, whose oldest entry (7) is at the stop: one more (6 < stop)
    assert stream.served == 1 and asked == [5, 4, 3]
    assert [i for _, _, i in read.entries] == ["1", "2", "9", "10", "7", "8", "5", "6"]
    assert read.ordered and read.oldest_first and not read.whole and (read.pages, read.total_pages) == (4, 5)
    # stop inside the last page: 1 + 1 requests
    stream, fetch, asked = oldest_first(pages)
    read = read_source(stream, parse_date(entries[9]["date"]), "sender", normalize_phone, 2, fetch)
    assert asked == [5] and not read.whole and read.pages == 2
    # back to page 2 without passing the stop: every page once, read whole
    stream, fetch, asked = oldest_first(pages)
    read = read_source(stream, parse_date(entries[1]["date"]), "sender", normalize_phone, 2, fetch)
    assert asked == [5, 4, 3, 2] and read.whole and read.ordered and read.pages == 5


def broken(pages, how):
    pages = [list(p) for p in pages]
    if how == "within a page":
        pages[3].reverse()
    else:  # the last two pages swapped: each oldest first, but they do not join up
        pages[3], pages[4] = pages[4], pages[3]
    return pages


@pytest.mark.parametrize("how", ["within a page", "between pages"])
def test_an_oldest_first_source_that_breaks_its_order_on_a_later_page_is_read_whole_each_page_once(how):
    entries = rising(10)
    pages = broken([entries[i : i + 2] for i in range(0, 10, 2)], how)
    stream, fetch, asked = oldest_first(pages)
    # entry 7's date: the last page's oldest entry is not older, page 4 is asked for (a break on a
    # page not read cannot be seen: as with a newest-first source, the sweep covers it)
    read = read_source(stream, parse_date(entries[6]["date"]), "sender", normalize_phone, 2, fetch)
    # the last page, page 4 (out of order), then the pages not read yet: never more than reading it whole
    assert stream.served == 1 and asked == [5, 4, 2, 3]
    assert sorted(int(i) for _, _, i in read.entries) == list(range(1, 11))
    assert read.whole and not read.ordered and read.oldest_first and read.pages == 5


def test_an_oldest_first_source_of_one_page_no_position_or_no_fetch_is_read_as_before():
    entries = rising(6)
    pages = [entries[i : i + 2] for i in range(0, 6, 2)]
    stop = parse_date(entries[5]["date"])
    # one page: nothing more to ask for
    stream, fetch, asked = oldest_first([entries[:2]])
    read = read_source(stream, parse_date(entries[1]["date"]), "sender", normalize_phone, 2, fetch)
    assert asked == [] and read.whole and read.pages == 1 and not read.oldest_first
    # no position (a first sync), or no way to ask for a page: paged through, whole
    for position, given in ((None, True), (stop, False)):
        stream, fetch, asked = oldest_first(pages)
        read = read_source(stream, position, "sender", normalize_phone, 2, fetch if given else None)
        assert asked == [] and stream.served == 3 and read.whole and not read.ordered and not read.oldest_first


def test_a_page_asked_for_by_number_goes_through_the_requester_and_is_read_as_the_stream_reads_it():
    class Requester:
        def __init__(self, answer):
            self.answer, self.asked = answer, []

        def send_request(self, **kwargs):
            self.asked.append(kwargs)
            return self.answer

    a = entry(1, "2025-06-05 10:00:00")
    requester = Requester(page([a], page=4, total=7))
    fetch = sources.page_reader(requester, {}, 2)
    assert list(fetch(4)) == [{**a, PAGE_END: {"page": 4, "total": 7}}]
    assert requester.asked == [{"stream_slice": None, "request_params": {"page": 4, "limit": 2}}]
    # a number's inbox: the partition fills the requester's path, as the manifest's `url` has it
    sources.page_reader(requester, {}, 2, partition={"phone": "32"})(1)
    assert requester.asked[-1]["stream_slice"].partition == {"phone": "32"}
    # an error body the error handler let through: unreadable, not an empty page
    [unreadable] = sources.page_reader(Requester(page(None)), {}, 2)(4)
    assert unreadable == {UNREADABLE: "HTTP 200, error 110 instead of a list under 'messages'"}
    # met reading an oldest-first source back: the source is unreadable
    with pytest.raises(sources.Unreadable):
        read_source(Stream([rising(2), rising(2)]), 0, "sender", normalize_phone, 2, sources.page_reader(Requester(page(None)), {}, 2))


def test_a_position_keeps_the_ids_of_its_newest_second_listed_then_packed_and_none_where_one_has_no_id():
    def read_of(ids):
        return sources.SourceRead(entries=[("a", 1_000, i) for i in ids] + [("b", 900, "x")])

    few = [str(n) for n in range(50)]
    assert sources.position(read_of(few), None, 2_000) == {"newest": 1_000, "ids": sorted(few)}
    many = [str(n) for n in range(5_000)]
    packed = sources.position(read_of(many), None, 2_000)
    assert packed["ids"].startswith("z1:") and len(packed["ids"]) < 14_000  # 5,000 IDs in 13 kB
    assert sources.ids_at_newest(packed) == set(many)
    # an entry without an ID, or more IDs than kept: the second is judged by its date
    assert sources.position(read_of(["1", None]), None, 2_000) == {"newest": 1_000}
    assert sources.position(read_of([str(n) for n in range(20_001)]), None, 2_000) == {"newest": 1_000}
    # a position of 0.4.0 with too many to list, or a packed list that is not one: by date
    assert sources.ids_at_newest({"newest": 1_000, "ids": None}) is None
    assert sources.ids_at_newest({"newest": 1_000, "ids": "z1:!!"}) is None


def test_entry_ids_tell_what_is_new_only_where_they_are_seen_to_grow_with_the_dates():
    def read_of(pairs):
        return sources.SourceRead(entries=[("a", d, i) for i, d in pairs])

    counted = [(str(100 + n), 1_000 + 60 * n) for n in range(20)]
    assert sources.top_id(read_of(counted)) == 119
    # one entry listed late (the highest ID, an old date): still a count
    assert sources.top_id(read_of(counted + [("120", 900)])) == 120
    # hashes, texts, or an entry without an ID: no top
    hashed = [(str(h), 1_000 + 60 * n) for n, h in enumerate([907, 13, 554, 2, 781, 330, 96, 648, 71, 402])]
    assert sources.top_id(read_of(hashed)) is None
    assert sources.top_id(read_of([("a1", 1_000)] + counted)) is None
    assert sources.top_id(read_of([(None, 1_000)] + counted)) is None
    # the position keeps the highest seen, this read's or the last sync's
    assert sources.position(read_of(counted), {"newest": 1_000, "top": 500}, 5_000)["top"] == 500


def test_entries_kept_in_columns_read_back_as_they_were_listed():
    listed = [
        ("393331000000", 1_749_113_086, "12"), (None, None, None), ("393331000000", 5, "007"), ("44", -3, "abc"),
        ("393331000001", 0, "0"), ("393331000001", 7, "12345678901234567890"), ("x", 8, "²"), ("y", 9, ""),
    ]
    entries = Entries(listed)
    assert list(entries) == listed and entries == listed and len(entries) == 8
    assert entries[-1] == ("y", 9, "") and entries[2:4] == listed[2:4] and entries[5:] == listed[5:]
    # a phone named by many entries is one string
    assert entries[0][0] is entries[2][0]
    with pytest.raises(IndexError):
        entries[8]


def test_what_a_source_listed_is_each_phone_and_date_it_listed():
    listed = Listed([("39333", 30), ("39333", 10), ("39334", 20), ("39333", 30)])
    assert ("39333", 10) in listed and ("39333", 30) in listed and ("39334", 20) in listed
    assert ("39333", 20) not in listed and ("39335", 10) not in listed and ("39333", "10") not in listed
    assert sorted(listed) == [("39333", 10), ("39333", 30), ("39334", 20)] and len(listed) == 3
