"""The answers as parsed once: what is brought to the documented shape, what is left as it came."""

import gc
import json
import weakref

import pytest
import requests

from source_smstools.components.context import Sync
from source_smstools.components.pages import NOT_JSON, as_list, body_of, describe, parse, parsed_view, tolerant

ENVELOPE = {"shape": "envelope", "records_key": "conversation"}
SYNC = Sync()  # the source's shared objects: its answers parsed once among them
LIST = {"shape": "list"}
MESSAGE = {"messageId": "a1", "unixDatetime": 1749113086}


def response(content: bytes) -> requests.Response:
    r = requests.Response()
    r.status_code = 200
    r._content = content
    return r


@pytest.mark.parametrize(
    "body",
    [
        {"total": "3", "shown": "1", "page": "2", "limit": "2", "conversation": [MESSAGE]},  # numbers as strings
        {"total": 3, "shown": 1, "page": 2, "limit": 2, "data": [MESSAGE]},  # the list under another key
        {"total": 3, "shown": 1, "page": 2, "limit": 2, "conversation": {"7": MESSAGE}},  # a list with gaps
        {"total": "3", "shown": "1", "page": "2", "limit": "2", "result": {"7": MESSAGE}},  # all of it
    ],
)
def test_a_php_envelope_is_read_as_the_documented_one(body):
    assert tolerant(body, ENVELOPE) == {"total": 3, "shown": 1, "page": 2, "limit": 2, "conversation": [MESSAGE]}


def test_index_keys_are_read_in_their_numeric_order():
    assert as_list({"10": "c", "2": "b", "0": "a"}) == ["a", "b", "c"]
    assert as_list({}) == [] and as_list([1]) == [1]
    assert as_list({"0": 1, "x": 2}) is None and as_list("0") is None and as_list(None) is None


@pytest.mark.parametrize("empty", [None, False, ""])
def test_an_empty_list_written_as_nothing_is_empty_only_when_total_says_so(empty):
    assert tolerant({"total": "0", "page": "1", "conversation": empty}, ENVELOPE)["conversation"] == []
    kept = tolerant({"total": 5, "page": 1, "conversation": empty}, ENVELOPE)
    assert kept["conversation"] is empty  # left for the manifest's filter: not a page of 5


@pytest.mark.parametrize(
    "body",
    [
        {"error": 104, "errorMsg": "Invalid credentials"},  # an error body stays an error body
        {"total": 3, "page": 1, "one": [], "two": []},  # two lists: which one is meant cannot be known
        {"total": 3, "page": 1, "conversation": "3 messages"},
        {"total": "three", "page": 1, "conversation": []},
        [MESSAGE],
        "ok",
    ],
)
def test_what_cannot_be_read_without_guessing_is_left_as_it_came(body):
    assert tolerant(json.loads(json.dumps(body)), ENVELOPE) == body


def test_a_bare_list_written_as_an_object():
    assert tolerant({"1": "b", "0": "a"}, LIST) == ["a", "b"]
    assert tolerant({"error": 110, "errorMsg": "x"}, LIST) == {"error": 110, "errorMsg": "x"}


def test_a_bom_and_whitespace_before_the_json_are_read_past():
    assert parse(b"\xef\xbb\xbf \r\n\t{\"a\": 1}") == {"a": 1}
    assert parse(b'{"m": "\\ud800"}') == {"m": "\ud800"}  # a lone surrogate: valid JSON that orjson refuses
    for broken in (b'{"total": 3, "conv', b"<html>502</html>", b"", b"\xef\xbb\xbf"):
        with pytest.raises(ValueError):
            parse(broken)


def test_the_body_is_parsed_once_and_is_what_the_filters_view_answers_the_response_left_untouched():
    r = response(b'\xef\xbb\xbf{"total": "1", "page": "1", "data": {"0": {"messageId": "a1"}}}')
    r.content  # noqa: B018  (requests notes that it was read)
    attributes = dict(r.__dict__)
    body = body_of(r, SYNC, ENVELOPE)
    assert body == {"total": 1, "page": 1, "conversation": [{"messageId": "a1"}]}
    assert body_of(r, SYNC, ENVELOPE) is body
    view = parsed_view(r, SYNC, ENVELOPE)
    assert view.json() is body and body_of(view, SYNC) is body
    assert (view.status_code, view.content, view.headers) == (200, r.content, r.headers)
    # nothing is put on the CDK's response: its json() is requests' own, of the body as sent
    assert r.__dict__ == attributes
    assert r.json() == {"total": "1", "page": "1", "data": {"0": {"messageId": "a1"}}}

    cut = response(b'{"total": 1, "pa')
    assert body_of(cut, SYNC, ENVELOPE) is NOT_JSON
    with pytest.raises(requests.exceptions.JSONDecodeError):  # as `requests` says it: the CDK's callers give {}
        parsed_view(cut, SYNC, ENVELOPE).json()


def test_a_body_is_kept_only_as_long_as_its_response():
    r = response(b'{"total": 0, "page": 1, "conversation": []}')
    body_of(r, SYNC, ENVELOPE)
    assert r in SYNC.bodies
    gone = weakref.ref(r)
    del r
    gc.collect()
    assert gone() is None  # the cache does not keep a response alive


def test_what_came_is_described_by_keys_and_types_never_values():
    body = {"total": 3, "secret": "the text", "items": [{"message": "hi"}], "ok": True, "none": None, "obj": {"a": 1}}
    assert describe(body) == (
        "an object with keys total (number), secret (string), items (array), ok (boolean), none (null), obj (object)"
    )
    assert describe([1]) == "array" and describe("x") == "string" and describe({}) == "an empty object"
    assert describe(NOT_JSON) == "not JSON"
    many = describe({f"k{i}": i for i in range(20)})
    assert many.endswith("k11 (number), ...") and "k12" not in many


def test_an_empty_list_under_another_key_is_no_page_of_messages():
    # read as an empty page 2 of 4135 messages, the paging would go on to page 3 past 2000 unseen
    body = {"total": 4135, "page": 2, "warnings": []}
    assert tolerant(dict(body), ENVELOPE) == body
    assert tolerant({"total": 0, "page": 1, "data": []}, ENVELOPE) == {"total": 0, "page": 1, "conversation": []}
