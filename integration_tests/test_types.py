"""One JSON type per field, as `discover` declares it and as records carry it.

Warehouse destinations turn a field typed as a union (`["integer", "string"]`) into a string or a
variant column; here every field of every stream has one type besides null, and the schema
normalisation (SchemaTypes) converts what the API sends as a string ("5", "1.5") into that type,
on every stream.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

import pytest

from integration_tests import cli
from smstools_emulator import Emulator, make_conversation
from source_smstools import SourceSmstools

PHONE = "+393331000000"
ATTACHMENT = {"name": "ricevuta.pdf", "image": "https://files.example/r.pdf", "mime": "application/pdf"}


def discovered() -> dict[str, dict[str, Any]]:
    config = {"client_id": "id", "client_secret": "secret", "phone_numbers": [PHONE]}
    catalog = SourceSmstools(config=config).discover(logging.getLogger("test"), config)
    return {s.name: s.json_schema for s in catalog.streams}


def fields(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field of `schema` at any depth (object properties and array items), with its path."""
    for name, sub in schema.get("properties", {}).items():
        inner = f"{path}.{name}" if path else name
        yield inner, sub
        yield from fields(sub, inner)
    if isinstance(schema.get("items"), dict):
        yield f"{path}[]", schema["items"]
        yield from fields(schema["items"], f"{path}[]")


def test_every_field_of_every_stream_has_one_type_besides_null():
    schemas = discovered()
    assert sorted(schemas) == sorted(cli.STREAMS)
    checked = 0
    for stream, schema in schemas.items():
        assert schema.get("additionalProperties") is True, f"{stream}: unknown fields must pass"
        assert "anyOf" not in schema and "oneOf" not in schema, stream
        for path, sub in fields(schema):
            assert "anyOf" not in sub and "oneOf" not in sub and "$ref" not in sub, f"{stream}.{path}: {sorted(sub)}"
            kinds = sub.get("type")
            kinds = [kinds] if isinstance(kinds, str) else kinds
            assert isinstance(kinds, list), f"{stream}.{path} has no type"
            assert len([k for k in kinds if k != "null"]) == 1, f"{stream}.{path} is typed {kinds}"
            checked += 1
    # conversation 17 (file, its items and their 3 fields included), contacts 9, groups 4, inbox 6,
    # outbox 7, message_log 14 (response and its 5 fields), optouts 3, message_templates 4,
    # sender_ids 3, virtual_numbers 3, balance 3, statistics 5
    assert checked == 78


def test_file_is_a_list_of_attachments_or_null():
    file = discovered()["conversation"]["properties"]["file"]
    assert file["type"] == ["null", "array"]
    assert file["items"]["type"] == "object"
    assert {name: sub["type"] for name, sub in file["items"]["properties"].items()} == {
        "name": ["null", "string"], "image": ["null", "string"], "mime": ["null", "string"],
    }


def test_declared_types():
    """The type each field is meant to have (the schema files' descriptions say why); every field
    not listed here is a string."""
    non_strings = {
        "conversation": {"file": "array", "file[]": "object", "unixDatetime": "integer", "mine": "boolean"},
        "contacts": {"ID": "integer", "unsubscribed": "integer", "groupid": "integer"},
        "groups": {"ID": "integer", "locked": "integer", "whatsapp": "integer"},
        "inbox": {"ID": "integer"},
        "outbox": {"ID": "integer"},
        "message_log": {"ID": "integer", "response": "object", "response.read": "integer"},
        "optouts": {},
        "message_templates": {"ID": "integer", "order": "integer"},
        "sender_ids": {"ID": "integer", "order": "integer"},
        "virtual_numbers": {"ID": "integer"},
        "balance": {"credits": "number"},
        "statistics": {"year": "integer", "month": "integer", "sent": "integer", "received": "integer"},
    }
    for stream, schema in discovered().items():
        declared = {}
        for path, sub in fields(schema):
            kinds = [sub["type"]] if isinstance(sub["type"], str) else sub["type"]
            declared[path] = next(k for k in kinds if k != "null")
        assert {p: t for p, t in declared.items() if t != "string"} == non_strings[stream], stream
    # the dates the connector writes are typed so that destinations make them dates
    conversation, statistics = discovered()["conversation"], discovered()["statistics"]
    assert conversation["properties"]["datetime_utc"]["format"] == "date-time"
    assert conversation["properties"]["datetime_utc"]["airbyte_type"] == "timestamp_with_timezone"
    assert statistics["properties"]["month_start"]["format"] == "date"


