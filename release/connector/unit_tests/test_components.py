"""The shipped components.py on its own (no emulator, no network): the API's answers are
requests-mock's, the source is the manifest with components.py injected."""

import json
import tempfile
from pathlib import Path
from typing import Any, Dict, List

import orjson
import pytest
from airbyte_cdk.models import AirbyteMessageSerializer, Status, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, _run_command, discover, read

API = "https://api.smsgatewayapi.com/v1"
CONFIG = {"client_id": "test-client", "client_secret": "test-secret-7d1e", "phone_numbers": ["+39 333 100 0000"]}


def message(seconds: int, direction: str = "inbound", **fields: Any) -> Dict[str, Any]:
    return {
        "messageId": None if direction == "inbound" else f"m{seconds}",
        "direction": direction,
        "sender": "393331000000" if direction == "inbound" else "Shop",
        "receiver": "Shop" if direction == "inbound" else "393331000000",
        "message": f"text {seconds}",
        "file": None,
        "datetime": "",
        "unixDatetime": seconds,
        "deliveryStatus": "DELIVERED",
        **fields,
    }


def answer(key: str, items: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"total": len(items), "shown": len(items), "page": 1, "limit": 1000, key: items}


def conversation_catalog():
    stream = ConfiguredAirbyteStreamBuilder().with_name("conversation").with_sync_mode(SyncMode.incremental)
    return CatalogBuilder().with_stream(stream).build()


def served(requests_mock) -> List[str]:
    return [f"{r.path} page={r.qs.get('page', ['1'])[0]}" for r in requests_mock.request_history]


@pytest.mark.parametrize(
    "typed, one_form",
    [("+39 333 100 0000", "393331000000"), ("0039-333-100-0000", "393331000000"), ("393331000000", "393331000000"), ("Shop", None), ("12345", None)],
)
def test_phone_numbers_are_brought_to_one_form(components_module, typed, one_form):
    assert components_module.normalize_phone(typed) == one_form


@pytest.mark.parametrize(
    "date",
    ["2025-06-05 08:44:46", "2025-06-05T08:44:46Z", "2025-06-05T10:44:46+02:00", "2025-06-05T08:44:46", "05 Jun 2025, 08:44:46"],
)
def test_every_date_form_of_the_inbox_and_the_log_is_read_as_utc(components_module, date):
    assert components_module.parse_date(date) == 1_749_113_086
    assert components_module.parse_date("5 June") is None


def test_the_manifest_lists_the_date_forms_that_change_detection_reads(components_module, manifest):
    assert tuple(manifest["definitions"]["date_cursor"]["cursor_datetime_formats"]) == components_module.DATE_FORMATS


def test_a_sync_reads_each_message_once_and_the_next_sync_reads_no_page_again(requests_mock, source):
    messages = [message(1_749_113_086, "outbound"), message(1_749_100_000)]
    requests_mock.get(f"{API}/message/inbox", json=answer("messages", []))
    requests_mock.get(f"{API}/message/logging", json=answer("messages", []))
    requests_mock.get(f"{API}/conversation/393331000000", json=answer("conversation", messages))

    first = read(source(CONFIG), CONFIG, conversation_catalog())
    assert first.errors == []
    records = [r.record.data for r in first.records]
    assert [(r["phone"], r["id"], r["datetime_utc"]) for r in records] == [
        ("+393331000000", "m1749113086", "2025-06-05T08:44:46Z"),
        ("+393331000000", records[1]["id"], "2025-06-05T05:06:40Z"),
    ]
    assert len(records[1]["id"]) == 33 and records[1]["id"].startswith("h")  # no messageId: a hash
    assert sorted(served(requests_mock)) == [
        "/v1/conversation/393331000000 page=1", "/v1/message/inbox page=1", "/v1/message/logging page=1",
    ]

    requests_mock.reset_mock()
    state = [first.state_messages[-1].state]
    second = read(source(CONFIG, state), CONFIG, conversation_catalog(), state)
    assert second.errors == [] and second.records == []
    # nothing moved in the inbox or the message log: the conversation is not asked for
    assert sorted(served(requests_mock)) == ["/v1/message/inbox page=1", "/v1/message/logging page=1"]


def check(source, config) -> EntrypointOutput:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.json"
        path.write_text(json.dumps(config))
        return _run_command(source, ["check", "--config", str(path)])


def test_refused_credentials_fail_the_check_without_showing_the_secret(requests_mock, source):
    refused = {"error": 104, "errorMsg": "Invalid credentials"}
    for path in ("message/inbox", "message/logging", "conversation/393331000000"):
        requests_mock.get(f"{API}/{path}", json=refused)
    output = check(source(CONFIG), CONFIG)
    (status,) = output.connection_status_messages
    assert status.connectionStatus.status == Status.FAILED
    assert status.connectionStatus.message == (
        "'Stream conversation is not available: Smstools refused the credentials (error 104: Invalid credentials). "
        "Check the Client ID and Client Secret under Advanced > API authentication.'"
    )
    assert served(requests_mock) == ["/v1/message/inbox page=1"]  # one refused answer: no request after it
    shown = "\n".join(orjson.dumps(AirbyteMessageSerializer.dump(m)).decode() for m in output.get_message_iterator())
    assert "test-secret-7d1e" not in shown


def test_discover_lists_the_conversation_stream_incremental_on_unix_datetime(source):
    catalog = discover(source(CONFIG), CONFIG).catalog.catalog
    (conversation,) = [s for s in catalog.streams if s.name == "conversation"]
    assert conversation.default_cursor_field == ["unixDatetime"] and conversation.source_defined_primary_key == [["id"]]
