"""A bare manifest: ours without the added fields and without incremental sync.

Built at run time from the installed source_smstools/manifest.yaml by deleting keys, and run like
the connector: what it costs per record is the CDK's own cost with our requester, paginator and
extractor, so that the connector's time above it is what our fields and the cursor cost.

    python bench/bare.py read --config config.json --catalog full_refresh_catalog.json
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


def bare_manifest() -> dict[str, Any]:
    manifest = safe_load_yaml(MANIFEST.read_text())
    stream = manifest["definitions"]["conversation_stream"]
    missing = [key for key in REMOVED[:2] if key not in stream]
    if missing:
        # the manifest changed shape: a "bare" manifest equal to ours would measure nothing
        raise SystemExit(f"bench/bare.py: the conversation stream has no {missing}; update REMOVED")
    for key in REMOVED:
        stream.pop(key, None)
    return manifest


def main() -> None:
    args = sys.argv[1:]
    parsed = AirbyteEntrypoint.parse_args(args)
    config = getattr(parsed, "config", None)
    catalog = getattr(parsed, "catalog", None)
    source = ConcurrentDeclarativeSource(
        source_config=bare_manifest(),
        config=ConcurrentDeclarativeSource.read_config(config) if config else None,
        catalog=ConcurrentDeclarativeSource.read_catalog(catalog) if catalog else None,
        state=None,
        config_path=config,
    )
    launch(source, args)


if __name__ == "__main__":
    main()
