"""SchemaTypes: each field in the type its schema declares, converting only what loses nothing."""

import json
import logging
from pathlib import Path

import pytest
from airbyte_cdk.sources.utils.transform import TypeTransformer

from source_smstools.components.records import SchemaTypes, convert

SCHEMAS = Path(__file__).resolve().parent.parent / "source_smstools" / "schemas"


def schema(stream):
    return json.loads((SCHEMAS / f"{stream}.json").read_text())


# what the API may send, and what the CDK's `schema_normalization: Default` makes of it too
SAME_AS_THE_CDK = [
    ("5", "integer", 5), (" 42 ", "integer", 42), ("-3", "integer", -3), (7, "integer", 7),
    (True, "integer", 1), (5.0, "integer", 5),
    ("1.5", "number", 1.5), (2.25, "number", 2.25),
    (7, "string", "7"), (1.5, "string", "1.5"), ("x", "string", "x"),
    ("true", "boolean", True), ("0", "boolean", False), ("yes", "boolean", True), (1, "boolean", True), (False, "boolean", False),
    ("G-7", "integer", "G-7"), ("5.5", "integer", "5.5"), ("abc", "number", "abc"), ("maybe", "boolean", "maybe"),
]


@pytest.mark.parametrize("sent, kind, kept", SAME_AS_THE_CDK)
def test_converts_as_the_cdk_does(sent, kind, kept):
    assert convert(sent, kind) == kept and type(convert(sent, kind)) is type(kept)
    assert TypeTransformer.default_convert(sent, {"type": ["null", kind]}) == kept


@pytest.mark.parametrize(
    "sent, kind, kept, cdk",
    [
        # what the CDK's conversion would lose or garble
        (5.5, "integer", 5.5, 5),
        (True, "string", "true", "True"),
        ({"a": 1}, "string", {"a": 1}, "{'a': 1}"),
        (2, "boolean", 2, True),
        ("nan", "number", "nan", float("nan")),
        # what it leaves unconverted, or makes a float of
        ("5.0", "integer", 5, "5.0"),
        ("12", "number", 12, 12.0),
    ],
)
def test_loses_nothing_where_the_cdk_would(sent, kind, kept, cdk):
    assert convert(sent, kind) == kept and type(convert(sent, kind)) is type(kept)
    given_by_the_cdk = TypeTransformer.default_convert(sent, {"type": ["null", kind]})
    assert repr(given_by_the_cdk) == repr(cdk) != repr(kept)


def test_a_record_of_each_shape():
    record = {
        "ID": "61", "message_ID": 777, "to": 393331000000, "date": "2025-06-05 08:44:46", "status": None,
        "response": {"read": "1", "read_date": None, "response": 5},
        "unknown": "5",
    }
    SchemaTypes(config={}, parameters={"stream_label": "message_log"}).transform(record, schema("message_log"))
    assert record == {
        "ID": 61, "message_ID": "777", "to": "393331000000", "date": "2025-06-05 08:44:46", "status": None,
        "response": {"read": 1, "read_date": None, "response": "5"},
        "unknown": "5",  # not in the schema: as sent
    }


def test_attachments_are_typed_item_by_item():
    record = {"id": "a", "phone": "1", "unixDatetime": "1749113086", "mine": "false",
              "file": [{"name": 123, "image": "u", "mime": "image/jpeg", "size": "10"}, "odd"]}
    SchemaTypes(config={}, parameters={}).transform(record, schema("conversation"))
    assert record == {"id": "a", "phone": "1", "unixDatetime": 1749113086, "mine": False,
                      "file": [{"name": "123", "image": "u", "mime": "image/jpeg", "size": "10"}, "odd"]}


def test_nulls_stay_null_even_where_the_schema_allows_none():
    record = {"id": None, "phone": None, "unixDatetime": None}
    SchemaTypes(config={}, parameters={}).transform(record, schema("conversation"))
    assert record == {"id": None, "phone": None, "unixDatetime": None}


def test_a_value_that_cannot_take_its_type_is_said_once_per_field(caplog):
    types = SchemaTypes(config={}, parameters={"stream_label": "groups"})
    with caplog.at_level(logging.WARNING, logger="airbyte"):
        for value in ("G-7", "G-8", 5.5):
            record = {"ID": value, "locked": "x"}
            types.transform(record, schema("groups"))
            assert record == {"ID": value, "locked": "x"}
    assert [r.getMessage() for r in caplog.records] == [
        "Smstools sent groups field ID as string where the schema says integer, and it could not be converted: "
        "passed on unchanged (said once per field and sync).",
        "Smstools sent groups field locked as string where the schema says integer, and it could not be converted: "
        "passed on unchanged (said once per field and sync).",
    ]


def test_a_new_schema_mapping_is_planned_again():
    types = SchemaTypes(config={}, parameters={})
    record = {"ID": "1"}
    types.transform(record, schema("groups"))
    other = {"credits": "2.5"}
    types.transform(other, schema("balance"))
    assert (record, other) == ({"ID": 1}, {"credits": 2.5})
