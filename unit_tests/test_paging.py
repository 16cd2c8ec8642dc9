"""The paging's decisions tested directly (components/paging.py), and the conversation's error
handler as the CDK tests its DefaultErrorHandler: one answer in, one resolution out."""

from __future__ import annotations

import json

import pytest
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ResponseAction
from airbyte_cdk.sources.types import StreamSlice

from source_smstools.components.context import Sync
from source_smstools.components.errors import ConversationErrorHandler
from source_smstools.components.pages import body_of
from source_smstools.components.paging import (
    READS,
    ConversationPages,
    MessageTimes,
    PagingError,
    messages_to_pass,
    stops_early,
    window,
)
from unit_tests.mock_server.record_builder import MessageBuilder, messages

URL = "https://api.example.test/v1/conversation/393331234567?limit=3"
PARAMETERS = {"shape": "envelope", "records_key": "conversation"}
SYNC = Sync()
SLICE = StreamSlice(partition={"phone": "+393331234567"}, cursor_slice={"start_time": "50", "end_time": "1000"})


def answer(page, times, total=None, prefix="m", limit=3, status=200, given=None):
    r = requests.Response()
    r.status_code = status
    listed = given if given is not None else messages(prefix, times)
    body = {"total": len(listed) if total is None else total, "shown": len(listed), "page": page, "limit": limit,
            "conversation": listed}
    r._content = json.dumps(body).encode()
    url = URL if page == 1 and limit == 3 else f"{URL.replace('limit=3', f'limit={limit}')}&page={page}"
    r.request = requests.Request("GET", url).prepare()
    r.url = r.request.url
    return r


@pytest.fixture(autouse=True)
def no_reads_left():
    yield
    READS.end("393331234567")


# -- the early stop ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "times, stops",
    [
        ([90, 40, 30], True),  # newest first, the last two older than 50
        ([90, 60, 30], False),  # one older: it could be out of order
        ([90, 50, 30], True),  # 50 is the cursor's own message (inclusive): the read reached it
        ([90, 51, 30], False),  # one older after a newer one: it could be out of order
        ([40, 90, 30, 20], False),  # not newest first
        ([90, 30, 0, 20, -5], True),  # 0 and -5 say nothing: the last two usable are 30 and 20
        ([90, 30, 2000, 20], True),  # later than the clock (1000): says nothing
        ([90, 30, None], False),  # one usable older than 50 only
        ([30], False),
    ],
)
def test_a_page_stops_the_read_only_when_it_proves_the_rest_older(times, stops):
    assert stops_early([{"unixDatetime": t} for t in times], lower=50, upper=1000) is stops


def test_without_a_start_there_is_no_early_stop():
    assert stops_early([{"unixDatetime": t} for t in (3, 2, 1)], lower=None, upper=None) is False


@pytest.mark.parametrize("lo, hi, expected", [(0, 4, (1, 5)), (3, 5, (2, 3)), (198, 201, (34, 6)), (1995, 2004, (134, 15))])
def test_a_window_is_the_smallest_page_that_holds_the_positions_whole(lo, hi, expected):
    page, limit = window(lo, hi)
    assert (page, limit) == expected
    assert (page - 1) * limit <= lo and hi < page * limit


# -- what each answer holds -----------------------------------------------------------------------


def test_the_pages_of_a_well_behaved_api_are_passed_as_they_come():
    assert [m["messageId"] for m in messages_to_pass(URL, body_of(answer(1, [9, 8, 7], total=6), SYNC, PARAMETERS), 3)] == ["m0", "m1", "m2"]
    page2 = answer(2, [6, 5, 4], total=6, prefix="n")
    assert [m["messageId"] for m in messages_to_pass(page2.url, body_of(page2, SYNC, PARAMETERS), 3)] == ["n0", "n1", "n2"]
    assert READS.get("393331234567").reread is None


def test_the_last_page_seen_again_after_insertions_is_passed_once():
    page1 = messages("m", [9, 8, 7])
    messages_to_pass(URL, body_of(answer(1, [], total=6, given=page1), SYNC, PARAMETERS), 3)
    # one message arrived at the top: page 2 starts with page 1's last
    page2 = answer(2, [], total=7, given=[page1[2]] + messages("n", [6, 5]))
    passed = messages_to_pass(page2.url, body_of(page2, SYNC, PARAMETERS), 3)
    assert [(m["messageId"], m["unixDatetime"]) for m in passed] == [("n0", 6), ("n1", 5)]
    assert READS.get("393331234567").reread is None  # an insertion above: nothing to re-read


