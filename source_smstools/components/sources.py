"""Reading the sources of change detection: the inbox and the message log, page by page.

Their order is not documented: it is found out on page 1 and checked on every page read. A source
newest first is read down to a stop (its position of the last sync, minus a window), to the end of
the page that reaches it, and no further. One whose page 1 is oldest first is read from its last
page (by page 1's `total`, asked for by number through the source's own requester and error
handler) back to the page that reaches the stop; one in neither order, or that breaks its order on
a page read, has the pages not read yet read whole, each once, so that a read never makes more
requests than reading the source whole. What a read found (`SourceRead`) gives the next sync's
position (`position`) and the span of time its pages covered (`window_of`).
"""

import calendar
import datetime
import sys
from array import array
from bisect import bisect_left
from dataclasses import InitVar, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, MutableMapping, Optional

import requests
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.types import Config, StreamSlice

from source_smstools.components.book import pack, unpack
from source_smstools.components.context import sync_of
from source_smstools.components.pages import body_of

UNREADABLE = "__unreadable"  # a source answer that is no page of entries (see SourceEntries)
PAGE_END = "__page_end"  # on the last entry of each page: {"page": n, "total": t}
# The sources' `date` carries no time zone; it is read as UTC, as the emulator serves it and as the
# conversation's unixDatetime counts. (Dates in a zone ahead of UTC would only make more phones
# read; behind it, a change in the hours before a phone's cursor would wait for the sweep; either
# way the coverage check, components/coverage.py, finds the messages they seem not to list.)
# The IDs of the entries at a source's newest second are kept, to tell which entries of that second
# are new next time: as a list up to LISTED_IDS, compressed beyond it (a bulk send can have
# thousands), none beyond MAX_IDS or when an entry there has no ID: that second is then judged by
# its date (its phones read again), said once (changes.ChangeDetection).
LISTED_IDS = 50
MAX_IDS = 20_000
PACKED = "z1:"  # zlib and base64 of the IDs, one a line
# the `date` forms of the inbox and the message log, as the manifest's date_cursor has them (one
# list: unit_tests/test_manifest.py keeps them equal); a form without a zone is UTC
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%d %b %Y, %H:%M:%S", "%Y-%m-%d",
)
WATCHED = {"inbox": "sender", "message_log": "to"}  # source -> the field that holds the phone
LISTS = {"inbound": "inbox", "outbound": "message_log"}  # a message's direction -> the source that lists it


def parse_date(value: Any) -> Optional[int]:
    """A source's `date` as unix seconds (UTC), or None when it is no date we know."""
    if not isinstance(value, str):
        return None
    for fmt in DATE_FORMATS:
        try:
            parsed = datetime.datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            return calendar.timegm(parsed.timetuple())
        return int(parsed.timestamp())
    return None


