"""The component modules and the components.py joined from them behave the same.

The catalogue tree's unit tests (release/connector/unit_tests/test_components.py: exact records,
requests, messages) run here twice, once on the modules as the package has them (the package's
manifest) and once on the joined components.py injected into the built manifest, as the tree's
conftest loads it. And the joined file holds each module's definitions unchanged (the same syntax
tree), its imports at the top and nowhere else."""

import ast
import hashlib
import importlib
import importlib.util
import pkgutil
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import yaml
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource

import source_smstools.components as package
from release import catalogue, manifest_only
from source_smstools.source import MANIFEST, SourceSmstools

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the tree's tests, collected here with this module's fixtures
_shipped = _load(ROOT / "release" / "connector" / "unit_tests" / "test_components.py", "shipped_component_tests")
globals().update({name: value for name, value in vars(_shipped).items() if name.startswith("test_")})


@pytest.fixture(scope="module")
def connector(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return catalogue.build(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture(scope="module", params=["modules", "joined"])
def form(request: pytest.FixtureRequest) -> str:
    return request.param


def _modules() -> list:
    return [importlib.import_module(f"{package.__name__}.{m.name}") for m in pkgutil.iter_modules(package.__path__)]


@pytest.fixture(scope="module")
def components_module(form: str, connector: Path) -> Any:
    if form == "joined":
        return _load(connector / "components.py", "components")
    names = {}
    for module in _modules():
        names.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    return SimpleNamespace(**names)


@pytest.fixture(scope="module")
def manifest(form: str, connector: Path) -> Any:
    return yaml.safe_load(((connector / "manifest.yaml") if form == "joined" else Path(MANIFEST)).read_text())


@pytest.fixture
def source(form: str, connector: Path, manifest: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    if form == "modules":
        return lambda config, state=None: SourceSmstools(config=config, state=state)
    monkeypatch.setenv("AIRBYTE_ENABLE_UNSAFE_CODE", "true")
    code = (connector / "components.py").read_text()

    def make(config: Any, state: Any = None) -> ConcurrentDeclarativeSource:
        injected = {**config, "__injected_components_py": code, "__injected_components_py_checksums": {"md5": hashlib.md5(code.encode()).hexdigest()}}
        return ConcurrentDeclarativeSource(config=injected, catalog=None, state=state, source_config=dict(manifest))

    return make


def _definitions(tree: ast.Module) -> dict:
    """name -> the syntax tree of what a module defines at its top level (imports aside)."""
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found[node.name] = ast.dump(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        found[name.id] = ast.dump(node)
    return found


def test_the_joined_file_holds_each_modules_definitions_unchanged_and_its_imports_at_the_top(connector: Path) -> None:
    joined = ast.parse((connector / "components.py").read_text())
    in_file = _definitions(joined)
    expected = {}
    for path in sorted(manifest_only.COMPONENTS.glob("*.py")):
        expected.update(_definitions(ast.parse(path.read_text())))
    # what joining adds: the namespace of modules imported whole (changes.now is the file's now)
    added = {name for name in in_file if name not in expected}
    assert added == {"_ThisFile", "changes", "coverage", "numbers"}
    assert {name: in_file[name] for name in expected} == expected
    body = joined.body[1:]  # after the docstring
    first = next(i for i, node in enumerate(body) if not isinstance(node, (ast.Import, ast.ImportFrom)))
    imports = [n for n in ast.walk(joined) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert imports == body[:first] and len(imports) > 10
    assert not [n.module for n in imports if isinstance(n, ast.ImportFrom) and n.module in ("__future__", None)]


def test_a_module_with_an_import_inside_a_function_or_a_future_import_fails_the_join(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('"""A."""\n\n\ndef f():\n    import json\n    return json\n')
    with pytest.raises(manifest_only.BuildError, match="a.py:5: an import inside a block"):
        manifest_only.components_py(tmp_path)
    (tmp_path / "a.py").write_text('"""A."""\n\nfrom __future__ import annotations\n')
    with pytest.raises(manifest_only.BuildError, match="a.py: `from __future__` changes what the joined file means"):
        manifest_only.components_py(tmp_path)


def test_one_name_imported_as_two_things_fails_the_join(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('"""A."""\n\nfrom json import loads as parse\n')
    (tmp_path / "b.py").write_text('"""B."""\n\nfrom urllib.parse import urlsplit as parse\n')
    with pytest.raises(manifest_only.BuildError, match="parse is imported as json.loads in a.py and as urllib.parse.urlsplit in b.py"):
        manifest_only.components_py(tmp_path)
