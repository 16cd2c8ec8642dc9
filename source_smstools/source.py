from pathlib import Path
from typing import Any, List, Mapping, Optional

from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.sources.declarative.incremental.concurrent_partition_cursor import (
    ConcurrentPerPartitionCursor,
)
from airbyte_cdk.utils.yaml_loader import safe_load_yaml

MANIFEST = Path(__file__).with_name("manifest.yaml")

# The CDK keeps a cursor per partition (phone) up to 10,000 partitions, then falls back to one
# cursor for all, from which a phone found later starts, skipping its history. Per-phone state
# costs about 85 bytes of state and 9 KB of memory a phone (bench/discovery.py): keep it up to
# this many phones.
PHONES_WITH_OWN_STATE = 50_000


class SourceSmstools(ConcurrentDeclarativeSource):
    """The connector: everything is in manifest.yaml."""

    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        config_path: Optional[str] = None,
    ) -> None:
        manifest = safe_load_yaml(MANIFEST.read_text())
        limit = (config or {}).get("max_phones_with_own_state")  # not in the spec: for the tests
        limit = limit if isinstance(limit, int) and limit > 0 else PHONES_WITH_OWN_STATE
        # class attributes: the CDK builds the cursor itself (one source per process)
        ConcurrentPerPartitionCursor.SWITCH_TO_GLOBAL_LIMIT = limit
        # cursors are dropped (their phones read again from the start) past this many
        ConcurrentPerPartitionCursor.DEFAULT_MAX_PARTITIONS_NUMBER = limit + 15_000
        timeout = (config or {}).get("read_timeout_seconds")
        if isinstance(timeout, (int, float)) and timeout > 0:
            # The manifest's timeouts are plain numbers (no templates): a config that asks for
            # another one (the tests do, to keep timeouts short) gets it set here.
            manifest["definitions"]["requester"]["read_timeout_in_seconds"] = timeout
        super().__init__(
            catalog=catalog,
            config=config,
            state=state,
            source_config=manifest,
            config_path=config_path,
        )
