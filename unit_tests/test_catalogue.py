"""`make catalogue`'s tree passes the checks of Airbyte's connectors_qa (airbyte-ci/connectors/
connectors_qa in airbytehq/airbyte) that can run without a network, each written here as the check
decides, for a manifest-only source at support level 100; and the tree holds what a catalogue pull
request holds (compared with source-the-guardian-api). The checks that need a network are listed in
docs/smstools.md ("Contributing to Airbyte's catalogue")."""

import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import ConnectorMetadataDefinitionV0

from release import catalogue, manifest_only

ROOT = Path(__file__).resolve().parents[1]
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    catalogue.build(out, pull_request="70123")
    return out / "catalogue"


@pytest.fixture(scope="module")
def connector(tree: Path) -> Path:
    return tree / catalogue.CONNECTOR


@pytest.fixture(scope="module")
def data(connector: Path) -> dict:
    return yaml.safe_load((connector / "metadata.yaml").read_text())["data"]


def test_the_tree_holds_what_a_catalogue_pull_request_adds(tree: Path) -> None:
    files = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    connector = "airbyte-integrations/connectors/source-smstools/"
    assert files == [
        connector + name
        for name in (
            "README.md", "acceptance-test-config.yml", "components.py", "icon.svg",
            "integration_tests/abnormal_state.json", "integration_tests/configured_catalog.json",
            "integration_tests/invalid_config.json", "integration_tests/sample_config.json",
            "manifest.yaml", "metadata.yaml",
            "unit_tests/conftest.py", "unit_tests/poetry.lock", "unit_tests/pyproject.toml", "unit_tests/test_components.py",
        )
    ] + ["docs/integrations/sources/smstools-migrations.md", "docs/integrations/sources/smstools.md"]


def test_validate_metadata_offline(connector: Path, tree: Path, data: dict) -> None:
    # ValidateMetadata: the catalogue's model, then its pre-upload validators that need no network
    ConnectorMetadataDefinitionV0.model_validate(yaml.safe_load((connector / "metadata.yaml").read_text()))
    assert all(":" in tag for tag in data["tags"])
    assert [t for t in data["tags"] if t.startswith("language:")] == ["language:manifest-only"]
    docs = data["documentationUrl"].replace("https://docs.airbyte.com/", "docs/") + ".md"
    assert (tree / docs).is_file()
    assert data["dockerRepository"] == "airbyte/source-smstools" and data["githubIssueLabel"] == "source-smstools"
    assert data["connectorBuildOptions"]["baseImage"] == f"docker.io/airbyte/source-declarative-manifest:{manifest_only.CDK_VERSION}"


def test_the_base_image_is_pinned_with_a_digest_when_one_is_given(tmp_path: Path) -> None:
    # the upload validator refuses a base image without @sha256: the digest is read from Docker Hub
    # (docs/smstools.md); the build takes it
    connector = catalogue.build(tmp_path, digest="sha256:" + "ab" * 32)
    image = yaml.safe_load((connector / "metadata.yaml").read_text())["data"]["connectorBuildOptions"]["baseImage"]
    assert re.fullmatch(rf"docker\.io/airbyte/source-declarative-manifest:{re.escape(manifest_only.CDK_VERSION)}@sha256:[0-9a-f]{{64}}", image)


def test_language_and_cdk_tags(connector: Path, data: dict) -> None:
    # CheckConnectorLanguageTag: a setup.py or pyproject.toml at the root would make it language:python
    assert (connector / "manifest.yaml").is_file()
    assert not (connector / "setup.py").exists() and not (connector / "pyproject.toml").exists()
    assert not (connector / "Dockerfile").exists()  # the image is the base image with the two files
    assert "cdk:low-code" in data["tags"]


def test_no_breaking_change_so_no_deadline_or_migration_guide_is_due(data: dict, tree: Path) -> None:
    # ValidateBreakingChangesDeadlines, CheckMigrationGuide: a first release in the catalogue
    assert "releases" not in data
    guide = (tree / "docs/integrations/sources/smstools-migrations.md").read_text()
    assert guide.splitlines()[0] == "# Smstools Migration Guide"


def test_documentation_exists_with_a_changelog_entry_for_the_version_and_its_pull_request(tree: Path, data: dict) -> None:
    # CheckDocumentationExists, CheckChangelogEntry (the version on a line after "# Changelog")
    text = (tree / "docs/integrations/sources/smstools.md").read_text()
    after = text[text.lower().index("# changelog") :]
    assert "| Version | Date | Pull Request | Subject |" in after
    (row,) = [line for line in after.splitlines() if line.startswith(f"| {data['dockerImageTag']} |")]
    assert row.startswith(f"| {data['dockerImageTag']} | 2026-12-03 | [70123](https://github.com/airbytehq/airbyte/pull/70123) | ")
    assert text.splitlines()[0] == f"# {data['name']}"


