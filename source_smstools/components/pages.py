"""The answers, parsed once: their records and their paging."""

from __future__ import annotations

import json
from dataclasses import InitVar, dataclass
from typing import Any, Iterable, Mapping, MutableMapping, Optional, Union

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.interpolation import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.types import Config, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException


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
