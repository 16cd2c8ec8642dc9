"""The shipped components.py and manifest.yaml, loaded as catalogue manifest-only connectors load
them: components.py by file path as the module `components` (airbyte_cdk.test.utils's
manifest_only_fixtures do the same), the manifest with components.py injected, as the generic
runtime and the standard tests run it."""

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Optional

import pytest
import yaml
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource


@pytest.fixture(scope="session")
def connector_dir() -> Path:
    return Path(__file__).parent.parent


@pytest.fixture(scope="session")
def components_module(connector_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("components", connector_dir / "components.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def manifest(connector_dir: Path) -> Mapping[str, Any]:
    return yaml.safe_load((connector_dir / "manifest.yaml").read_text())


@pytest.fixture
def source(connector_dir: Path, manifest: Mapping[str, Any], monkeypatch: pytest.MonkeyPatch) -> Callable[..., ConcurrentDeclarativeSource]:
    """A source for one config (and a state), with components.py injected."""
    monkeypatch.setenv("AIRBYTE_ENABLE_UNSAFE_CODE", "true")  # components.py is custom code
    code = (connector_dir / "components.py").read_text()

    def make(config: Mapping[str, Any], state: Optional[list] = None) -> ConcurrentDeclarativeSource:
        injected = {
            **config,
            "__injected_components_py": code,
            "__injected_components_py_checksums": {"md5": hashlib.md5(code.encode()).hexdigest()},
        }
        return ConcurrentDeclarativeSource(config=injected, catalog=None, state=state, source_config=dict(manifest))

    return make
