from pathlib import Path
from typing import Any, List, Mapping, Optional

from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.utils.yaml_loader import safe_load_yaml

MANIFEST = Path(__file__).with_name("manifest.yaml")


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
