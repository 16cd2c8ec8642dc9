"""The little the manifest cannot say in YAML, or would say at a high price per record."""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import re
import time
from dataclasses import InitVar, dataclass
from typing import Any, Iterable, Mapping, MutableMapping, Optional, Union
from urllib.parse import parse_qs, urlsplit

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.interpolation import InterpolatedString
from airbyte_cdk.sources.declarative.migrations.state_migration import StateMigration
from airbyte_cdk.sources.declarative.partition_routers.partition_router import PartitionRouter
from airbyte_cdk.sources.declarative.partition_routers.substream_partition_router import (
    SubstreamPartitionRouter,
)
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.streams.http.error_handlers.response_models import (
    SUCCESS_RESOLUTION,
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

logger = logging.getLogger("airbyte")


def message_id(phone: str, message: Mapping[str, Any]) -> str:
    """`messageId`, or for inbound messages (which have none) a stable hash of what identifies them."""
    given = message.get("messageId")
    if given not in (None, ""):
        return str(given)
    key = "\x1f".join(
        str(message.get(name))
        for name in ("direction", "unixDatetime", "sender", "receiver", "message")
    )
    return "h" + hashlib.sha256(f"{phone}\x1f{key}".encode()).hexdigest()[:32]


def iso_utc(seconds: Any) -> Optional[str]:
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):
        return None


@dataclass
class MessageFields(RecordTransformation):
    """Adds `phone`, `id` and `datetime_utc` to a message.

    One Python call per record instead of three Jinja templates: templates were about a third of
    the read time in profiles.
    """

    parameters: InitVar[Mapping[str, Any]]

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        phone = str(stream_slice.partition["phone"]) if stream_slice else ""
        seconds = record.get("unixDatetime")
        if isinstance(seconds, str) and seconds.isdigit():
            seconds = record["unixDatetime"] = int(seconds)
        record["phone"] = phone
        record["id"] = message_id(phone, record)
        record["datetime_utc"] = iso_utc(seconds)


class PerPhoneState(StateMigration):
    """Keeps the state strictly per phone, and refuses a state it cannot trust.

    The CDK starts a phone it has no state for from the stream's global cursor: a phone added to
    the configuration later would skip its whole history. Dropping the global cursor (and the
    lookback kept beside it) makes such a phone start from `start_date` instead.
    """

    # The CDK passes a custom component only the arguments its class annotates: without this
    # line the migration never sees the config.
    config: Optional[Config]

    def __init__(self, config: Optional[Config] = None, **kwargs: Any) -> None:
        start_date = (config or {}).get("start_date")
        try:
            self._start = calendar.timegm(time.strptime(start_date, "%Y-%m-%dT%H:%M:%SZ")) if start_date else 0
        except (TypeError, ValueError):
            self._start = 0  # the spec's validation reports a malformed start_date

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        return bool(stream_state)

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(stream_state, Mapping):
            raise _bad_state(f"expected an object, got {type(stream_state).__name__}")
        if "states" not in stream_state:
            if "unixDatetime" in stream_state:
                # one cursor for every phone (an older or hand-written state): the CDK applies it to all
                value = self._cursor(stream_state["unixDatetime"], "the global cursor")
                return {"unixDatetime": value} if value else {}
            if stream_state.get("use_global_cursor") and isinstance(stream_state.get("state"), Mapping):
                # Past the CDK's partition limit (see source.py) one cursor stands for every phone.
                logger.warning(
                    "The conversation state holds one cursor for all phones (more phones than the "
                    "per-phone state keeps): every phone goes on from it, and a phone found from now on "
                    "starts from it too, without its older messages. Reset the conversation stream to "
                    "read every phone's history again."
                )
                value = self._cursor(stream_state["state"].get("unixDatetime"), "the global cursor")
                return {**stream_state, "state": {"unixDatetime": value}} if value else {}
            raise _bad_state(
                f"keys {sorted(stream_state)} are neither a per-phone state "
                '({"states": [{"partition": {"phone": ...}, "cursor": {"unixDatetime": ...}}]}) '
                'nor a global one ({"unixDatetime": ...})'
            )
        states = stream_state["states"]
        if not isinstance(states, list):
            raise _bad_state('"states" must be a list')
        migrated = []
        for entry in states:
            try:
                phone = entry["partition"]["phone"]
                value = entry["cursor"]["unixDatetime"]
            except (KeyError, TypeError):
                raise _bad_state(f"entry {str(entry)[:200]} has no partition.phone and cursor.unixDatetime")
            value = self._cursor(value, f"phone {phone}")
            if value:
                migrated.append({"partition": {"phone": phone}, "cursor": {"unixDatetime": value}})
        if stream_state.get("use_global_cursor"):
            # past the CDK's partition limit the global cursor is all there is: keep it
            return {**stream_state, "states": migrated}
        return {"use_global_cursor": False, "states": migrated}


    def _cursor(self, value: Any, where: str) -> Optional[str]:
        cursor = _cursor(value, where)
        # A cursor saved before its phone's first page was read sits at the stream's start; never
        # let one reach back before `start_date`.
        return str(max(int(cursor), self._start)) if cursor else None


