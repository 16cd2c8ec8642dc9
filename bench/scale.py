"""Scale (issue 22): an account of N phones found by discovery, synced by this release and by 0.3.0
side by side.

    .venv/bin/python -m bench.scale --phones 20000 --program "0.3.0=.cache/bench-0.3.0/bin/source-smstools"
    .venv/bin/python -m bench.scale --phones 1000 --latency-ms 100 --first-only --workers 2 --workers 8

Each program (`--program LABEL=COMMAND`, repeatable; this venv's `source-smstools`, "this release",
is always the first) gets an emulator of its own, in this process, with the same data: N phones of
`--messages` messages each (every delivery status final, as in bench/changes.py), in the contacts,
the inbox and the message log, and no `phone_numbers` in the config (discovery). Then, on the
connector's clock (SMSTOOLS_NOW), five syncs, each from the state the one before left: the first
(it discovers and reads every phone); an hour later one after which nothing changed; an hour later
one after 3 phones got a message each; 3.5 days after the first, one with nothing new; an hour
later another (the first sync the weekly sweep reads phones in: see STEPS). At each step the
programs run one after the other (interleaved), each alone.

`--first-only`: the first sync alone, once for each `--workers` count (the time a first sync takes
against phones / num_workers). `--stop-after LABEL=SECONDS`: that program's first sync is stopped
(SIGKILL) after SECONDS, a bounded part of a sync too slow to finish, and its next syncs are left out.

Of each sync: the requests the emulator served (conversation, and the lists), records, wall and CPU
seconds and peak RSS of the connector's process (that process alone: see PROBE), the time from its
start to the first request the emulator received, the span of its conversation requests, and the
size of its last STATE message's state (what the next sync is given). One JSON object per sync.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.changes import START, change, settled
from integration_tests import cli
from smstools_emulator import Emulator, make_conversation, sample_phones

THIS_RELEASE = str(Path(sys.executable).with_name("source-smstools"))
RECORD = b'{"type":"RECORD"'
STATE = b'{"type":"STATE"'
HOUR = 3600
# (name, hours after the first sync, phones changed before it); the sweep reads a phone again between
# half a period (3.5 days at the default 7) and a period after its last read, at a point of its own:
# the sync at 85 h is the first that the sweep's share falls on, after one at 84 h in which nothing changed
STEPS = (
    ("first sync", 0, 0), ("nothing new", 1, 0), ("3 phones changed", 2, 3),
    ("nothing new, 3.5 days on", 84, 0), ("nothing new, an hour later (the sweep's share)", 85, 0),
)
# Runs the command in a small process of its own and reports that command's peak RSS and CPU time.
# Not measured from this process: a child's ru_maxrss starts at the RSS of the process it was forked
# from (Linux keeps the old memory's high-water mark across exec), and this one holds the emulators.
PROBE = r"""
import json, resource, subprocess, sys, time
report, stop_after, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
started = time.time()
proc = subprocess.Popen(argv)
stopped = False
try:
    proc.wait(timeout=stop_after if stop_after > 0 else None)
