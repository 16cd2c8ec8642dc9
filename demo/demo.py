"""Sync Smstools conversations into DuckDB with PyAirbyte, and show what arrived.

    demo.py --emulator       sample conversations from our API emulator (what `make demo` runs)
    demo.py --config FILE    the real API with your credentials (what `make sync` runs)

Both write to one DuckDB file, .cache/smstools.duckdb, each in its own schema, so sample data never
mixes with real data: the demo in schema `demo` (emptied at each demo run, so it always starts
from a first sync), the real API in DuckDB's default schema `main` (kept: each `make sync` goes on
from the state PyAirbyte saved in that schema, per phone). PyAirbyte keeps its state and catalog
beside the data, in the tables `_airbyte_state` and `_airbyte_streams` of the same schema.

Run it with the Python of the demo virtualenv (.venv-demo, made by `make demo`): PyAirbyte and the
connector are installed there, and the connector runs as that venv's `source-smstools` command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# PyAirbyte reads these when imported. Offline: our connector is not in Airbyte's registry (we
# run it from its local command), and no usage telemetry leaves the machine.
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
# google-cloud libraries that PyAirbyte imports warn about Python 3.11's end of life at import.
warnings.filterwarnings("ignore", category=FutureWarning)

ROOT = Path(__file__).resolve().parents[1]

import airbyte as ab  # noqa: E402
import duckdb  # noqa: E402
from airbyte.caches import DuckDBCache  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from warehouse import postgres_cache  # noqa: E402

from smstools_emulator import CLIENT_ID, CLIENT_SECRET, Emulator, format_datetime, make_conversation  # noqa: E402

DB_PATH = ROOT / ".cache" / "smstools.duckdb"
DEMO_SCHEMA = "demo"
REAL_SCHEMA = "main"  # not "smstools": DuckDB names the file's catalog so, and refuses the ambiguity
SMSTOOLS_SCHEMA = "smstools"  # in PostgreSQL (WAREHOUSE=postgresql://...)
STREAM = "conversation"
SOURCE = "source-smstools"
CONNECTOR = Path(sys.executable).with_name("source-smstools")

# The sample account: phones of different sizes and rhythms. The first one needs two pages of
# 2,000 messages; the Belgian one is quiet (a message a day).
SAMPLE = {
    "+393331000000": (2600, 1_800),  # messages, seconds between them
    "+393331000001": (850, 3_607),
    "+393471234567": (120, 14_400),
    "+32470123456": (15, 86_400),
}
NEWEST = 1_749_113_086  # 2025-06-05 08:44:46 UTC, the API docs' example


def heading(step: str, text: str) -> None:
    print(f"\n=== {step}  {text}", flush=True)


def fmt_time(seconds: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds)) if seconds else "-"


def table(rows: list[list[Any]], header: list[str]) -> None:
    """A plain text table: numbers right-aligned, text left-aligned."""
    cells = [header] + [[f"{v:,}" if isinstance(v, int) else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(isinstance(row[i], int) for row in rows) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def open_cache(schema: str) -> DuckDBCache:
    DB_PATH.parent.mkdir(parents=True, exist_ok=True)
    return DuckDBCache(db_path=DB_PATH, schema_name=schema, cache_dir=DB_PATH.parent / "pyairbyte")


def source_for(config: dict[str, Any], streams: str | list[str]) -> ab.Source:
    if not CONNECTOR.exists():
        sys.exit(f"{CONNECTOR} not found: run this through `make demo` / `make sync`, which install it.")
    return ab.get_source(SOURCE, config=config, streams=streams, local_executable=CONNECTOR)


def sync(source: ab.Source, cache: DuckDBCache) -> tuple[int, float]:
    """One incremental sync (a first sync reads everything); records read and seconds taken."""
    started = time.monotonic()
    result = source.read(cache=cache)
    return result.processed_records, time.monotonic() - started


def summary(cache: DuckDBCache) -> None:
    """What arrived, per phone and per delivery status."""
    t = f"{cache.schema_name}.{STREAM}"
    per_phone = cache.run_sql_query(
        f"""
        select phone, count(*) as messages,
               count(*) filter (where direction = 'inbound') as inbound,
               count(*) filter (where direction = 'outbound') as outbound,
               count(*) filter (where json_array_length(file) > 0) as with_files,
               min(unixdatetime) as first, max(unixdatetime) as last
        from {t} group by phone order by messages desc, phone
        """
    )
    table(
        [
            [r["phone"], r["messages"], r["inbound"], r["outbound"], r["with_files"], fmt_time(r["first"]), fmt_time(r["last"])]
            for r in per_phone
        ],
        ["phone", "messages", "in", "out", "with attachments", "first (UTC)", "last (UTC)"],
    )
    print()
    statuses = cache.run_sql_query(
        f"""
        select coalesce(deliverystatus, '(none)') as status, count(*) as messages,
               count(*) filter (where direction = 'inbound') as inbound,
               count(*) filter (where direction = 'outbound') as outbound
        from {t} group by 1 order by messages desc, status
        """
    )
    table([[r["status"], r["messages"], r["inbound"], r["outbound"]] for r in statuses], ["delivery status", "messages", "in", "out"])


def row_count(cache: DuckDBCache) -> int:
    exists = cache.run_sql_query(
        f"select 1 from information_schema.tables where table_schema = '{cache.schema_name}' and table_name = '{STREAM}'"
    )
    return cache.run_sql_query(f"select count(*) as n from {cache.schema_name}.{STREAM}")[0]["n"] if exists else 0


def saved_state(cache: DuckDBCache) -> None:
    """The state PyAirbyte keeps in the cache for the next sync: a cursor per phone, in the book."""
    from source_smstools.components.state import phone_cursors  # the demo venv's installed connector

    message = cache.get_state_provider(source_name=SOURCE).get_stream_state(STREAM, not_found=None)
    stream_state = message.stream.stream_state.model_dump() if message else {}
    book = phone_cursors(stream_state)
    if not book:
        return
    cursors = ", ".join(f"{p} {fmt_time(c) if c is not None else 'none yet'}" for p, c in book.items())
    print(f"  state saved in {cache.schema_name}._airbyte_state, per phone: {cursors}")


def requests_made(emulator: Emulator) -> str:
    """The emulator's request log, told per phone."""
    served = emulator.conversation_requests()
    per_phone: dict[str, list[int]] = {}
    for r in served:
        per_phone.setdefault("+" + r["phone"], []).append(r["page"])
    detail = ", ".join(
        f"{phone} {len(pages)} (page {', '.join(map(str, sorted(pages)))})" for phone, pages in sorted(per_phone.items())
    )
    return f"{len(served)} API requests: {detail}"


