"""The conversation stream against mocked answers (HttpMocker fails a test on any request it was
not told of, and on a mocked one not made): the requests, records and state of each finding."""

from __future__ import annotations

from unittest import TestCase

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read
from airbyte_cdk.test.mock_http import HttpMocker
from freezegun import freeze_time

from source_smstools import SourceSmstools
from unit_tests.mock_server.record_builder import MessageBuilder, messages
from unit_tests.mock_server.request_builder import ConversationRequestBuilder, config
from unit_tests.mock_server.response_builder import ConversationResponseBuilder
from source_smstools.components.state import phone_cursors

PHONE = "+393331234567"
NOW = "2026-12-01T09:00:00Z"  # 1796115600: the sync's clock


def request(page=None, limit=3):
    builder = ConversationRequestBuilder.of(PHONE).with_limit(limit)
    return (builder.with_page(page) if page else builder).build()


def answer(page, times, prefix="m", total=None, limit=3):
    response = ConversationResponseBuilder.page(page, limit).with_messages(messages(prefix, times))
    return (response.with_total(total) if total is not None else response).build()


def sync(state=None, **overrides):
    catalog = CatalogBuilder().with_stream("conversation", SyncMode.incremental).build()
    cfg = config(phone_numbers=[PHONE], page_size=3, **overrides)
    return read(SourceSmstools(catalog=catalog, config=cfg, state=state), cfg, catalog, state)


def ids(output):
    return [r.record.data["id"] for r in output.records]


def cursor(output):
    return str(phone_cursors(output.state_messages[-1].state.stream.stream_state.__dict__)[PHONE])


def warnings(output):
    return [log.log.message for log in output.logs if log.log.level.value == "WARN"]


