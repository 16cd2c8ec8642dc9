"""Airbyte's standard source tests (airbyte_cdk.test.standard_tests), driven by
acceptance-test-config.yml, against the emulator on a free port: the configs name
http://127.0.0.1:0, which every scenario's config gets as the emulator's address (no fixed port, so
that two runs on one machine both pass)."""

from pathlib import Path

import pytest
from airbyte_cdk.test.models.scenario import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import DeclarativeSourceTestSuite

from smstools_emulator import Emulator, make_conversation
from source_smstools.source import MANIFEST, SourceSmstools

PLACEHOLDER = "http://127.0.0.1:0"  # the base_url of integration_tests/acceptance/*.json


@pytest.fixture(scope="module", autouse=True)
def emulator():
    phones = ["+393331000000", "+393331000001"]
    with Emulator({p: make_conversation(p, 1200, seed=3) for p in phones}) as server, pytest.MonkeyPatch.context() as patch:
        read = ConnectorTestScenario.get_config_dict

        def pointed(self, **kwargs):
            config = dict(read(self, **kwargs))
            if config.get("base_url") == PLACEHOLDER:
                config["base_url"] = server.url
            return config

        patch.setattr(ConnectorTestScenario, "get_config_dict", pointed)
        yield server


class TestSmstools(DeclarativeSourceTestSuite):
    manifest_yaml_path = MANIFEST

    @classmethod
    def get_connector_root_dir(cls) -> Path:
        return Path(__file__).resolve().parents[2]

    @classmethod
    def create_connector(cls, scenario):
        config = scenario.get_config_dict(connector_root=cls.get_connector_root_dir(), empty_if_missing=True) if scenario else None
        return SourceSmstools(config=config)
