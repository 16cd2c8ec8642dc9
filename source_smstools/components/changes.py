"""Change detection: which known phones to read in an incremental sync.

The inbox lists the messages received and the message log those sent: together they say which
conversations moved since the last sync. A known phone's conversation is read only when
(a) the inbox or the message log has an entry for it not listed at the last sync, dated at or
after its cursor minus the lookback window, or any entry read dated after its cursor; (b) the message log has an entry for it sent within `lookback_window_days` of
now (its delivery status may still change); or (c) it is due for the safety sweep, which reads
every known phone once every `full_sweep_days`, each phone on its own day (a stable hash of the
phone), so that no sync after the first reads them all at once. A phone seen for the first time
is read from `start_date`. Nothing per phone is added to the state: the sweep needs only the time
of the last sync, and the sources their own position (`parent_state.changes`).

The inbox and the log are read newest first down to their position of the last sync (the log,
the lookback window further), to the end of the page that reaches it, and no further. Their order
is not documented: it is found out on page 1 and checked on every page read. One whose page 1 is
oldest first is read from its last page (by page 1's `total`, asked for by number through the
source's own requester and error handler) back to the page that reaches the position; one in
neither order, or that breaks its order on a page read, has the pages not read yet read whole,
each once, so that a sync never makes more requests than reading the source whole. A source that cannot be read turns detection off for the
sync: every known phone is read, with a warning.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import os
import time
from dataclasses import InitVar, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, MutableMapping, Optional

import requests
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.types import Config

from source_smstools.components.errors import missed_phones
from source_smstools.components.session import Refused
from source_smstools.components.pages import body_of

logger = logging.getLogger("airbyte")

KEY = "changes"  # this module's part of the stream state's `parent_state`
UNREADABLE = "__unreadable"  # a source answer that is no page of entries (see SourceEntries)
PAGE_END = "__page_end"  # on the last entry of each page: {"page": n, "total": t}
DAY = 86_400
# The sources' `date` carries no time zone; it is read as UTC, as the emulator serves it and as the
# conversation's unixDatetime counts. (Dates in a zone ahead of UTC would only make more phones
# read; behind it, a change in the hours before a phone's cursor would wait for the sweep.)
MAX_IDS = 50  # entries at the newest second kept in the state (a bulk send can have thousands)
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%d %b %Y, %H:%M:%S", "%Y-%m-%d")
WATCHED = {"inbox": "sender", "message_log": "to"}  # source -> the field that holds the phone


def now() -> int:
    """The time the sync decides by. The tests that run the command in a process of its own set
    it with SMSTOOLS_NOW (unix seconds; in-process tests patch this function); not for users."""
    return int(os.environ.get("SMSTOOLS_NOW") or time.time())


def parse_date(value: Any) -> Optional[int]:
    """A source's `date` as unix seconds (UTC), or None when it is no date we know."""
    if not isinstance(value, str):
        return None
    for fmt in DATE_FORMATS:
        try:
            return calendar.timegm(time.strptime(value.strip(), fmt))
        except ValueError:
            continue
    return None


def enabled(config: Mapping[str, Any]) -> bool:
    return config.get("change_detection", True) is not False and _sweep_days(config) != 0


def _sweep_days(config: Mapping[str, Any]) -> int:
    value = config.get("full_sweep_days")
    return 7 if value is None else int(value)


def sweep_due(phone: str, last: Optional[int], at: int, days: int) -> bool:
    """Whether `phone` is due for the sweep at `at`, the last sync having been at `last`: its own
    sweep moment (every `days` days, shifted by a stable hash of the phone) fell in between."""
    if last is None:
        return True
    period = days * DAY
    shift = int(hashlib.md5(phone.encode()).hexdigest()[:8], 16) % period
    return (at + shift) // period > (last + shift) // period


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

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        body = body_of(response)
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


@dataclass
class SourceRead:
    """What one read of the inbox or the message log found."""

    entries: list[tuple[Optional[str], Optional[int], str]] = field(default_factory=list)  # (phone, date, ID)
    pages: int = 0
    total_pages: Optional[int] = None
    whole: bool = True  # read to its end (no early stop)
    ordered: bool = True  # in the order it was read by on every page read
    undated: int = 0
    oldest_first: bool = False  # page 1 oldest first: read from its last page back


Fetch = Callable[[int], Iterable[Mapping[str, Any]]]  # page number -> its records (SourceEntries')


def read_source(
    stream: Any, stop: Optional[int], phone_field: str, normalize: Any, page_size: int, fetch: Optional[Fetch] = None,
    position_only: bool = False,
) -> SourceRead:
    """Reads `stream` (the CDK's parent stream) newest first down to `stop`, then to the end of
    that page; a source whose order is not newest first on the pages read is read whole. When
    page 1 is oldest first and `fetch` can ask for any page, the rest is read from the last page
    back (_read_back). `position_only` (no position yet, and no phones wanted from it): a page 1
    newest first is enough, its newest entry is where the next sync stops. Were the later pages
    not in that order, the position would only be older than it could be: the next sync then reads
    further back, never less far."""
    read = SourceRead()
    previous: Optional[int] = None
    past_stop = False
    for record in _records(stream):
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
    read.entries.append((normalize(data.get(phone_field)), date, str(data.get("ID"))))
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


