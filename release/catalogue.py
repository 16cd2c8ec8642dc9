"""`make catalogue`: the files a pull request to airbytehq/airbyte adds for source-smstools.

    build/catalogue/airbyte-integrations/connectors/source-smstools/
        manifest.yaml, components.py, metadata.yaml, icon.svg   as `make manifest-only` writes them
        acceptance-test-config.yml, integration_tests/          the standard tests' inputs (release/connector/)
        unit_tests/                                             tests of the shipped components.py, with
                                                                pyproject.toml (pins from setup.py) and
                                                                poetry.lock (release/connector/)
        README.md
    build/catalogue/docs/integrations/sources/smstools.md (and smstools-migrations.md)
        docs/*.md in the catalogue's form: what concerns this repository only (make, the emulator,
        the probe, PyAirbyte recipes) left out; the pull request's number in the changelog (PR=)

The tree was compared, file by file, with source-the-guardian-api (a manifest-only catalogue
connector with a components.py): see docs/smstools.md, "Contributing to Airbyte's catalogue".
"""

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import List

import yaml

from release import manifest_only

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "release" / "connector"  # the tree's files that are written by hand, as they ship
CONNECTOR = Path("airbyte-integrations") / "connectors" / "source-smstools"
DOCS = Path("docs") / "integrations" / "sources"
REPOSITORY = "https://github.com/airbytehq/airbyte"

# the docs' sections that concern this repository, not the catalogue's connector
OURS_ONLY = (
    "### Where it runs",
    "### PyAirbyte caches: strings of digits",
    "### The probe: what the API answers your account",
    "## Testing your pipeline with the emulator",
    "## Contributing to Airbyte's catalogue",
)
# words that say the page speaks of this repository: none may be left in the catalogue's docs
REPOSITORY_WORDS = re.compile(
    r"`make\b|\bmake (?:test|sync|probe|bench|demo|image|manifest-only|catalogue|install|soak)\b|podman|\.venv|demo/|\.cache/"
    r"|smstools-emulator|source-smstools-probe|pip install '\.|\bDockerfile\b"
)

WHERE = """### Where it runs

The connector is declarative: its manifest and its custom components (`components.py`) run in
Airbyte's generic runtime (the `source-declarative-manifest` image), in Airbyte Open Source and
in the Connector Builder of Airbyte Open Source, which permits custom components when
`AIRBYTE_ENABLE_UNSAFE_CODE=true`. Airbyte Cloud runs no custom code.
"""


class BuildError(Exception):
    pass


