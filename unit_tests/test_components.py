import time

import pytest
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components.records import MessageFields, iso_utc, message_id
from source_smstools.components.state import PerPhoneState, phone_cursors

INBOUND = {"messageId": None, "direction": "inbound", "sender": "32470123456", "receiver": "Smstools",
           "message": "Ciao!", "unixDatetime": 1749113086}


def test_message_id_prefers_the_api_id():
    assert message_id("+32470123456", {**INBOUND, "messageId": "abc"}) == "abc"
    assert message_id("+32470123456", {**INBOUND, "messageId": 123}) == "123"


def test_inbound_id_is_a_stable_hash_of_what_identifies_the_message():
    first = message_id("+32470123456", INBOUND)
    assert first == message_id("+32470123456", dict(reversed(list(INBOUND.items()))))
    assert first.startswith("h") and len(first) == 33
    for field, other in [("message", "Ciao"), ("unixDatetime", 1749113087), ("sender", "x"), ("receiver", "y"), ("direction", "outbound")]:
        assert message_id("+32470123456", {**INBOUND, field: other}) != first, field
    assert message_id("+32470123457", INBOUND) != first
    assert message_id("+32470123456", {**INBOUND, "messageId": ""}) == first


def test_iso_utc():
    assert iso_utc(1749113086) == "2025-06-05T08:44:46Z"
    assert iso_utc(0) is None and iso_utc(-5) is None  # no time: 0 and below are no moment of a message
    assert iso_utc(None) is None and iso_utc("soon") is None and iso_utc(True) is None
    assert iso_utc(10**20) is None


def test_message_fields_adds_phone_id_and_datetime():
    record = dict(INBOUND)
    MessageFields(parameters={}).transform(record, config={}, stream_slice=StreamSlice(partition={"phone": "+32470123456"}, cursor_slice={}))
    assert record["phone"] == "+32470123456"
    assert record["id"] == message_id("+32470123456", INBOUND)
    assert record["datetime_utc"] == "2025-06-05T08:44:46Z"


def test_message_fields_reads_a_numeric_string_time():
    record = {**INBOUND, "unixDatetime": "1749113086"}
    MessageFields(parameters={}).transform(record, config={}, stream_slice=StreamSlice(partition={"phone": "1"}, cursor_slice={}))
    assert record["unixDatetime"] == 1749113086 and record["datetime_utc"] == "2025-06-05T08:44:46Z"


@pytest.mark.parametrize(
    "sent, stored",
    [
        ({"name": "a.jpg", "image": "https://f/a.jpg", "mime": "image/jpeg"}, [{"name": "a.jpg", "image": "https://f/a.jpg", "mime": "image/jpeg"}]),
        ([{"name": "a.jpg"}, {"name": "b.pdf"}], [{"name": "a.jpg"}, {"name": "b.pdf"}]),
        ([], []),
        (None, None),
    ],
)
def test_file_is_always_a_list_of_attachments(sent, stored):
    record = {**INBOUND, "file": sent}
    MessageFields(parameters={}).transform(record, config={}, stream_slice=StreamSlice(partition={"phone": "1"}, cursor_slice={}))
    assert record["file"] == stored
    # the attachment is not part of what identifies an inbound message: its id does not change
    assert record["id"] == message_id("1", INBOUND)


def per_phone(*entries):
    return {"use_global_cursor": False, "states": [{"partition": {"phone": p}, "cursor": {"unixDatetime": c}} for p, c in entries],
            "state": {"unixDatetime": "1749113086"}, "lookback_window": 12}


def test_a_cursor_per_phone_below_the_start_date_is_raised_to_it():
    migrated = PerPhoneState(config={"start_date": "2024-01-01T00:00:00Z"}).migrate(per_phone(("+1234567", "0")))
    assert phone_cursors(migrated) == {"+1234567": 1704067200}


def test_a_cursor_in_the_future_is_dropped_and_the_phone_read_again():
    future = str(int(time.time()) + 10 * 86_400)
    migrated = PerPhoneState(config={}).migrate(per_phone(("+1234567", future), ("+7654321", "1700000000")))
    assert phone_cursors(migrated) == {"+7654321": 1700000000}


@pytest.mark.parametrize(
    "state, words",
    [
        (per_phone(("+1234567", "yesterday")), "'yesterday', not a unix time"),
        ({"updated_at": "2024-01-01"}, "are neither this connector's state"),
        ({"states": {"phone": "1"}}, "must be a list"),
        ({"states": [{"partition": {"id": 1}, "cursor": {}}]}, "has no partition.phone"),
        ({"unixDatetime": None}, "not a unix time"),
    ],
)
def test_an_unusable_state_is_refused_with_its_reason(state, words):
    with pytest.raises(AirbyteTracedException) as error:
        PerPhoneState(config={}).migrate(state)
    assert words in error.value.message
