"""The figures of the conversation paging's cases (issue 15) for RELIABILITY.md: each anomaly of the
emulator read once, in-process, with its requests, records and outcome.

    python -m integration_tests.reliability.paging   # rewrites the block between its markers

The cases are those of integration_tests/test_paging.py (which pins them exactly); this only counts.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

from integration_tests import cli
from smstools_emulator import Emulator, make_conversation, make_message

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "RELIABILITY.md"
BEGIN, END = "<!-- paging:begin -->", "<!-- paging:end -->"
PHONE = "+393331000000"

# (case, variation, messages, page size, incremental after 500 new, what 0.2.0 did, from the issue)
CASES = [
    ("well-behaved (a variation that changes no paging)", "bom", 1000, 100, True, "the same"),
    ("one message out of order at the end of a page", "out_of_order", 1000, 100, True, "401 of 500 new never synced"),
    ("times -5, 0, missing, 2100 at the ends of pages", "odd_times", 1000, 100, True, "99 of 999 synced, cursor at the newest"),
    ("total 1,000,000,000", "total_inflated", 1000, 100, False, "1,922 requests in 90 s, nothing committed"),
    ("the same page for every page number", "page_repeated", 1000, 100, False, "over 1,500 requests in 90 s, no end"),
    ("page ignored (always page 1)", "page_ignored", 1000, 100, False, "over 1,500 requests in 90 s, no end"),
    ("a new message after each answer", "arrivals", 1000, 100, False, ""),
    ("each answer's first message deleted", "delete_read", 1000, 100, False, "restarted, then failed"),
    ("the oldest message purged after each answer", "purge_oldest", 3000, 300, False, "every sync failed, 3,000 never synced"),
    ("7 of page 1 deleted, 7 older inserted further down", "swap_first_page", 1000, 100, False, "7 lost for good"),
    ("ties shuffled on each request (groups of 7)", "shuffle_ties", 1000, 100, False, "311 of 1,000 lost for good"),
    ("one byte not UTF-8 on page 2", "not_utf8", 1000, 100, False, "failed after 5 minutes of retries, every sync (0.3.0: exit 0, 1 lost)"),
    # issue 21: what 0.3.0 did, as the issue measured it
    ("600 messages of one second, pages of 200", "second:600", 3000, 200, False, "0.3.0: the phone failed every sync; killed and resumed, 1,800 never synced"),
    ("2,500 messages of one second, shuffled on each request, pages of 1000", "second:2500+shuffle_ties", 5000, 1000, False, "0.3.0: the phone failed every sync"),
    ("250 messages of one second, pages of 100", "second:250", 1000, 100, False, "0.3.0: the phone failed every sync"),
    ("2,500 messages of one second, pages of 1000", "second:2500", 5000, 1000, False, "0.3.0: the phone failed every sync"),
    ("5,000 messages of one second, pages of 2000", "second:5000", 6000, 2000, False, "0.3.0: the phone failed every sync"),
    ("5,000 messages of one second, shuffled on each request, pages of 2000", "second:5000+shuffle_ties", 6000, 2000, False, "0.3.0: the phone failed every sync"),
    ("300 messages at unixDatetime 0 (one second that is no time), pages of 100", "zero:300", 1000, 100, False, "0.3.0: the phone failed every sync"),
    ("total falling on every page (1000, 850, 700, ...), data unchanged", "total_falling", 1000, 100, False, "0.3.0: exit 0, 500 never synced"),
    ("identical inbound messages in pairs (messageId null, one second)", "twins", 300, 100, False, "0.3.0: 298 rows of 300 in a deduplicating table"),
    ("one message deleted anywhere after each answer", "random_deletes", 1000, 100, False, ""),
    ("a message inserted where its time puts it after each answer", "late_inserts", 1000, 100, False, ""),
]


def shaped(messages: list, shape: str) -> list:
    """The conversation a case needs: `second:N`, N messages of the middle in one second; `zero:N`,
    the oldest N at unixDatetime 0; `twins`,
    pairs of identical inbound messages without a messageId; `shuffle_ties`, seconds of 7."""
    if shape.startswith("second:"):
        size = int(shape.split(":")[1])
        start = (len(messages) - size) // 2
        for message in messages[start : start + size]:
            message.update(unixDatetime=messages[start]["unixDatetime"], datetime=messages[start]["datetime"])
    elif shape.startswith("zero:"):  # the oldest N at time 0, as a backend that lost their dates writes them
        for message in messages[-int(shape.split(":")[1]) :]:
            message.update(unixDatetime=0, datetime="01 jan 1970, 00:00:00")
    elif shape == "twins":
        for i in range(0, len(messages) - 1, 2):
            messages[i].update(messageId=None, direction="inbound")
            messages[i + 1].clear()
            messages[i + 1].update(messages[i])
    elif shape == "shuffle_ties":
        for i, message in enumerate(messages):
            message.update(unixDatetime=1_700_000_000 - (i // 7) * 60, messageId=f"m{i}")
    return messages


def run(variation: str, count: int, size: int, incremental: bool) -> list:
    shape, _, rest = variation.partition("+")
    messages = make_conversation(PHONE, count, newest=1_700_000_000, seed=7)
    if shape in ("shuffle_ties", "twins") or shape.startswith(("second:", "zero:")):
        messages = shaped(messages, shape)
        variations = [rest] if rest else (["shuffle_ties"] if shape == "shuffle_ties" else [])
    else:
        variations = [variation]
    with Emulator({PHONE: messages}) as emulator:
        config = cli.config(emulator, page_size=size, change_detection=False)
        state = None
        if incremental:
            state = cli.call("read", config, cli.catalog()).last_state
            newest = max(m["unixDatetime"] for m in messages)
            rng = random.Random(3)
            emulator.add_messages(PHONE, [make_message(PHONE, newest + 600 * i, rng, 5000 + i) for i in range(1, 501)])
        existing = emulator.conversation(PHONE)
        emulator.variations = variations
        emulator.clear_requests()
        out = cli.call("read", config, cli.catalog(), state)
        requests = len(emulator.conversation_requests())
        after = Counter(_identity(m) for m in emulator.conversation(PHONE))
        # what had to be synced: every message that existed for the whole read (and, incremental, is
        # new or at the cursor), as many times as it is there (identical twins are two)
        wanted = Counter(_identity(m) for m in (existing[:501] if incremental else existing)) & after
        # the records as a table deduplicated on `id` keeps them
        got = Counter(_identity(r) for r in {r["id"]: r for r in out.records}.values())
        missing = sum((wanted - got).values())
        # a phone that failed keeps its cursor short of what it did not read: not lost, read next time
        lost = f"0 ({missing} not read, cursor stays)" if out.returncode and missing else missing
        errors = [e["message"] for e in out.errors]
        outcome = f"exit {out.returncode}" + (f": {errors[0]}" if errors else "")
        return [requests, len(out.records), sum(wanted.values()), lost, outcome]


def _identity(message: dict) -> tuple:
    return (message.get("messageId") or "", message.get("direction"), message.get("datetime"), message.get("message"))


def render() -> str:
    rows = ["| case | emulator variation | messages, page size | requests | records | to sync | lost | outcome | before |",
            "|---|---|---|---:|---:|---:|---:|---|---|"]
    for name, variation, count, size, incremental, before in CASES:
        requests, records, wanted, lost, outcome = run(variation, count, size, incremental)
        kind = f"{count:,} @ {size}" + (", incremental, 500 new" if incremental else "")
        rows.append(f"| {name} | `{variation}` | {kind} | {requests} | {records} | {wanted} | {lost} | "
                    f"{outcome.replace('|', '/')[:200]} | {before} |")
    return "\n".join([
        BEGIN,
        "## Conversation paging against broken answers (issues 15 and 21)",
        "",
        "Written by `python -m integration_tests.reliability.paging` (the cases of integration_tests/test_paging.py, "
        "which pins them exactly). *To sync*: the messages that existed for the whole read (incremental: the 500 new "
        "and the one at the cursor), identical twins counted twice; *lost*: of those, not in the records as a table "
        "deduplicated on `id` keeps them. *Before*: what the issues measured on 0.2.0 (or 0.3.0, where said).",
        "",
        *rows,
        "",
        "The balanced swap is the one case not seen: deleting from a page already read while as many older "
        "messages appear further down leaves `total` and the pages' order unchanged, and only a second read of "
        "every page would show it. Identical messages without a messageId (same second, same text), more of them "
        "than one answer holds, in another order on every answer, cannot be counted exactly: they are counted from "
        "above (the passes' average plus two standard errors), so that the records hold some copies once too often "
        "(records above *to sync*) and none is left out, and the warning says how many may be extra.",
        END,
    ])


def write(block: str, begin: str = BEGIN, end: str = END) -> None:
    """RELIABILITY.md with `block` between its markers (before the notes, the first time)."""
    text = OUTPUT.read_text()
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        marker = "## Notes on what the figures mean"
        text = text.replace(marker, block + "\n\n" + marker) if marker in text else text + "\n" + block + "\n"
    OUTPUT.write_text(text)


if __name__ == "__main__":
    write(render())
    print(f"wrote the paging figures into {OUTPUT}")