def _cursor(value: Any, where: str) -> Optional[str]:
    """The cursor as the CDK keeps it, or None for one that must be dropped."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise _bad_state(f"the cursor of {where} is {value!r}, not a unix time in seconds")
    if seconds > time.time() + 86_400:
        # A cursor in the future would skip every message dated before it: trust nothing of it and
        # read that history again from the start date (the primary key deduplicates).
        logger.warning(f"The saved cursor of {where} ({seconds}) is in the future; reading it again from the start date.")
        return None
    return str(seconds)


def _bad_state(reason: str) -> AirbyteTracedException:
    return AirbyteTracedException(
        message=f"The saved state of the conversation stream is not usable: {reason}. "
        "Reset the stream's state (or pass none) to sync from the start date.",
        failure_type=FailureType.config_error,
    )


# -- phones found in the account --------------------------------------------------------------

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
    deduplicates. It keeps no parent state: every sync reads the sources whole, so that a phone
    that appears between syncs is found whatever its dates, and a known one goes on from its own
    cursor.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    discovery: Optional[SubstreamPartitionRouter] = None

    def _listed(self) -> list[str]:
        return list(self.config.get("phone_numbers") or [])

    def stream_slices(self) -> Iterable[StreamSlice]:
        listed = self._listed()
        if listed:
            for phone in dict.fromkeys(listed):
                yield StreamSlice(partition={"phone": phone}, cursor_slice={})
            return
        if self.discovery is None:
            return
        chosen = self.config.get("phone_sources") or list(PHONE_SOURCES)
        seen: set[str] = set()
        rejected = 0
        for parent in self.discovery.parent_stream_configs:
            name = parent.stream.name
            if name not in chosen:
                continue
            one = SubstreamPartitionRouter(parent_stream_configs=[parent], config=self.config, parameters={})
            added = 0
            for found in one.stream_slices():
                phone = normalize_phone(found.partition.get("phone"))
                if phone is None:
                    rejected += 1
                elif phone not in seen:
                    seen.add(phone)
                    added += 1
                    yield StreamSlice(partition={"phone": phone}, cursor_slice={})
            logger.info(f"Phone discovery: {added} new phone numbers from {name}.")
        logger.info(
            f"Phone discovery: {len(seen)} phone numbers from {', '.join(chosen)}"
            + (f"; left out {rejected} value(s) that are not phone numbers." if rejected else ".")
        )

    def get_stream_state(self) -> Optional[Mapping[str, StreamState]]:
        return None  # the sources are read whole every sync: no parent state to keep

    def get_request_params(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_headers(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_body_data(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}

    def get_request_body_json(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]:
        return {}


# -- endpoints an account may not use ---------------------------------------------------------


@dataclass
class SkipUnavailableStream(DefaultErrorHandler):
    """The error handler of the account's streams other than `conversation`.

    Its filters mark an endpoint the account may not use (HTTP 403, or an error body the API gives
    no other meaning) as IGNORE: the stream ends without records and the sync goes on. The CDK
    logs an ignored response at INFO only; this says it as a warning, once per stream. The same
    answer after the first page is no missing permission but a failure half-way: ignored, it would
    end the paging and silently lose the rest, so it fails instead.
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._warned = False

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        resolution = super().interpret_response(response_or_exception)
        if resolution.response_action != ResponseAction.IGNORE:
            return resolution
        page = _page_of(response_or_exception)
        if page > 1:
            return ErrorResolution(
                response_action=ResponseAction.FAIL,
                failure_type=FailureType.system_error,
                error_message=f"{resolution.error_message} It came on page {page}, after pages that were read: "
                "failing rather than losing the rest.",
            )
        if not self._warned:
            self._warned = True
            logger.warning(resolution.error_message)
        return resolution


