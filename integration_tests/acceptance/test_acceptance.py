"""Airbyte's standard source tests (airbyte_cdk.test.standard_tests), driven by
acceptance-test-config.yml, against the emulator on the port its configs name."""

from pathlib import Path

import pytest
from airbyte_cdk.test.standard_tests import DeclarativeSourceTestSuite

from smstools_emulator import Emulator, make_conversation
from source_smstools.source import MANIFEST, SourceSmstools

PORT = 18765  # the port of integration_tests/acceptance/*.json


@pytest.fixture(scope="module", autouse=True)
def emulator():
    phones = ["+393331000000", "+393331000001"]
    with Emulator({p: make_conversation(p, 1200, seed=3) for p in phones}, port=PORT) as server:
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
