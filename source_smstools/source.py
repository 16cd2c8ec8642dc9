"""The connector: the packaged manifest.yaml and its components (source_smstools/components).

Nothing here changes what the connector does: the same manifest behaves the same in Airbyte's
generic source-declarative-manifest runtime, the Connector Builder and PyAirbyte.
"""

from pathlib import Path
from typing import Any, List, Mapping, Optional

from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource

MANIFEST = Path(__file__).with_name("manifest.yaml")


class SourceSmstools(YamlDeclarativeSource):
    """The packaged manifest. airbyte-cdk 7 builds the streams from the config, catalog and state
    given here: those passed later to read() are ignored."""

    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        config_path: Optional[str] = None,
    ) -> None:
        # an absolute path: YamlDeclarativeSource would first look for a relative one in the
        # working directory
        super().__init__(str(MANIFEST), catalog=catalog, config=config, state=state, config_path=config_path)
