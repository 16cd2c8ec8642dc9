"""The answers, parsed once into the documented shape (the conversation's pages are read by
components/paging.py, through components/conversation.py)."""

import json
import logging
from dataclasses import InitVar, dataclass
from typing import Any, Generator, Mapping, MutableMapping, Optional
from urllib.parse import parse_qs, urlsplit

import orjson
import requests
from airbyte_cdk.sources.declarative.decoders import JsonDecoder
from airbyte_cdk.sources.types import Config

from source_smstools.components.context import Sync, sync_of

# -- every answer parsed once ------------------------------------------------------------------
# Each HttpResponseFilter with a `predicate` calls `response.json()`, which parses the whole body
# again with the standard json module, and DpathExtractor's lookup walks every value of a page:
# for a conversation page of 2000 messages that was six parses and a walk, about 28% of a full
# read's time in profiles. Here the first consumer (the stream's error handler) parses the body
# once with orjson and brings it to the documented shape (`tolerant`); the body is kept in the
# source's Sync (components/context.py), never on the response (the CDK's object), and the error
# handler shows its filters a view of the response whose `json()` answers that body
# (`parsed_view`). The decoder below, the extractors and the paginators read the same body.

logger = logging.getLogger("airbyte")

_BOM = b"\xef\xbb\xbf"
NOT_JSON = object()  # the body of an answer that is not JSON (or was cut short)
NOT_FOUND = object()  # no body parsed yet


def body_of(response: requests.Response, sync: Sync, parameters: Optional[Mapping[str, Any]] = None) -> Any:
    """The body of `response` in the documented shape of its endpoint (`parameters`: `shape`,
    `records_key`, as the manifest gives them), or NOT_JSON; parsed on first use and kept in the
    source's `sync` (context.Sync.bodies) as long as the response lives."""
    if isinstance(response, _ParsedView):
        return response.body
    body = sync.bodies.get(response, NOT_FOUND)
    if body is NOT_FOUND:
        try:
            body = tolerant(parse(response.content), parameters or {})
        except ValueError:
            body = tolerant(not_utf8(response), parameters or {})
        with sync.bodies_lock:
            sync.bodies[response] = body
    return body



class _ParsedView(requests.Response):
    """A copy of a response's attributes whose `json()` answers its body parsed once."""

    body: Any = NOT_JSON

    def json(self, **kwargs: Any) -> Any:
        if self.body is NOT_JSON:  # as `requests` says it, so that the CDK's callers behave as they always did
            raise requests.exceptions.JSONDecodeError("the answer is not JSON", "", 0)
        return self.body


def parsed_view(response: requests.Response, sync: Sync, parameters: Optional[Mapping[str, Any]] = None) -> requests.Response:
    """What the manifest's filters are shown of `response`: the same status, headers, URL and
    content, and `json()` answering `body_of(response, sync, parameters)`; `response` is left as it is."""
    view = _ParsedView.__new__(_ParsedView)
    view.__dict__.update(response.__dict__)
    view.body = body_of(response, sync, parameters)
    return view


def parse(content: bytes) -> Any:
    """`content` as JSON; ValueError when it is not JSON (cut short, HTML, text)."""
    if content.startswith(_BOM):  # PHP files saved "UTF-8 with BOM" print it before the JSON
        content = content[len(_BOM) :]
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        # orjson refuses a lone surrogate ("\\ud800"), which is valid JSON: a message holding one
        # would fail the whole sync
        return json.loads(content)


def not_utf8(response: requests.Response) -> Any:
    """A body that is JSON but for bytes that are not UTF-8: a text stored in Windows-1252 (Latin-1)
    as it came, 'è' as the one byte E8. Those bytes are read as Windows-1252, which gives the text as
    it was written, said once per answer with where it came from (never the text). NOT_JSON for a
    body that is not JSON after all (cut short, HTML, text): it is retried."""
    content = response.content or b""
    try:
        content.decode("utf-8")
        return NOT_JSON  # UTF-8 throughout: it is the JSON that is broken
    except UnicodeDecodeError:
        pass
    try:
        body = parse(windows_1252_where_not_utf8(content).encode())
    except ValueError:
        return NOT_JSON
    parts = urlsplit(response.url or "")
    phone, page = parts.path.rstrip("/").rsplit("/", 1)[-1], (parse_qs(parts.query).get("page") or ["1"])[-1]
    where = f"Phone {phone}, page {page}" if "/conversation/" in parts.path else f"{parts.path}, page {page}"
    logger.warning(f"{where}: the answer holds bytes that are not UTF-8; they are read as Windows-1252 (Latin-1).")
    return body


