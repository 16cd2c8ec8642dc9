"""One CDK version, said once (setup.py's pin), and the same wherever it must appear."""

import re
from importlib.metadata import version
from pathlib import Path

import yaml

from release import catalogue, manifest_only

ROOT = Path(__file__).resolve().parents[1]
CDK = re.search(r'"airbyte-cdk==([^"]+)"', (ROOT / "setup.py").read_text()).group(1)


def test_the_cdk_version_is_the_same_wherever_it_appears():
    assert CDK == "7.39.1"  # pinned: a new CDK is a change of its own (the runtime tests, the base image)
    assert version("airbyte-cdk") == CDK  # what the tests run on
    assert yaml.safe_load((ROOT / "source_smstools" / "manifest.yaml").read_text())["version"] == CDK
    assert manifest_only.CDK_VERSION == CDK and manifest_only.BASE_IMAGE.endswith(f":{CDK}")
    # the catalogue tree's unit tests (pyproject.toml from setup.py's pins; the lock resolved from it)
    assert f'airbyte-cdk = "{CDK}"' in catalogue.pyproject()
    lock = (ROOT / "release" / "connector" / "unit_tests" / "poetry.lock").read_text()
    assert f'name = "airbyte-cdk"\nversion = "{CDK}"' in lock
    # prose that names it: the README, the docs, the demo's requirements
    for path in ("README.md", "docs/smstools.md", "demo/requirements.txt"):
        named = set(re.findall(r"(?:airbyte-cdk`? |source-declarative-manifest:|pin |cdk-)(\d+\.\d+\.\d+)", (ROOT / path).read_text()))
        assert named == {CDK}, (path, named)