def _page_of(response: Any) -> int:
    try:
        values = parse_qs(urlsplit(response.request.url).query).get("page") or ["1"]
        return int(values[-1])
    except (AttributeError, TypeError, ValueError):
        return 1


# -- errors that say where they happened ------------------------------------------------------


@dataclass
class ConversationErrorHandler(DefaultErrorHandler):
    """The conversation stream's error handler: every error it resolves names the phone and the page.

    The CDK ends a request that keeps failing with "Exhausted available request attempts ...
    Exception: <the last error message>", and its error-message templates see neither the page (the
    query string is removed from `request_url`) nor a connection that failed before any answer
    (reset, timeout, truncated body). Saying it here puts the phone, the page and the cause in the
    error trace of every failure, whichever way it ends.

    The last allowed attempt of a request that keeps failing is answered FAIL with that message:
    left to the CDK, a 429 that never clears ends as a bare "API rate limit exceeded.".
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        # failed attempts per request; one that recovers leaves its entry (one small entry per fault)
        self._failed_attempts: dict[requests.PreparedRequest, int] = {}
        self._totals: dict[str, int] = {}  # phone -> the `total` of its page read last
        self._restarted: set[str] = set()  # phones whose paging restarted once already

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        if (
            isinstance(response_or_exception, requests.Response)
            and response_or_exception.status_code == 200
            and is_whole_page(page_body(response_or_exception))
        ):
            # a whole page needs none of the filters, and each of them would parse it again
            return self._unless_shrunk(response_or_exception)
        resolution = super().interpret_response(response_or_exception)
        if resolution.response_action == ResponseAction.SUCCESS:
            return resolution
        request = _request_of(response_or_exception)
        if request is None:
            return resolution
        message = f"{_where(request, response_or_exception)}: {resolution.error_message}"
        if resolution.response_action not in (ResponseAction.RETRY, ResponseAction.RATE_LIMITED):
            return ErrorResolution(resolution.response_action, resolution.failure_type, message)
        refusal = self._refused_wait(response_or_exception)
        if refusal:
            return ErrorResolution(ResponseAction.FAIL, FailureType.transient_error, f"{message}; {refusal}")
        # the HttpClient gives up after max_retries + 1 attempts of the same request
        attempts = self._failed_attempts[request] = self._failed_attempts.get(request, 0) + 1
        if attempts <= (self.max_retries or 0):
            return ErrorResolution(resolution.response_action, resolution.failure_type, message)
        del self._failed_attempts[request]
        return ErrorResolution(
            response_action=ResponseAction.FAIL,
            failure_type=FailureType.transient_error,
            error_message=f"{message}; gave up after {attempts} attempts.",
        )


    def _refused_wait(self, response_or_exception: Any) -> Optional[str]:
        # A strategy that will not wait as long as asked (a Retry-After above its cap) raises from
        # inside the HttpClient, with a message that names no phone or page: asked first, here.
        for strategy in self.backoff_strategies or []:
            try:
                if strategy.backoff_time(response_or_exception, attempt_count=1):
                    return None
            except AirbyteTracedException as refusal:
                return refusal.internal_message or refusal.message
        return None

    def _unless_shrunk(self, response: requests.Response) -> ErrorResolution:
        """SUCCESS, unless the conversation lost messages since its previous page was read.

        Messages deleted from pages already read move the later ones up, onto those pages: read on,
        the next pages would skip them, and the cursor would then move past them for good. Paging
        restarts from page 1 instead (the records read twice are the same records); a second
        shrink during the same read fails the phone, whose cursor then stays where it was. New
        messages (a growing total) only move messages down, to be read twice: nothing to do.
        """
        body = page_body(response)
        phone = urlsplit(response.request.url).path.rstrip("/").rsplit("/", 1)[-1]
        before, total = self._totals.get(phone), body["total"]
        self._totals[phone] = total
        if body["page"] == 1 or before is None or total >= before:
            return SUCCESS_RESOLUTION
        where = f"Phone {phone}, page {body['page']}"
        if phone in self._restarted:
            return ErrorResolution(
                response_action=ResponseAction.FAIL,
                failure_type=FailureType.transient_error,
                error_message=f"{where}: the conversation shrank again while it was read ({before} then "
                f"{total} messages); its cursor stays where it was, the next sync reads it again.",
            )
        self._restarted.add(phone)
        logger.warning(
            f"{where}: the conversation shrank from {before} to {total} messages while it was read; "
            "reading it again from page 1 so that no message is skipped."
        )
        return ErrorResolution(response_action=ResponseAction.RESET_PAGINATION)


def _request_of(response_or_exception: Any) -> Optional[requests.PreparedRequest]:
    request = getattr(response_or_exception, "request", None)
    if request is None and isinstance(response_or_exception, Exception):
        request = _request_in_traceback(response_or_exception)
    return request if isinstance(getattr(request, "url", None), str) else None


def _where(request: requests.PreparedRequest, response_or_exception: Any) -> str:
    """"Phone 393331234567, page 3 (HTTP 503)" for a conversation request, from its URL."""
    parts = urlsplit(request.url)
    phone = parts.path.rstrip("/").rsplit("/", 1)[-1]
    page = (parse_qs(parts.query).get("page") or ["1"])[-1]  # the first request carries no page
    status = getattr(response_or_exception, "status_code", None)
    return f"Phone {phone}, page {page}" + (f" (HTTP {status})" if status else "")


def _request_in_traceback(error: Exception) -> Optional[requests.PreparedRequest]:
    # An answer cut short raises ChunkedEncodingError while `requests` reads the body, and that
    # exception carries no request; the frames it was raised through (Session.send) still hold it.
    trace = error.__traceback__
    while trace is not None:
        for value in trace.tb_frame.f_locals.values():
            if isinstance(value, requests.PreparedRequest):
                return value
        trace = trace.tb_next
    return None


# -- the conversation pages, parsed once ------------------------------------------------------
# Each HttpResponseFilter with a `predicate` parses the whole body again with the standard json
# module, and DpathExtractor's lookup walks every value of the page: for a page of 2000 messages
# that was six parses and a walk, about 28% of a full read's time in profiles. Here a page is
# parsed once (orjson) and kept on the response, for ConversationErrorHandler (which accepts a
# whole page without running the filters), ConversationExtractor and TotalPages.

_PAGE = "_smstools_page"


def page_body(response: requests.Response) -> Any:
    """The decoded body of `response` (None when it is not JSON), parsed on first use."""
    body = getattr(response, _PAGE, _PAGE)
    if body is _PAGE:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            try:
                # orjson refuses a lone surrogate ("\\ud800"), which is valid JSON: a message holding
                # one would fail the whole sync
                body = json.loads(response.content)
            except ValueError:
                body = None
        setattr(response, _PAGE, body)
    return body


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_whole_page(body: Any) -> bool:
    """A conversation page that none of the manifest's filters would stop: no `error`, a list of
    messages, a numeric `total` and `page`."""
    return (
        isinstance(body, dict)
        and "error" not in body
        and isinstance(body.get("conversation"), list)
        and _is_number(body.get("total"))
        and _is_number(body.get("page"))
    )


@dataclass
class ConversationExtractor(RecordExtractor):
    """The messages of a conversation page (`conversation`), from the body parsed once."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[Any, Any]]:
        body = page_body(response)
        messages = body.get("conversation") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            # the error handler retries such a body; one that still gets here must not pass for
            # an empty page, which would end the paging and lose the rest of the conversation
            raise AirbyteTracedException(
                message="Smstools sent a conversation page without its list of messages.",
                internal_message=f"unexpected body for {_without_query(response.url)}: {str(body)[:200]}",
                failure_type=FailureType.system_error,
            )
        return messages


def _without_query(url: Optional[str]) -> str:
    return (url or "").split("?", 1)[0]


@dataclass
class TotalPages(PaginationStrategy):
    """Pages 1, 2, ... until `page` times the page size reaches `total`: no request for a trailing
    empty page. CursorPagination says the same with two templates, over the body decoded again."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    page_size: Union[int, str] = 2000

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        size = self.page_size
        if isinstance(size, str):
            size = InterpolatedString.create(size, parameters=parameters).eval(self.config)
        self._page_size = int(size)

    @property
    def initial_token(self) -> Optional[Any]:
        return None  # the first request carries no `page`: the API starts at 1

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Optional[Any],
        last_page_token_value: Optional[Any] = None,
        page_size_override: Optional[int] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> Optional[Any]:
        body = page_body(response)  # a page the error handler let through: `page` and `total` are numbers
        size = page_size_override or self._page_size
        if body["page"] * size >= body["total"]:
            return None
        return body["page"] + 1

    def get_page_size(self) -> Optional[int]:
        return self._page_size
