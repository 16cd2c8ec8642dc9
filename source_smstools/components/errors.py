"""The error handlers: what each answer means is said by the manifest's filters; these add where it
happened (phone, page, endpoint) and what a skipped endpoint costs."""

import logging
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Union
from urllib.parse import parse_qs, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler, HttpResponseFilter
from airbyte_cdk.sources.streams.http.error_handlers.response_models import (
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components.pages import body_of, describe, parsed_view
from source_smstools.components.context import sync_of
from source_smstools.components.conversation import conversation_of, url_key
from source_smstools.components.session import TRIES, Session, host_of, unreachable

logger = logging.getLogger("airbyte")


# -- answers we cannot read ---------------------------------------------------------------------


class UnreadableAnswer(AirbyteTracedException):
    """Complete JSON of a shape we cannot read. Raised, not returned as FAIL: the CDK would put the
    whole body (message texts, phone numbers) into the error's internal message, its log and the
    sync's closing summary. This message names keys and JSON types only."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message, internal_message=message, failure_type=FailureType.system_error)


class SourceUnreadable(UnreadableAnswer):
    """A phone source that phone discovery cannot read (forbidden to this account, or an answer
    of a shape we cannot understand): discovery goes on without it."""


def missed_phones(source: str, reason: str) -> str:
    """The one warning for a phone source that discovery goes on without."""
    return f"Phone discovery: {source} cannot be read, so phones that only {source} lists are missed this sync ({reason})"


# -- every answer parsed once, before the manifest's filters ------------------------------------


@dataclass
class ParsingErrorHandler(DefaultErrorHandler):
    """A DefaultErrorHandler that parses each answer once, into its endpoint's documented shape
    (`$parameters`: shape, records_key), and shows its filters that body (pages.parsed_view).

    Its filters are the manifest's shared ones around its own: `shared_first`, then
    `response_filters` (what a refusal means for this handler), then `shared_last`."""

    shared_first: Optional[List[HttpResponseFilter]] = None
    shared_last: Optional[List[HttpResponseFilter]] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.response_filters = [*(self.shared_first or []), *(self.response_filters or []), *(self.shared_last or [])]
        super().__post_init__(parameters)
        self._parameters = dict(parameters or {})
        self._sync = sync_of(self.config)
        # the CDK's own short waits (1 s, 2 s) for a host that has not answered yet
        self.backoff_strategies = [_AfterFirstContact(s, self._sync.session) for s in self.backoff_strategies or []]

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        contact = self._sync.session
        if isinstance(response_or_exception, requests.Response):
            url = getattr(response_or_exception.request, "url", None)
            if isinstance(url, str):
                contact.answered.add(host_of(url))
            # the filters read the body parsed once, through a view: the response stays untouched
            resolution = super().interpret_response(parsed_view(response_or_exception, self._sync, self._parameters))
        else:
            kind = contact.first_contact(response_or_exception) if isinstance(response_or_exception, Exception) else None
            if kind:
                request = response_or_exception.request
                message = unreachable(request.url, kind)
                if contact.tries(request) >= TRIES[kind]:
                    raise contact.refuse(message)
                return ErrorResolution(ResponseAction.RETRY, FailureType.transient_error, message)
            resolution = super().interpret_response(response_or_exception)
        if resolution.response_action == ResponseAction.FAIL and resolution.failure_type == FailureType.config_error:
            # raised here, not returned: the CDK would log and trace the request, the answer and
            # its headers, and each phone would say it again
            raise contact.refuse(resolution.error_message or "Smstools refused the config.")
        return resolution


class _AfterFirstContact:
    """A backoff strategy that declines for a connection not yet made to a host that has not
    answered (the CDK then waits 1 s, then 2 s, and says what it retries, not "rate limit")."""

    def __init__(self, strategy: Any, session: Session) -> None:
        self._strategy, self._session = strategy, session

    def backoff_time(self, response_or_exception: Any, attempt_count: int) -> Optional[float]:
        if isinstance(response_or_exception, requests.ConnectionError) and response_or_exception.request is not None:
            if host_of(response_or_exception.request.url) not in self._session.answered:
                return None
        return self._strategy.backoff_time(response_or_exception, attempt_count)


# -- endpoints an account may not use ---------------------------------------------------------


@dataclass
class SkipUnavailableStream(ParsingErrorHandler):
    """The error handler of the account's streams other than `conversation`.

    Its filters mark an endpoint the account may not use (HTTP 403, or an error body the API gives
    no other meaning) as IGNORE: the stream ends without records and the sync goes on. The CDK
    logs an ignored response at INFO only; this says it as a warning, once per stream. The same
    answer after the first page is no missing permission but a failure half-way: ignored, it would
    end the paging and silently lose the rest, so it fails instead.

    Read for phone discovery (`$parameters.discovery`), an endpoint the account may not use and an
    answer we cannot understand raise SourceUnreadable instead: PhonePartitionRouter says it once
    and goes on with the other sources.
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._warned = False

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        resolution = super().interpret_response(response_or_exception)
        shape = _unexpected_shape(resolution, response_or_exception, self._sync)
        if self._parameters.get("discovery") and (
            resolution.response_action == ResponseAction.IGNORE
            or (resolution.response_action == ResponseAction.FAIL and resolution.failure_type == FailureType.system_error)
        ):
            raise SourceUnreadable(shape or resolution.error_message or "")
        if shape:
            raise UnreadableAnswer(shape)
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


UNEXPECTED = "unexpected shape"  # in the message of the manifest's filter `unexpected_shape`


def _unexpected_shape(resolution: ErrorResolution, response: Any, sync: Any) -> Optional[str]:
    """The message of the manifest's filter `unexpected_shape`, when it matched, with what came
    added as keys and JSON types (a Jinja template for that would be longer than this function)."""
    if (
        resolution.response_action == ResponseAction.FAIL
        and UNEXPECTED in (resolution.error_message or "")
        and isinstance(response, requests.Response)
    ):
        return f"{resolution.error_message.rstrip('.')}; came {describe(body_of(response, sync))}."
    return None


def _page_of(response: Any) -> int:
    try:
        values = parse_qs(urlsplit(response.request.url).query).get("page") or ["1"]
        return int(values[-1])
    except (AttributeError, TypeError, ValueError):
        return 1


# -- errors that say where they happened ------------------------------------------------------


@dataclass
class ConversationErrorHandler(ParsingErrorHandler):
    """The conversation stream's error handler: every error it resolves for an answer names the
    phone and the page.

    What each answer means is the manifest's filters' to say (they read the body parsed once, see
    `body_of`); this adds where it happened. The CDK's error-message templates cannot: they see
    `request_url` without its query string, so without the page. A request that keeps failing ends
    with the CDK's "Exhausted available request attempts ... <the last of these messages>" ("API
    rate limit exceeded." for a 429 that never clears, the phone and page then in the internal
    message); a connection that broke before any answer (reset, timeout, a body cut short) has no
    request to name, and is reported as `requests` words it.
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._outcomes = conversation_of(self.config).outcomes
        self._attempts: dict[Any, int] = {}  # (phone key, page) -> answers in a row that were not a success
        # the retries are counted here (max_retries), so that a request that keeps failing ends its
        # phone's read as this handler says (Outcomes), not by the CDK's clock
        self.max_time = LONG_ENOUGH

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        request = getattr(response_or_exception, "request", None)
        outcomes = self._outcomes
        asked = (url_key(request.url), _page_of(response_or_exception)) if isinstance(getattr(request, "url", None), str) else outcomes.asked()
        key = asked[0] if asked else None
        outcomes.touch()
        try:
            resolution = self._resolved(response_or_exception)
        except UnreadableAnswer as failure:  # the same next time
            if key is not None:
                outcomes.end(key, failure)
                if outcomes.defers(key):
                    return _ended(failure)
            raise
        except Exception:  # the sync refused (credentials, IP, paging parameters): every phone ends
            if key is not None:
                outcomes.end(key)
            raise
        if resolution.response_action == ResponseAction.SUCCESS:
            self._attempts.pop(asked, None)
            return resolution
        if key is None or not outcomes.defers(key):
            return resolution
        if resolution.response_action in (ResponseAction.RETRY, ResponseAction.RATE_LIMITED):
            tries = self._attempts[asked] = self._attempts.get(asked, 0) + 1
            if tries <= self.max_retries:
                return resolution
            failure = AirbyteTracedException(
                message=f"{resolution.error_message} ({tries} tries)", failure_type=FailureType.transient_error
            )
        elif resolution.response_action == ResponseAction.FAIL:
            failure = AirbyteTracedException(message=resolution.error_message, failure_type=resolution.failure_type)
        else:
            return resolution
        if not failure.message.startswith("Phone "):  # an error without its request: where it happened
            failure.message = failure.internal_message = f"Phone {key}, page {asked[1]}: {failure.message}"
        outcomes.end(key, failure)
        return _ended(failure)

    def _resolved(self, response_or_exception: Optional[Union[requests.Response, Exception]]) -> ErrorResolution:
        resolution = super().interpret_response(response_or_exception)
        if resolution.response_action == ResponseAction.SUCCESS:
            # what the page holds (shifts, repeats, the page asked for) is the paging's to judge
            # (components/paging.py): it sees the pages before it too
            return resolution
        shape = _unexpected_shape(resolution, response_or_exception, self._sync)
        # a body cut short raises without its request (and the CDK keeps the request to itself)
        request = getattr(response_or_exception, "request", None)
        where = _where(request, response_or_exception) if isinstance(getattr(request, "url", None), str) else None
        message = f"{where}: {shape or resolution.error_message}" if where else (shape or resolution.error_message)
        if shape:
            raise UnreadableAnswer(message)
        if resolution.response_action not in (ResponseAction.RETRY, ResponseAction.RATE_LIMITED):
            return ErrorResolution(resolution.response_action, resolution.failure_type, message)
        refusal = self._refused_wait(response_or_exception)
        if refusal:
            return ErrorResolution(ResponseAction.FAIL, FailureType.transient_error, f"{message}; {refusal}")
        # what is retried is transient, also when it ends the sync after the last attempt
        return ErrorResolution(resolution.response_action, FailureType.transient_error, message)

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


LONG_ENOUGH = 6 * 3_600  # the CDK's max_time for the conversation: its retries are counted instead


def _ended(failure: AirbyteTracedException) -> ErrorResolution:
    """The answer passed on as nothing to read: the phone's read ends there, its failure kept
    (conversation.Outcomes) for the partition router to say."""
    return ErrorResolution(ResponseAction.IGNORE, failure.failure_type, failure.message)


def _where(request: requests.PreparedRequest, response_or_exception: Any) -> str:
    """"Phone 393331234567, page 3 (HTTP 503)" for a conversation request, from its URL."""
    parts = urlsplit(request.url)
    phone = url_key(request.url)
    page = (parse_qs(parts.query).get("page") or ["1"])[-1]  # the first request carries no page
    status = getattr(response_or_exception, "status_code", None)
    return f"Phone {phone}, page {page}" + (f" (HTTP {status})" if status else "")

