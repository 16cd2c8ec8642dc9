"""The conversation's paging: which page to ask for next, and what each answer proves.

The API pages a conversation with `page` and `limit` only, newest first. Nothing in an answer is
trusted beyond what the answers read so far show:

- each answer must be the page asked for (`page` as asked, not the page before again);
- an empty page ends the phone's read; the pages asked for are bounded by the first page's
  `total` and the page size (plus the re-reads below);
- at each boundary between two pages, what the pages hold says whether something moved: the
  previous page's last messages seen again at the start of the next (messages inserted above:
  read twice, passed once), `total` smaller than before (messages deleted above may have moved
  unread messages onto the page already read), or one second's messages cut by the boundary (an
  API whose order within a second is not stable may show some twice and others never). Each of
  these is settled by re-reading the region around the boundary with one request whose page size
  holds it whole, with a message of another second on either side of it; what that re-read holds
  beyond what was passed is passed too;
- a read stops before the last page only on evidence (`stops_early`).

Components are shared by every phone and called from several threads at once: what a read
remembers is kept per phone (`READS`), under a lock, and dropped when its read ends.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import InitVar, dataclass, field
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union
from urllib.parse import parse_qs, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.declarative.interpolation import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.types import Config, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components.context import sync_of

logger = logging.getLogger("airbyte")

MAX_LIMIT = 2000  # the API's largest page
ATTEMPTS = 3  # re-reads of one boundary before the phone fails
EXTRA_PAGES = 10  # pages beyond what the first page's total allows (messages that arrive during the read)
MAX_WINDOWS = 50  # re-reads in one phone's read


def seconds(value: Any) -> Optional[int]:
    """A message's `unixDatetime` as an integer (a PHP backend's "1749113086" too); None otherwise."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def key(message: Any) -> Tuple[Any, ...]:
    """What tells two messages apart (the fields the connector's `id` is made of), as sent."""
    if not isinstance(message, dict):
        return (repr(message),)
    return tuple(
        str(message.get(name)) for name in ("messageId", "direction", "unixDatetime", "sender", "receiver", "message")
    )


def asked(url: str) -> Tuple[str, int, Optional[int]]:
    """The phone, the page and the limit of a conversation request, from its URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    phone = parts.path.rstrip("/").rsplit("/", 1)[-1]
    page = int((query.get("page") or ["1"])[-1])
    limit = query.get("limit")
    return phone, page, int(limit[-1]) if limit else None


def window(lo: int, hi: int) -> Optional[Tuple[int, int]]:
    """The page and limit of the smallest page that holds positions lo..hi (0-based) whole."""
    for limit in range(hi - lo + 1, MAX_LIMIT + 1):
        start = (lo // limit) * limit
        if start + limit > hi:
            return start // limit + 1, limit
    return None


class PagingError(AirbyteTracedException):
    """An answer that breaks what paging relies on: the phone fails, its cursor stays where it was."""

    def __init__(self, phone: str, page: int, what: str) -> None:
        message = f"Phone {phone}, page {page}: {what}; its cursor stays where it was, the next sync reads it again."
        super().__init__(message=message, internal_message=message, failure_type=FailureType.system_error)


@dataclass
class Reread:
    """The region around the boundary before `page`: the messages of seconds `newest`..`oldest`,
    at positions about `lo`..`hi` when planned, of which `passed` were already passed on."""

    page: int
    newest: int
    oldest: int
    lo: int
    hi: int
    passed: set
    why: str
    attempts: int = 0
    asked: Tuple[int, int] = (0, 0)  # (page, limit) of the request

    def plan(self) -> Optional[Tuple[int, int]]:
        margin = 2 ** self.attempts  # wider at each attempt: the region may still be moving
        found = window(max(0, self.lo - margin), self.hi + margin)
        if found:
            self.asked = found
        return found


@dataclass
class Read:
    """One phone's read so far."""

    size: int
    total: int  # as the first page said it
    last_total: int = 0
    page: int = 0  # the last page of `size` read
    count: int = 0  # its messages
    first: Tuple[Any, ...] = ()  # its first message
    tail: List[Tuple[Optional[int], Tuple[Any, ...]]] = field(default_factory=list)  # its last messages
    reread: Optional[Reread] = None
    windows: int = 0
    after: Optional[int] = None  # the page to ask for once the re-read is done (None: the end)
    held: list = field(default_factory=list)  # messages older than the cursor, passed if a newer one follows
    decided: bool = False  # `after` is decided


