"""The conversation stream's part of a sync, and the components that read its pages.

`Conversation` is what the stream's components share for one build of the stream, handed to them
through the source's Sync (components/context.py). The state migration (state.PerPhoneState) is
the first component the CDK builds for the stream (ModelToComponentFactory.create_default_stream
builds the state migrations and runs them, then the partition router, the transformations and the
retriever): it makes a new `Conversation` and puts it on the Sync (`begin`), and each component
built after it takes that one (`conversation_of`). A second build of the stream (the Connector
Builder builds the streams twice) makes a second one; its components never see the first's.
unit_tests/test_state_seam.py fails if a CDK upgrade changes that order.

The pages: `ConversationExtractor` gives each answer as one record, `ConversationPage` (the record
filter: it knows the partition) feeds it to the partition's paging.Read and passes the messages it
gives, and `ConversationPages` (the paginator) asks for the request the read names next. Each read is
kept per phone, as the partition names it: one number listed in two forms is two reads.

A partition may hold several phones (`PHONES`, from the router past its first phones: the CDK keeps
one cursor a partition and, past 25,000, copies their keys for each new one): they are read one
after another, the paginator moving to the next once a read is over. The phone under way is the
token's (`phone`, for the URL) and `Conversation.current`'s (for the filter and the transformation,
which the CDK hands the partition alone): one thread reads a partition, a page at a time.
"""

import logging
import threading
import time
from dataclasses import InitVar, dataclass
from typing import Any, Callable, Iterable, Mapping, MutableMapping, Optional, Tuple, Union
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.extractors.record_filter import RecordFilter
from airbyte_cdk.sources.declarative.interpolation import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.types import Config, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components import coverage
from source_smstools.components.context import sync_of
from source_smstools.components.pages import body_of, describe
from source_smstools.components.paging import Reply, PagingError, Read, seconds

logger = logging.getLogger("airbyte")

PAGE = "__page"  # the one record ConversationExtractor gives per answer: a paging.Reply
PHONES = "phones"  # a partition's extra field: its phones, read in this order (PhonePartitionRouter)


class Reads:
    """The reads in progress, one per partition (the phone as the partition names it)."""

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


def key_of(phone: str) -> str:
    """A phone as its conversation's URL names it (the manifest's `url` drops the `+`)."""
    return phone.replace("+", "")


def url_key(url: str) -> str:
    """The phone of a conversation request, as `key_of` gives it: the last part of its path."""
    return key_of(unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]))


class Outcomes:
    """How each phone's read ended this sync, keyed by `key_of`.

    In an incremental sync (`deferred`, set by the partition router) a phone whose read fails ends
    its partition as if it were over, its failure kept here: the CDK then saves the state once the
    other phones are read (a partition that raises keeps the whole stream's state where it started,
    so a phone failing every sync would stop every other phone's progress), and the router says
    the failures and fails the stream once every phone it handed out has ended. The phones in
    `loud` (the last handed out: the CDK asks for the slice after it before reading it, so the
    router cannot wait on it) raise where they fail, as in a full refresh."""

    GUARD = 900  # seconds without an answer or an end, all phones together: a read that ended unseen

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._cond = threading.Condition()
        self._clock = clock
        self._active = clock()
        self._ended: set[str] = set()
        self._ends = 0  # reads ended, each counted (two forms of one number are two reads of one key)
        self.failed: dict[str, AirbyteTracedException] = {}
        self.loud: set[str] = set()
        self.deferred = False
        # (phone key, page) of the request this thread is sending (a worker reads one phone at a
        # time): an error without its request (a body cut short) is still the phone's
        self._asking = threading.local()

    def asking(self, key: str, page: Any) -> None:
        self._asking.request = (key, page)

    def asked(self) -> Optional[Tuple[str, Any]]:
        return getattr(self._asking, "request", None)

    def defers(self, key: str) -> bool:
        return self.deferred and key not in self.loud

    def touch(self) -> None:
        """An answer came (a read that still answers is alive)."""
        self._active = self._clock()

    def end(self, key: str, failure: Optional[AirbyteTracedException] = None) -> None:
        with self._cond:
            self._ended.add(key)
            self._ends += 1
            if failure is not None:
                self.failed.setdefault(key, failure)
            self._active = self._clock()
            self._cond.notify_all()

    def ahead(self, handed: int, most: int, patience: float = 1.0) -> None:
        """Until at most `most` of the `handed` reads handed out are not over. Soft: an end not seen
        for `patience` seconds (a read waiting out a rate limit, one that ends unseen) lets the
        caller go on, one read at a time, so it never stalls the sync."""
        with self._cond:
            while handed - self._ends > most:
                if not self._cond.wait(timeout=patience):
                    return

    def wait(self, keys: Iterable[str], stop: Callable[[], bool], poll: float = 5.0) -> bool:
        """Until every phone of `keys` ended: True; False when `stop()` (the sync was refused) or
        nothing answered or ended for GUARD seconds."""
        wanted = set(keys)
        with self._cond:
            while not wanted <= self._ended:
                if stop() or self._clock() - self._active > self.GUARD:
                    return False
                self._cond.wait(timeout=poll)
        return True


