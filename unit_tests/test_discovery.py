"""Phone discovery and the skipping of unavailable streams, in-process: the normalisation, the
partition router over mocked contacts / inbox / message log, the error handler, the state
migration past the per-phone limit."""

import json
from unittest import TestCase

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import requests
from airbyte_cdk.models import SyncMode
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ResponseAction
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read
from airbyte_cdk.test.mock_http import HttpMocker, HttpRequest, HttpResponse

from source_smstools import SourceSmstools
from source_smstools.components.discovery import ALONE, grouped, normalize_phone
from source_smstools.components.errors import SkipUnavailableStream
from source_smstools.components.book import Book
from source_smstools.components.state import PerPhoneState, phone_cursors

BASE = "https://api.example.test"
CONFIG = {"client_id": "id-1", "client_secret": "secret-1", "base_url": BASE}
HEADERS = {"X-Client-Id": "id-1", "X-Client-Secret": "secret-1"}


@pytest.mark.parametrize(
    "given, normal",
    [
        ("+393331234567", "393331234567"),
        ("393331234567", "393331234567"),
        ("00393331234567", "393331234567"),
        ("+39 333 123 4567", "393331234567"),
        ("+39-333-123-4567", "393331234567"),
        ("0039 (333) 123.45.67", "393331234567"),
        ("+44 (0)20 7946 0958", "442079460958"),
        ("\u00a0+32\u00a0470 12 34 56 ", "32470123456"),
        (393331234567, "393331234567"),
        ("0471234567", "0471234567"),  # national: its country cannot be known, the digits stay
        ("", None),
        (None, None),
        (True, None),
        ("n/d", None),
        ("Smstools", None),
        ("12345", None),  # a short code, not a phone
        ("+1234567890123456", None),  # 16 digits
        ("+39 333 123 4567 ext 2", None),
        ("٣٣٣١٢٣٤٥٦٧", None),  # digits, but not ASCII ones
    ],
)
def test_normalize_phone(given, normal):
    assert normalize_phone(given) == normal


def envelope(key, items, page=1, limit=2000, total=None):
    total = len(items) if total is None else total
    return HttpResponse(json.dumps({"total": total, "shown": len(items), "page": page, "limit": limit, key: items}), 200)


def get(path, **params):
    return HttpRequest(f"{BASE}{path}", query_params={"limit": "2000", **params}, headers=HEADERS)


def conversation(digits, *timestamps):
    messages = [{"messageId": f"{digits}-{t}", "direction": "outbound", "sender": "Smstools", "receiver": digits,
                 "message": "ciao", "file": None, "datetime": "x", "unixDatetime": t, "deliveryStatus": "DELIVERED"}
                for t in timestamps]
    return HttpResponse(json.dumps({"total": len(messages), "shown": len(messages), "page": 1, "limit": 2000, "conversation": messages}), 200)


def run(config):
    catalog = CatalogBuilder().with_stream("conversation", SyncMode.incremental).build()
    return read(SourceSmstools(catalog=catalog, config=config, state=None), config, catalog, None)


class DiscoveryTest(TestCase):
    def mock_sources(self, http_mocker):
        http_mocker.get(get("/v1/contact"), envelope("contacts", [
            {"ID": 1, "phone": "+39 333 123 4567"}, {"ID": 2, "phone": ""}, {"ID": 3, "phone": None}, {"ID": 4},
        ]))
        http_mocker.get(get("/v1/message/inbox"), envelope("messages", [
            {"ID": 7, "sender": "00393331234567", "receiver": "393278800100"}, {"ID": 8, "sender": "32470123456"},
        ]))
        http_mocker.get(get("/v1/message/logging"), envelope("messages", [
            {"ID": 9, "to": "+49 151 12345678", "sender": "Smstools"}, {"ID": 10, "to": "+32-470-12-34-56"},
        ]))

    @HttpMocker()
    def test_each_phone_found_is_read_once_in_one_form(self, http_mocker):
        self.mock_sources(http_mocker)
        http_mocker.get(get("/v1/conversation/393331234567"), conversation("393331234567", 30, 20))
        http_mocker.get(get("/v1/conversation/32470123456"), conversation("32470123456", 10))
        http_mocker.get(get("/v1/conversation/4915112345678"), conversation("4915112345678", 5))
        output = run(CONFIG)
        assert sorted((r.record.data["phone"], r.record.data["unixDatetime"]) for r in output.records) == [
            ("32470123456", 10), ("393331234567", 20), ("393331234567", 30), ("4915112345678", 5),
        ]
        # HttpMocker fails the test on any request it was not told of, and on a mocked one not made
        final = output.state_messages[-1].state.stream.stream_state.__dict__
        assert phone_cursors(final) == {"32470123456": 10, "393331234567": 30, "4915112345678": 5}

    @HttpMocker()
    def test_sources_can_be_chosen(self, http_mocker):
        http_mocker.get(get("/v1/message/logging"), envelope("messages", [{"ID": 9, "to": "+49 151 12345678"}]))
        http_mocker.get(get("/v1/conversation/4915112345678"), conversation("4915112345678", 5))
        output = run({**CONFIG, "phone_sources": ["message_log"]})
        assert [r.record.data["phone"] for r in output.records] == ["4915112345678"]

    @HttpMocker()
    def test_listed_phones_are_read_as_given_and_nothing_is_discovered(self, http_mocker):
        http_mocker.get(get("/v1/conversation/393331234567"), conversation("393331234567", 30))
        output = run({**CONFIG, "phone_numbers": ["+393331234567"]})
        assert [r.record.data["phone"] for r in output.records] == ["+393331234567"]

    @HttpMocker()
    def test_a_source_on_two_pages_is_read_whole(self, http_mocker):
        def one(path, **params):
            return HttpRequest(f"{BASE}{path}", query_params={"limit": "1", **params}, headers=HEADERS)

        http_mocker.get(one("/v1/contact"), envelope("contacts", [{"ID": 1, "phone": "+32470123456"}], total=2, limit=1))
        http_mocker.get(one("/v1/contact", page="2"), envelope("contacts", [{"ID": 2, "phone": "+32470123457"}], page=2, total=2, limit=1))
        http_mocker.get(one("/v1/conversation/32470123456"), conversation("32470123456", 10))
        http_mocker.get(one("/v1/conversation/32470123457"), conversation("32470123457", 11))
        output = run({**CONFIG, "phone_sources": ["contacts"], "page_size": 1})
        assert sorted(r.record.data["phone"] for r in output.records) == ["32470123456", "32470123457"]