except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    stopped = True
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(report, "w") as out:
    json.dump({"started": started, "returncode": proc.returncode, "stopped": stopped,
               "maxrss_kib": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, out)
"""


def sync(emulator: Emulator, command: str, config: dict, state: Any, at: int, tmp: Path, stop_after: float | None = None) -> tuple[dict, Any]:
    """One `read` of `command`, its stdout to a file (a first sync of 100,000 phones prints hundreds
    of MB), its own peak RSS and CPU time (PROBE)."""
    tmp.mkdir(parents=True, exist_ok=True)
    argv = [command, "read"]
    for name, content in (("config", config), ("catalog", cli.catalog("incremental", "conversation")), ("state", state)):
        if content is not None:
            path = tmp / f"{name}.json"
            path.write_text(json.dumps(content))
            argv += [f"--{name}", str(path)]
    env = {k: v for k, v in os.environ.items() if k not in cli.TIMINGS}  # the manifest's own waits
    env["SMSTOOLS_NOW"] = str(at)
    emulator.clear_requests()
    out_path = tmp / "out.jsonl"
    report = tmp / "probe.json"
    with open(out_path, "wb") as out, open(tmp / "stderr.txt", "wb") as err:
        subprocess.run([sys.executable, "-c", PROBE, str(report), str(stop_after or 0), *argv], stdout=out, stderr=err, cwd=tmp, env=env, check=True)
    ended = time.time()
    probe = json.loads(report.read_text())
    started_at, stopped = probe["started"], probe["stopped"]
    seconds = ended - started_at
    records, last, summary, errors = 0, None, None, []
    with open(out_path, "rb") as out:
        for line in out:
            if line.startswith(RECORD):
                records += 1
            elif line.startswith(STATE):
                last = line
            elif b'"type":"TRACE"' in line[:40] and b'"ERROR"' in line:
                errors.append(line[:2000].decode(errors="replace"))
            elif b" phones read: " in line:
                try:
                    summary = json.loads(line)["log"]["message"]
                except (ValueError, KeyError):
                    pass
    out_path.unlink()
    if not stopped and (probe["returncode"] != 0 or errors):
        raise RuntimeError(f"{command} read failed ({probe['returncode']}): {errors[-1:]}\n{(tmp / 'stderr.txt').read_text()[-3000:]}")
    with emulator._lock:
        served = list(emulator.requests)
    kinds = Counter("conversation" if r["path"].startswith("/v1/conversation/") else r["path"] for r in served)
    conversation_times = [r["time"] for r in served if r["path"].startswith("/v1/conversation/")]
    final = [json.loads(last)["state"]] if last else None
    return {
        "stopped_after_s": stop_after if stopped else None,
        "records": records,
        "conversation_requests": kinds.pop("conversation", 0),
        "source_requests": sum(kinds.values()),
        "sources": dict(kinds),
        "seconds": round(seconds, 2),
        "cpu_s": round(probe["cpu_s"], 2),
        "peak_rss_mib": round(probe["maxrss_kib"] / 1024, 1),  # KiB on Linux
        "first_request_s": round(min(r["time"] for r in served) - started_at, 2) if served else None,
        "span_s": round(max(conversation_times) - min(conversation_times) + emulator.latency, 2) if conversation_times else None,
        "state_bytes": len(json.dumps(final)) if final else 0,
        "summary": summary,
    }, final


def account(phones: list[str], messages: int, latency_ms: float) -> Emulator:
    """An emulator of its own (add_messages changes its data), the same data for every program. (The
    emulator has Nagle's algorithm off on its sockets and serves a list page by copying that page's
    entries only: with either not so, the emulator, not the connector, took most of a sync's time
    at these sizes; see BENCHMARKS.md.)"""
    emulator = Emulator({p: settled(make_conversation(p, messages, seed=1)) for p in phones}, latency=latency_ms / 1000)
    emulator.start()
    return emulator


def pairs(values: list[str]) -> dict[str, str]:
    return dict(v.split("=", 1) for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=5, help="messages per conversation")
    parser.add_argument("--workers", type=int, action="append", help="num_workers (repeatable with --first-only; default 4)")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--program", action="append", default=[], help="LABEL=COMMAND, another source-smstools to run beside")
    parser.add_argument("--stop-after", action="append", default=[], help="LABEL=SECONDS: that program's first sync is stopped then")
    parser.add_argument("--first-only", action="store_true", help="the first sync alone, for each --workers")
    args = parser.parse_args()
    programs = {"this release": THIS_RELEASE, **{label: str(Path(c).resolve()) if os.sep in c else c for label, c in pairs(args.program).items()}}
    stop_after = {label: float(s) for label, s in pairs(args.stop_after).items()}
    workers = args.workers or [4]
    phones = sample_phones(args.phones)
    emulators = {label: account(phones, args.messages, args.latency_ms) for label in programs}
    try:
        some = next(iter(emulators.values()))
        head = {
            "phones": args.phones, "messages": args.messages, "latency_ms": args.latency_ms,
            "list_entries": len(some.contacts()) + len(some.inbox()) + len(some.message_log()),
        }
        with tempfile.TemporaryDirectory(prefix="smstools-scale-") as tmp:
            if args.first_only:
                for w in workers:
                    for label, command in programs.items():
                        config = cli.config(emulators[label], phone_numbers=None, num_workers=w)
                        result, _ = sync(emulators[label], command, config, None, START, Path(tmp, f"{label}-{w}"), stop_after.get(label))
                        print(json.dumps({**head, "program": label, "workers": w, "sync": "first sync", **result}), flush=True)
                return
            rngs = {label: random.Random(7) for label in programs}  # the same phones change for every program
            states: dict[str, Any] = {label: None for label in programs}
            for number, (step, hours, changed) in enumerate(STEPS):
                at = START + hours * HOUR
                for label, command in programs.items():
                    if number and label in stop_after:
                        continue  # its first sync was a bounded part only
                    change(emulators[label], phones, changed, at, rngs[label])
                    config = cli.config(emulators[label], phone_numbers=None, num_workers=workers[0])
                    result, states[label] = sync(
                        emulators[label], command, config, states[label], at, Path(tmp, f"{label}-{number}"),
                        stop_after.get(label) if number == 0 else None,
                    )
                    print(json.dumps({**head, "program": label, "workers": workers[0], "sync": step, **result}), flush=True)
    finally:
        for emulator in emulators.values():
            emulator.stop()


if __name__ == "__main__":
    main()
