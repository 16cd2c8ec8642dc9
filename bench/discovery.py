"""Phone discovery at scale: state size, memory, requests and time of a sync that finds N phones.

    .venv/bin/python -m bench.discovery --phones 3000 --messages 5

Runs the installed CLI against the emulator (in this process, on 127.0.0.1): a first sync that
discovers every phone (contacts, inbox, message log), a second from its state, and a third after
one contact with a long conversation was added. Prints one JSON object per sync.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.scale import PROBE
from integration_tests import cli
from source_smstools.components.state import phone_cursors
from smstools_emulator import Emulator, make_conversation, sample_phones


def sync(emulator: Emulator, config: dict, state: list | None) -> tuple[dict, list | None]:
    emulator.clear_requests()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # through bench/scale.py's PROBE: the command's own peak RSS (a child of this process, which
        # holds the emulator, would start its ru_maxrss at this process's RSS)
        report = Path(tmp, "probe.json")
        probe = [sys.executable, "-c", PROBE, str(report), "0", cli.COMMAND]
        out = cli.run("read", config, cli.catalog("incremental", "conversation"), state, timeout=3600, program=probe)
        peak = json.loads(report.read_text())["maxrss_kib"]
    seconds = time.perf_counter() - started
    assert out.returncode == 0 and not out.errors, (out.errors, out.stderr[-2000:])
    final = out.last_state
    stream_state = final[0]["stream"]["stream_state"] if final else {}
    kinds = Counter(
        "conversation" if r["path"].startswith("/v1/conversation/") else r["path"] for r in emulator.requests
    )
    return {
        "records": len(out.records),
        "phones_read": len({r["phone"] for r in out.records}),
        "requests": dict(kinds),
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "state_entries": len(phone_cursors(stream_state)),
        "state_bytes": len(json.dumps(final)) if final else 0,
        "use_global_cursor": stream_state.get("use_global_cursor"),
    }, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=3000)
    parser.add_argument("--messages", type=int, default=5, help="messages per conversation")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    phones = sample_phones(args.phones)
    conversations = {p: make_conversation(p, args.messages, seed=1) for p in phones}
    with Emulator(conversations) as emulator:
        config = cli.config(emulator, phone_numbers=None, num_workers=args.workers)
        first, state = sync(emulator, config, None)
        print(json.dumps({"sync": "first (discovers every phone)", **first}), flush=True)
        second, state = sync(emulator, config, state)
        print(json.dumps({"sync": "second (from state, nothing new)", **second}), flush=True)
        newcomer = "+32470999001"
        emulator.set_conversation(newcomer, make_conversation(newcomer, 4500, seed=2))
        emulator.add_contact("+32 470 99 90 01")
        third, state = sync(emulator, config, state)
        print(json.dumps({"sync": "third (one new contact with 4,500 messages)", **third}), flush=True)


if __name__ == "__main__":
    main()
