"""The phones whose conversations are read: the configured ones, or those found in the account."""

import logging
import re
import sys
import zlib
from dataclasses import InitVar, dataclass
from typing import Any, Iterable, Mapping, Optional

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.partition_routers.partition_router import PartitionRouter
from airbyte_cdk.sources.declarative.partition_routers.substream_partition_router import (
    SubstreamPartitionRouter,
)
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components.errors import SourceUnreadable, missed_phones

from source_smstools.components import changes, numbers
from source_smstools.components.book import DAY, shard_of, start_of
from source_smstools.components.context import sync_of
from source_smstools.components.conversation import PHONES, conversation_of, key_of, token_of
from source_smstools.components.state import CHANGES, Saved
from source_smstools.components.sources import WATCHED, page_reader

logger = logging.getLogger("airbyte")


PHONE_SOURCES = ("contacts", "inbox", "message_log")
_INTERNATIONAL_ZERO = re.compile(r"\(0\)")  # "+44 (0)20 ...": the trunk zero is not dialled from abroad
_SEPARATORS = re.compile(r"[\s\-./()\u00a0]")
_DIGITS = re.compile(r"[0-9]{6,15}")
# phones the router hands out ahead of the reads that have ended. Unchecked, it runs as far ahead as
# the CDK lets it, 10,000 partitions (ThreadPoolManager.DEFAULT_MAX_QUEUE_SIZE), and past that the
# CDK looks at each of the 10,000 futures whenever it checks the limit (ThreadPoolManager._prune_futures):
# 0.24 ms of CPU per phone at 40,000 phones, none below 10,000. 1,000 keeps 20 workers fed.
AHEAD = 1000
FED = 50  # partitions handed out ahead, at least, whatever their size: 20 workers fed with groups of 200 phones
# phones handed out one a partition; past them, a partition holds one more phone for each further
# ALONE (`grouped`): 10,400 partitions for 20,000 phones, 18,000 for 100,000, 29,400 for a million.
# The CDK keeps a cursor a partition and, once it keeps 25,000, copies all their keys for each new
# partition (ConcurrentPerPartitionCursor._ensure_partition_limit, airbyte-cdk 7.39.1): 1.5 ms of
# CPU a phone at 40,000 phones, 4 ms at 100,000, when each phone was a partition.
ALONE = 5000


def grouped(phones: Iterable[str], alone: int) -> Iterable[list[str]]:
    """The phones as partitions, in their order: one phone each for the first `alone`, then one
    more a partition for each further `alone` (2 for the next, 3 after...), the last phone always
    alone (it is read once the router has ended: conversation.Outcomes.loud)."""
    group: list[str] = []
    handed = 0
    held: Optional[str] = None
    for phone in phones:
        if held is not None:
            group.append(held)
            if len(group) > handed // max(alone, 1):
                yield group
                handed += len(group)
                group = []
        held = phone
    if group:
        yield group
    if held is not None:
        yield [held]


