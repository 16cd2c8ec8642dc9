"""The version is the same everywhere it is written, and a breaking release says what users must do."""

import datetime
import re
from pathlib import Path

import yaml

from integration_tests import cli

ROOT = Path(__file__).resolve().parent.parent


def metadata() -> dict:
    return yaml.safe_load((ROOT / "metadata.yaml").read_text())["data"]


def setup_version() -> str:
    match = re.search(r'^\s+version="([^"]+)",$', (ROOT / "setup.py").read_text(), re.M)
    assert match, "setup.py has no version"
    return match.group(1)


def changelog_versions() -> list[str]:
    return re.findall(r"^\| (\d+\.\d+\.\d+) \|", (ROOT / "docs" / "smstools.md").read_text(), re.M)


def test_one_version_everywhere():
    version = metadata()["dockerImageTag"]
    assert setup_version() == version
    assert re.search(rf"^LABEL io\.airbyte\.version={re.escape(version)}$", (ROOT / "Dockerfile").read_text(), re.M)
    assert changelog_versions()[0] == version, "the changelog's first row is the current version"


def test_each_breaking_change_has_its_notice_and_migration_guide():
    data = metadata()
    changes = data["releases"]["breakingChanges"]
    assert sorted(changes) == ["0.2.0"]
    guide = (ROOT / "docs" / "smstools-migrations.md").read_text()
    released = datetime.date.fromisoformat(data["releaseDate"])
    for version, change in changes.items():
        assert version in changelog_versions()
        assert re.search(rf"^## Upgrading to {re.escape(version)}$", guide, re.M), f"no migration section for {version}"
        assert change["migrationDocumentationUrl"] == f"{data['documentationUrl']}-migrations#{version}"
        # Airbyte asks for at least a week, two recommended
        assert datetime.date.fromisoformat(change["upgradeDeadline"]) >= released + datetime.timedelta(days=14)
        assert len(change["message"]) < 1000
        (scope,) = change["scopedImpact"]
        assert scope["scopeType"] == "stream"
        assert set(scope["impactedScopes"]) < set(cli.STREAMS)


def test_the_0_2_0_notice_names_the_streams_whose_column_types_changed():
    # optouts and statistics kept their types; every other stream has a field whose type changed
    (scope,) = metadata()["releases"]["breakingChanges"]["0.2.0"]["scopedImpact"]
    assert set(cli.STREAMS) - set(scope["impactedScopes"]) == {"optouts", "statistics"}
