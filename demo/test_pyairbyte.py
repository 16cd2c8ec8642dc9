"""Every stream of the emulator through PyAirbyte into DuckDB, as a user runs it: no patch, no
type warning, and each column with the type users expect.

PyAirbyte is too heavy for the test venv: this file runs in the demo venv,
`make test-pyairbyte` (a step of `make test`), which installs the connector there first.
Nothing leaves the machine: PyAirbyte runs offline (the connector from its local command) and
the API is the emulator on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

# PyAirbyte reads these when imported (as demo/demo.py does): offline, no telemetry, and its log
# files where this test can read them
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
LOGS = Path(tempfile.mkdtemp(prefix="pyairbyte-logs-"))
os.environ["AIRBYTE_LOGGING_ROOT"] = str(LOGS)
warnings.filterwarnings("ignore", category=FutureWarning)  # google-cloud, at import, about Python 3.11

ab = pytest.importorskip("airbyte", reason="PyAirbyte is in the demo venv only: run `make test-pyairbyte`")
from airbyte.caches import DuckDBCache  # noqa: E402

from smstools_emulator import CLIENT_ID, CLIENT_SECRET, Emulator, make_conversation  # noqa: E402

CONNECTOR = Path(sys.executable).with_name("source-smstools")
PHONES = {"+393331000000": 700, "+32470123456": 60}
NEWEST = 1_749_113_086  # 2025-06-05 08:44:46 UTC
# what a type warning looks like: PyAirbyte's converter and the CDK's normalisation
TYPE_WARNINGS = ("Could not determine airbyte type", "Could not find SQL type", "Failed to transform")

# Timestamps are DuckDB's TIMESTAMP, without time zone, holding UTC: PyAirbyte asks for a TIMESTAMP
# with time zone (the schema's airbyte_type timestamp_with_timezone), which its DuckDB dialect writes
# as plain TIMESTAMP; the values are UTC (test_values_keep_their_meaning).
AIRBYTE = {"_airbyte_raw_id": "VARCHAR", "_airbyte_extracted_at": "TIMESTAMP", "_airbyte_meta": "JSON"}
COLUMNS = {
    "conversation": {
        "id": "VARCHAR", "phone": "VARCHAR", "datetime_utc": "TIMESTAMP", "messageid": "VARCHAR",
        "direction": "VARCHAR", "sender": "VARCHAR", "receiver": "VARCHAR", "message": "VARCHAR", "file": "JSON",
        "datetime": "VARCHAR", "unixdatetime": "BIGINT", "deliverystatus": "VARCHAR", "mine": "BOOLEAN",
    },
    "contacts": {
        "id": "BIGINT", "phone": "VARCHAR", "firstname": "VARCHAR", "lastname": "VARCHAR", "unsubscribed": "BIGINT",
        "groupid": "BIGINT", "email": "VARCHAR", "birthday": "VARCHAR", "memo": "VARCHAR",
    },
    "groups": {"id": "BIGINT", "name": "VARCHAR", "locked": "BIGINT", "whatsapp": "BIGINT"},
    "inbox": {"id": "BIGINT", "message": "VARCHAR", "sender": "VARCHAR", "receiver": "VARCHAR", "type": "VARCHAR", "date": "VARCHAR"},
    "outbox": {
        "id": "BIGINT", "message": "VARCHAR", "to": "VARCHAR", "type": "VARCHAR", "date": "VARCHAR",
        "reference": "VARCHAR", "messageid": "VARCHAR",
    },
    "message_log": {
        "id": "BIGINT", "message_id": "VARCHAR", "message": "VARCHAR", "to": "VARCHAR", "sender": "VARCHAR",
        "date": "VARCHAR", "type": "VARCHAR", "status": "VARCHAR", "response": "JSON",
    },
    "optouts": {"number": "VARCHAR", "memo": "VARCHAR", "date": "VARCHAR"},
    "message_templates": {"id": "BIGINT", "title": "VARCHAR", "message": "VARCHAR", "order": "BIGINT"},
    "sender_ids": {"id": "BIGINT", "name": "VARCHAR", "order": "BIGINT"},
    "virtual_numbers": {"id": "BIGINT", "number": "VARCHAR", "countrycode": "VARCHAR"},
    "balance": {"credits": "DECIMAL(38,9)", "currency": "VARCHAR", "use": "VARCHAR"},
    "statistics": {"year": "BIGINT", "month": "BIGINT", "month_start": "DATE", "sent": "BIGINT", "received": "BIGINT"},
}


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """One sync of every stream; the DuckDB file, what was printed, Python warnings, the conversations served."""
    assert CONNECTOR.exists(), f"{CONNECTOR} is missing: run this through `make test-pyairbyte`"
    tmp = tmp_path_factory.mktemp("pyairbyte")
    conversations = {p: make_conversation(p, n, newest=NEWEST, seed=5) for p, n in PHONES.items()}
    config = {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "phone_numbers": list(PHONES),
        # statistics: one request per month from here to the current month
        "start_date": "2025-01-01T00:00:00Z",
    }
    # PyAirbyte prints its type warnings (rich's print, to sys.stdout at the time of printing)
    printed = io.StringIO()
    with Emulator(conversations) as emulator, warnings.catch_warnings(record=True) as caught, \
            contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        warnings.simplefilter("always")
        source = ab.get_source("source-smstools", config={**config, "base_url": emulator.url}, local_executable=CONNECTOR)
        source.select_all_streams()
        cache = DuckDBCache(db_path=tmp / "smstools.duckdb", schema_name="pipeline", cache_dir=tmp / "cache")
        result = source.read(cache=cache)
    sys.stdout.write(printed.getvalue())  # shown by pytest when a test fails
    yield {"cache": cache, "printed": printed.getvalue(), "warnings": caught, "conversations": conversations, "result": result}


def query(cache: DuckDBCache, sql: str) -> list[tuple]:
    """Through the cache's own connection (DuckDB refuses a second one with other settings)."""
    return [tuple(row.values()) for row in cache.run_sql_query(sql)]


