"""PyAirbyte's Postgres cache, with strings kept as the connector sends them.

PyAirbyte 0.71.3 loads each batch into Postgres through pandas (`SqlProcessorBase.
_write_files_to_new_table`: `pd.read_json(file, lines=True)`, then `DataFrame.to_sql`). pandas
infers types from the values by default: a column whose strings are all digits becomes numbers
(`"+393331000000"` -> 393331000000, `"00123"` -> 123), and a column named like a date (`date`,
`datetime`, `..._at`) becomes timestamps (`"04 jun 2025, 07:41:37"` -> `2025-06-04 07:41:37`). The
table's columns have the schema's types (VARCHAR for those), so the damage is silent: the digits
arrive as text, without their `+` or leading zeros. The DuckDB cache loads with DuckDB's own JSON
reader and is not affected.

This processor reads the batch with pandas' inference off (`dtype=False, convert_dates=False`):
every value arrives as JSON has it, and Postgres casts it to its column's type; a missing value is
NULL, also in a JSON column (PyAirbyte writes the JSON value `null` there). The fix to offer
upstream is the same: those two arguments of `read_json` and `JSON(none_as_null=True)` in
`_write_files_to_new_table`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import pandas as pd
import sqlalchemy
from airbyte._processors.sql.postgres import PostgresSqlProcessor
from airbyte.caches import PostgresCache


class ExactPostgresProcessor(PostgresSqlProcessor):
    """PostgresSqlProcessor, loading each value as JSON has it (see the module's docstring)."""

    def _write_files_to_new_table(self, files: list[Path], stream_name: str, batch_id: str) -> str:
        table = self._create_table_for_loading(stream_name, batch_id)
        # a field the record lacks (the CDK leaves out null ones, `file` of an inbound message) is
        # NULL in a JSON column too, not the JSON value null
        columns = {
            name: sqlalchemy.JSON(none_as_null=True) if isinstance(kind, sqlalchemy.JSON) else kind
            for name, kind in self._get_sql_column_definitions(stream_name).items()
        }
        for path in files:
            frame = pd.read_json(path, lines=True, dtype=False, convert_dates=False)
            frame = frame[[name for name in frame.columns if name in columns]]  # only the schema's fields
            frame.columns = pd.Index([self.normalizer.normalize(name) for name in frame.columns])
            frame.to_sql(
                table, self.get_sql_alchemy_url(), schema=self.sql_config.schema_name,
                if_exists="append", index=False, dtype=columns,
            )
        return table


class ExactPostgresCache(PostgresCache):
    """PyAirbyte's PostgresCache with ExactPostgresProcessor."""

    _sql_processor_class: ClassVar[type] = ExactPostgresProcessor


def postgres_cache(url: str, schema: str, cache_dir: Path) -> ExactPostgresCache:
    """The cache for a `postgresql://user:password@host:port/database` URL (without a password in
    it, the password is PGPASSWORD's, as for psql)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
        raise ValueError("expected a URL of the form postgresql://user:password@host:port/database")
    return ExactPostgresCache(
        host=parts.hostname,
        port=parts.port or 5432,
        username=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else os.environ.get("PGPASSWORD", ""),
        database=unquote(parts.path.strip("/")),
        schema_name=schema,
        cache_dir=cache_dir,
    )