def docs(text: str, version: str, pull_request: str) -> str:
    """docs/smstools.md in the catalogue's form."""
    for heading in OURS_ONLY:
        start = text.find(f"\n{heading}\n")
        if start < 0:
            continue
        level = heading.split(" ")[0]
        ends = [text.find(f"\n{'#' * n} ", start + 1) for n in range(2, len(level) + 1)]
        ends = [e for e in ends if e >= 0]
        end = min(ends) if ends else len(text)
        keep = WHERE if heading == "### Where it runs" else ""
        text = text[: start + 1] + keep + ("\n" if keep else "") + text[end + 1 :]
    # a figure's source in this repository, in parentheses
    text = re.sub(r"; `make bench` has the figures", "", text)
    text = "\n".join(_catalogue_row(line) if line.startswith("| 0.") else line for line in text.splitlines()) + "\n"
    if pull_request:
        link = f"[{pull_request}]({REPOSITORY}/pull/{pull_request})"
        text, found = re.subn(rf"^\| {re.escape(version)} \| ([0-9-]+) \| \|", rf"| {version} | \1 | {link} |", text, flags=re.M)
        if not found:
            raise BuildError(f"the changelog has no row for {version} with an empty Pull Request cell")
    # a link to a section left out: its words stay, unlinked; any other link must find its heading
    gone = {_anchor(h.split(" ", 1)[1]) for h in OURS_ONLY}
    text = re.sub(r"\[([^\]]+)\]\(#([^)]+)\)", lambda m: m.group(1) if m.group(2) in gone else m.group(0), text)
    headings = {_anchor(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}
    broken = sorted(set(re.findall(r"\]\(#([^)]+)\)", text)) - headings)
    if broken:
        raise BuildError(f"the catalogue's docs link to no heading: {broken}")
    left = [line for line in text.splitlines() if REPOSITORY_WORDS.search(line)]
    if left:
        raise BuildError("the catalogue's docs would speak of this repository:\n  " + "\n  ".join(left))
    return text


def _anchor(heading: str) -> str:
    """The anchor GitHub and Docusaurus give a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def _catalogue_row(line: str) -> str:
    """A changelog row without the sentences and clauses that speak of this repository (its make
    targets, the emulator's command, the probe's command): the catalogue ships none of them."""
    cells = line.split(" | ")
    sentences = []
    for sentence in cells[-1].split(". "):
        clauses = [c for c in sentence.split("; ") if not REPOSITORY_WORDS.search(c)]
        if clauses:
            sentences.append("; ".join(clauses))
    cells[-1] = ". ".join(sentences)
    return " | ".join(cells) if cells[-1].endswith("|") else " | ".join(cells) + " |"


def metadata(ours: dict, digest: str) -> dict:
    """The manifest-only metadata, with the tests the catalogue runs and their secret."""
    data = manifest_only.metadata(ours, digest)["data"]
    data["connectorTestSuitesOptions"] = [
        {"suite": "unitTests"},
        {
            "suite": "acceptanceTests",
            # the test account's config.json, which Airbyte keeps in its secret store
            "testSecrets": [{
                "name": "SECRET_SOURCE-SMSTOOLS__CREDS",
                "fileName": "config.json",
                "secretStore": {"type": "GSM", "alias": "airbyte-connector-testing-secret-store"},
            }],
        },
    ]
    return {**ours, "data": data}


# unit_tests/poetry.lock (release/connector/) was resolved by `poetry lock` (Poetry 2.5.1) from the
# pyproject.toml whose sha256 this is: a change of pyproject() (a new pin in setup.py) needs a new
# lock: `make catalogue`, then in build/catalogue/.../unit_tests `poetry lock`, and copy it back
LOCKED_PYPROJECT = "09628dcbe2a323d33aaf00c445f251fac9f1b3b6c10f978bd8bc2a1c5be03d83"


def _pins() -> dict:
    """The versions setup.py pins (the CDK's, the test tools'): said there once."""
    return dict(re.findall(r'"([a-z-]+)==([^"]+)"', (ROOT / "setup.py").read_text()))


def pyproject() -> str:
    """unit_tests/pyproject.toml as catalogue manifest-only connectors have it (poetry; the CDK the
    manifest is tested on, and the test tools of this repository's tests), versions from setup.py."""
    pins = _pins()
    assert pins["airbyte-cdk"] == manifest_only.CDK_VERSION
    return (
        '[build-system]\nrequires = ["poetry-core>=1.0.0"]\nbuild-backend = "poetry.core.masonry.api"\n\n'
        '[tool.poetry]\nname = "source-smstools-tests"\nversion = "0.0.0"\n'
        'description = "Unit tests of source-smstools\' components.py"\nauthors = ["Airbyte <contact@airbyte.io>"]\n'
        "package-mode = false\n\n"
        '[tool.poetry.dependencies]\npython = "^3.10,<3.13"\n'
        + "".join(f'{name} = "{pins[name]}"\n' for name in ("airbyte-cdk", "pytest", "requests-mock"))
        + '\n[tool.pytest.ini_options]\nfilterwarnings = ["ignore:This class is experimental*"]\n'
    )


def build(out: Path, digest: str = "", pull_request: str = "") -> Path:
    """Writes out/catalogue; returns the connector's directory in it."""
    if pull_request and not pull_request.isdigit():
        raise BuildError(f"PR is the pull request's number, not {pull_request!r}")
    forms = out / "manifest-only-for-catalogue"
    manifest_only.build(forms, digest)
    built = forms / "manifest-only"
    tree = out / "catalogue"
    shutil.rmtree(tree, ignore_errors=True)
    connector = tree / CONNECTOR
    shutil.copytree(STATIC, connector, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    for name in ("manifest.yaml", "components.py", "icon.svg"):
        shutil.copyfile(built / name, connector / name)
    (connector / "unit_tests" / "pyproject.toml").write_text(pyproject())
    ours = yaml.safe_load((ROOT / "metadata.yaml").read_text())
    (connector / "metadata.yaml").write_text(manifest_only._dump(metadata(ours, digest)))
    version = ours["data"]["dockerImageTag"]
    (connector / "README.md").write_text(
        "# Smstools source\n\n"
        "A manifest-only connector (`manifest.yaml` and its custom components, `components.py`) for the\n"
        "Smstools SMS API. User documentation: docs/integrations/sources/smstools.md.\n\n"
        "Tests: `airbyte-cdk connector test` (the standard tests; `secrets/config.json` is the test account's\n"
        "config) and, in `unit_tests/`, `poetry install && poetry run pytest` (the shipped components.py).\n"
    )
    (tree / DOCS).mkdir(parents=True)
    (tree / DOCS / "smstools.md").write_text(docs((ROOT / "docs" / "smstools.md").read_text(), version, pull_request))
    (tree / DOCS / "smstools-migrations.md").write_text((ROOT / "docs" / "smstools-migrations.md").read_text())
    shutil.rmtree(forms)
    return connector


def main(argv: List[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build"))
    parser.add_argument("--digest", default="", help="the base image's digest (sha256:...), read from Docker Hub")
    parser.add_argument("--pr", default="", help="the pull request's number, for the changelog")
    args = parser.parse_args(argv)
    try:
        connector = build(Path(args.out), args.digest, args.pr)
    except (BuildError, manifest_only.BuildError) as error:
        sys.exit(f"make catalogue: {error}")
    print(f"wrote {connector} and {Path(args.out) / 'catalogue' / DOCS}")


if __name__ == "__main__":
    main(sys.argv[1:])