def new_message(phone: str, ts: int, direction: str, text: str, status: str = "DELIVERED", file: Any = None) -> dict[str, Any]:
    """A message as the API serves it."""
    digits = phone.lstrip("+")
    outbound = direction == "outbound"
    return {
        "messageId": f"demo{digits[-4:]}{ts}" if outbound else None,
        "direction": direction,
        "sender": "Smstools" if outbound else digits,
        "receiver": digits if outbound else "Smstools",
        "message": text,
        "file": file,
        "datetime": format_datetime(ts),
        "unixDatetime": ts,
        "deliveryStatus": status if outbound else "RECEIVED",
    }


def run_emulator_demo() -> None:
    started = time.monotonic()
    heading("1/5", "Starting the Smstools API emulator on 127.0.0.1 with sample conversations")
    conversations = {phone: make_conversation(phone, n, newest=NEWEST, seed=2023, step=step) for phone, (n, step) in SAMPLE.items()}
    emulator = Emulator(conversations).start()
    total = sum(len(m) for m in conversations.values())
    print(f"  {emulator.url}: {len(conversations)} phones, {total:,} messages (Italian and emoji text, attachments, delivery statuses)")
    config = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "phone_numbers": list(SAMPLE),
        "base_url": emulator.url,
    }

    heading("2/5", f"First sync with PyAirbyte into {DB_PATH.relative_to(ROOT)} (schema {DEMO_SCHEMA})")
    # The demo always starts from an empty schema: a first sync, then an incremental one.
    DB_PATH.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(DB_PATH)) as db:
        db.execute(f"drop schema if exists {DEMO_SCHEMA} cascade")
    cache = open_cache(DEMO_SCHEMA)
    source = source_for(config, [STREAM])
    records, seconds = sync(source, cache)
    print(f"\n  read {records:,} records in {seconds:.1f} s with {requests_made(emulator)}")
    print(f"  table {DEMO_SCHEMA}.{STREAM}: {row_count(cache):,} rows")
    saved_state(cache)
    print()
    summary(cache)

    heading("3/5", "A few messages from the table")
    sample = cache.run_sql_query(
        f"""
        select phone, datetime_utc, direction, deliverystatus as status, message, file is not null as has_file
        from {DEMO_SCHEMA}.{STREAM} where phone = '+393331000000' order by unixdatetime desc limit 6
        """
    )
    for r in sample:
        clip = r["message"] if len(r["message"]) <= 70 else r["message"][:67] + "..."
        print(f"  {r['phone']}  {str(r['datetime_utc'])[:19]}  {r['direction']:<8}  {r['status']:<9}  {'📎 ' if r['has_file'] else ''}{clip}")

    heading("4/5", "New messages arrive on the emulator")
    emulator.clear_requests()
    new = {
        "+393331000000": [
            new_message("+393331000000", NEWEST + 600, "outbound", "Ciao Giulia, il tuo ordine #48213 è pronto per il ritiro 🛍️", "DELIVERED"),
            new_message("+393331000000", NEWEST + 900, "inbound", "Perfetto, passo domani mattina. Grazie! 🙏"),
            new_message("+393331000000", NEWEST + 1_000, "inbound", "Ecco la ricevuta", file=[{"name": "ricevuta.jpg", "image": "https://files.example/ricevuta.jpg", "mime": "image/jpeg"}]),
        ],
        "+32470123456": [
            new_message("+32470123456", NEWEST + 3_600, "outbound", "Bonjour Pieter, votre rendez-vous est confirmé ✅", "PENDING"),
            new_message("+32470123456", NEWEST + 3_700, "inbound", "Merci! 👍", file={"name": "plan.pdf", "image": "https://files.example/plan.pdf", "mime": "application/pdf"}),
        ],
    }
    for phone, messages in new.items():
        emulator.add_messages(phone, messages)
        for m in messages:
            print(f"  {phone}  {fmt_time(m['unixDatetime'])}  {m['direction']:<8}  {m['message']}")
    added = sum(len(m) for m in new.values())

    heading("5/5", "Incremental sync: only what is new")
    before = row_count(cache)
    records, seconds = sync(source, cache)
    after = row_count(cache)
    print(f"\n  read {records:,} records in {seconds:.1f} s with {requests_made(emulator)}")
    print(f"  table {DEMO_SCHEMA}.{STREAM}: {before:,} -> {after:,} rows: the {after - before} new messages ({added} added on the emulator)")
    print(
        f"  the other {records - (after - before)} records read are each phone's newest message of the last sync, read again"
        " because the cursor is inclusive, and merged on `id`"
    )
    saved_state(cache)
    print()
    summary(cache)
    emulator.stop()
    print(f"\nDone in {time.monotonic() - started:.0f} s. Explore the data:")
    print(f"  {explore_command(DEMO_SCHEMA)}")


