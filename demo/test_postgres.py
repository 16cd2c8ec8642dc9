"""Every stream of the emulator through PyAirbyte into a real PostgreSQL server that this test
starts itself (Debian's `postgresql` package; demo/postgres_server.py), as `make sync
WAREHOUSE=postgresql://...` runs it: the column types users expect, and every string exactly as
the API sent it (phones keep their `+`, a text of digits stays text, dates keep their form).

It runs in the demo venv with demo/test_pyairbyte.py (`make test-pyairbyte`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("AIRBYTE_LOGGING_ROOT", tempfile.mkdtemp(prefix="pyairbyte-logs-"))
warnings.filterwarnings("ignore", category=FutureWarning)

ab = pytest.importorskip("airbyte", reason="PyAirbyte is in the demo venv only: run `make test-pyairbyte`")
from airbyte.caches import PostgresCache  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from postgres_server import postgres  # noqa: E402
from warehouse import postgres_cache  # noqa: E402

from smstools_emulator import CLIENT_ID, CLIENT_SECRET, Emulator, make_conversation  # noqa: E402

CONNECTOR = Path(sys.executable).with_name("source-smstools")
PHONES = {"+393331000000": 120, "+32470123456": 30}
NEWEST = 1_749_113_086  # 2025-06-05 08:44:46 UTC

V, B, J = "character varying", "bigint", "json"
AIRBYTE = {"_airbyte_raw_id": V, "_airbyte_extracted_at": "timestamp without time zone", "_airbyte_meta": J}
COLUMNS = {
    "conversation": {
        "id": V, "phone": V, "datetime_utc": "timestamp without time zone", "messageid": V, "direction": V,
        "sender": V, "receiver": V, "message": V, "file": J, "datetime": V, "unixdatetime": B, "deliverystatus": V,
        "mine": "boolean",
    },
    "contacts": {"id": B, "phone": V, "firstname": V, "lastname": V, "unsubscribed": B, "groupid": B, "email": V, "birthday": V, "memo": V},
    "groups": {"id": B, "name": V, "locked": B, "whatsapp": B},
    "inbox": {"id": B, "message": V, "sender": V, "receiver": V, "type": V, "date": V},
    "outbox": {"id": B, "message": V, "to": V, "type": V, "date": V, "reference": V, "messageid": V},
    "message_log": {"id": B, "message_id": V, "message": V, "to": V, "sender": V, "date": V, "type": V, "status": V, "response": J},
    "optouts": {"number": V, "memo": V, "date": V},
    "message_templates": {"id": B, "title": V, "message": V, "order": B},
    "sender_ids": {"id": B, "name": V, "order": B},
    "virtual_numbers": {"id": B, "number": V, "countrycode": V},
    "balance": {"credits": "numeric", "currency": V, "use": V},
    "statistics": {"year": B, "month": B, "month_start": "date", "sent": B, "received": B},
}


def conversations() -> dict[str, list[dict]]:
    served = {p: make_conversation(p, n, newest=NEWEST, seed=5) for p, n in PHONES.items()}
    # one-time codes: texts of digits, one with a leading zero
    served["+393331000000"][0]["message"] = "00123"
    served["+393331000000"][1]["message"] = "4711"
    return served


@pytest.fixture(scope="module")
def server():
    with postgres() as url:
        yield url


@pytest.fixture(scope="module")
def synced(server, tmp_path_factory):
    assert CONNECTOR.exists(), f"{CONNECTOR} is missing: run this through `make test-pyairbyte`"
    served = conversations()
    with Emulator(served) as emulator:
        config = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "phone_numbers": list(PHONES),
                  "start_date": "2025-01-01T00:00:00Z", "base_url": emulator.url}
        source = ab.get_source("source-smstools", config=config, local_executable=CONNECTOR)
        source.select_all_streams()
        cache = postgres_cache(server, "pipeline", tmp_path_factory.mktemp("cache"))
        source.read(cache=cache)
        account = {
            "contacts": emulator.contacts(), "inbox": emulator.inbox(), "message_log": emulator.message_log(),
            "outbox": emulator.outbox(), "optouts": emulator.optouts(), "groups": emulator.groups,
            "message_templates": emulator.templates, "sender_ids": emulator.sender_ids,
            "virtual_numbers": emulator.virtual_numbers,
        }
    yield {"cache": cache, "conversations": served, "account": account}


def rows(cache, sql: str) -> list[dict]:
    return [dict(r) for r in cache.run_sql_query(sql)]


def test_every_stream_lands_with_the_types_users_expect(synced):
    found: dict[str, dict[str, str]] = {}
    for r in rows(synced["cache"], "select table_name, column_name, data_type from information_schema.columns where table_schema = 'pipeline'"):
        found.setdefault(r["table_name"], {})[r["column_name"]] = r["data_type"]
    assert {t: c for t, c in found.items() if t in COLUMNS} == {t: {**c, **AIRBYTE} for t, c in COLUMNS.items()}


def test_every_conversation_string_arrives_as_sent(synced):
    stored = {(r["phone"], r["unixdatetime"], r["direction"]): r for r in rows(synced["cache"], "select * from pipeline.conversation")}
    served = {(phone, m["unixDatetime"], m["direction"]): m for phone, messages in synced["conversations"].items() for m in messages}
    assert stored.keys() == served.keys()  # phones with their +, as configured
    for key, message in served.items():
        strings = {k.lower(): v for k, v in message.items() if isinstance(v, str)}
        assert {k: stored[key][k] for k in strings} == strings, key
    # an attachment-less message has no file: NULL, not the JSON value null
    without = sum(m.get("file") is None for messages in synced["conversations"].values() for m in messages)
    assert without > 0 and rows(synced["cache"], "select count(*) as n from pipeline.conversation where file is null") == [{"n": without}]
    # the one-time codes, each a column value of digits among texts
    assert sorted(r["message"] for r in stored.values() if r["message"].isdigit()) == ["00123", "4711"]


def test_every_string_of_the_account_streams_arrives_as_sent(synced):
    keys = {"optouts": "number"}
    for stream, served in synced["account"].items():
        key = keys.get(stream, "ID")
        stored = {str(r[key.lower()]): r for r in rows(synced["cache"], f"select * from pipeline.{stream}")}
        assert sorted(stored) == sorted(str(item[key]) for item in served), stream
        for item in served:
            strings = {k.lower(): v for k, v in item.items() if isinstance(v, str) and COLUMNS[stream].get(k.lower()) == V}
            assert {k: stored[str(item[key])][k] for k in strings} == strings, (stream, item[key])


def test_pyairbytes_own_postgres_cache_still_turns_digit_strings_into_numbers(server, tmp_path):
    """Why warehouse.ExactPostgresCache exists (PyAirbyte 0.71.3 infers types with pandas): when
    this fails, PyAirbyte keeps strings as sent and the override can go."""
    served = conversations()
    with Emulator(served) as emulator:
        config = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "phone_numbers": list(PHONES), "base_url": emulator.url}
        source = ab.get_source("source-smstools", config=config, local_executable=CONNECTOR, streams=["conversation"])
        port = int(server.rsplit(":", 1)[1].split("/")[0])
        cache = PostgresCache(host="127.0.0.1", port=port, username="postgres", password="", database="postgres",
                              schema_name="stock", cache_dir=tmp_path)
        source.read(cache=cache)
    newest = served["+393331000000"][0]
    assert rows(cache, f"select phone, datetime from stock.conversation where unixdatetime = {newest['unixDatetime']}") == [
        {"phone": "393331000000", "datetime": "2025-06-05 08:44:01"}  # sent: "+393331000000", "05 jun 2025, 08:44:01"
    ]
    assert newest["datetime"] == "05 jun 2025, 08:44:01"