class Reads:
    """The reads in progress, one per phone."""

    def __init__(self) -> None:
        self._reads: dict[str, Read] = {}
        self._lock = threading.Lock()

    def get(self, phone: str) -> Optional[Read]:
        with self._lock:
            return self._reads.get(phone)

    def start(self, phone: str, read: Read) -> Read:
        with self._lock:
            self._reads[phone] = read
        return read

    def end(self, phone: str) -> None:
        with self._lock:
            self._reads.pop(phone, None)


READS = Reads()


# -- what each answer holds ----------------------------------------------------------------------


def messages_to_pass(url: str, body: Mapping[str, Any], size: int) -> list:
    """The messages of a conversation answer to pass on, after checking what the answer says
    against what was asked and what was read before. Raises PagingError on what paging cannot go
    on from."""
    phone, page, limit = asked(url)
    try:
        return _to_pass(phone, page, limit, body, size)
    except PagingError:
        READS.end(phone)  # what the read remembered goes with it
        raise


def _to_pass(phone: str, page: int, limit: Optional[int], body: Mapping[str, Any], size: int) -> list:
    messages = body["conversation"]
    if body["page"] != page:
        raise PagingError(phone, page, f"the answer says it is page {body['page']}, not the page asked for")
    read = READS.get(phone)
    if read is not None and read.reread is not None and (page, limit) == read.reread.asked:
        return _reread(phone, read, body, messages)
    if page == 1 or read is None:
        read = READS.start(phone, Read(size=limit or size, total=body["total"]))
    elif page != read.page + 1:
        raise PagingError(phone, page, f"asked out of turn (page {read.page} was the last read)")
    else:
        messages = _boundary(phone, read, page, body, messages)
    read.page, read.last_total, read.decided = page, body["total"], False
    read.count, read.first = len(body["conversation"]), key(body["conversation"][0]) if body["conversation"] else ()
    read.tail = _tail(body["conversation"], read.tail)
    return messages


def _at(message: Any) -> Optional[int]:
    return seconds(message.get("unixDatetime")) if isinstance(message, dict) else None


def _tail(messages: list, before: list) -> list:
    """The last messages of a page: the last one and those of the same second before it."""
    if not messages:
        return before
    last = _at(messages[-1])
    tail = []
    for message in reversed(messages):
        if tail and (last is None or _at(message) != last):
            break
        tail.append((last, key(message)))
        if len(tail) >= MAX_LIMIT:
            break
    tail.reverse()
    return tail


def _boundary(phone: str, read: Read, page: int, body: Mapping[str, Any], messages: list) -> list:
    """Page `page` (after `read.page`): the messages to pass, and the re-read of the boundary
    between them planned when the pages show that something moved."""
    repeated = messages and len(messages) == read.count and key(messages[0]) == read.first and key(messages[-1]) == read.tail[-1][1]
    if repeated and body["total"] - read.last_total < len(messages):  # not as many new ones above: no shift
        raise PagingError(phone, page, f"the answer repeats page {read.page} ({len(messages)} messages)")
    last_at = read.tail[-1][0] if read.tail else None
    if last_at is None:
        return messages  # a page that ends in a message without a usable time: nothing to compare
    seen = {k for _, k in read.tail}
    # Messages newer than the last page's last: messages were inserted above since it was read,
    # and these were read already (or are out of order): passed again, which loses nothing.
    newer = 0
    while newer < len(messages) and (_at(messages[newer]) or 0) > last_at:
        newer += 1
    # the last page's last messages again, after those: passed once
    rest = messages[:newer] + [m for m in messages[newer : newer + len(seen)] if key(m) not in seen] + messages[newer + len(seen) :]
    why = _moved(read, body, messages, newer, last_at, seen)
    if why is not None:
        _plan_reread(phone, read, page, body, messages, newer, last_at, seen, why)
    return rest


def _moved(read: Read, body: Mapping[str, Any], messages: list, newer: int, last_at: int, seen: set) -> Optional[str]:
    """Why the boundary before `messages` must be read again, or None when the pages prove it whole."""
    first_at = _at(messages[newer]) if newer < len(messages) else None
    head = newer
    while head < len(messages) and _at(messages[head]) == last_at:
        head += 1
    if newer == 0 and first_at == last_at:
        # One second's messages on both sides of the boundary, in an order that may differ from
        # one answer to the next: some could be on neither page. Unless they are the last page's
        # last messages again, and as many new ones arrived: messages inserted above.
        inserted = body["total"] > read.last_total and all(key(m) in seen for m in messages[newer:head])
        return None if inserted else "messages of one second are on both sides of the boundary"
    shrunk = read.last_total - body["total"]
    if shrunk > 0 and not any(key(m) in seen for m in messages[: newer + len(seen)]):
        # messages deleted above move unread ones up, onto the page already read
        return f"the conversation shrank from {read.last_total} to {body['total']} messages while it was read"
    return None