@pytest.mark.parametrize(
    "second, error",
    [
        (lambda: answer(1, [9, 8, 7], total=6), "the answer says it is page 1, not the page asked for"),
        (lambda: _as_page(answer(1, [9, 8, 7], total=6), 2), "the answer repeats page 1 (3 messages)"),
    ],
)
def test_an_answer_paging_cannot_go_on_from_fails_the_phone(second, error):
    messages_to_pass(URL, body_of(answer(1, [9, 8, 7], total=6), SYNC, PARAMETERS), 3)
    response = second()
    response.request = requests.Request("GET", f"{URL}&page=2").prepare()
    with pytest.raises(PagingError) as failure:
        messages_to_pass(response.request.url, body_of(response, SYNC, PARAMETERS), 3)
    assert failure.value.message == f"Phone 393331234567, page 2: {error}; its cursor stays where it was, the next sync reads it again."
    assert failure.value.failure_type == FailureType.system_error
    assert READS.get("393331234567") is None  # what the read remembered is dropped with it


def _as_page(response, page):
    body = json.loads(response.content)
    body["page"] = page
    response._content = json.dumps(body).encode()
    return response


def test_the_next_request_is_the_next_page_a_re_read_or_none():
    pages = ConversationPages(config={}, parameters=PARAMETERS, page_size=3)
    first = answer(1, [90, 80, 70], total=9)
    messages_to_pass(URL, body_of(first, SYNC, PARAMETERS), 3)
    assert pages.next_page_token(first, 3, None, stream_slice=SLICE) == {"page": 2, "limit": 3}
    tie = answer(2, [70, 60, 55], total=9, prefix="n")  # 70 on both sides of the boundary
    messages_to_pass(tie.url, body_of(tie, SYNC, PARAMETERS), 3)
    assert pages.next_page_token(tie, 3, None, stream_slice=SLICE) == {"page": 1, "limit": 5}  # positions 0 .. 4
    region = messages("m", [90, 80, 70]) + messages("n", [70, 60])
    again = answer(1, [], total=9, limit=5, given=region)
    assert messages_to_pass(again.url, body_of(again, SYNC, PARAMETERS), 3) == []  # 70's two, both passed already
    assert pages.next_page_token(again, 0, None, stream_slice=SLICE) == {"page": 3, "limit": 3}
    last = answer(3, [40, 30, 20], total=9, prefix="o")
    messages_to_pass(last.url, body_of(last, SYNC, PARAMETERS), 3)
    assert pages.next_page_token(last, 3, None, stream_slice=SLICE) is None
    assert READS.get("393331234567") is None


# -- what a message's time means ----------------------------------------------------------------


def test_messages_older_than_the_slice_are_dropped_and_odd_times_kept():
    records = [MessageBuilder("a", 2000).build(), MessageBuilder("b", 60).build(), MessageBuilder("c", 0).build(),
               MessageBuilder("d", 40).build(), MessageBuilder("e", -5).build(), MessageBuilder("f", 30).build(),
               MessageBuilder("g", None).without_time().build()]
    kept = list(MessageTimes(config={}, parameters={}).filter_records(records, {}, SLICE))
    assert [(r["messageId"], r.get("unixDatetime", "missing")) for r in kept] == [
        ("a", None), ("b", 60), ("c", 0), ("e", -5), ("g", "missing"),  # 40 and 30: older than 50
    ]


# -- the error handler ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, action, failure, message",
    [
        (200, None, ResponseAction.SUCCESS, None, None),
        (503, {"error": 105, "errorMsg": "busy"}, ResponseAction.RETRY, FailureType.transient_error,
         "Phone 393331234567, page 2 (HTTP 503): Smstools server error (error 105: busy)"),
        (200, {"total": 3, "page": 2}, ResponseAction.FAIL, FailureType.system_error, None),
    ],
)
def test_the_error_handler_names_phone_and_page(status, body, action, failure, message):
    from airbyte_cdk.sources.declarative.requesters.error_handlers import HttpResponseFilter

    filters = [
        HttpResponseFilter(config={}, parameters={}, predicate="{{ response.error == 105 }}", action="RETRY",
                           error_message="Smstools server error (error 105: {{ response.errorMsg }})"),
        HttpResponseFilter(config={}, parameters={}, predicate="{{ response.conversation is not defined }}", action="FAIL",
                           failure_type="system_error", error_message="no conversation"),
    ]
    handler = ConversationErrorHandler(config={}, parameters=PARAMETERS, response_filters=filters)
    response = answer(2, [6, 5, 4], total=6, status=status)
    if body is not None:
        response._content = json.dumps(body).encode()
    resolution = handler.interpret_response(response)
    assert resolution.response_action == action
    if failure:
        assert resolution.failure_type == failure
    if message:
        assert resolution.error_message == message
