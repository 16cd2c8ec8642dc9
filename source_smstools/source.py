import os
from pathlib import Path
from typing import Any, List, Mapping, Optional

from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)
from airbyte_cdk.utils.yaml_loader import safe_load_yaml

from source_smstools import cdk_limits

MANIFEST = Path(__file__).with_name("manifest.yaml")

cdk_limits.keep_per_phone_state()


def _timings(manifest: dict) -> dict:
    """The waits and timeouts, shortened by the tests that run the command in a process of its own
    (`SMSTOOLS_BACKOFF_FACTOR`, `SMSTOOLS_READ_TIMEOUT`). Not for users, so not in the spec or the
    docs: a user's config never changes them."""
    factor = os.environ.get("SMSTOOLS_BACKOFF_FACTOR")
    if factor:
        for strategy in manifest["definitions"]["backoff_strategies"]:
            if strategy["type"] == "ExponentialBackoffStrategy":
                strategy["factor"] = float(factor)
    timeout = os.environ.get("SMSTOOLS_READ_TIMEOUT")
    if timeout:
        manifest["definitions"]["requester"]["read_timeout_in_seconds"] = float(timeout)
    return manifest


class SourceSmstools(ConcurrentDeclarativeSource):
    """The connector: everything is in manifest.yaml."""

    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        config_path: Optional[str] = None,
    ) -> None:
        super().__init__(
            catalog=catalog,
            config=config,
            state=state,
            source_config=_timings(safe_load_yaml(MANIFEST.read_text())),
            config_path=config_path,
        )
