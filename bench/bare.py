"""A bare manifest: ours without the added fields and without incremental sync.

Built at run time from the installed source_smstools/manifest.yaml by deleting keys, and run like
the connector: what it costs per record is the CDK's own cost with our requester, paginator and
extractor, so that the connector's time above it is what our fields and the cursor cost.
`--fields` keeps the added fields (the transformation) and drops only the cursor, to tell the
two apart.

`--straightforward` runs instead the whole stream as one would first write it with the CDK's
components only (three AddFields templates, DpathExtractor, CursorPagination, DefaultErrorHandler
with the manifest's filters), cursor included: the baseline the issue's target is set against.

    python bench/bare.py [--fields | --straightforward] read --config config.json --catalog catalog.json
"""

from __future__ import annotations

import sys
from typing import Any

from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.utils.yaml_loader import safe_load_yaml

from source_smstools.source import MANIFEST

# What the bare manifest leaves out: the added fields, the cursor, and the state that only a
# cursor reads.
REMOVED = ("transformations", "incremental_sync", "state_migrations")


def bare_manifest(keep_fields: bool = False) -> dict[str, Any]:
    manifest = safe_load_yaml(MANIFEST.read_text())
    stream = manifest["definitions"]["conversation_stream"]
    removed = [key for key in REMOVED if not (keep_fields and key == "transformations")]
    missing = [key for key in ("transformations", "incremental_sync") if key in removed and key not in stream]
    if missing:
        # the manifest changed shape: a "bare" manifest equal to ours would measure nothing
        raise SystemExit(f"bench/bare.py: the conversation stream has no {missing}; update REMOVED")
    for key in removed:
        stream.pop(key, None)
    return manifest


STRAIGHTFORWARD_FIELDS = [
    {"type": "AddedFieldDefinition", "path": ["phone"], "value": "{{ stream_partition.phone }}", "value_type": "string"},
    {
        "type": "AddedFieldDefinition",
        "path": ["id"],
        "value": "{{ record.messageId or ('h' ~ ([stream_partition.phone, record.direction, record.unixDatetime, "
        "record.sender, record.receiver, record.message] | join('|') | hash('sha256'))[:32]) }}",
        "value_type": "string",
    },
    {
        "type": "AddedFieldDefinition",
        "path": ["datetime_utc"],
        "value": "{{ format_datetime(record.unixDatetime, '%Y-%m-%dT%H:%M:%SZ') }}",
        "value_type": "string",
    },
]


def straightforward_manifest() -> dict[str, Any]:
    manifest = safe_load_yaml(MANIFEST.read_text())
    definitions = manifest["definitions"]
    stream = definitions["conversation_stream"]
    stream["transformations"] = [{"type": "AddFields", "fields": STRAIGHTFORWARD_FIELDS}]
    stream["retriever"]["record_selector"]["extractor"] = {"type": "DpathExtractor", "field_path": ["conversation"]}
    # the CDK's paging: page and limit as paginator options, its data-feed stop and filter
    retriever = stream["retriever"]
    retriever["paginator"] = {
        **definitions["paginator"],
        "pagination_strategy": {
            "type": "CursorPagination",
            "page_size": "{{ config.get('page_size') or 2000 }}",
            "cursor_value": "{{ response.page + 1 }}",
            "stop_condition": "{{ response.page * page_size >= response.total }}",
        },
    }
    retriever["requester"].pop("request_parameters", None)
    retriever["record_selector"].pop("record_filter", None)
    retriever["record_selector"].pop("transform_before_filtering", None)
    stream["incremental_sync"]["is_data_feed"] = True
    handler = definitions["requester"]["error_handler"]
    handler["type"] = "DefaultErrorHandler"
    handler.pop("class_name", None)
    return manifest


def main() -> None:
    args = sys.argv[1:]
    keep_fields = "--fields" in args
    straightforward = "--straightforward" in args
    args = [a for a in args if a not in ("--fields", "--straightforward")]
    parsed = AirbyteEntrypoint.parse_args(args)
    config = getattr(parsed, "config", None)
    catalog = getattr(parsed, "catalog", None)
    source = ConcurrentDeclarativeSource(
        source_config=straightforward_manifest() if straightforward else bare_manifest(keep_fields),
        config=ConcurrentDeclarativeSource.read_config(config) if config else None,
        catalog=ConcurrentDeclarativeSource.read_catalog(catalog) if catalog else None,
        state=None,
        config_path=config,
    )
    launch(source, args)


if __name__ == "__main__":
    main()