def windows_1252_where_not_utf8(content: bytes) -> str:
    """`content` as UTF-8, each byte that is not UTF-8 read as Windows-1252 (Latin-1 for the five
    bytes Windows-1252 leaves undefined)."""
    parts, at = [], 0
    while True:
        try:
            parts.append(content[at:].decode("utf-8"))
            return "".join(parts)
        except UnicodeDecodeError as error:
            parts.append(content[at : at + error.start].decode("utf-8"))
            for byte in content[at + error.start : at + error.end]:
                one = bytes([byte])
                try:
                    parts.append(one.decode("cp1252"))
                except UnicodeDecodeError:
                    parts.append(one.decode("latin-1"))
            at += error.end


# -- what a PHP backend sends for the documented shape ------------------------------------------
_NUMBERS = ("total", "page", "limit", "shown")


def tolerant(body: Any, parameters: Mapping[str, Any]) -> Any:
    """`body` brought to the documented shape where it differs from it without losing meaning, the
    way PHP's json_encode differs: numbers sent as strings ("2"), a list sent as an object with
    keys "0", "1", ... (an array with gaps), the records' list under another key (when it is the
    only list), `false`, `""` or null for an empty list (when `total` says it is empty). Anything
    else is left as it came, for the manifest's filters to judge: an error body, or an answer with
    no list of records in it."""
    shape = parameters.get("shape")
    if shape == "list":
        records = as_list(body)
        return body if records is None else records
    if shape != "envelope" or not isinstance(body, dict) or "error" in body:
        return body
    key = parameters.get("records_key")
    if not key:
        return body
    for name in _NUMBERS:
        value = body.get(name)
        if isinstance(value, str) and value.isdigit():
            body[name] = int(value)
    records = as_list(body.get(key))
    if records is None:
        if key in body and body[key] in (None, False, "") and body.get("total") == 0:
            records = []
        else:
            lists = [name for name, value in body.items() if as_list(value) is not None]
            if len(lists) != 1:
                return body
            records = as_list(body[lists[0]])
            if not records and body.get("total") != 0:
                # an empty list beside a `total` of messages is no page of them: read as one, the
                # paging would go on past messages never seen
                return body
            del body[lists[0]]
    body[key] = records
    return body


def as_list(value: Any) -> Optional[list]:
    """`value` as a list: itself, or an object whose keys are all indexes ("0", "2", "15", in
    their numeric order); None for anything else."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) and k.isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return None


@dataclass
class Answer(JsonDecoder):
    """The decoder of every stream: the body parsed once (`body_of`), in the documented shape,
    for the extractor and the paginator."""

    parameters: InitVar[Mapping[str, Any]]
    config: Optional[Config] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__init__(parameters)
        self._parameters = dict(parameters or {})
        self._sync = sync_of(self.config if self.config is not None else {})

    def is_stream_response(self) -> bool:
        return False

    def decode(self, response: requests.Response) -> Generator[MutableMapping[str, Any], None, None]:
        body = body_of(response, self._sync, self._parameters)
        # as the CDK's JsonDecoder: the items of a list, or the body; `{}` for nothing at all
        if isinstance(body, list) and body:
            yield from body
        elif isinstance(body, dict) and body:
            yield body
        else:
            yield {}


def describe(body: Any) -> str:
    """What came, as JSON types and top-level keys, never values."""
    if body is NOT_JSON:
        return "not JSON"
    if isinstance(body, dict):
        keys = [f"{str(k)[:40]} ({json_type(v)})" for k, v in list(body.items())[:12]]
        return "an object with keys " + ", ".join(keys) + (", ..." if len(body) > 12 else "") if keys else "an empty object"
    return json_type(body)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