@dataclass
class SourceEntries(RecordExtractor):
    """The entries of a page of the inbox, the message log or the contacts (`records_key`).

    For change detection the last entry of each page carries `PAGE_END` (page and total; an empty
    page gives a record of it alone), and an answer with an HTTP 200 that is no page (an error body
    the error handler let through) gives one `UNREADABLE` record: so a source that gives no record
    at all was not read (the CDK passes no record of an HTTP 403 it was told to ignore), and one
    that could not be understood does not pass for an empty one. Phone discovery reads these
    records as records without a phone: it skips them.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    records_key: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._key = self.records_key or parameters.get("records_key", "")
        self._sync = sync_of(self.config)

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        body = body_of(response, self._sync)
        entries = body.get(self._key) if isinstance(body, dict) else None
        if not isinstance(entries, list):
            keys = sorted(body)[:6] if isinstance(body, dict) else type(body).__name__
            what = f"error {body.get('error')}" if isinstance(body, dict) and "error" in body else f"an answer with {keys}"
            return [{UNREADABLE: f"HTTP {response.status_code}, {what} instead of a list under {self._key!r}"}]
        end = {PAGE_END: {"page": body.get("page"), "total": body.get("total")}}
        if entries and isinstance(entries[-1], dict):
            return entries[:-1] + [{**entries[-1], **end}]
        # an empty page still says it was read (a refused request, HTTP 403, gives no record at all)
        return entries + [end]


class Unreadable(Exception):
    pass


Entry = tuple  # (phone in one form or None, unix seconds or None, ID as listed or None)
_NONE = -(2**63)  # no date, in Entries' array of dates
_TEXT = -1  # an ID that is no plain number (or none), in Entries' array of IDs: kept as written


class Entries:
    """A source read's entries, (phone, date, ID) each, in columns: each phone one string however
    many entries (and reads) name it, the dates in an array, the IDs that are plain numbers too (the
    others as written, by position). As a list of tuples they took about 230 bytes an entry, 110 MiB
    for the 500,000 entries of 100,000 phones; in columns, about 25. Read as the list of tuples it
    replaces (iterated, indexed, sliced)."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._phones: list = []
        self._dates = array("q")
        self._ids = array("q")
        self._texts: dict = {}  # position -> an ID that is no plain number, or None
        for entry in entries:
            self.append(entry)

    def append(self, entry: Entry) -> None:
        phone, date, entry_id = entry
        self._phones.append(sys.intern(phone) if type(phone) is str else phone)  # one string a phone, in every read
        self._dates.append(_NONE if date is None else date)
        if isinstance(entry_id, str) and entry_id.isascii() and entry_id.isdigit() and len(entry_id) < 19 and (
            entry_id == "0" or entry_id[0] != "0"
        ):
            self._ids.append(int(entry_id))  # written back as it was listed: str(int(...)) is the same text
        else:
            self._texts[len(self._ids)] = entry_id
            self._ids.append(_TEXT)

    def _at(self, i: int) -> Entry:
        date, number = self._dates[i], self._ids[i]
        return self._phones[i], None if date == _NONE else date, self._texts[i] if number == _TEXT else str(number)

    def __len__(self) -> int:
        return len(self._dates)

    def __iter__(self) -> Iterator[Entry]:
        for i in range(len(self._dates)):
            yield self._at(i)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._at(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("entry index out of range")
        return self._at(i)

    def __eq__(self, other: Any) -> bool:
        return list(self) == list(other) if isinstance(other, (Entries, list)) else NotImplemented


@dataclass
class SourceRead:
    """What one read of the inbox or the message log found."""

    entries: Entries = field(default_factory=Entries)  # (phone, date, ID) each
    pages: int = 0
    total_pages: Optional[int] = None
    whole: bool = True  # read to its end (no early stop)
    ordered: bool = True  # in the order it was read by on every page read
    undated: int = 0
    oldest_first: bool = False  # page 1 oldest first: read from its last page back
    # where in `entries` the pages that join up with the newest one begin (read back from the last
    # page, page 1's entries come first and stand apart)
    joined_from: int = 0
    receivers: set = field(default_factory=set)  # the numbers its entries were received on (the inbox's `receiver`), in one form

    def __post_init__(self) -> None:
        if not isinstance(self.entries, Entries):
            self.entries = Entries(self.entries)


Fetch = Callable[[int], Iterable[Mapping[str, Any]]]  # page number -> its records (SourceEntries')


def read_source(
    stream: Any, stop: Optional[int], phone_field: str, normalize: Any, page_size: int, fetch: Optional[Fetch] = None,
    position_only: bool = False,
) -> SourceRead:
    """Reads `stream` (the CDK's parent stream; None: its pages one by one through `fetch`) newest first down to `stop`, then to the end of
    that page; a source whose order is not newest first on the pages read is read whole. When
    page 1 is oldest first and `fetch` can ask for any page, the rest is read from the last page
    back (_read_back). `position_only` (no position yet, and no phones wanted from it): a page 1
    newest first is enough, its newest entry is where the next sync stops. Were the later pages
    not in that order, the position would only be older than it could be: the next sync then reads
    further back, never less far."""
    read = SourceRead()
    previous: Optional[int] = None
    past_stop = False
    for record in _records(stream) if stream is not None else _fetched(fetch, page_size):
        data = record.data if hasattr(record, "data") else record
        end = _take(read, data, phone_field, normalize, page_size)
        if not (len(data) == 1 and end is not None):  # not an empty page
            date = read.entries[-1][1]
            if date is None:
                read.ordered = False  # an entry without a date we can read: its order cannot be checked
            elif previous is not None and date > previous:
                read.ordered = False
            previous = date if date is not None else previous
            if stop is not None and date is not None and date < stop:
                past_stop = True
        if not isinstance(end, Mapping):
            continue
        if position_only and stop is None and read.pages == 1 and read.ordered and read.entries:
            read.whole = read.total_pages is not None and read.pages >= read.total_pages
            break
        if read.pages == 1 and fetch is not None and stop is not None and (read.total_pages or 1) > 1 and _rising(read):
            return _read_back(read, stop, fetch, phone_field, normalize, page_size)
        if past_stop and read.ordered:
            read.whole = read.total_pages is not None and read.pages >= read.total_pages
            break
    if read.pages == 0:
        raise Unreadable("no page came back: the account may not use this endpoint")
    return read


def _take(read: SourceRead, data: Mapping[str, Any], phone_field: str, normalize: Any, page_size: int) -> Any:
    """Adds a record of a source to `read`; returns its PAGE_END (None when not the last of its page)."""
    if UNREADABLE in data:
        raise Unreadable(data[UNREADABLE])
    end = data.get(PAGE_END)
    if isinstance(end, Mapping):
        read.pages += 1
        total = end.get("total")
        if isinstance(total, int) and not isinstance(total, bool):
            read.total_pages = max(-(-total // page_size), 1)
    if len(data) == 1 and end is not None:
        return end  # an empty page
    date = parse_date(data.get("date"))
    read.undated += date is None
    entry_id = data.get("ID")
    receiver = data.get("receiver")
    if receiver is not None:
        form = normalize(receiver)
        if form is not None:
            read.receivers.add(form)
    read.entries.append((normalize(data.get(phone_field)), date, None if entry_id in (None, "") else str(entry_id)))
    return end


def _rising(read: SourceRead) -> bool:
    """Whether the entries read (page 1) are oldest first: dated, and rising (all at one date is newest first too)."""
    dates = [d for _, d, _ in read.entries]
    return bool(dates) and None not in dates and dates == sorted(dates) and dates[0] != dates[-1]


def _read_back(read: SourceRead, stop: int, fetch: Fetch, phone_field: str, normalize: Any, page_size: int) -> SourceRead:
    """Page 1 being oldest first, the newest entries are on the last pages (by page 1's `total`):
    reads the last page, then the ones before it, down to the first page with an entry older than
    `stop`. The pages skipped between it and page 1 hold older entries, seen by the last sync. Each
    page read is checked: oldest first, and joining up with page 1 and with the page after it; at
    the first that is not, the pages not read yet are read whole, so that the order assumed never
    decides what is skipped, and no page is asked for twice: never more requests than reading it whole."""
    read.oldest_first, read.ordered = True, True
    read.joined_from = len(read.entries)
    last = read.total_pages or 1
    floor = read.entries[-1][1]  # page 1's newest: every later page's entries are at or after it
    ceiling: Optional[int] = None  # the oldest entry of the page after this one
    for number in range(last, 1, -1):
        start = len(read.entries)
        for data in fetch(number):
            _take(read, data, phone_field, normalize, page_size)
        dates = [d for _, d, _ in read.entries[start:]]
        joined = bool(dates) and None not in dates and dates == sorted(dates) and dates[0] >= floor
        if not joined or (ceiling is not None and dates[-1] > ceiling):
            read.ordered = False
            for rest in range(2, number):
                for data in fetch(rest):
                    _take(read, data, phone_field, normalize, page_size)
            return read
        if dates[0] < stop:
            read.whole = number == 2
            return read
        ceiling = dates[0]
    return read


def page_reader(
    requester: Any, config: Config, page_size: int, records_key: str = "messages", partition: Optional[Mapping[str, Any]] = None,
) -> Fetch:
    """Asks a source (`requester`: its HttpRequester, with its error handler) for a page by its
    number; its records as the stream's extractor gives them. `partition` fills the requester's
    path (a number's inbox: {"phone": its ID}, as the manifest's `url` fills `{phone}`)."""
    extractor = SourceEntries(config=config, parameters={"records_key": records_key})
    where = StreamSlice(partition=dict(partition), cursor_slice={}) if partition else None

    def fetch(number: int) -> Iterable[Mapping[str, Any]]:
        response = requester.send_request(stream_slice=where, request_params={"page": number, "limit": page_size})
        if response is None:
            raise Unreadable(f"no answer for page {number}")
        return extractor.extract_records(response)

    return fetch


def _fetched(fetch: Fetch, page_size: int) -> Iterator[Mapping[str, Any]]:
    """A source's records page after page through `fetch`, to the last page by `total` (or the
    first page that is not full, when `total` is no number)."""
    number = 1
    while True:
        records = list(fetch(number))
        yield from records
        end = records[-1].get(PAGE_END) if records and isinstance(records[-1], Mapping) else None
        total = end.get("total") if isinstance(end, Mapping) else None
        entries = sum(1 for r in records if not (len(r) == 1 and PAGE_END in r))
        if isinstance(total, int) and not isinstance(total, bool):
            if number * page_size >= total or entries == 0:
                return
        elif entries < page_size:
            return
        number += 1


def _records(stream: Any) -> Iterator[Any]:
    # as the CDK's SubstreamPartitionRouter reads a parent stream: lazily, page by page, so that
    # stopping here stops the paging
    for partition in stream.generate_partitions():
        yield from partition.read()


def position(read: SourceRead, before: Optional[Mapping[str, Any]], at: int) -> Optional[Mapping[str, Any]]:
    """Where the next sync starts reading a source: its newest date up to now, and the IDs of the
    entries at it (none: that second is judged by its date, see LISTED_IDS). The source is read
    before any conversation of the sync (ChangeDetection.phones), so a message that arrives while
    the conversations are read is newer than this position, and the next sync sees it. An entry
    dated in the future does not count: a reply dated before it, listed later, would seem older
    than what was read."""
    dates = [d for _, d, _ in read.entries if d is not None and d <= at]
    if not dates:
        return dict(before) if before else None
    newest = max(dates)
    if before and isinstance(before.get("newest"), int) and before["newest"] > newest:
        return dict(before)
    ids = {i for _, d, i in read.entries if d == newest}
    kept: dict[str, Any] = {"newest": newest}
    if None not in ids and len(ids) <= MAX_IDS:
        kept["ids"] = pack_ids(sorted(ids))
    top = top_id(read)
    if top is not None:
        earlier = before.get("top") if before else None
        kept["top"] = max(top, earlier) if type(earlier) is int else top
    return kept


def top_id(read: SourceRead) -> Optional[int]:
    """The highest entry ID read, where the IDs are seen to grow as entries are added: all numbers,
    and in the order of their dates but for a few (entries listed late); None where they are not
    (a hash, a text): then no entry can be told new by its ID."""
    numbered = [(int(i), d) for _, d, i in read.entries if i is not None and i.isdigit() and d is not None]
    if len(numbered) < 5 or len(numbered) < len(read.entries):
        return None  # too few to tell a count from a hash
    numbered.sort()
    against = sum(1 for (_, a), (_, b) in zip(numbered, numbered[1:]) if b < a)
    return numbered[-1][0] if against <= max(1, len(numbered) // 10) else None


def pack_ids(ids: list[str]) -> Any:
    if len(ids) <= LISTED_IDS:
        return ids
    return pack(PACKED, "\n".join(ids))


def ids_at_newest(position: Optional[Mapping[str, Any]]) -> Optional[set[str]]:
    """The IDs a position keeps of its newest second; None: judge that second by its date (no IDs
    kept, or what is kept cannot be read: a state of 0.4.0 or before that had too many)."""
    ids = position.get("ids") if position else None
    if isinstance(ids, list):
        return {str(i) for i in ids}
    if isinstance(ids, str) and ids.startswith(PACKED):
        try:
            return set(unpack(PACKED, ids).split("\n"))
        except ValueError:
            return None
    return None


class Listed:
    """The (phone, date) pairs of a source's entries, each phone once with its dates sorted in an
    array: a frozenset of the pairs took about 190 bytes an entry, which the sync keeps to its end
    (coverage.Observations): 90 MiB at 100,000 phones; this, about 30. `(phone, date) in listed`."""

    def __init__(self, pairs: Iterable[tuple] = ()) -> None:
        self._dates: dict = {}
        for phone, date in pairs:
            dates = self._dates.get(phone)
            if dates is None:
                dates = self._dates[phone] = array("q")
            dates.append(date)
        for phone, dates in self._dates.items():
            if len(dates) > 1:
                self._dates[phone] = array("q", sorted(set(dates)))

    def __contains__(self, pair: Any) -> bool:
        phone, date = pair
        dates = self._dates.get(phone)
        if dates is None or type(date) is not int:
            return False
        i = bisect_left(dates, date)
        return i < len(dates) and dates[i] == date

    def __iter__(self) -> Iterator[tuple]:
        for phone, dates in self._dates.items():
            for date in dates:
                yield phone, date

    def __len__(self) -> int:
        return sum(len(d) for d in self._dates.values())


@dataclass(frozen=True)
class Window:
    """The span of time a source's read covered, and what it listed in it: a complete source lists
    every message of its kind dated after `after` (None: from the beginning, the source was read to
    its end) and up to `upto`. Entries are keyed (phone in one form, unix seconds): `listed` holds
    them (a Listed, or any container of such pairs)."""

    after: Optional[int]
    upto: int
    listed: Any

    def covers(self, date: int) -> bool:
        return (self.after is None or date > self.after) and date <= self.upto


def window_of(read: SourceRead, at: int) -> Optional[Window]:
    """The window of `read` (None when it listed nothing dated up to now). `after` is the oldest
    date read, exclusive: other entries of that second may be on the page not read. A source not in
    order (read whole) covers everything."""
    dates = [d for _, d, _ in read.entries if d is not None and d <= at]
    if not dates:
        return None
    joined = [d for _, d, _ in read.entries[read.joined_from :] if d is not None]
    after = None if read.whole or not joined else min(joined)
    listed = Listed((p, d) for p, d, _ in read.entries if p is not None and d is not None)
    return Window(after, max(dates), listed)


def how_read(name: str, read: SourceRead, first: bool) -> str:
    """How a source was read, for the sync's summary line (`first`: no position before)."""
    if not read.ordered:
        how = "whole: its entries are not " + (
            "oldest first on every page, as page 1 showed" if read.oldest_first else "newest first"
        ) + (f" ({read.undated} without a readable date)" if read.undated else "")
    elif read.whole and read.oldest_first:
        how = "whole (oldest first: page 1, then from the last page back to page 2)"
    elif read.whole:
        how = "whole" if first else "whole (it reached the last sync's entries on its last page)"
    elif first:
        how = f"{read.pages} of {read.total_pages or '?'} page(s), for its position (no sync before)"
    else:
        how = f"{read.pages} of {read.total_pages or '?'} page(s), down to the last sync's entries" + (
            " (oldest first: page 1, then from the last page back)" if read.oldest_first else ""
        )
    return f"{name.replace('_', ' ')} read {how}"
