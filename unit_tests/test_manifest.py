"""Each behaviour of the manifest, in-process, with the CDK's HttpMocker."""

import json
from unittest import TestCase
from unittest.mock import patch

import requests
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read
from airbyte_cdk.test.mock_http import HttpMocker, HttpResponse
from airbyte_cdk.test.state_builder import StateBuilder

from source_smstools import SourceSmstools
from source_smstools.components import pages
from source_smstools.components.state import phone_cursors
from unit_tests.mock_server.request_builder import ConversationRequestBuilder
from unit_tests.mock_server.response_builder import ConversationResponseBuilder

BASE = "https://api.example.test"
PHONE = "+393331234567"
CONFIG = {"client_id": "id-1", "client_secret": "secret-1", "phone_numbers": [PHONE], "base_url": BASE,
          "page_size": 2}
HEADERS = {"X-Client-Id": "id-1", "X-Client-Secret": "secret-1"}


def message(ts, **extra):
    return {"messageId": f"m{ts}", "direction": "outbound", "sender": "Smstools", "receiver": PHONE[1:], "message": "ciao",
            "file": None, "datetime": "x", "unixDatetime": ts, "deliveryStatus": "DELIVERED", **extra}


def page(number, total, *timestamps, limit=2):
    """Page `number` of a conversation of `total` messages (mock_server's builders)."""
    return ConversationResponseBuilder.page(number, limit).with_messages([message(t) for t in timestamps]).with_total(total).build()


def request(page=None, limit=2):
    builder = ConversationRequestBuilder.of(PHONE).with_limit(limit)
    return (builder.with_page(page) if page is not None else builder).build()


def run(config=CONFIG, sync_mode=SyncMode.full_refresh, state=None):
    catalog = CatalogBuilder().with_stream("conversation", sync_mode).build()
    state = StateBuilder().with_stream_state("conversation", state).build() if state is not None else None
    return read(SourceSmstools(catalog=catalog, config=config, state=state), config, catalog, state)


class ManifestTest(TestCase):
    def setUp(self):
        # retries wait 10 s, 20 s, ... (the manifest's backoff): not in a unit test
        self.sleep = patch("time.sleep").start()
        self.addCleanup(patch.stopall)

    def waits(self):
        """The waits asked of time.sleep (the backoff library also asks for 0 s)."""
        return [c.args[0] for c in self.sleep.call_args_list if c.args and c.args[0]]

    @HttpMocker()
    def test_pages_follow_total_and_stop_without_an_empty_page(self, http_mocker):
        # the '+' is not part of the path; the headers carry the credentials
        http_mocker.get(request(), page(1, 4, 40, 30))
        http_mocker.get(request(2), page(2, 4, 20, 10))
        output = run()
        assert [r.record.data["unixDatetime"] for r in output.records] == [40, 30, 20, 10]
        assert [r.record.data["phone"] for r in output.records] == [PHONE] * 4

    @HttpMocker()
    def test_an_error_body_with_http_200_fails_as_a_config_error(self, http_mocker):
        http_mocker.get(request(), HttpResponse(json.dumps({"error": 104, "errorMsg": "Invalid credentials"}), 200))
        output = run()
        assert output.records == []
        assert output.errors[0].trace.error.failure_type.value == "config_error"
        assert "refused the credentials (error 104: Invalid credentials)" in output.errors[0].trace.error.message

    @HttpMocker()
    def test_a_broken_answer_is_retried_not_read_as_an_empty_page(self, http_mocker):
        http_mocker.get(request(), [
            HttpResponse('{"total": 3, "shown": 2, "page": 1, "conv', 200),
            HttpResponse("<html>502 Bad Gateway</html>", 200),
            page(1, 3, 30, 20),
        ])
        http_mocker.get(request(2), page(2, 3, 10))
        output = run()
        assert [r.record.data["unixDatetime"] for r in output.records] == [30, 20, 10]
        assert self.waits() == [11.0, 21.0]  # the manifest's backoff (10 s, 20 s, plus the CDK's second)

    @HttpMocker()
    def test_an_answer_of_an_unexpected_shape_fails_at_once_naming_keys_and_types(self, http_mocker):
        first = request()
        http_mocker.get(first, HttpResponse(json.dumps({"total": 3, "items": "ciao", "page": None}), 200))
        output = run()
        assert output.records == [] and self.waits() == []
        http_mocker.assert_number_of_calls(first, 1)  # not retried
        error = output.errors[0].trace.error
        assert error.failure_type.value == "system_error"
        assert error.message == (
            "Phone 393331234567, page 1 (HTTP 200): Smstools answered /v1/conversation/{phone} with JSON of an "
            "unexpected shape: expected an object with total (number), page (number) and conversation (array); "
            "came an object with keys total (number), items (string), page (null)."
        )

    @HttpMocker()
    def test_a_page_written_the_php_way_is_read_as_the_documented_one(self, http_mocker):
        # numbers as strings, a UTF-8 BOM, the list as an object with gaps in its keys, under another key
        def php(number, *timestamps):
            items = {str(i * 3): message(t, unixDatetime=str(t)) for i, t in enumerate(timestamps)}
            body = {"total": "3", "shown": str(len(timestamps)), "page": str(number), "limit": "2", "data": items}
            return HttpResponse("\ufeff" + json.dumps(body), 200)

        http_mocker.get(request(), php(1, 30, 20))
        http_mocker.get(request(2), php(2, 10))
        output = run()
        assert [r.record.data["unixDatetime"] for r in output.records] == [30, 20, 10]
        assert self.waits() == []

    @HttpMocker()
    def test_server_error_105_is_retried(self, http_mocker):
        http_mocker.get(request(), [HttpResponse(json.dumps({"error": 105, "errorMsg": "Server error"}), 200), page(1, 1, 30)])
        assert [r.record.data["unixDatetime"] for r in run().records] == [30]

    @HttpMocker()
    def test_incremental_stops_paging_at_the_cursor(self, http_mocker):
        # page 2 reaches the cursor (25, the message synced last, then an older one): page 3 is
        # never asked for
        http_mocker.get(request(), page(1, 6, 50, 40))
        http_mocker.get(request(2), page(2, 6, 25, 20))
        state = {"use_global_cursor": False, "states": [{"partition": {"phone": PHONE}, "cursor": {"unixDatetime": "25"}}]}
        output = run(sync_mode=SyncMode.incremental, state=state)
        assert [r.record.data["unixDatetime"] for r in output.records] == [50, 40, 25]
        final = output.state_messages[-1].state.stream.stream_state.__dict__
        assert final["use_global_cursor"] is True and "states" not in final  # the CDK's one cursor; the phones', the book's
        assert phone_cursors(final) == {PHONE: 50}

    @HttpMocker()
    def test_without_lookback_one_page_reaches_the_cursor(self, http_mocker):
        http_mocker.get(request(), page(1, 6, 50, 40))
        state = {"use_global_cursor": False, "states": [{"partition": {"phone": PHONE}, "cursor": {"unixDatetime": str(25 + 86_400)}}]}
        assert run(sync_mode=SyncMode.incremental, state=state).records == []

    @HttpMocker()
    def test_lookback_reads_back_that_many_days_before_the_cursor(self, http_mocker):
        http_mocker.get(request(), page(1, 6, 50, 40))
        http_mocker.get(request(2), page(2, 6, 30, 20))
        state = {"use_global_cursor": False, "states": [{"partition": {"phone": PHONE}, "cursor": {"unixDatetime": str(25 + 86_400)}}]}
        output = run(config={**CONFIG, "lookback_window_days": 1}, sync_mode=SyncMode.incremental, state=state)
        assert [r.record.data["unixDatetime"] for r in output.records] == [50, 40, 30]


