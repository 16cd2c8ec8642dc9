"""Writes RELIABILITY.md from the figures the reliability suite measured (.cache/reliability.json).

    python -m integration_tests.reliability.report   # `make soak` runs it after the soak

The figures come from the last run of each part: the fast one (`make test`) and the soak
(`make soak`). Nothing in RELIABILITY.md is typed by hand except the notes at its end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / ".cache" / "reliability.json"
OUTPUT = ROOT / "RELIABILITY.md"
PARTS = ("fast", "soak")

NOTES = """\
## Notes on what the figures mean

- **Faults** are drawn at random (seeded) for each conversation request, at most 3 in a row on one
  request so that a draw never outlasts the connector's 6 attempts; `twice` counts records
  delivered more than once beyond the one boundary record per phone that the inclusive cursor
  re-reads in an incremental sync (the expected sets include that record).
- **Persistent faults** fail page 2 of one phone on every attempt: the connector makes 6 attempts,
  then stops that phone with an error naming the phone, the page and the cause (exit status 1);
  the other phones finish and keep their state, the failed phone's cursor does not move, and the
  next sync delivers the rest.
- **Waiting is bounded**: at most 6 attempts per request; a `Retry-After` is honoured (plus the
  CDK's one second), one of 900 s or more is refused at once; without it the backoff is
  exponential (5 s x 2^attempt by default: 10, 20, 40, 80, 160 s); the CDK also gives up on a
  request after 600 s of retrying.
- **Kills**: the CDK emits a mid-sync state at most once every 600 s, and the first as soon as a
  phone is complete. A sync killed before then resumes from the state it was given; one killed
  later resumes from that first state. Nothing is lost either way (a phone's cursor moves only
  once all its pages are read), but a long first sync that is killed reads most of its phones
  again: `records_emitted` minus `delivered` is that extra reading.
- **Bad state**: "read" means the sync ran and delivered every message the state does not
  cover; "refused" means it stopped before any request with the message shown.
"""


def cases_section(figures: dict, key: str, title: str) -> str:
    """A section of one row per case, its figures as `name: value` pairs; empty when not measured."""
    if key not in figures:
        return ""
    rows = [[case, ", ".join(f"{a}: {b}" for a, b in values.items())] for case, values in figures[key].items()]
    return f"\n### {title}\n\n" + table(["case", "figures"], rows)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", " ")[:400]

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def counts(section: dict[str, dict[str, Any]], *keys: str) -> dict[str, int]:
    return {k: sum(int(v.get(k) or 0) for v in section.values()) for k in keys}


def render(data: dict[str, Any]) -> str:
    out = ["# Reliability figures\n"]
    out.append(
        "Measured by `integration_tests/reliability/` (test_reliability.py, test_bad_config.py, test_bad_state.py) against the API emulator, and written by "
        "`python -m integration_tests.reliability.report` (run by `make soak`). "
        + "; ".join(f"{part} part last run {data[part].get('run_at', '?')}" for part in PARTS if part in data)
        + ".\n"
    )

    summary, lost_total = [], 0
    injected: dict[str, dict[str, int]] = {}
    for part in PARTS:
        figures = data.get(part, {})
        for kind_counts in (s.get("injected", {}) for s in figures.get("faults", {}).values()):
            for kind, n in kind_counts.items():
                injected.setdefault(kind, {}).setdefault(part, 0)
                injected[kind][part] += n
        for name, keys in (("faults", ("expected", "delivered", "lost")), ("kills", ("expected", "delivered", "lost")),
                           ("hostile data", ("expected", "delivered", "lost")), ("load", ("expected", "delivered", "lost")),
                           ("bad state", ("expected", "delivered", "lost"))):
            if name in figures:
                total = counts(figures[name], *keys)
                lost_total += total["lost"]
                summary.append([name, part, len(figures[name]), total["expected"], total["delivered"], total["lost"]])
        for name in ("persistent faults",):
            if name in figures:
                lost = sum(int(v.get("lost_after_resume") or 0) for v in figures[name].values())
                lost_total += lost
                summary.append([name, part, len(figures[name]), "", "", lost])
    out.append(f"\n**Messages lost, all scenarios: {lost_total}.**\n\n")
    out.append(table(["area", "part", "scenarios", "records expected", "delivered (with repeats)", "lost"], summary))

    out.append("\n## Faults injected, by kind\n\n")
    out.append(table(["kind", *PARTS], [[k, *(v.get(p, 0) for p in PARTS)] for k, v in sorted(injected.items())]))

    for part in PARTS:
        figures = data.get(part)
        if not figures:
            continue
        out.append(f"\n## {part.capitalize()} part\n")
        if "faults" in figures:
            out.append("\n### Reads under faults (multi-phone, pages of 100, incremental)\n\n")
            out.append(table(
                ["scenario", "rate", "faults injected", "requests", "expected", "delivered", "lost", "unexpected", "twice"],
                [[name, f["rate"], sum(f["injected"].values()), f["requests"], f["expected"], f["delivered"], f["lost"],
                  f["unexpected"], f["twice"]] for name, f in sorted(figures["faults"].items())],
            ))
        if "persistent faults" in figures:
            out.append("\n### A fault that never clears (page 2 of one phone)\n\n")
            out.append(table(
                ["kind", "attempts", "exit status", "lost after the next sync", "error message"],
                [[k, f["attempts"], f["exit_status"], f.get("lost_after_resume", "not resumed"), f["message"]]
                 for k, f in sorted(figures["persistent faults"].items())],
            ))
        out.append(cases_section(figures, "retry-after", "Retry-After"))
        if "kills" in figures:
            out.append("\n### SIGKILL at random points, resumed from the last state emitted\n\n")
            keys = ["examples", "kills", "finished_before_kill", "killed_runs_with_state", "resumes", "expected",
                    "delivered", "lost", "unexpected", "records_emitted"]
            out.append(table(["data", *keys], [[name, *(k_.get(k) for k in keys)] for name, k_ in figures["kills"].items()]))
        if "bad state" in figures:
            out.append("\n### Bad state\n\n")
            out.append(table(
                ["state", "outcome", "expected", "delivered", "lost", "message"],
                [[k, f["outcome"], f.get("expected"), f.get("delivered"), f.get("lost"), f.get("message")]
                 for k, f in figures["bad state"].items()],
            ))
        if "bad config" in figures:
            section = figures["bad config"]
            tried = sum(len(v) for v in section.values())
            refused = sum(r["refused"] and r["requests"] == 0 for v in section.values() for r in v.values())
            out.append(f"\n### Bad config: {tried} runs ({len(section)} wrong forms), {refused} refused before any request\n\n")
            out.append(table(
                ["config", "commands", "requests sent", "message (read, else check)"],
                [[k, ", ".join(sorted(v)), sum(r["requests"] for r in v.values()),
                  (v.get("read") or v.get("check") or next(iter(v.values())))["message"]] for k, v in section.items()],
            ))
        out.append(cases_section(figures, "hostile data", "Hostile data"))
        out.append(cases_section(figures, "load", "Load"))
        if "secrets" in figures:
            scans = figures["secrets"]  # per module (one scan in the files written before the split)
            scans = [scans] if "outputs_scanned" in scans else list(scans.values())
            s = {k: sum(scan[k] for scan in scans) for k in ("outputs_scanned", "debug_outputs", "bytes_scanned", "leaks")}
            out.append(
                f"\n### Secrets\n\n{s['outputs_scanned']} outputs scanned for the client secret (stdout and stderr, "
                f"{s['debug_outputs']} of them with `--debug`), {s['bytes_scanned']:,} bytes: {s['leaks']} leaks.\n"
            )
    out.append("\n" + NOTES)
    return "".join(out)


def main() -> None:
    if not FIGURES.exists():
        raise SystemExit(f"{FIGURES} does not exist: run `make test` or `make soak` first")
    text = render(json.loads(FIGURES.read_text()))
    # the blocks of the paging's and the lists' cases are written by integration_tests/reliability/
    # paging.py and lists.py: kept as they are
    before = OUTPUT.read_text() if OUTPUT.exists() else ""
    for name in ("paging", "lists"):
        kept = re.search(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->", before, re.S)
        if kept:
            text = text.replace("\n## Notes on what the figures mean", "\n" + kept.group(0) + "\n\n## Notes on what the figures mean", 1)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