class Conversation:
    def __init__(self) -> None:
        # the stream's saved state as the migration checked it (None: no saved state)
        self.saved: Optional[Mapping[str, Any]] = None
        # what the records show change detection (fed by records.MessageFields, read by the router)
        self.observations = coverage.Observations()
        self.reads = Reads()
        # phone (as the partition names it) -> the oldest time its read passes this sync (set by the
        # partition router before it hands the phone out)
        self.reach: dict[str, int] = {}
        # phone -> the newest time of the messages its read passed (None: none), once the read is over
        self.done: dict[str, Optional[int]] = {}
        self.outcomes = Outcomes()
        # partition's phone -> the phone its read is at, in a partition of several phones (PHONES)
        self.current: dict[str, str] = {}

    def phone_in(self, stream_slice: Optional[StreamSlice]) -> str:
        """The phone a partition is reading now (its own, unless it holds several)."""
        phone = phone_of(stream_slice)
        return self.current.get(phone, phone)


def begin(config: Any) -> Conversation:
    """A new part for the build of the stream that starts now (called by the state migration)."""
    part = sync_of(config).conversation = Conversation()
    return part


def conversation_of(config: Any) -> Conversation:
    """The part of the build of the stream under way (a component built without a migration before
    it, in a unit test, gets a part of its own)."""
    sync = sync_of(config)
    if sync.conversation is None:
        sync.conversation = Conversation()
    return sync.conversation


def asked(url: str) -> Tuple[int, Optional[int]]:
    """The page and the limit of a conversation request, from its URL (the first carries no page)."""
    query = parse_qs(urlsplit(url).query)
    limit = query.get("limit")
    return int((query.get("page") or ["1"])[-1]), int(limit[-1]) if limit else None


def phone_of(stream_slice: Optional[StreamSlice]) -> str:
    partition = getattr(stream_slice, "partition", None) or {}
    return str(partition.get("phone", ""))


def phones_of(stream_slice: Optional[StreamSlice]) -> list[str]:
    """A partition's phones, in the order they are read (the router's list, not a copy: asked every page)."""
    extra = getattr(stream_slice, "extra_fields", None) or {}
    return extra.get(PHONES) or [phone_of(stream_slice)]


def token_of(next_page_token: Any) -> Mapping[str, Any]:
    """The paginator's token of a request ({} for the first), out of the CDK's wrapping."""
    token = next_page_token or {}
    token = token.get("next_page_token", token) if isinstance(token, Mapping) else {}
    return token if isinstance(token, Mapping) else {}


def bounds(stream_slice: Optional[StreamSlice]) -> Tuple[Optional[int], Optional[int]]:
    """The slice's start (the cursor minus the lookback, or the start date) and end (the sync's
    clock), in seconds; None where the slice has none (full refresh)."""
    cursor = getattr(stream_slice, "cursor_slice", None) or {}
    return seconds(cursor.get("start_time")), seconds(cursor.get("end_time"))


