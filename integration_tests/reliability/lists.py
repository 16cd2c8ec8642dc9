"""The figures of issue 21's cases outside the conversation's paging, for RELIABILITY.md: phones in
two forms, the lists' entry IDs (null, many in one second, late entries), pending statuses and an
inbox of one virtual number. Each case run in-process against the emulator, the clock fixed.

    python -m integration_tests.reliability.lists   # rewrites the block between its markers

The tests that pin these cases exactly: unit_tests/test_paging.py (two forms),
integration_tests/test_changes.py (IDs, late entries), test_coverage.py (pending statuses),
test_numbers.py (virtual numbers). This only counts.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Optional
from unittest.mock import patch

from integration_tests import cli
from integration_tests.reliability import paging
from integration_tests.test_changes import DAY, NEWEST, NOW, settled
from smstools_emulator import Emulator, make_contact, make_conversation, make_message, sample_phones
from smstools_emulator.data import SECOND_NUMBER, VIRTUAL_NUMBERS
from smstools_emulator.listing import Listing
from source_smstools.components import changes
from source_smstools.components.state import phone_cursors

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = paging.OUTPUT
BEGIN, END = "<!-- lists:begin -->", "<!-- lists:end -->"
HOUR = 3_600

def one(phone: str, at: int, direction: str, seed: int, n: int) -> dict:
    rng = random.Random(seed)
    while (m := make_message(phone, at, rng, n))["direction"] != direction:
        pass
    return m


def sync(emulator: Emulator, config: dict, state: Any = None, at: int = NOW) -> cli.Output:
    emulator.clear_requests()
    with patch.object(changes, "now", lambda: at):
        return cli.in_process(config, cli.catalog("incremental", "conversation"), state)


def outcome(out: cli.Output) -> str:
    errors = [e["message"] for e in out.errors]
    return f"exit {out.returncode}" + (f": {errors[0][:160]}" if errors else "")


def row(to_sync: int, synced: int, requests: int, out: cli.Output, note: str = "") -> dict:
    return {"to_sync": to_sync, "synced": synced, "requests": requests, "outcome": outcome(out) + note}


# -- the cases --------------------------------------------------------------------------------


def two_forms() -> dict:
    """One phone listed twice, `+39...` and `39...`: two partitions, each read whole."""
    phone = "+393331000000"
    with Emulator({phone: make_conversation(phone, 2500, seed=1)}) as emulator:
        out = sync(emulator, cli.config(emulator, phone_numbers=[phone, phone.lstrip("+")], page_size=100, change_detection=False))
        per_form = {form: len({r["id"] for r in out.records if r["phone"] == form}) for form in (phone, phone.lstrip("+"))}
        return row(5000, sum(per_form.values()), len(emulator.conversation_requests()), out)


def newest_second(together: int, ids: str) -> dict:
    """`together` phones' newest messages sent in one second; after the sync a second message of
    the first phone at that second is listed: synced by the next sync?"""
    phones = sample_phones(together + 1)
    with Emulator({p: settled(make_conversation(p, 3, seed=3)) for p in phones}) as emulator:
        emulator.entry_ids = ids
        top = NEWEST + 600
        for n, phone in enumerate(phones[:together]):
            emulator.add_messages(phone, [dict(one(phone, top, "outbound", n, n), deliveryStatus="DELIVERED")])
        config = cli.config(emulator, page_size=100)
        first = sync(emulator, config, at=top + HOUR)
        late = dict(one(phones[0], top, "outbound", 999, 999), deliveryStatus="DELIVERED")
        emulator.add_messages(phones[0], [late])
        second = sync(emulator, config, first.last_state, at=top + 2 * HOUR)
        synced = sum(1 for r in second.records if r.get("messageId") == late["messageId"])
        note = " (judged by date: one warning)" if any("newest second" in m for m in warnings(second)) else ""
        return row(1, synced, len(emulator.conversation_requests()), second, note)


def late_entry(before_cursor: int, lookback_days: int) -> dict:
    """An inbound message listed after the sync, first with the highest ID, dated before its phone's cursor."""
    phones = sample_phones(3)
    with Emulator({p: settled(make_conversation(p, 6, seed=3)) for p in phones}) as emulator:
        emulator.entry_ids = "sequential"
        config = cli.config(emulator, page_size=100, lookback_window_days=lookback_days)
        first = sync(emulator, config)
        cursor = phone_cursors(first.last_state[0]["stream"]["stream_state"])[phones[0]]
        emulator.add_messages(phones[0], [dict(one(phones[0], cursor - before_cursor, "inbound", before_cursor, 77), message="late one")])
        second = sync(emulator, config, first.last_state, at=NOW + HOUR)
        synced = sum(1 for r in second.records if r["message"] == "late one")
        return row(1, synced, len(emulator.conversation_requests()), second)


