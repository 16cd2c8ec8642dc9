"""The phones whose conversations are read: the configured ones, or those found in the account."""

from __future__ import annotations

import logging
import re
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

from source_smstools.components import changes
from source_smstools.components.conversation import conversation_of
from source_smstools.components.sources import WATCHED, page_reader

logger = logging.getLogger("airbyte")


PHONE_SOURCES = ("contacts", "inbox", "message_log")
_INTERNATIONAL_ZERO = re.compile(r"\(0\)")  # "+44 (0)20 ...": the trunk zero is not dialled from abroad
_SEPARATORS = re.compile(r"[\s\-./()\u00a0]")
_DIGITS = re.compile(r"[0-9]{6,15}")


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
    """The conversation stream's partitions, one per phone: the configured `phone_numbers` as given,
    or, when there are none, every phone found in the sources `phone_sources` names (contacts,
    inbox, message log), normalised by `normalize_phone` and each read once.

    `discovery` is a SubstreamPartitionRouter over the contacts, inbox and message log streams
    (the CDK pages and retries them); this class only picks its sources, normalises and
    deduplicates. With change detection on (the default), an incremental sync hands out only the
    phones that are new, that the inbox and message log show moved, or that are due for the sweep
    (components/changes.py), and keeps the sources' positions as its parent state; off, every
    sync reads the sources whole and hands out every phone, each going on from its own cursor.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    discovery: Optional[SubstreamPartitionRouter] = None
    page_requesters: Optional[list] = None  # the inbox's and the log's HttpRequester (sources.page_reader)
    _changes = None  # this sync's change detection, when on
    _done = False  # every phone handed out: the next sync's state is change detection's final one

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        # the stream's part of the sync (components/conversation.py): the saved state as the state
        # migration checked it, and what the records show (coverage.Observations)
        self._part = conversation_of(self.config)

    def _listed(self) -> list[str]:
        return list(self.config.get("phone_numbers") or [])

    def stream_slices(self) -> Iterable[StreamSlice]:
        listed = self._listed()
        detection = (
            changes.ChangeDetection(self.config, self._part.saved, self._part.observations)
            if changes.enabled(self.config)
            else None
        )
        if detection is not None and detection.applies() and self.discovery is not None:
            # only the phones that may have changed (components/changes.py)
            self._changes = detection
            yield from self._changed(detection, listed)
            return
        if listed:
            for phone in dict.fromkeys(listed):
                yield StreamSlice(partition={"phone": phone}, cursor_slice={})
            return
        if self.discovery is None:
            return
        chosen = self.config.get("phone_sources") or list(PHONE_SOURCES)
        seen: set[str] = set()
        rejected = 0
        unreadable: list[str] = []
        sources = [parent for parent in self.discovery.parent_stream_configs if parent.stream.name in chosen]
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
                        yield StreamSlice(partition={"phone": phone}, cursor_slice={})
            except SourceUnreadable as error:
                # the phones found so far are kept; those only this source lists are missed
                unreadable.append(name)
                logger.warning(missed_phones(name, error.message))
                continue
            logger.info(f"Phone discovery: {added} new phone numbers from {name}.")
        if sources and len(unreadable) == len(sources):
            raise _no_source(unreadable)
        logger.info(
            f"Phone discovery: {len(seen)} phone numbers from {', '.join(chosen)}"
            + (f"; left out {rejected} value(s) that are not phone numbers." if rejected else ".")
        )

    def _changed(self, detection: "changes.ChangeDetection", listed: list[str]) -> Iterable[StreamSlice]:
        parents = {parent.stream.name: parent for parent in self.discovery.parent_stream_configs}
        chosen = [] if listed else [name for name in self.config.get("phone_sources") or PHONE_SOURCES if name in parents]
        found: list[str] = []
        contacts_unreadable = False
        if "contacts" in chosen:
            # contacts carry no date: read whole, a phone not known yet is a new one
            one = SubstreamPartitionRouter(parent_stream_configs=[parents["contacts"]], config=self.config, parameters={})
            try:
                found = [p for p in (normalize_phone(s.partition.get("phone")) for s in one.stream_slices()) if p]
            except SourceUnreadable as error:
                contacts_unreadable = True
                logger.warning(missed_phones("contacts", error.message))
        lists = {name: parents[name].stream for name in WATCHED if name in parents}
        handed_out = 0
        fetchers = {r.name: page_reader(r, self.config, detection.page_size) for r in self.page_requesters or []}
        for phone in detection.phones(lists, found, listed or None, normalize_phone, chosen, fetchers):
            handed_out += 1
            yield StreamSlice(partition={"phone": phone}, cursor_slice={})
        unreadable = set(detection.unreadable) | ({"contacts"} if contacts_unreadable else set())
        if chosen and set(chosen) <= unreadable and not handed_out:
            # nothing found and nothing known: the sync cannot read a single conversation
            raise _no_source(chosen)
        # asked for by the CDK once every phone above is read (ConcurrentPerPartitionCursor)
        self._done = True

    def get_stream_state(self) -> Optional[Mapping[str, StreamState]]:
        # change detection's state: the last sync's while phones are handed out (the CDK keeps a
        # copy per phone, for the states it emits while they are read), this sync's after, built
        # when asked for, once every phone is read (its records observed)
        if self._done and self._changes is not None:
            return {changes.KEY: self._changes.final_state()}
        previous = self._changes.previous if self._changes is not None else None
        return {changes.KEY: previous} if previous else None

    def get_request_params(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_headers(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_body_data(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_body_json(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}


def _no_source(names: Iterable[str]) -> AirbyteTracedException:
    return AirbyteTracedException(
        message=f"Phone discovery could not read any of its sources ({', '.join(names)}): list the "
        "phone numbers to sync in Phone Numbers (phone_numbers).",
        failure_type=FailureType.config_error,
    )