def test_the_icon_is_an_svg_of_our_own(connector: Path) -> None:
    # CheckConnectorIconIsAvailable
    root = ET.parse(connector / "icon.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "M95.775 53.416" not in (connector / "icon.svg").read_text()  # not Airbyte's default icon


def test_https_only(connector: Path) -> None:
    # CheckConnectorUsesHTTPSOnly, with its exemptions: test folders, SVGs, comment lines, the
    # json-schema.org and localhost prefixes
    found = []
    for path in connector.rglob("*"):
        if not path.is_file() or path.suffix == ".svg" or {"unit_tests", "integration_tests"} & set(path.relative_to(connector).parts):
            continue
        for line in path.read_text().lower().splitlines():
            if line.lstrip().startswith("#") and path.suffix in (".py", ".yml", ".yaml"):
                continue
            if "http://" in line.replace("http://json-schema.org", "").replace("http://localhost", ""):
                found.append(f"{path.name}: {line.strip()[:80]}")
    assert found == []


def test_license_and_semantic_version(data: dict) -> None:
    # CheckConnectorLicense, CheckVersionFollowsSemver; CheckVersionIncrement compares with the
    # catalogue's master branch (a network), where a new connector has no metadata: 0.0.0
    assert data["license"].upper() in ("MIT", "ELV2")
    assert SEMVER.match(data["dockerImageTag"]) and data["dockerImageTag"] != "0.0.0"


def test_acceptance_and_unit_test_suites_are_enabled_with_the_test_accounts_secret(data: dict) -> None:
    # AcceptanceTestsEnabledCheck; the secret Airbyte's CI writes as secrets/config.json
    suites = {s["suite"]: s for s in data["connectorTestSuitesOptions"]}
    assert set(suites) == {"unitTests", "acceptanceTests"}
    assert suites["acceptanceTests"]["testSecrets"][0]["fileName"] == "config.json"


def test_the_standard_tests_inputs_name_no_address(connector: Path) -> None:
    # the test account's config is secrets/config.json; no input fixes a host or a port
    config = yaml.safe_load((connector / "acceptance-test-config.yml").read_text())
    paths = {t["config_path"] for suite in config["acceptance_tests"].values() for t in suite["tests"]}
    assert paths == {"secrets/config.json", "integration_tests/invalid_config.json"}
    for path in (connector / "integration_tests").glob("*.json"):
        assert "base_url" not in path.read_text() and "127.0.0.1" not in path.read_text(), path.name


def test_the_unit_tests_pin_the_cdk_of_setup_py(connector: Path) -> None:
    text = (connector / "unit_tests" / "pyproject.toml").read_text()
    assert f'airbyte-cdk = "{manifest_only.CDK_VERSION}"' in text
    assert re.search(r'^pytest = "\d+\.\d+\.\d+"$', text, flags=re.M)


def test_the_lock_was_resolved_from_this_pyproject_with_the_pins_of_setup_py(connector: Path) -> None:
    pyproject = (connector / "unit_tests" / "pyproject.toml").read_text()
    assert hashlib.sha256(pyproject.encode()).hexdigest() == catalogue.LOCKED_PYPROJECT
    lock = (connector / "unit_tests" / "poetry.lock").read_text()
    locked = dict(re.findall(r'^name = "([a-z-]+)"\nversion = "([^"]+)"', lock, flags=re.M))
    for name, version in catalogue._pins().items():
        if name in ("airbyte-cdk", "pytest", "requests-mock"):
            assert locked[name] == version, name


def test_the_docs_speak_of_the_catalogue_connector_only(tree: Path) -> None:
    text = (tree / "docs/integrations/sources/smstools.md").read_text()
    assert not catalogue.REPOSITORY_WORDS.search(text)
    for heading in catalogue.OURS_ONLY[1:]:
        assert f"\n{heading}\n" not in text
    assert "### Where it runs" in text and "Airbyte Cloud runs no custom code" in text


def test_a_changelog_without_a_row_for_the_version_fails_the_build_with_a_pull_request() -> None:
    with pytest.raises(catalogue.BuildError, match="the changelog has no row for 9.9.9"):
        catalogue.docs("# Smstools\n\n## Changelog\n\n| 0.1.0 | 2026-11-28 | | Initial |\n", "9.9.9", "70123")
    with pytest.raises(catalogue.BuildError, match="link to no heading: \\['nowhere'\\]"):
        catalogue.docs("# Smstools\n\nSee [there](#nowhere).\n", "0.1.0", "")
    with pytest.raises(catalogue.BuildError, match="would speak of this repository"):
        catalogue.docs("# Smstools\n\nRun `make test`.\n", "0.1.0", "")