def pending_daily() -> dict:
    """A PENDING message sent daily for 9 days, each DELIVERED 6.5 days later but the first; a sync
    every 12 hours: how many of the statuses that turned final were synced final."""
    phone = sample_phones(1)[0]
    start = NEWEST + 30 * DAY
    sent_at = [start + d * DAY for d in range(9)]
    base = settled(make_conversation(phone, 6, seed=3))
    sent = [dict(one(phone, t, "outbound", n, 700 + n), deliveryStatus="PENDING") for n, t in enumerate(sent_at)]
    with Emulator({phone: base}) as emulator:
        config = cli.config(emulator, page_size=50, full_sweep_days=365)
        out, final, requests = None, set(), 0
        for n in range(19):
            at = start + n * 12 * HOUR
            delivered = {m["unixDatetime"] for m in sent[1:] if at >= m["unixDatetime"] + 6 * DAY + 12 * HOUR}
            emulator.set_conversation(phone, [
                dict(m, deliveryStatus="DELIVERED") if m["unixDatetime"] in delivered else m
                for m in [s for s in reversed(sent) if s["unixDatetime"] <= at] + base
            ])
            out = sync(emulator, config, out.last_state if out else None, at=at)
            requests += len(emulator.conversation_requests())
            final |= {r["unixDatetime"] for r in out.records if r["unixDatetime"] in sent_at and r["deliveryStatus"] == "DELIVERED"}
        turned = {m["unixDatetime"] for m in sent[1:] if start + 18 * 12 * HOUR >= m["unixDatetime"] + 6 * DAY + 12 * HOUR}
        return row(len(turned), len(final & turned), requests, out, " (19 syncs)")


def other_number(readable: bool) -> dict:
    """An inbox that lists one of the account's two numbers; a phone texts only the other (48
    messages, no contact, no log entry)."""
    a, z = "+393331000000", "+393339000000"
    inbound = [m for m in make_conversation(z, 150, newest=NOW - 2 * HOUR, seed=3) if m["direction"] == "inbound"][:48]
    with Emulator({a: settled(make_conversation(a, 40, newest=NOW - HOUR, seed=3)), z: inbound}) as emulator:
        emulator.virtual_numbers = [dict(VIRTUAL_NUMBERS[0]), dict(SECOND_NUMBER)]
        emulator.set_contacts([c for c in emulator.contacts() if c["phone"].lstrip("+").replace(" ", "") != z.lstrip("+")])
        emulator.set_listing(Listing(numbers={z.lstrip("+"): SECOND_NUMBER["ID"]}, inbox_number=VIRTUAL_NUMBERS[0]["ID"]))
        if not readable:
            emulator.forbid(f"/v1/message/inbox/{SECOND_NUMBER['ID']}", "error")
        out = sync(emulator, cli.config(emulator, phone_numbers=None))
        synced = sum(1 for r in out.records if r["phone"] == z.lstrip("+"))
        said = [m for m in warnings(out) if "virtual number" in m]
        return row(48, synced, len(emulator.conversation_requests()), out, " (one warning names the number)" if said else "")


def contact_alone(replacing: bool) -> dict:
    """A phone that the inbox and the log leave out (30 messages), known to the contacts alone (24
    others, pages of 8), added after the first sync: at the end of the list (its total grows), or
    in place of another on page 3 (total and page 1 as they were: found by the weekly whole read)."""
    phones, z = sample_phones(24), "+393339000001"
    with Emulator({p: settled(make_conversation(p, 4, newest=NOW - HOUR, seed=3)) for p in phones}) as emulator:
        contacts = [make_contact(p, i + 1) for i, p in enumerate(phones)]
        emulator.set_contacts(contacts)
        config = cli.config(emulator, phone_numbers=None, page_size=8)
        first = sync(emulator, config)
        emulator.set_conversation(z, settled(make_conversation(z, 30, newest=NOW - 2 * HOUR, seed=5)))
        emulator.set_listing(Listing(unlisted_phones={z.lstrip("+")}))
        if replacing:
            contacts[20] = make_contact(z, 100)
        else:
            contacts.append(make_contact(z, 25))
        emulator.set_contacts(contacts)
        out = sync(emulator, config, first.last_state, at=NOW + HOUR)
        requests = sum(1 for r in emulator.conversation_requests() if r["phone"] == z.lstrip("+"))
        note = ""
        if replacing:
            out = sync(emulator, config, out.last_state, at=NOW + 7 * DAY)
            requests += sum(1 for r in emulator.conversation_requests() if r["phone"] == z.lstrip("+"))
            note = " (the sync 7 days after the first: the contacts' weekly whole read)"
        synced = sum(1 for r in out.records if r["phone"] == z.lstrip("+"))
        return row(30, synced, requests, out, note)


