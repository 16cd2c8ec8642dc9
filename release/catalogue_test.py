"""`make catalogue-test`: the catalogue's tree (release/catalogue.py, built afresh in a temporary
directory) tested as Airbyte's CI tests it, with the API emulator in place of the test account.

1. `airbyte-cdk connector test` (the standard tests, driven by acceptance-test-config.yml) against
   the emulator, served by this process on a free port: the tree's secrets/config.json is written
   with that address (Airbyte's CI writes the test account's there), and invalid_config.json is
   pointed at it too, so that its refused secret is refused by the emulator rather than by a
   network this machine may not reach. The image tests are deselected (`-m "not image_tests"`): they
   fetch a Dockerfile template from GitHub and build FROM docker.io/airbyte/source-declarative-manifest,
   neither reachable here; Airbyte's CI runs them apart (`airbyte-cdk image test`).
2. The tree's unit tests (unit_tests/, the shipped components.py), run from unit_tests/ as Airbyte's
   CI runs them.

Every standard test must pass, or be skipped for a reason in SKIPS: the CDK's own "does not run for
scenario" (a test of one command parametrized with a config listed for another), which no config
can avoid. Any output that shows the emulator's client secret fails the run.
"""

import json
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Tuple

from release import catalogue
from smstools_emulator import CLIENT_ID, CLIENT_SECRET, Emulator, make_conversation

BIN = Path(sys.executable).parent
PHONES = ["+393331000000", "+393331000001"]
# the reasons a standard test may be skipped for: the CDK's, for a scenario of another command
SKIPS = (re.compile(r"^`\w+` does not run for scenario '\w+': its config is listed under `\w+` in `acceptance-test-config.yml`, which runs `\w+`\.$"),)


def standard_tests(connector: Path, url: str) -> Tuple[Dict[str, List[str]], str]:
    """Runs them; returns the outcomes by kind (passed, skipped: reason, failed) and the output."""
    secrets = connector / "secrets"
    secrets.mkdir()
    config = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "phone_numbers": PHONES, "base_url": url, "page_size": 100}
    (secrets / "config.json").write_text(json.dumps(config))
    invalid = connector / "integration_tests" / "invalid_config.json"
    (invalid).write_text(json.dumps({**json.loads(invalid.read_text()), "base_url": url}))
    run = subprocess.run(
        [str(BIN / "airbyte-cdk"), "connector", "test", str(connector),
         "--pytest-arg=-m", "--pytest-arg=not image_tests", "--pytest-arg=-p", "--pytest-arg=no:cacheprovider"],
        capture_output=True, text=True, timeout=600,
    )
    outcomes: Dict[str, List[str]] = {"passed": [], "skipped": [], "failed": []}
    report = connector / "build" / "test-results" / "standard-tests-junit.xml"
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            name = case.get("name")
            skipped = case.find("skipped")
            if case.find("failure") is not None or case.find("error") is not None:
                outcomes["failed"].append(name)
            elif skipped is not None:
                outcomes["skipped"].append(f"{name}: {skipped.get('message', '')}")
            else:
                outcomes["passed"].append(name)
    return outcomes, run.stdout + run.stderr + (f"\n(exit {run.returncode})" if run.returncode else "")


def unit_tests(connector: Path) -> Tuple[int, str]:
    run = subprocess.run(
        [str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=connector / "unit_tests", capture_output=True, text=True, timeout=600,
    )
    return run.returncode, run.stdout + run.stderr


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="catalogue-") as directory:
        connector = catalogue.build(Path(directory))
        conversations = {p: make_conversation(p, 250, seed=3) for p in PHONES}
        with Emulator(conversations) as emulator:
            outcomes, output = standard_tests(connector, emulator.url)
        unit_status, unit_output = unit_tests(connector)
    problems = []
    if CLIENT_SECRET in output or CLIENT_SECRET in unit_output:
        problems.append("an output shows the client secret")
        output = output.replace(CLIENT_SECRET, "<secret>")
        unit_output = unit_output.replace(CLIENT_SECRET, "<secret>")
    unexpected = [s for s in outcomes["skipped"] if not any(p.match(s.split(": ", 1)[1]) for p in SKIPS)]
    if outcomes["failed"] or not outcomes["passed"] or "(exit " in output:
        problems.append(f"standard tests failed: {outcomes['failed'] or 'see the output'}")
    if unexpected:
        problems.append(f"standard tests skipped for a reason the catalogue does not accept: {unexpected}")
    if unit_status:
        problems.append("the tree's unit tests failed")
    print("== make catalogue-test: airbyte-cdk connector test (the standard tests, the emulator on a free port)")
    print(output if problems else "\n".join(line for line in output.splitlines() if re.search(r"passed|failed|error", line)))
    print(f"   passed {len(outcomes['passed'])}: {', '.join(outcomes['passed'])}")
    print(f"   skipped {len(outcomes['skipped'])}:" + "".join(f"\n     {s}" for s in outcomes["skipped"]))
    print("== make catalogue-test: unit_tests/ of the tree (the shipped components.py)")
    print(unit_output if unit_status else unit_output.strip().splitlines()[-1])
    print(f"== make catalogue-test: {'FAILED: ' + '; '.join(problems) if problems else 'passed'} ({time.monotonic() - started:.0f} s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