def normalize_phone(value: Any) -> Optional[str]:
    """A phone number in the one form the connector keys conversations by: its digits, country
    code included, without '+' or '00' in front (`+39 333-123 4567` and `0039 3331234567` both
    become `393331234567`). None for a value that is not a phone number (empty, a name, a short
    code): 6 to 15 digits, as the API's numbers are. A national number (no country code) keeps
    its digits as written: its country cannot be known."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text.startswith("+") or text.startswith("00"):
        text = _INTERNATIONAL_ZERO.sub("", text)
    text = _SEPARATORS.sub("", text)
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    return text if _DIGITS.fullmatch(text) else None


@dataclass
class PhonePartitionRouter(PartitionRouter):
    """The conversation stream's partitions: the configured `phone_numbers` as given, or, when there
    are none, every phone found in the sources `phone_sources` names (contacts, inbox, message log),
    normalised by `normalize_phone` and each read once; with a `shard` set, only the phones of that
    shard (book.shard_of). One phone a partition for the first `alone` (ALONE), then several
    (`grouped`), read one after another (conversation.ConversationPages).

    `discovery` is a SubstreamPartitionRouter over the contacts, inbox and message log streams
    (the CDK pages and retries them); this class only picks its sources, normalises and
    deduplicates. With change detection on (the default), an incremental sync hands out only the
    phones that are new, that the inbox and message log show moved, or that are due for the sweep
    (components/changes.py); off, every phone. Each phone's read starts where the book says
    (components/book.py: its cursor minus the lookback; a phone not in it, from the start date), or
    further back for a delivery status not final; the router says so before it hands the phone out
    (conversation.Conversation.reach), and its state (`parent_state.changes`) is the book with what
    this sync read, and change detection's positions.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    discovery: Optional[SubstreamPartitionRouter] = None
    page_requesters: Optional[list] = None  # the inbox's and the log's HttpRequester (sources.page_reader)
    # phones handed out one a partition before they go several a partition (`grouped`); ALONE unless
    # the manifest says (a test of another runtime lowers it)
    alone: Optional[int] = None
    _changes = None  # this sync's change detection, when on
    _done = False  # every phone handed out: the next sync's state is this sync's
    _handing = False  # a phone handed out (the CDK asks for the state between two slices when incremental)

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        # the stream's part of the sync (components/conversation.py): the saved state as the state
        # migration read it, the reads' starts and ends, and what the records show
        self._part = conversation_of(self.config)
        self._saved = None
        self._previous_state: Optional[Mapping[str, Any]] = None
        self._lookback = int(self.config.get("lookback_window_days") or 0) * DAY
        self._start = start_of(self.config)
        self._shard = shard_setting(self.config)
        self._alone = int(self.alone) if self.alone else ALONE

    def _listed(self) -> list[str]:
        return list(self.config.get("phone_numbers") or [])

    def _mine(self, phone: str) -> bool:
        """Whether a phone is this connection's (every phone, unless a shard is set)."""
        if self._shard is None:
            return True
        index, count = self._shard
        form = normalize_phone(phone)
        return form is not None and shard_of(form, count) == index

    def stream_slices(self) -> Iterable[StreamSlice]:
        saved = self._part.saved or Saved()
        self._saved = saved
        self._at = changes.now()
        listed = [p for p in self._listed() if self._mine(p)]
        detection = None
        if changes.enabled(self.config) and self.discovery is not None:
            book = saved.book
            cursors = {p: (c if c is not None else self._start) for p, (c, _) in book.entries.items()}
            detection = changes.ChangeDetection(
                self.config, saved.changes, cursors, {p: r for p, (_, r) in book.entries.items()}, self._part.observations
            )
            self._changes = detection
            phones: Iterable[str] = self._changed(detection, listed)
        elif self._listed():
            phones = dict.fromkeys(listed)
        else:
            phones = (p for p in self._discovered() if self._mine(p))
        pending = changes.live_pending(saved.changes.get("pending"), self._at) if detection is not None else {}
        handed: list[str] = []
        outcomes = self._part.outcomes
        for group in grouped(self._last_safe(phones), self._alone):
            outcomes.ahead(len(handed), max(AHEAD, FED * len(group)))
            for phone in group:
                late = detection.late.get(normalize_phone(phone) or phone) if detection is not None else None
                self._part.reach[phone] = self._read_from(phone, pending, late)
            handed.extend(group)
            self._handing = True
            yield StreamSlice(partition={"phone": group[0]}, cursor_slice={}, extra_fields={PHONES: group} if len(group) > 1 else None)
        if outcomes.deferred and len(handed) == 1:
            outcomes.loud.add(key_of(handed[0]))  # read once the router has ended: it fails as it happens
        elif outcomes.deferred and len(handed) > 1:
            # The CDK asks for the slice after the last before it hands the last out: the phones
            # before it are waited for here, and the last fails as it happens (Outcomes.loud),
            # unless one before it failed: then this waits for it behind a slice never handed out.
            keys = [key_of(p) for p in handed]
            refused = self._part_refused
            if outcomes.wait(keys[:-1], refused) and not outcomes.failed:
                outcomes.loud.add(keys[-1])
            else:
                yield StreamSlice(partition={"phone": handed[-1]}, cursor_slice={})
                outcomes.wait(keys, refused)
                self._done = True
                raise self._failure(keys)
        # asked for by the CDK once every phone above is read (ConcurrentPerPartitionCursor)
        self._done = True

    def _part_refused(self) -> bool:
        return sync_of(self.config).session.refusal is not None

    def _last_safe(self, phones: Iterable[str]) -> Iterable[str]:
        """The phones in their order, but for one held back to go last: the one read well most
        recently (a phone that fails every sync has its last read fall behind), among equals one
        drawn anew each sync. The CDK reads the last phone after the router has ended, so its
        failure cannot wait for the others' (Outcomes.loud): a phone failing every sync must not
        be the last every sync."""
        book = self._saved.book

        def rank(phone: str) -> tuple[int, int]:
            return (book.last_read(phone) or -1, zlib.crc32(f"{phone}:{self._at}".encode()))

        held: Optional[str] = None
        for phone in phones:
            if held is None:
                held = phone
                continue
            if rank(phone) > rank(held):
                held, phone = phone, held
            yield phone
        if held is not None:
            yield held

    def _failure(self, keys: list[str]) -> AirbyteTracedException:
        """The stream's failure, once every phone handed out has ended: the first failure, and how
        many phones failed and were read."""
        failed = self._part.outcomes.failed
        if not failed:  # the wait gave up: a read ended without saying so (the sync refused, or no answer for long)
            return AirbyteTracedException(
                message="The conversation stream stopped before every phone's read was seen to end; the phones "
                "not seen keep their cursors and are read again by the next sync.",
                failure_type=FailureType.system_error,
            )
        for error in list(failed.values())[1:20]:
            logger.error(error.message)
        first = next(iter(failed.values()))
        others = len(set(keys) - set(failed))
        return AirbyteTracedException(
            message=f"{first.message.rstrip('.')}" + (f" ({len(failed) - 1} other phone(s) failed too, said above)" if len(failed) > 1 else "")
            + f". The {others:,} other phone(s) were read and keep what they read.",
            internal_message=first.internal_message or first.message,
            failure_type=first.failure_type or FailureType.system_error,
        )

    def _read_from(self, phone: str, pending: Mapping[str, tuple[int, int]], late: Optional[int] = None) -> int:
        """Where a phone's read starts: its cursor minus the lookback (the cursor is inclusive, as the
        CDK's), back to a delivery status not final or to a message listed late (`late`, its date);
        a phone not in the book, the start date."""
        book = self._saved.book
        if phone not in book:
            return self._saved.default if self._saved.default is not None else self._start
        cursor = book.cursor(phone)
        start = self._start if cursor is None else max(cursor - self._lookback, self._start)
        held = pending.get(phone)
        back = min([t for t in (held[0] if held else None, late) if t is not None], default=start)
        return max(min(start, back), self._start)

    def _discovered(self) -> Iterable[str]:
        """Every phone the chosen sources list, in one form, each once."""
        chosen = self.config.get("phone_sources") or list(PHONE_SOURCES)
        seen: set[str] = set()
        rejected = 0
        unreadable: list[str] = []
        sources = [parent for parent in self.discovery.parent_stream_configs if parent.stream.name in chosen] if self.discovery else []
        for parent in sources:
            name = parent.stream.name
            one = SubstreamPartitionRouter(parent_stream_configs=[parent], config=self.config, parameters={})
            added = 0
            try:
                for found in one.stream_slices():
                    phone = normalize_phone(found.partition.get("phone"))
                    if phone is None:
                        rejected += 1
                    elif phone not in seen:
                        seen.add(phone)
                        added += 1
                        yield phone
            except SourceUnreadable as error:
                # the phones found so far are kept; those only this source lists are missed
                unreadable.append(name)
                logger.warning(missed_phones(name, error.message))
                continue
            logger.info(f"Phone discovery: {added} new phone numbers from {name}.")
        if "inbox" in chosen:
            for phone in self._numbers_phones(seen):
                seen.add(phone)
                yield phone
        if sources and len(unreadable) == len(sources):
            raise _no_source(unreadable)
        logger.info(
            f"Phone discovery: {len(seen)} phone numbers from {', '.join(chosen)}"
            + (f"; left out {rejected} value(s) that are not phone numbers." if rejected else ".")
        )

    def _numbers_phones(self, seen: set[str]) -> Iterable[str]:
        """The phones of the inboxes of the account's numbers, where it has two or more (the inbox
        may list one alone: numbers.py), that are not in `seen`; read whole, as every source here."""
        page_size = int(self.config.get("page_size") or 2000)
        readers = numbers.number_readers(self.page_requesters or [], self.config, page_size)
        listed = numbers.account_numbers(readers, normalize_phone) if readers is not None else None
        if not listed or len(listed) < 2:
            return
        reads, blind = numbers.read_inboxes(readers, listed, lambda name: None, normalize_phone, page_size)
        for number_id, read in reads.items():
            added = [p for p in dict.fromkeys(p for p, _, _ in read.entries if p is not None) if p not in seen]
            logger.info(f"Phone discovery: {len(added)} new phone numbers from the inbox of virtual number ID {number_id}.")
            yield from added
        if blind:
            logger.warning(numbers.blind_warning(blind))

    def _changed(self, detection: "changes.ChangeDetection", listed: list[str]) -> Iterable[str]:
        parents = {parent.stream.name: parent for parent in self.discovery.parent_stream_configs}
        chosen = [] if self._listed() else [name for name in self.config.get("phone_sources") or PHONE_SOURCES if name in parents]
        found: list[str] = []
        contacts_unreadable = False
        requesters = self.page_requesters or []
        if "contacts" in chosen:
            # a phone not known yet is a new one; read whole when due (changes.ChangeDetection.contacts)
            one = SubstreamPartitionRouter(parent_stream_configs=[parents["contacts"]], config=self.config, parameters={})
            first = next((r for r in requesters if r.name == "contacts"), None)
            fetch = page_reader(first, self.config, detection.page_size, records_key="contacts") if first is not None else None
            # one string a phone, the same as the inbox's and the log's entries hold (sources.Entries)
            mine = lambda values: [sys.intern(p) for p in map(normalize_phone, values) if p and self._mine(p)]  # noqa: E731
            try:
                found = detection.contacts(
                    (lambda: fetch(1)) if fetch is not None else None,
                    lambda: mine(s.partition.get("phone") for s in one.stream_slices()),
                    lambda page: mine(e.get("phone") for e in page),
                )
            except SourceUnreadable as error:
                contacts_unreadable = True
                logger.warning(missed_phones("contacts", error.message))
        lists = {name: parents[name].stream for name in WATCHED if name in parents}
        handed_out = 0
        fetchers = {r.name: page_reader(r, self.config, detection.page_size) for r in requesters if r.name in WATCHED}
        readers = numbers.number_readers(requesters, self.config, detection.page_size)
        for phone in detection.phones(
            lists, found, listed if self._listed() else None, normalize_phone, chosen, fetchers, self._mine, readers
        ):
            handed_out += 1
            yield phone
        unreadable = set(detection.unreadable) | ({"contacts"} if contacts_unreadable else set())
        if chosen and set(chosen) <= unreadable and not handed_out:
            # nothing found and nothing known: the sync cannot read a single conversation
            raise _no_source(chosen)

    def get_stream_state(self) -> Optional[Mapping[str, StreamState]]:
        if self._handing and not self._done and "__test_read_config" not in self.config:
            # asked between two slices: the CDK's per-partition cursor (an incremental sync), which
            # saves the state once every partition has closed: a phone that fails then ends its
            # partition and the router says it at the end (conversation.Outcomes). Not in the
            # Builder's test read: its limits end reads unseen
            self._part.outcomes.deferred = True
        # While phones are handed out, the last sync's state (the CDK keeps a copy for the states it
        # emits meanwhile: one that a killed sync leaves reads again what this one read); this
        # sync's once every phone is read (the book with what the reads found, the records observed).
        if self._done and self._saved is not None:
            return {CHANGES: self._final()}
        if self._previous_state is None and self._saved is not None:
            previous = dict(self._saved.changes)
            if self._saved.book or previous:
                previous["book"] = self._saved.book.encode()
            if self._saved.default is not None:
                previous["default"] = self._saved.default
            self._previous_state = {CHANGES: previous}
        return self._previous_state

    def _final(self) -> dict[str, Any]:
        book = self._saved.book
        for phone, newest in self._part.done.items():
            book.read(phone, newest, self._at)
        failed = {p for p in self._part.reach if key_of(p) in self._part.outcomes.failed}
        if self._changes is not None:
            state = self._changes.final_state(failed)
        else:
            state = {k: v for k, v in self._saved.changes.items() if k not in ("pending", "uncovered", "failed")}
            state["at"] = self._at
        state["book"] = book.encode()
        return state

    def get_request_params(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        # asked by the CDK as each conversation request is made, in the thread that sends it
        phone = (getattr(kwargs.get("stream_slice"), "partition", None) or {}).get("phone")
        if phone is not None:
            token = token_of(kwargs.get("next_page_token"))
            phone = token.get("phone") or phone  # a partition of several phones names the one asked
            self._part.outcomes.asking(key_of(str(phone)), token.get("page", 1))
        return {}

    def get_request_headers(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_body_data(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_body_json(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}


def shard_setting(config: Mapping[str, Any]) -> Optional[tuple[int, int]]:
    """(index, count) of the config's `shard`, None for none (or a count of 1)."""
    shard = config.get("shard")
    if not isinstance(shard, Mapping):
        return None
    index, count = shard.get("index"), shard.get("count")
    if type(index) is not int or type(count) is not int or count < 1 or not 0 <= index < count:
        raise AirbyteTracedException(
            message=f"shard: expected an index from 0 to count - 1 and a count of 1 or more, got index {index!r} and count {count!r}.",
            failure_type=FailureType.config_error,
        )
    return None if count == 1 else (index, count)


def _no_source(names: Iterable[str]) -> AirbyteTracedException:
    return AirbyteTracedException(
        message=f"Phone discovery could not read any of its sources ({', '.join(names)}): list the "
        "phone numbers to sync in Phone Numbers (phone_numbers).",
        failure_type=FailureType.config_error,
    )