def warnings(out: cli.Output) -> list[str]:
    return [m["log"]["message"] for m in out.of_type("LOG") if m["log"]["level"] == "WARN"]


# (case, what the emulator serves, the run, what 0.3.0 did as the issue measured it)
CASES: list[tuple[str, str, Callable[[], dict], str]] = [
    ("one phone listed in two forms (`+39...` and `39...`), 2,500 messages @ 100", "phone_numbers in both forms",
     two_forms, "2,400 of 2,500 missing, \"asked out of turn\""),
    ("a second message of the log's newest second listed after the sync, entry IDs null", "`entry_ids` null",
     lambda: newest_second(1, "null"), "synced 84 h later (the sweep)"),
    ("the same, with 60 entries in that second", "60 sent in one second",
     lambda: newest_second(60, "stable"), "synced 84 h later (the sweep)"),
    *[(f"an inbound message listed late, {label} before its phone's cursor, lookback {days} day(s)", "`entry_ids` sequential",
       (lambda b=before, d=days: late_entry(b, d)), was)
      for before, label in ((1_800, "30 min"), (7_200, "2 h"), (3 * DAY, "3 days"))
      for days, was in ((0, "never synced"), (1, "never" if before == 3 * DAY else "60 to 156 h late"))],
    ("a PENDING message daily for 9 days, each DELIVERED 6.5 days later but the first", "statuses changed between syncs",
     pending_daily, "the second one's DELIVERED never synced; tracking 0 phones after day 7"),
    ("an inbox that lists one of two virtual numbers; a phone texts only the other", "`Listing(inbox_number=31)`",
     lambda: other_number(True), "48 messages never found, no warning"),
    ("the same, the other number's inbox refused", "`/v1/message/inbox/32` refused",
     lambda: other_number(False), "48 messages never found, no warning"),
    ("a phone the lists leave out, added to the contacts (at the end) after the first sync", "`Listing(unlisted_phones=...)`",
     lambda: contact_alone(False), "synced the next sync (contacts read whole every sync)"),
    ("the same, in place of another contact past page 1", "contact 21 of 24 replaced",
     lambda: contact_alone(True), "synced the next sync (contacts read whole every sync)"),
]


def render() -> str:
    rows = ["| case | emulator | to sync | synced | conversation requests | outcome | 0.3.0 |", "|---|---|---:|---:|---:|---|---|"]
    for name, serves, run, before in CASES:
        r = run()
        rows.append(f"| {name} | {serves} | {r['to_sync']:,} | {r['synced']:,} | {r['requests']} | {r['outcome'].replace('|', '/')} | {before} |")
    return "\n".join([
        BEGIN,
        "## Change detection and discovery against unusual lists (issue 21)",
        "",
        "Written by `python -m integration_tests.reliability.lists` (the cases pinned by integration_tests/test_changes.py, "
        "test_coverage.py, test_numbers.py, unit_tests/test_paging.py and, for the contacts, unit_tests/test_contacts.py). *To sync*: the messages the case is about (two "
        "forms: every message in each form's partition; pending: the statuses that turned final); *synced*: of those, "
        "in the sync that follows (two forms, virtual numbers: the same sync; pending: over the 19 syncs, as DELIVERED; a contact "
        "replaced past page 1: the sync 7 days after the first, the one before it found nothing that changed). "
        "The one case not synced is the one the connector cannot see and says so: a number whose inbox the API refuses.",
        "",
        *rows,
        END,
    ])


def main(argv: Optional[list] = None) -> int:
    paging.write(render(), BEGIN, END)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