def test_no_type_warning(synced):
    logs = "\n".join(p.read_text(errors="replace") for p in LOGS.rglob("*") if p.is_file())
    assert logs, f"no PyAirbyte log under {LOGS}"
    # PyAirbyte's own first line, printed with or without a terminal (its progress lines are not
    # printed when CI=true): the check below looked at its output
    assert "Using local `source-smstools` executable" in synced["printed"], "PyAirbyte's output was not captured"
    for text, where in ((synced["printed"], "the output"), (logs, "PyAirbyte's logs")):
        found = [line for line in text.splitlines() if any(w in line for w in TYPE_WARNINGS)]
        assert not found, f"{len(found)} type warnings in {where}, the first: {found[0][:300]}"
    assert [str(w.message)[:200] for w in synced["warnings"] if "type" in str(w.message).lower()] == []


def test_every_stream_lands_with_the_types_users_expect(synced):
    rows = query(synced["cache"], "select table_name, column_name, data_type from information_schema.columns where table_schema = 'pipeline'")
    tables: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        tables.setdefault(table, {})[column] = kind
    assert {t: c for t, c in tables.items() if t in COLUMNS} == {t: {**c, **AIRBYTE} for t, c in COLUMNS.items()}


def test_file_is_json_always_a_list(synced):
    served = [m for messages in synced["conversations"].values() for m in messages]
    as_list = sum(isinstance(m["file"], list) for m in served)
    as_object = sum(isinstance(m["file"], dict) for m in served)
    assert as_list > 0 and as_object > 0, "the sample must hold both shapes the API sends"
    shapes = query(synced["cache"], "select json_type(file), count(*) from pipeline.conversation where file is not null group by 1")
    assert shapes == [("ARRAY", as_list + as_object)]
    one = next(m for m in served if isinstance(m["file"], dict))
    assert query(synced["cache"], f"select file::varchar from pipeline.conversation where id = '{one['messageId'] or ''}' or (messageid is null and message = '{one['message']}' and unixdatetime = {one['unixDatetime']})") == [
        (json.dumps([one["file"]], separators=(",", ":")),)
    ]


def test_values_keep_their_meaning(synced):
    db = synced["cache"]
    newest = max(synced["conversations"]["+393331000000"], key=lambda m: m["unixDatetime"])
    assert query(db, f"select unixdatetime, epoch(datetime_utc)::bigint from pipeline.conversation where phone = '+393331000000' order by unixdatetime desc limit 1") == [
        (newest["unixDatetime"], newest["unixDatetime"])
    ]
    assert query(db, "select count(*) from pipeline.conversation") == [(sum(PHONES.values()),)]
    assert query(db, "select id, locked, whatsapp from pipeline.groups order by id") == [(1, 0, 0), (2, 1, 1), (3, 0, 0)]
    assert query(db, "select credits::double, currency from pipeline.balance") == [(1234.5, "EUR")]
    assert query(db, "select min(month_start)::varchar from pipeline.statistics") == [("2025-01-01",)]