@freeze_time(NOW)
class ConversationPagingTest(TestCase):
    @HttpMocker()
    def test_pages_are_read_to_the_total_with_no_request_for_an_empty_page(self, http_mocker):
        http_mocker.get(request(), answer(1, [60, 50, 40], "a", total=6))
        http_mocker.get(request(2), answer(2, [30, 20, 10], "b", total=6))
        output = sync()
        assert ids(output) == ["a0", "a1", "a2", "b0", "b1", "b2"]
        assert cursor(output) == "60" and warnings(output) == []

    @HttpMocker()
    def test_an_incremental_read_stops_at_the_page_that_holds_the_cursors_message_and_an_older_one(self, http_mocker):
        http_mocker.get(request(), answer(1, [90, 80, 70], "a", total=12))
        http_mocker.get(request(2), answer(2, [60, 50, 40], "b", total=12))  # no request for page 3
        output = sync(sync_state(50))
        assert ids(output) == ["a0", "a1", "a2", "b0", "b1"]  # 50, at the cursor, again (inclusive)
        assert cursor(output) == "90"

    @HttpMocker()
    def test_one_older_message_after_newer_ones_is_no_proof_and_the_read_goes_on(self, http_mocker):
        http_mocker.get(request(), answer(1, [90, 80, 70], "a", total=12))
        http_mocker.get(request(2), answer(2, [60, 55, 40], "b", total=12))  # 40 could be out of order
        http_mocker.get(request(3), answer(3, [30, 20, 10], "c", total=12))  # no request for page 4
        output = sync(sync_state(50))
        assert ids(output) == ["a0", "a1", "a2", "b0", "b1"]
        assert cursor(output) == "90"

    @HttpMocker()
    def test_one_message_older_than_the_cursor_at_the_end_of_a_page_does_not_stop_the_read(self, http_mocker):
        # 5 is out of order: the messages after it are newer than the cursor
        http_mocker.get(request(), answer(1, [90, 80, 5], "a", total=12))
        http_mocker.get(request(2), answer(2, [70, 60, 50], "b", total=12))
        http_mocker.get(request(3), answer(3, [40, 30, 20], "c", total=12))
        output = sync(sync_state(50))
        # 5 held back until 70 showed it out of order; 40 .. 20 held back, then dropped at the stop
        assert ids(output) == ["a0", "a1", "a2", "b0", "b1", "b2"]
        assert cursor(output) == "90"

    @HttpMocker()
    def test_a_message_with_a_future_time_passes_with_an_empty_time_and_the_cursor_stays_short_of_it(self, http_mocker):
        http_mocker.get(request(), answer(1, [4_102_444_800, 50, 40], "a"))
        output = sync()
        assert ids(output) == ["a0", "a1", "a2"]
        assert "unixDatetime" not in output.records[0].record.data  # null: left out by the serializer
        assert output.records[0].record.data["datetime"] == "05 jun 2025, 08:44:46"
        assert cursor(output) == "50"
        assert warnings(output) == [
            "Phone 393331234567: messages whose time cannot place them: 1 with a unixDatetime later than the sync's "
            "clock (passed with unixDatetime empty). They are synced, and the phone's cursor does not move past them."
        ]

    @HttpMocker()
    def test_an_api_that_answers_page_1_for_page_2_is_read_in_one_answer_when_the_conversation_fits(self, http_mocker):
        http_mocker.get(request(), answer(1, [60, 50, 40], "a", total=5))
        http_mocker.get(request(2), answer(1, [60, 50, 40], "a", total=5))
        http_mocker.get(request(1, limit=2000), ConversationResponseBuilder.page(1, 2000).with_messages(
            messages("a", [60, 50, 40]) + messages("b", [30, 20])).build())
        output = sync()
        assert ids(output) == ["a0", "a1", "a2", "b0", "b1"] and cursor(output) == "60"
        assert output.errors == []
        assert warnings(output) == [
            "Phone 393331234567: the answer says it is page 1, not the page asked for: the conversation was read in one "
            "answer of 2000."
        ]

    @HttpMocker()
    def test_an_empty_page_ends_the_read_with_a_warning_when_the_total_promised_more(self, http_mocker):
        http_mocker.get(request(), answer(1, [60, 50, 40], "a", total=1_000_000_000))
        http_mocker.get(request(2), answer(2, [], total=1_000_000_000))
        output = sync()
        assert ids(output) == ["a0", "a1", "a2"] and cursor(output) == "60"
        assert warnings(output) == [
            "Phone 393331234567: an empty page (page 2), where the conversation's total promised more; the read ends there."
        ]

    @HttpMocker()
    def test_a_shrink_is_settled_by_a_page_that_holds_both_sides_of_the_boundary(self, http_mocker):
        http_mocker.get(request(), answer(1, [60, 50, 40], "a", total=7))
        # 60 was deleted after page 1: 30 moved onto page 1, and page 2 starts at 20
        http_mocker.get(request(2), answer(2, [20, 10, 9], "c", total=6))
        # the seconds on both sides of the boundary (40 and 20) and what moved in between, with their
        # neighbours and a margin: positions 0 .. 7, one page of 8
        http_mocker.get(request(1, limit=8), ConversationResponseBuilder.page(1, 8).with_messages(
            [MessageBuilder("a1", 50).build(), MessageBuilder("a2", 40).build(), MessageBuilder("b0", 30).build(),
             MessageBuilder("c0", 20).build(), MessageBuilder("c1", 10).build(), MessageBuilder("c2", 9).build()]
        ).with_total(6).build())
        # the total changed: it says nothing of the end any more, an empty page does
        http_mocker.get(request(3), answer(3, [], total=6))
        # `total` fell: what was passed is checked against the conversation in one answer of 2000
        http_mocker.get(request(1, limit=2000), ConversationResponseBuilder.page(1, 2000).with_messages(
            [MessageBuilder("a1", 50).build(), MessageBuilder("a2", 40).build(), MessageBuilder("b0", 30).build(),
             MessageBuilder("c0", 20).build(), MessageBuilder("c1", 10).build(), MessageBuilder("c2", 9).build()]
        ).with_total(6).build())
        output = sync()
        assert ids(output) == ["a0", "a1", "c1", "a2", "b0", "c0", "c2"]
        assert cursor(output) == "60"

    @HttpMocker()
    def test_a_second_cut_by_the_boundary_is_read_again_whole(self, http_mocker):
        http_mocker.get(request(), answer(1, [60, 50, 50], "a", total=6))
        http_mocker.get(request(2), answer(2, [50, 40, 30], "b", total=6))
        # 50's messages (positions 1 .. 3), with 60 and 40 around them and a margin: one page of 7
        http_mocker.get(request(1, limit=7), ConversationResponseBuilder.page(1, 7).with_messages(
            [MessageBuilder("a0", 60).build(), MessageBuilder("x", 50).build(), MessageBuilder("a2", 50).build(),
             MessageBuilder("a1", 50).build(), MessageBuilder("b0", 50).build(), MessageBuilder("b1", 40).build(),
             MessageBuilder("b2", 30).build()]).with_total(7).build())
        output = sync()
        # x was on neither page as they were answered (the order within 50 changed)
        assert ids(output) == ["a0", "b1", "x", "a2", "a1", "b0", "b2"]

    @HttpMocker()
    def test_a_byte_that_is_not_utf8_is_read_as_the_latin_1_text_it_was(self, http_mocker):
        page = ConversationResponseBuilder.page(1, 3).with_messages(
            [MessageBuilder("a0", 60).with_text("caffè").build()]
        ).with_bytes_replaced("è".encode(), b"\xe8")
        http_mocker.get(request(), page.build())
        output = sync()
        assert [r.record.data["message"] for r in output.records] == ["caffè"]  # as it was written
        assert warnings(output) == [
            "Phone 393331234567, page 1: the answer holds bytes that are not UTF-8; they are read as Windows-1252 (Latin-1)."
        ]


def sync_state(at: int) -> list:
    from airbyte_cdk.test.state_builder import StateBuilder

    return StateBuilder().with_stream_state(
        "conversation", {"states": [{"partition": {"phone": PHONE}, "cursor": {"unixDatetime": str(at)}}]}
    ).build()
