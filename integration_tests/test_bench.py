"""`make bench` still works: every scenario runs on tiny sizes. Correctness only: the benchmark's
figures are printed by `make bench`, never asserted here."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.soak  # 90 s alone, 160 s in the suite: in `make soak`, so that `make test` keeps to 10 minutes
def test_every_bench_scenario_runs_on_tiny_sizes(tmp_path):
    # bench.py itself checks what each scenario reads (record counts, one page per phone)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench.py"), "--quick", "--write", str(tmp_path / "BENCHMARKS.md")],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for section in ("### 1. Throughput", "### 2. Requests", "### 3. Concurrency", "### 4. Memory", "### 5. Start-up", "### 6. Discovery",
                    "### 7. Change detection", "### 8. Scale"):
        assert section in proc.stdout
    # the requests the connector makes are behaviour, not speed: the minimum in both reads
    assert "| requests, full read = minimum | 5 for 5 | yes |" in proc.stdout
    assert "| requests, incremental read = minimum | 3 for 3 | yes |" in proc.stdout
    written = (tmp_path / "BENCHMARKS.md").read_text()
    assert "<!-- bench:begin -->" in written and "### 5. Start-up" in written
    # progress as it goes, and each section's time kept for the next run to announce
    assert "[1/8] throughput ..." in proc.stderr and "[8/8] scale done in " in proc.stderr
    # issue 22's targets are rows of the verdicts table at every size (their figures are not asserted)
    for target in ("phones, nothing new: ≤ 30 requests", "phones, 3 phones changed: ≤ 40 requests", "start to first request ≤ 10 s",
                   "peak RSS ≤ 400 MB", "≤ 2 MB", "∝ 1 / num_workers"):
        assert target in proc.stdout, target
    sys.path.insert(0, str(ROOT / "bench"))
    import bench

    assert list(bench.last_durations(tmp_path / "BENCHMARKS.md")) == list(bench.SCENARIOS)