@pytest.fixture
def stringly():
    """An account whose API sends numbers as strings (and strings as numbers) in every stream."""
    messages = make_conversation(PHONE, 3, seed=3)
    messages[0].update(messageId=12345, mine="true", file=None)
    messages[1].update(messageId="m2", mine=False, file=dict(ATTACHMENT))
    messages[2].update(messageId="m3", file=[dict(ATTACHMENT)])
    with Emulator({PHONE: messages}) as emulator:
        emulator.set_contacts([{"ID": "5", "phone": PHONE, "firstname": "Giulia", "unsubscribed": "1", "groupid": "2"}])
        emulator.groups = [{"ID": "1", "name": "Clienti", "locked": True, "whatsapp": "0"}]
        emulator.inbox = lambda: [{"ID": "41", "message": "Ok", "sender": 393331000000, "date": "2025-06-05 08:44:46"}]
        emulator.outbox = lambda: [{"ID": "51", "message": "Domani", "to": PHONE, "date": "2025-06-07 08:44:46"}]
        emulator.message_log = lambda: [{
            "ID": "61", "message_ID": 777, "to": PHONE, "date": "2025-06-05 08:44:46", "status": "DELIVERED",
            "response": {"read": "1", "read_date": "2025-06-05 08:46:21"},
        }]
        emulator.optouts = lambda: [{"number": 393331000000, "memo": "STOP", "date": "2025-06-05 08:44:46"}]
        emulator.templates = [{"ID": "11", "title": "Conferma", "message": "Ciao", "order": "1"}]
        emulator.sender_ids = [{"ID": "21", "name": "Smstools", "order": "2"}]
        emulator.virtual_numbers = [{"ID": "31", "number": "3278800100", "countrycode": 39}]
        emulator.balance = {"credits": "1.5", "currency": "EUR", "use": "credits"}
        emulator.statistics = lambda year, month: {"sent": "5", "received": "7"}
        yield emulator


def test_schema_normalisation_runs_on_every_stream(stringly):
    config = cli.config(stringly, start_date="2025-06-01T00:00:00Z")
    out = cli.in_process(config, cli.catalog("full_refresh", list(cli.STREAMS)))
    assert out.returncode == 0, out.errors
    records: dict[str, list[dict[str, Any]]] = {}
    for m in out.of_type("RECORD"):
        records.setdefault(m["record"]["stream"], []).append(m["record"]["data"])
    assert sorted(records) == sorted(cli.STREAMS)

    conversation = sorted(records["conversation"], key=lambda r: -r["unixDatetime"])
    assert [r["messageId"] for r in conversation] == ["12345", "m2", "m3"]
    assert [r["mine"] for r in conversation[:2]] == [True, False]
    assert [r.get("file") for r in conversation] == [None, [ATTACHMENT], [ATTACHMENT]]

    assert records["contacts"] == [{"ID": 5, "phone": PHONE, "firstname": "Giulia", "unsubscribed": 1, "groupid": 2}]
    assert records["groups"] == [{"ID": 1, "name": "Clienti", "locked": 1, "whatsapp": 0}]
    assert records["inbox"] == [{"ID": 41, "message": "Ok", "sender": "393331000000", "date": "2025-06-05 08:44:46"}]
    assert records["outbox"] == [{"ID": 51, "message": "Domani", "to": PHONE, "date": "2025-06-07 08:44:46"}]
    assert records["message_log"] == [{
        "ID": 61, "message_ID": "777", "to": PHONE, "date": "2025-06-05 08:44:46", "status": "DELIVERED",
        "response": {"read": 1, "read_date": "2025-06-05 08:46:21"},
    }]
    assert records["optouts"] == [{"number": "393331000000", "memo": "STOP", "date": "2025-06-05 08:44:46"}]
    assert records["message_templates"] == [{"ID": 11, "title": "Conferma", "message": "Ciao", "order": 1}]
    assert records["sender_ids"] == [{"ID": 21, "name": "Smstools", "order": 2}]
    assert records["virtual_numbers"] == [{"ID": 31, "number": "3278800100", "countrycode": "39"}]
    assert records["balance"] == [{"credits": 1.5, "currency": "EUR", "use": "credits"}]
    statistics = sorted(records["statistics"], key=lambda r: r["month_start"])
    assert statistics[0] == {"sent": 5, "received": 7, "year": 2025, "month": 6, "month_start": "2025-06-01"}
    assert {(r["sent"], r["received"]) for r in statistics} == {(5, 7)}


def test_a_value_that_cannot_take_its_type_is_kept_and_named_once(stringly):
    """Nothing is lost: an ID that is no number stays as sent, and the log names the field (not the value), once."""
    stringly.groups = [{"ID": f"G-{n}", "name": "Clienti", "locked": 0, "whatsapp": 0} for n in (7, 8)]
    out = cli.in_process(cli.config(stringly), cli.catalog("full_refresh", "groups"))
    assert out.returncode == 0, out.errors
    assert [m["record"]["data"]["ID"] for m in out.of_type("RECORD")] == ["G-7", "G-8"]
    warnings = [m["log"]["message"] for m in out.of_type("LOG") if "could not be converted" in m["log"]["message"]]
    assert warnings == [
        "Smstools sent groups field ID as string where the schema says integer, and it could not be converted: "
        "passed on unchanged (said once per field and sync)."
    ]
    assert "G-7" not in str(out.of_type("LOG"))
