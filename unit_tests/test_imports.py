"""Which module may import what: the emulator and the report vocabulary are standard library only
(the emulator ships without the CDK), and the probe does not import the emulator."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_emulator_and_the_report_vocabulary_need_the_standard_library_only():
    files = sorted((ROOT / "smstools_emulator").glob("*.py")) + [ROOT / "smstools_report.py"]
    ours = {"smstools_emulator", "smstools_report"}
    outside = {f.name: sorted(_imported(f) - ours - set(sys.stdlib_module_names) - {"__future__"}) for f in files}
    assert outside == {f.name: [] for f in files}


def test_the_probe_does_not_import_the_emulator():
    # a process of its own: this one has the emulator imported already
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, source_smstools.probe; print(sorted(m for m in sys.modules if m.startswith('smstools')))"],
        capture_output=True, text=True, check=True, cwd=ROOT / "unit_tests",
    ).stdout.split()
    assert loaded == ["['smstools_report']"]
