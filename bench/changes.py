"""Change detection at scale: requests, records and time of incremental syncs of N discovered
phones behind a given latency, today's way (every phone asked) and with change detection, side by
side from the same state and the same data.

    .venv/bin/python -m bench.changes --phones 3000 --latency-ms 100

Runs the installed CLI against the emulator (in this process, on 127.0.0.1). A first sync without
latency gives both ways the same state; then, an hour apart on the connector's clock
(SMSTOOLS_NOW), four syncs: nothing new, one phone changed, three phones changed, 1% of the phones
changed; each is run today's way (change_detection false) and with change detection, from the same
state. `--uncovered N`: N of the phones (every k-th) are in neither the inbox nor the message log,
so change detection reads them every sync once the first sync found it out. Every delivery status
is final (the sample's PENDING ones DELIVERED): a status not final makes its phone read every sync
for up to 7 days, which is not what this measures. Prints one JSON object per run.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter

from integration_tests import cli
from source_smstools.components.state import phone_cursors
from smstools_emulator import Emulator, make_conversation, make_message, sample_phones
from smstools_emulator.listing import Listing

START = 1_749_200_000  # the connector's clock at the first sync (an hour is added per scenario)


def sync(emulator: Emulator, config: dict, state: list | None, at: int) -> tuple[dict, list | None]:
    emulator.clear_requests()
    started = time.perf_counter()
    out = cli.run(
        "read", config, cli.catalog("incremental", "conversation"), state, timeout=7200,
        timings={"SMSTOOLS_NOW": str(at)},  # the connector's own waits and timeouts, as users get them
    )
    seconds = time.perf_counter() - started
    assert out.returncode == 0 and not out.errors, (out.errors, out.stderr[-2000:])
    final = out.last_state
    stream_state = final[0]["stream"]["stream_state"] if final else {}
    kinds = Counter("conversation" if r["path"].startswith("/v1/conversation/") else r["path"] for r in emulator.requests)
    logs = [m["log"]["message"] for m in out.of_type("LOG") if " phones read: " in m["log"]["message"]]
    return {
        "records": len(out.records),
        "conversation_requests": kinds.pop("conversation", 0),
        "source_requests": sum(kinds.values()),
        "seconds": round(seconds, 1),
        "state_entries": len(phone_cursors(stream_state)),
        "state_bytes": len(json.dumps(final)) if final else 0,
        "parent_state_bytes": len(json.dumps(stream_state.get("parent_state"))) if stream_state.get("parent_state") else 0,
        "summary": logs[-1] if logs else None,
    }, final


def change(emulator: Emulator, phones: list[str], count: int, at: int, rng: random.Random) -> None:
    """`count` phones get a message each, dated a few minutes before `at` (after the last sync)."""
    for phone in rng.sample(phones, count):
        emulator.add_messages(phone, settled([make_message(phone, at - rng.randint(60, 600), rng, 10_000)]))


def settled(messages: list[dict]) -> list[dict]:
    return [dict(m, deliveryStatus="DELIVERED") if m.get("deliveryStatus") == "PENDING" else m for m in messages]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=3000)
    parser.add_argument("--messages", type=int, default=5, help="messages per conversation")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--uncovered", type=int, default=0, help="phones in neither the inbox nor the message log")
    parser.add_argument(
        "--today", choices=["latency", "no-latency", "once", "skip"], default="latency",
        help="today's way behind the latency, without it (requests only), without it for the first "
        "scenario only, or not at all",
    )
    args = parser.parse_args()
    phones = sample_phones(args.phones)
    rng = random.Random(7)
    with Emulator({p: settled(make_conversation(p, args.messages, seed=1)) for p in phones}) as emulator:
        if args.uncovered:
            step = max(1, args.phones // args.uncovered)
            emulator.set_listing(Listing(unlisted_phones={p.lstrip("+") for p in phones[::step][: args.uncovered]}))
        base = cli.config(emulator, phone_numbers=None, num_workers=args.workers)
        ways = {"today": {**base, "change_detection": False}, "change detection": base}
        first, state = sync(emulator, base, None, START)
        head = {"phones": args.phones, "uncovered": args.uncovered}
        print(json.dumps({**head, "scenario": "first sync (no latency)", "way": "both", **first}), flush=True)
        scenarios = [
            ("nothing new", 0), ("1 phone changed", 1), ("3 phones changed", 3), ("1% of phones changed", max(1, args.phones // 100)),
        ]
        for hour, (scenario, count) in enumerate(scenarios, start=1):
            change(emulator, phones, count, START + hour * 3600, rng)
            results = {}
            for way, config in ways.items():
                if way == "today" and (args.today == "skip" or (args.today == "once" and hour > 1)):
                    continue
                emulator.latency = 0 if (way == "today" and args.today in ("no-latency", "once")) else args.latency_ms / 1000
                results[way], final = sync(emulator, config, state, START + hour * 3600)
                latency = emulator.latency * 1000
                print(json.dumps({**head, "scenario": scenario, "changed": count, "way": way,
                                  "latency_ms": latency, **results[way]}), flush=True)
                if way == "change detection":
                    next_state = final
            emulator.latency = 0
            state = next_state


if __name__ == "__main__":
    main()