def page_reader(requester: Any, config: Config, page_size: int, records_key: str = "messages") -> Fetch:
    """Asks a source (`requester`: its HttpRequester, with its error handler) for a page by its
    number; its records as the stream's extractor gives them."""
    extractor = SourceEntries(config=config, parameters={"records_key": records_key})

    def fetch(number: int) -> Iterable[Mapping[str, Any]]:
        response = requester.send_request(request_params={"page": number, "limit": page_size})
        if response is None:
            raise Unreadable(f"no answer for page {number}")
        return extractor.extract_records(response)

    return fetch


def _records(stream: Any) -> Iterator[Any]:
    # as the CDK's SubstreamPartitionRouter reads a parent stream: lazily, page by page, so that
    # stopping here stops the paging
    for partition in stream.generate_partitions():
        yield from partition.read()


class ChangeDetection:
    """Decides which phones a sync reads, from `saved` (the stream's saved state, as
    state.PerPhoneState checked it; None or {} for none); `state` is what goes in `parent_state`
    for the next, set once every phone is yielded."""

    def __init__(self, config: Mapping[str, Any], saved: Optional[Mapping[str, Any]] = None) -> None:
        self.config = config
        saved = saved or {}
        self.saved: Mapping[str, Any] = saved if isinstance(saved, Mapping) else {}
        parent = self.saved.get("parent_state")
        mine = parent.get(KEY) if isinstance(parent, Mapping) else None
        self.previous: Optional[dict[str, Any]] = dict(mine) if isinstance(mine, Mapping) else None
        self.cursors = _cursors(self.saved)
        self.lookback = int(config.get("lookback_window_days") or 0) * DAY
        self.days = _sweep_days(config)
        self.page_size = int(config.get("page_size") or 2000)
        self.at = now()
        self.state: Optional[dict[str, Any]] = None
        self.unreadable: list[str] = []  # the sources this sync could not read

    def applies(self) -> bool:
        """Per-phone cursors to compare with; past the CDK's partition limit there is one for all."""
        return not self.saved.get("use_global_cursor")

    def phones(
        self, sources: Mapping[str, Any], found: Iterable[str], listed: Optional[list[str]], normalize: Any,
        discover_from: Iterable[str] = (), fetchers: Optional[Mapping[str, Fetch]] = None,
    ) -> Iterator[str]:
        """The phones to read. `sources`: name -> parent stream, for the inbox and the log (both
        are read for changes); `found`: phones found in the contacts; `listed`: the configured
        phones (None: discovery, where a phone unknown so far is new when found in the contacts
        or in `discover_from`'s sources); `fetchers`: name -> its page_reader, to read an oldest-first
        source from its last pages. New phones come first, before the sources are read: a
        `check`, which reads one page, reads no source."""
        previous = self.previous or {}
        yielded: set[str] = set()
        if listed is not None:
            targets = list(dict.fromkeys(listed))
            forms = {p: normalize(p) for p in targets}
            cursor_of = {forms[p]: self.cursors[p] for p in targets if p in self.cursors}
        else:
            targets = list(dict.fromkeys(found))
            forms = {}
            cursor_of = {p: c for p, c in self.cursors.items() if normalize(p) == p}
        for phone in targets:
            if phone not in self.cursors and phone not in cursor_of:
                yielded.add(phone)
                yield phone

        state: dict[str, Any] = {"at": self.at}
        changed: set[str] = set()
        seen: list[str] = []  # phones in the sources that discovery uses, in order
        discover_from = set(discover_from)
        notes: list[str] = []
        fallback: Optional[str] = None
        for name, stream in sources.items():
            position = previous.get(name) if isinstance(previous.get(name), Mapping) else None
            newest = position.get("newest") if position else None
            newest = newest if isinstance(newest, int) else None
            window = self.lookback if name == "message_log" else 0
            stop = newest - window if newest is not None else None
            try:
                fetch = (fetchers or {}).get(name)
                # a first read whose phones nobody needs (listed phones: each is read whole anyway)
                # only sets the position
                position_only = stop is None and name not in discover_from
                read = read_source(stream, stop, WATCHED[name], normalize, self.page_size, fetch, position_only)
            except Refused:
                raise  # the config is wrong: the sync ends here, said once
            except Exception as error:  # forbidden, or an answer we cannot understand
                self.unreadable.append(name)
                if name in discover_from:
                    logger.warning(missed_phones(name, _reason(error)))
                fallback = fallback or f"the {name.replace('_', ' ')} could not be read ({_reason(error)})"
                if position:
                    state[name] = dict(position)  # read it from there again next time
                continue
            ids = set(position.get("ids") or []) if position else set()
            all_seen = bool(position) and position.get("ids") is None
            for phone, date, entry_id in read.entries:
                if phone is None:
                    continue
                if name in discover_from:
                    seen.append(phone)
                if date is None:
                    changed.add(phone)
                    continue
                if stop is not None and date < stop:
                    continue  # older than what the last sync read: it was seen then
                if date > self.at:
                    continue  # dated in the future (a scheduled message): read once its time has come
                cursor = cursor_of.get(phone)
                # newer than the newest message read of the phone; or not listed at the last sync,
                # and at or after the phone's cursor minus the lookback window (where its next read
                # starts: the cursor is inclusive, as the CDK's)
                new = newest is None or date > newest or (date == newest and not all_seen and entry_id not in ids)
                moved = cursor is None or date > cursor or (new and date >= cursor - self.lookback)
                # a message sent within the lookback window of now: its delivery status may still change
                recent = name == "message_log" and self.lookback > 0 and date >= self.at - self.lookback
                if moved or recent:
                    changed.add(phone)
            state[name] = _position(read, position, self.at)
            if not read.ordered:
                how = "whole: its entries are not " + (
                    "oldest first on every page, as page 1 showed" if read.oldest_first else "newest first"
                ) + (
                    f" ({read.undated} without a readable date)" if read.undated else ""
                )
            elif read.whole and read.oldest_first:
                how = "whole (oldest first: page 1, then from the last page back to page 2)"
            elif read.whole:
                how = "whole" if newest is None else "whole (it reached the last sync's entries on its last page)"
            elif newest is None:
                how = f"{read.pages} of {read.total_pages or '?'} page(s), for its position (no sync before)"
            else:
                how = f"{read.pages} of {read.total_pages or '?'} page(s), down to the last sync's entries" + (
                    " (oldest first: page 1, then from the last page back)" if read.oldest_first else ""
                )
            notes.append(f"{name.replace('_', ' ')} read {how}")

        if listed is None:
            known = [p for p in cursor_of]
            targets = list(dict.fromkeys(targets + seen + known))
            forms = {p: p for p in targets}
        if fallback:
            logger.warning(
                f"Change detection is off for this sync: {fallback}. Every phone's conversation is read "
                f"({len(targets):,} phones, at least one request each) instead of only those that changed."
            )
            for phone in targets:
                if phone not in yielded:
                    yield phone
            self.state = state
            return
        new = [p for p in targets if p not in yielded and forms[p] not in cursor_of]
        moved = [p for p in targets if p not in yielded and forms[p] in cursor_of and forms[p] in changed]
        last = previous.get("at") if isinstance(previous.get("at"), int) else None
        swept = [
            p for p in targets
            if p not in yielded and forms[p] in cursor_of and forms[p] not in changed and sweep_due(p, last, self.at, self.days)
        ]
        logger.info(
            f"Change detection: {len(yielded) + len(new) + len(moved) + len(swept):,} of {len(targets):,} phones "
            f"read: {len(yielded) + len(new):,} new, {len(moved):,} with new entries in the inbox or the message log, "
            f"{len(swept):,} due for the {self.days}-day sweep"
            + (" (no sync with change detection before: every phone)" if last is None else "")
            + (f"; {'; '.join(notes)}." if notes else ".")
        )
        yield from new + moved + swept
        self.state = state


