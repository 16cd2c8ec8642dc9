"""`make manifest-only`'s output passes the catalogue's checks: the metadata against Airbyte's own
schema (airbyte-connector-models), the manifest-only tags and base image, icon.svg, HTTPS only, no
breaking change for a first release; components.py is one file that the generic runtime can load."""

import ast
from pathlib import Path

import pytest
import yaml
from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import ConnectorMetadataDefinitionV0

from release import manifest_only


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    manifest_only.build(out)
    return out


def test_the_metadata_passes_airbytes_schema_with_the_manifest_only_tags_and_image(built: Path) -> None:
    metadata = yaml.safe_load((built / "manifest-only" / "metadata.yaml").read_text())
    # the model the catalogue's ValidateMetadata loads it with (pydantic: unknown keys refused);
    # the package's JSON schema is not usable as it is (its remoteRegistries $ref points nowhere)
    ConnectorMetadataDefinitionV0.model_validate(metadata)
    data = metadata["data"]
    assert data["tags"] == ["language:manifest-only", "cdk:low-code"]
    assert data["connectorBuildOptions"] == {"baseImage": "docker.io/airbyte/source-declarative-manifest:7.39.1"}
    assert data["icon"] == "icon.svg"
    assert data["remoteRegistries"] == {"pypi": {"enabled": False, "packageName": "airbyte-source-smstools"}}
    assert data["connectorTestSuitesOptions"] == [{"suite": "acceptanceTests"}]
    assert "releases" not in data  # a first release in the catalogue: nothing breaks for anyone


def test_the_base_image_is_pinned_with_the_digest_given(tmp_path: Path) -> None:
    manifest_only.build(tmp_path, digest="sha256:" + "0" * 64)
    data = yaml.safe_load((tmp_path / "manifest-only" / "metadata.yaml").read_text())["data"]
    assert data["connectorBuildOptions"]["baseImage"] == "docker.io/airbyte/source-declarative-manifest:7.39.1@sha256:" + "0" * 64
    with pytest.raises(manifest_only.BuildError, match="sha256: and 64 hex digits, not 'sha256:abc'"):
        manifest_only.build(tmp_path, digest="sha256:abc")


def test_the_directory_holds_what_the_catalogue_takes(built: Path) -> None:
    files = sorted(str(p.relative_to(built / "manifest-only")) for p in (built / "manifest-only").rglob("*") if p.is_file())
    assert files == ["README.md", "components.py", "docs/smstools-migrations.md", "docs/smstools.md", "icon.svg", "manifest.yaml", "metadata.yaml"]


def test_what_ships_has_https_addresses_only(built: Path) -> None:
    found = {}
    for path in (built / "manifest-only").rglob("*"):
        if path.is_file():
            text = path.read_text()
            if path.name == "icon.svg":  # the SVG namespace is a name, never fetched
                text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")
            if "http://" in text:
                found[path.name] = text.count("http://")
    assert found == {}


def test_the_manifest_has_its_schemas_inline_and_names_only_classes_of_components_py(built: Path) -> None:
    text = (built / "manifest-only" / "manifest.yaml").read_text()
    manifest = yaml.safe_load(text)
    body = yaml.safe_dump(manifest)  # without the header comment, which names the source file
    assert "JsonFileSchemaLoader" not in body and "source_smstools" not in body
    names = set()

    def collect(node):
        if isinstance(node, dict):
            if "class_name" in node:
                names.add(node["class_name"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(manifest)
    module = ast.parse((built / "manifest-only" / "components.py").read_text())
    classes = {n.name for n in module.body if isinstance(n, ast.ClassDef)}
    assert names and {n.rsplit(".", 1)[0] for n in names} == {"source_declarative_manifest.components"}
    assert {n.rsplit(".", 1)[1] for n in names} <= classes
    # one schema a stream, inline
    assert all(s["schema_loader"]["type"] == "InlineSchemaLoader" for s in manifest["definitions"].values() if isinstance(s, dict) and "schema_loader" in s)


def test_components_py_is_one_file_without_the_future_import_or_our_package(built: Path) -> None:
    module = ast.parse((built / "manifest-only" / "components.py").read_text())
    # anywhere in the file: an import inside a function (paging.py's of pages) too
    imported = {n.module for n in ast.walk(module) if isinstance(n, ast.ImportFrom)}
    assert "__future__" not in imported
    assert not [m for m in imported if m and m.startswith("source_smstools")]


def test_two_modules_defining_one_name_differently_fail_the_build(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        '"""A."""\n\nfrom airbyte_cdk.sources.declarative.interpolation import InterpolatedString\n\nLIMIT = 1\n\n\ndef helper():\n    return 1\n'
    )
    (tmp_path / "b.py").write_text(
        '"""B."""\n\nfrom airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString\n'
        'from source_smstools.components.a import helper\n\nLIMIT = 1\n\n\ndef helper2():\n    return helper()\n'
    )
    # the same definition twice (LIMIT = 1), the same class imported by two paths: one name each
    assert "def helper2" in manifest_only.components_py(tmp_path)
    (tmp_path / "c.py").write_text('"""C."""\n\n\ndef helper():\n    return 2\n')
    with pytest.raises(manifest_only.BuildError, match="helper is defined in both a.py and c.py: rename one"):
        manifest_only.components_py(tmp_path)


def test_the_builder_edition_has_no_custom_code_and_says_what_it_does_without(built: Path) -> None:
    text = (built / "builder" / "manifest.yaml").read_text()
    assert "Custom" not in text and "class_name" not in text and "$ref" not in text
    manifest = yaml.safe_load(text)
    assert [s["name"] for s in manifest["streams"]] == ["conversation"]
    (stream,) = manifest["streams"]
    assert stream["retriever"]["partition_router"]["type"] == "ListPartitionRouter"
    assert stream["incremental_sync"]["cursor_field"] == "unixDatetime"
    assert stream["incremental_sync"].get("is_data_feed") is None and stream["incremental_sync"]["is_client_side_incremental"] is True
    assert manifest["spec"]["connection_specification"]["required"] == ["client_id", "client_secret", "phone_numbers"]
    for missing in ("phone discovery", "change detection", "the tolerant reader", "the evidence-based early stop"):
        assert missing in manifest["description"]


def test_the_manifest_uses_no_deprecated_field() -> None:
    # the Connector Builder lists each deprecated field as a warning (url_base and path are)
    from source_smstools.source import SourceSmstools

    source = SourceSmstools(config={"client_id": "a", "client_secret": "b", "phone_numbers": ["+393331000000"]})
    assert [w.message for w in source.deprecation_warnings()] == []