def response(status, body, url=f"{BASE}/v1/contact?limit=2000"):
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(body).encode()
    r.request = requests.Request("GET", url).prepare()
    return r


def handler():
    from airbyte_cdk.sources.declarative.requesters.error_handlers import HttpResponseFilter

    skip = HttpResponseFilter(config={}, parameters={}, http_codes={403}, predicate="{{ response.error is defined }}",
                              action="IGNORE", error_message="Smstools does not let this account read /v1/contact")
    return SkipUnavailableStream(config={}, parameters={}, response_filters=[skip])


def test_a_refusal_on_the_first_page_skips_the_stream_with_one_warning(caplog):
    h = handler()
    for _ in range(2):
        assert h.interpret_response(response(403, {"error": 403, "errorMsg": "Forbidden"})).response_action == ResponseAction.IGNORE
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["Smstools does not let this account read /v1/contact"]


def test_a_refusal_after_the_first_page_fails_rather_than_losing_the_rest():
    resolution = handler().interpret_response(response(200, {"error": 110, "errorMsg": "x"}, f"{BASE}/v1/contact?limit=2&page=3"))
    assert resolution.response_action == ResponseAction.FAIL
    assert "page 3" in resolution.error_message


def test_a_good_page_is_a_success():
    assert handler().interpret_response(response(200, {"total": 0, "page": 1, "contacts": []})).response_action == ResponseAction.SUCCESS


def test_the_cdks_one_cursor_state_past_the_phone_limit_starts_every_phone_there_once():
    state = {"use_global_cursor": True, "state": {"unixDatetime": "1749113086"}, "lookback_window": 12}
    migration = PerPhoneState(config={})
    assert migration.migrate(state) == {"use_global_cursor": True, "parent_state": {"changes": {"default": 1749113086, "book": Book().encode()}}}
    assert migration._part.saved.default == 1749113086


def test_read_for_discovery_a_refusal_is_a_source_that_cannot_be_read(caplog):
    from source_smstools.components.errors import SourceUnreadable

    h = handler()
    h._parameters["discovery"] = True  # as the manifest's `discovery` router gives it to its sources
    with pytest.raises(SourceUnreadable) as error:
        h.interpret_response(response(403, {"error": 403, "errorMsg": "Forbidden"}))
    assert error.value.message == "Smstools does not let this account read /v1/contact"
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []  # the router says it, once


# -- several phones a partition (discovery.grouped) ------------------------------------------------

@pytest.mark.parametrize("phones, partitions, largest", [
    (5_000, 5_000, 1), (5_003, 5_002, 2), (20_000, 10_418, 4), (100_000, 17_991, 20), (1_000_000, 29_394, 200),
])
def test_phones_go_one_a_partition_then_more_a_partition_as_they_grow(phones, partitions, largest):
    groups = list(grouped(range(phones), ALONE))
    assert (len(groups), max(map(len, groups))) == (partitions, largest)
    assert groups[-1] == [phones - 1]  # the last alone


def test_the_first_partitions_of_a_few_phones():
    assert list(grouped("abcdefg", 2)) == [["a"], ["b"], ["c", "d"], ["e", "f"], ["g"]]
    assert list(grouped("", 2)) == [] and list(grouped("a", 2)) == [["a"]]


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(n=st.integers(0, 3_000), alone=st.integers(1, 400))
def test_grouped_hands_out_every_phone_once_in_order_the_last_alone_and_few_partitions(n, alone):
    groups = list(grouped(range(n), alone))
    assert [p for g in groups for p in g] == list(range(n))
    assert n == 0 or groups[-1] == [n - 1]
    handed = 0
    for group in groups[:-1]:
        assert 1 <= len(group) <= 1 + handed // alone  # as many as said, never more
        handed += len(group)
    # one more a partition for each further `alone`: alone × (1 + 1/2 + ... + 1/k) partitions, and the last
    k = -(-n // alone)
    assert len(groups) <= alone * sum(1 / j for j in range(1, k + 1)) + k + 1
