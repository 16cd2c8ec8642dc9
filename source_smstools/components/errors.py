"""The error handlers: what each answer means is said by the manifest's filters; these add where it
happened (phone, page, endpoint) and what a skipped endpoint costs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union
from urllib.parse import parse_qs, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers.response_models import (
    SUCCESS_RESOLUTION,
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components.pages import is_whole_page, page_body

logger = logging.getLogger("airbyte")


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