@dataclass
class ConversationExtractor(RecordExtractor):
    """Each conversation answer as one record (PAGE: a paging.Reply, from the body parsed once and
    the request's page and limit, read once from its URL), for ConversationPage to read."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._parameters = dict(parameters or {})
        self._sync = sync_of(self.config)
        self._size = int(self.config.get("page_size") or 2000)
        self._outcomes = conversation_of(self.config).outcomes

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        if url_key(response.request.url) in self._outcomes.failed:
            return []  # an answer the error handler let through to end a read that failed
        body = body_of(response, self._sync, self._parameters)
        messages = body.get("conversation") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            # the error handler stops such a body; one that still gets here must not pass for
            # an empty page, which would end the paging and lose the rest of the conversation
            raise AirbyteTracedException(
                message="Smstools sent a conversation page without its list of messages.",
                internal_message=f"unexpected answer from {(response.url or '').split('?', 1)[0]}: {describe(body)}",
                failure_type=FailureType.system_error,
            )
        page, limit = asked(response.request.url)
        return [{PAGE: Reply((page, limit or self._size), body.get("page"), body.get("total"), messages)}]


@dataclass
class ConversationPage(RecordFilter):
    """The messages of an answer to pass, as the partition's read (paging.Read) gives them; the read
    starts with the partition's first answer, from the slice's start (the cursor minus the lookback,
    or the start date) and the sync's clock, and what it did beyond its pages is said when it ends."""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._part = conversation_of(self.config)
        self._reads = self._part.reads
        self._size = int(self.config.get("page_size") or 2000)

    def filter_records(
        self,
        records: Iterable[Mapping[str, Any]],
        stream_state: Any,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Iterable[Mapping[str, Any]]:
        phone = self._part.phone_in(stream_slice)
        for record in records:
            answer = record.get(PAGE)
            read = self._reads.get(phone)
            if read is None:
                read = self._reads.start(phone, self._start(phone, stream_slice))
            outcomes = self._part.outcomes
            try:
                passed = read.take(answer)
            except PagingError as failure:
                self._reads.end(phone)  # what the read remembered goes with it
                outcomes.end(key_of(phone), failure)
                if outcomes.defers(key_of(phone)):
                    return  # the partition ends; the router says it once the other phones are read
                raise
            yield from passed
            if read.next is None:
                self._reads.end(phone)
                self._part.done[phone] = read.newest
                outcomes.end(key_of(phone))
                for note in read.notes():
                    logger.warning(f"Phone {read.phone}: {note}.")


    def _start(self, phone: str, stream_slice: Optional[StreamSlice]) -> Read:
        """A phone's read: from where the router said it starts (Conversation.reach: its cursor minus
        the lookback, or further back), else the slice's start, to the sync's clock."""
        lower, upper = bounds(stream_slice)
        lower = self._part.reach.get(phone, lower)  # the router's, where it said (the slice's is the CDK's one cursor)
        return Read(phone.lstrip("+"), self._size, lower, upper or int(time.time()))


@dataclass
class ConversationPages(PaginationStrategy):
    """The next request of a phone's conversation, as its read names it: {"page", "limit"}, which the
    requester sends (and `phone`, in a partition of several); once the read is over, the first
    request of the partition's next phone ({"phone"}), or none after its last."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    page_size: Union[int, str] = 2000

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        size = self.page_size
        if isinstance(size, str):
            size = InterpolatedString.create(size, parameters=parameters).eval(self.config)
        self._page_size = int(size)
        self._part = conversation_of(self.config)
        self._reads = self._part.reads
        self._outcomes = self._part.outcomes

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
        part = self._part
        phones = phones_of(stream_slice)
        phone = part.phone_in(stream_slice)
        read = self._reads.get(phone)
        if read is not None and read.next is not None and key_of(phone) not in self._outcomes.failed:
            page, limit = read.next
            return {"page": page, "limit": limit, **({"phone": phone} if len(phones) > 1 else {})}
        if read is not None:
            self._reads.end(phone)  # failed on an answer the error handler let through
        after = _after(phones, phone)
        if after is None:
            part.current.pop(phones[0], None)
            return None
        part.current[phones[0]] = after
        return {"phone": after}  # its first request: no page, the API starts at 1


def _after(phones: list[str], phone: str) -> Optional[str]:
    """The phone read after `phone` in its partition, None after the last."""
    try:
        at = phones.index(phone)
    except ValueError:
        return None
    return phones[at + 1] if at + 1 < len(phones) else None
