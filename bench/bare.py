"""A bare manifest: ours without the added fields and without incremental sync.

Built at run time from the installed source_smstools/manifest.yaml by deleting keys, and run like
the connector: what it costs per record is the CDK's own cost with our requester, paginator and
extractor, so that the connector's time above it is what our fields and the cursor cost.
`--fields` keeps the added fields (the transformation) and drops only the cursor, to tell the
two apart.

    python bench/bare.py [--fields] read --config config.json --catalog full_refresh_catalog.json
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


def main() -> None:
    args = sys.argv[1:]
    keep_fields = "--fields" in args
    if keep_fields:
        args.remove("--fields")
    parsed = AirbyteEntrypoint.parse_args(args)
    config = getattr(parsed, "config", None)
    catalog = getattr(parsed, "catalog", None)
    source = ConcurrentDeclarativeSource(
        source_config=bare_manifest(keep_fields),
        config=ConcurrentDeclarativeSource.read_config(config) if config else None,
        catalog=ConcurrentDeclarativeSource.read_catalog(catalog) if catalog else None,
        state=None,
        config_path=config,
    )
    launch(source, args)


if __name__ == "__main__":
    main()