def _plan_reread(
    phone: str, read: Read, page: int, body: Mapping[str, Any], messages: list, newer: int, last_at: int, seen: set, why: str
) -> None:
    """The re-read of the region between the last page's last second and this page's first one:
    positions from the last page's tail (and as far up as the shrink may have moved it) to this
    page's first second."""
    first_at = _at(messages[newer]) if newer < len(messages) else None
    if newer < len(messages) and (first_at is None or first_at > last_at):
        raise PagingError(phone, page, f"{why}, and the messages at the boundary are not in newest-first order")
    oldest = first_at if first_at is not None else -(10**18)  # an empty page: to the end
    head = newer
    while head < len(messages) and _at(messages[head]) == oldest:
        head += 1
    start = (page - 1) * read.size
    shrunk = max(read.last_total - body["total"], 0)
    read.reread = Reread(
        page=page, newest=last_at, oldest=oldest, lo=start - len(read.tail) - shrunk, hi=start + head - 1,
        passed=seen | {key(m) for m in messages[newer:head]}, why=why,
    )
    if read.reread.plan() is None:
        raise PagingError(phone, page, f"{why}, and the messages around it do not fit one page")


def _reread(phone: str, read: Read, body: Mapping[str, Any], messages: list) -> list:
    """The answer to a re-read of a boundary: the messages of its region not passed yet, once the
    answer holds the region whole (a message of another second on either side of it, or the start
    or the end of the conversation)."""
    reread = read.reread
    page, limit = reread.asked
    read.windows += 1
    region: list = []
    before = page == 1  # the start of the conversation: nothing before it
    after = None
    for message in messages:
        at = _at(message)
        if at is None:
            after = False  # no time to place it by
            break
        if not region and at > reread.newest:
            before = True
        elif reread.oldest <= at <= reread.newest:
            region.append(message)
        else:
            after = at < reread.oldest  # False: newer after the region, not newest first
            break
    if after is None:  # no message after the region: whole only at the end of the conversation
        after = len(messages) < limit or page * limit >= body["total"]
    if before and after:
        read.reread = None
        new = [m for m in region if key(m) not in reread.passed]
        if new:
            logger.warning(
                f"Phone {phone}, page {reread.page}: {reread.why}; messages found by reading the boundary again: "
                f"{len(new)} (page {page} of {limit} messages)."
            )
        return new
    reread.attempts += 1
    if reread.attempts >= ATTEMPTS or read.windows >= MAX_WINDOWS or reread.plan() is None:
        raise PagingError(
            phone, reread.page, f"{reread.why}, and {reread.attempts} re-reads of the boundary did not hold its messages whole"
        )
    return []


# -- which page next ---------------------------------------------------------------------------


def stops_early(messages: list, lower: Optional[int], upper: Optional[int]) -> bool:
    """Whether a page proves that the pages after it hold only messages older than `lower` (the
    cursor minus the lookback): its messages with a usable time (a positive integer no later than
    `upper`, the sync's clock) in newest-first order, the last of them older than `lower` and the
    one before it no newer than `lower` (the inclusive cursor's own message, at `lower` without a
    lookback, is one). One message past that point after newer ones could be one out of order: the
    read goes on. Messages whose time cannot place them prove nothing, and are passed wherever they are."""
    if lower is None or len(messages) < 2:
        return False
    top = upper if upper is not None else math.inf

    def usable(at: Optional[int]) -> bool:
        return at is not None and 0 < at <= top

    last = []  # the last two usable times, from the end: the usual page is decided by these alone
    for message in reversed(messages):
        at = _at(message)
        if usable(at):
            last.append(at)
            if len(last) == 2:
                break
    if len(last) < 2 or last[0] >= lower or last[1] > lower:
        return False
    newer = math.inf
    for message in messages:
        at = _at(message)
        if usable(at):
            if at > newer:
                return False  # not newest first
            newer = at
    return True


def bounds(stream_slice: Optional[StreamSlice]) -> Tuple[Optional[int], Optional[int]]:
    """The slice's start (the cursor minus the lookback, or the start date) and end (the sync's
    clock), in seconds; None where the slice has none (full refresh)."""
    cursor = getattr(stream_slice, "cursor_slice", None) or {}
    return seconds(cursor.get("start_time")), seconds(cursor.get("end_time"))