def _position(read: SourceRead, before: Optional[Mapping[str, Any]], at: int) -> Optional[Mapping[str, Any]]:
    """Where the next sync starts reading a source: its newest date up to now, and the entries at
    it. An entry dated in the future does not count: a reply dated before it, listed later, would
    seem older than what was read."""
    dates = [d for _, d, _ in read.entries if d is not None and d <= at]
    if not dates:
        return dict(before) if before else None
    newest = max(dates)
    if before and isinstance(before.get("newest"), int) and before["newest"] > newest:
        return dict(before)
    ids = sorted({i for _, d, i in read.entries if d == newest})
    return {"newest": newest, "ids": ids if len(ids) <= MAX_IDS else None}


def _cursors(saved: Mapping[str, Any]) -> dict[str, int]:
    """phone -> cursor of the saved per-phone state (the CDK starts the phone from it); entries it
    cannot read are left out here, as new phones, and PerPhoneState says what is wrong with them."""
    cursors: dict[str, int] = {}
    states = saved.get("states")
    for entry in states if isinstance(states, list) else []:
        try:
            phone, value = entry["partition"]["phone"], int(entry["cursor"]["unixDatetime"])
        except (KeyError, TypeError, ValueError):
            continue
        if isinstance(phone, str) and value <= now() + DAY:
            cursors[phone] = value
    return cursors


def _reason(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return message.strip().rstrip(".")[:300]