class OneParseTest(TestCase):
    def setUp(self):
        self.sleep = patch("time.sleep").start()
        self.addCleanup(patch.stopall)

    @HttpMocker()
    def test_each_answer_is_parsed_once_for_every_filter_extractor_and_paginator(self, http_mocker):
        http_mocker.get(request(), page(1, 3, 30, 20))
        http_mocker.get(request(2), page(2, 3, 10))
        parses = patch.object(pages, "parse", side_effect=pages.parse).start()
        # requests' own json(), which each filter used to call (a stdlib parse of the page each time)
        requests_json = patch.object(requests.Response, "json", autospec=True, side_effect=requests.Response.json).start()
        output = run()
        assert [r.record.data["unixDatetime"] for r in output.records] == [30, 20, 10]
        assert parses.call_count == 2 and requests_json.call_count == 0  # one parse per page, nothing else

    @HttpMocker()
    def test_a_filter_added_to_the_manifest_sees_every_whole_page(self, http_mocker):
        # no Python fast path accepts a page before the manifest's filters have looked at it
        from airbyte_cdk.utils.yaml_loader import safe_load_yaml

        from source_smstools.source import MANIFEST

        manifest = safe_load_yaml(MANIFEST.read_text())
        manifest["definitions"]["requester"]["error_handler"]["response_filters"].insert(0, {
            "type": "HttpResponseFilter", "predicate": "{{ response.total > 2 and response.page == 2 }}",
            "action": "FAIL", "error_message": "page 2 of a long conversation, refused by a new filter"})
        http_mocker.get(request(), page(1, 3, 30, 20))
        http_mocker.get(request(2), page(2, 3, 10))
        catalog = CatalogBuilder().with_stream("conversation", SyncMode.full_refresh).build()
        with patch.object(SourceSmstools, "_read_and_parse_yaml_file", return_value=manifest):
            source = SourceSmstools(catalog=catalog, config=CONFIG)
        output = read(source, CONFIG, catalog)
        # page 1's last second (20) waits for page 2 to show whether it goes on: the read failed first
        assert [r.record.data["unixDatetime"] for r in output.records] == [30]
        assert output.errors[0].trace.error.message == (
            "Phone 393331234567, page 2 (HTTP 200): page 2 of a long conversation, refused by a new filter")


def test_the_inbox_and_message_log_dates_are_read_with_one_list_of_forms():
    import yaml

    from source_smstools.components import sources
    from source_smstools.source import MANIFEST

    manifest = yaml.safe_load(open(MANIFEST))
    assert tuple(manifest["definitions"]["date_cursor"]["cursor_datetime_formats"]) == sources.DATE_FORMATS
    # each form, as change detection reads it: a zone where one is given, else UTC
    assert [sources.parse_date(v) for v in (
        "2025-06-05 08:44:46", "2025-06-05T08:44:46Z", "2025-06-05T10:44:46+02:00", "2025-06-05T08:44:46",
        "05 Jun 2025, 08:44:46", "2025-06-05",
    )] == [1749113086, 1749113086, 1749113086, 1749113086, 1749113086, 1749081600]