def explore_command(schema: str) -> str:
    """The shell line that shows a few rows. The connection is kept in a name while the result is
    shown: a relation printed after its connection is collected fails ("Connection has already
    been closed", duckdb 1.4)."""
    query = f"select * from {schema}.{STREAM} limit 5"
    return (
        f".venv-demo/bin/python -c \"import duckdb; db = duckdb.connect('{DB_PATH.relative_to(ROOT)}', "
        f"read_only=True); db.sql('{query}').show()\""
    )


def run_real_sync(config_path: Path, warehouse: str | None = None) -> None:
    if not config_path.is_file():
        sys.exit(
            f"{config_path}: no such file. Copy integration_tests/sample_config.json to {config_path} "
            "and fill in your Client ID, Client Secret (Smstools: Advanced > API authentication) and phone numbers."
        )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        sys.exit(f"{config_path} is not valid JSON: {error}")
    started = time.monotonic()
    if warehouse:
        try:
            cache = postgres_cache(warehouse, SMSTOOLS_SCHEMA, DB_PATH.parent / "pyairbyte")
        except ValueError as error:
            sys.exit(f"WAREHOUSE: {error}")
        where = f"PostgreSQL {cache.host}:{cache.port}/{cache.database} (schema {SMSTOOLS_SCHEMA})"
    else:
        cache = open_cache(REAL_SCHEMA)
        where = f"{DB_PATH.relative_to(ROOT)} (schema {REAL_SCHEMA})"
    heading("1/2", f"Syncing the Smstools API into {where}, from the last saved state")
    # Every stream the connector offers; the summary below is the conversations'.
    source = source_for(config, "*")
    before = row_count(cache)
    records, seconds = sync(source, cache)
    after = row_count(cache)
    print(f"\n  read {records:,} records in {seconds:.1f} s; table {cache.schema_name}.{STREAM}: {before:,} -> {after:,} rows")
    saved_state(cache)
    heading("2/2", "What is in the table")
    summary(cache)
    print(f"\nDone in {time.monotonic() - started:.0f} s. Explore the data:")
    if warehouse:
        # without the password, which may be in the URL
        print(f"  psql 'postgresql://{cache.username}@{cache.host}:{cache.port}/{cache.database}' -c 'select * from {SMSTOOLS_SCHEMA}.{STREAM} limit 5'")
    else:
        print(f"  {explore_command(REAL_SCHEMA)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--emulator", action="store_true", help="sync sample conversations from the API emulator")
    mode.add_argument("--config", type=Path, metavar="FILE", help="sync the real API with this config file")
    parser.add_argument("--warehouse", metavar="URL", help="with --config: postgresql://user:password@host:port/database instead of DuckDB")
    args = parser.parse_args()
    try:
        if args.emulator:
            run_emulator_demo()
        else:
            run_real_sync(args.config, args.warehouse)
    except ab.exceptions.PyAirbyteError as error:
        # The connector's own ERROR lines above say what went wrong; PyAirbyte's error adds where
        # its log is. Nothing of the sync so far is lost: the next run goes on from the saved state.
        log = getattr(error, "log_file", None)
        sys.exit(
            "\nThe sync failed: the connector's ERROR line above says why and what to do."
            + (f" The connector's whole log: {log}" if log else f" ({type(error).__name__})")
        )


if __name__ == "__main__":
    main()
