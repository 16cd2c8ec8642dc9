"""The version is the same everywhere it is written; a first catalogue release has no breaking-change entry."""

import datetime
import re
from pathlib import Path

import yaml


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


def test_a_first_catalogue_release_declares_no_breaking_change_and_keeps_its_migration_guide():
    # The connector was never released in Airbyte's catalogue: a breaking-change entry there would
    # ask users who have nothing to migrate to act before a deadline. Users of our own image 0.1.0
    # have the migration guide, which the changelog links.
    assert "releases" not in metadata()
    guide = (ROOT / "docs" / "smstools-migrations.md").read_text()
    assert re.search(r"^## Upgrading to 0\.2\.0$", guide, re.M)
    assert "(smstools-migrations.md#upgrading-to-020)" in (ROOT / "docs" / "smstools.md").read_text()