@dataclass
class ConversationPages(PaginationStrategy):
    """The next request of a phone's conversation: the next page, a re-read of a boundary
    (`messages_to_pass`), or none. Tokens are {"page", "limit"}, which the requester sends."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    page_size: Union[int, str] = 2000

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        size = self.page_size
        if isinstance(size, str):
            size = InterpolatedString.create(size, parameters=parameters).eval(self.config)
        self._page_size = int(size)
        self._parameters = dict(parameters or {})
        self._sync = sync_of(self.config)

    @property
    def initial_token(self) -> Optional[Any]:
        return None  # the first request carries no `page`: the API starts at 1

    def get_page_size(self) -> Optional[int]:
        return self._page_size

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Optional[Any],
        last_page_token_value: Optional[Any] = None,
        page_size_override: Optional[int] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> Optional[Any]:
        from source_smstools.components.pages import body_of  # pages imports this module

        phone, page, _ = asked(response.request.url)
        read = READS.get(phone)
        if read is None:
            return None
        if not read.decided:
            read.after = self._after(phone, read, body_of(response, self._sync, self._parameters), stream_slice)
            read.decided = True
        if read.reread is not None:
            page, limit = read.reread.asked
            return {"page": page, "limit": limit}
        if read.after is None:
            READS.end(phone)
            return None
        return {"page": read.after, "limit": read.size}

    def _after(self, phone: str, read: Read, body: Mapping[str, Any], stream_slice: Optional[StreamSlice]) -> Optional[int]:
        """The page after `read.page` (the page just read), or None when the read ends there."""
        messages = body["conversation"]
        if not messages:
            if body["total"] > (read.page - 1) * read.size:
                logger.warning(
                    f"Phone {phone}, page {read.page}: an empty page, where the conversation's total "
                    f"({body['total']}) promised more; the phone's read ends here."
                )
            return None
        if read.page * read.size >= body["total"]:
            return None
        if stops_early(messages, *bounds(stream_slice)):
            return None
        limit = math.ceil(read.total / read.size) + EXTRA_PAGES
        if read.page + 1 > limit:
            READS.end(phone)  # raised from the paginator: what the read remembered goes here
            raise PagingError(
                phone, read.page + 1,
                f"more pages than the first page's total ({read.total}) allows at {read.size} a page, "
                f"plus {EXTRA_PAGES} (the total now says {body['total']})",
            )
        return read.page + 1


# -- what a message's time means ---------------------------------------------------------------


@dataclass
class MessageTimes(RecordFilter):
    """The messages of a page to sync: those at or after the slice's start (the cursor minus the
    lookback, or the start date), and every message whose time cannot place it, which is never
    dropped: a `unixDatetime` that is missing, not an integer, 0 or negative passes as sent (its
    `datetime_utc` empty), and one later than the sync's clock passes with `unixDatetime` empty,
    so that the phone's cursor does not move past messages not read yet (the API's `datetime` text
    still says what it said). Said once per page, with the phone and the page."""

    def filter_records(
        self,
        records: Iterable[Mapping[str, Any]],
        stream_state: Any,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        lower, upper = bounds(stream_slice)
        lower = -math.inf if lower is None else lower
        upper = time.time() if upper is None else upper  # a full refresh's slice has no end: the clock
        phone = str((getattr(stream_slice, "partition", None) or {}).get("phone", ""))
        held: Optional[list] = None
        odd = later = 0
        for record in records:
            if held is None:
                # Messages older than `lower` end a newest-first read: held back, and dropped when
                # the read ends; one followed by a newer message was out of order, and is passed with
                # it. Looked up at the first record: the page's read starts when it is extracted.
                read = READS.get(phone.replace("+", ""))
                held = read.held if read is not None else []
            at = record.get("unixDatetime")
            if type(at) is int and at > 0:
                if at < lower:
                    held.append(record)
                    if len(held) > MAX_LIMIT:  # bounded: passed, which loses nothing
                        yield from held
                        held.clear()
                    continue
                if at > upper:
                    later += 1
                    record["unixDatetime"] = None  # type: ignore[index]
                    record["datetime_utc"] = None  # type: ignore[index]
                elif held:
                    yield from held
                    held.clear()
            else:
                odd += 1  # its time says nothing of the order: held messages stay held
            yield record
        if odd or later:
            read = READS.get(phone.replace("+", ""))
            page = read.page if read is not None else "?"
            what = []
            if odd:
                what.append(f"{odd} with a unixDatetime that is missing, not an integer, 0 or negative (passed as sent)")
            if later:
                what.append(f"{later} with a unixDatetime later than the sync's clock (passed with unixDatetime empty)")
            logger.warning(
                f"Phone {phone.lstrip('+')}, page {page}: messages whose time cannot place them: "
                + "; ".join(what) + ". They are synced, and the phone's cursor does not move past them."
            )
