"""Change detection that checks its sources, end to end against the emulator: phones the inbox and
the message log leave out are found on the reads made anyway and read every sync; a message that
arrives during a sync is read by the next; delivery statuses are followed until final; crossing the
CDK's per-phone limit loses nothing. One test per case tried in issue 16. The clock is fixed
(changes.now patched): nothing depends on today's date."""

from __future__ import annotations

import random
from unittest.mock import patch

import pytest
from airbyte_cdk.sources.declarative.incremental.concurrent_partition_cursor import ConcurrentPerPartitionCursor

from integration_tests import cli
from integration_tests.test_changes import (
    DAY, NEWEST, NOW, conversation_requests, cursors, new_messages, settled, stream_state, sync, warnings,
)
from smstools_emulator import Emulator, make_contact, make_conversation, make_message, sample_phones
from smstools_emulator.listing import Listing

HOUR = 3_600


def changes_state(out: cli.Output) -> dict:
    return stream_state(out)["parent_state"]["changes"]


def digits(phones) -> list[str]:
    return [p.lstrip("+") for p in phones]


@pytest.fixture
def forty():
    """40 phones of 6 messages each, every status final; 10 of them in neither the inbox nor the log."""
    phones = sample_phones(40)
    with Emulator({p: settled(make_conversation(p, 6, seed=5)) for p in phones}) as emulator:
        emulator.set_listing(Listing(unlisted_phones=set(digits(phones[::4]))))
        yield emulator, phones


def test_phones_in_neither_list_are_found_by_the_first_sync_and_every_new_message_arrives_in_the_next(forty):
    emulator, phones = forty
    hidden, shown = phones[::4], [p for i, p in enumerate(phones) if i % 4]
    # listed phones: the first sync reads page 1 of each list (100 entries: every message of the
    # last hours of every phone), before any conversation
    config = cli.config(emulator, phone_numbers=phones, page_size=100)
    first = sync(emulator, config)
    # two of them have no inbound message the inbox's first page covers (phones[24]'s only one is
    # newer than the inbox's newest entry): nothing tells about the inbox yet
    outbound_only = [phones[4], phones[24]]
    assert changes_state(first)["uncovered"] == {
        p: ["message_log"] if p in outbound_only else ["inbox", "message_log"] for p in sorted(hidden)
    }
    assert [w for w in warnings(first) if "not covered" in w] == [
        "Change detection: 10 of 40 phones are not covered by the inbox and the message log (8 with inbound "
        "messages the inbox does not list, 10 with outbound messages the message log does not list): they are "
        "read every sync until those lists show their messages again. The lists may leave out some of your "
        "numbers or kinds of message (WhatsApp, calls); if every phone is named here, their dates may be in "
        "another time zone than UTC."
    ]
    # 12 new messages: 2 on one hidden phone, 1 on each of 4 other hidden phones, 1 on each of 6 shown ones
    before = cursors(first)
    added = {hidden[0]: new_messages(emulator, hidden[0], "inbound", "outbound")}
    for phone in hidden[1:5] + shown[:6]:
        added[phone] = new_messages(emulator, phone, "inbound")
    assert sum(map(len, added.values())) == 12
    second = sync(emulator, config, first.last_state, at=NOW + 4 * HOUR)
    # every one of them, with each phone's message at its cursor (the inclusive cursor), and the
    # 5 hidden phones without a new message (read, nothing new but that message)
    assert cli.records_by_phone(second) == {
        **{p: {before[p]} | {m["unixDatetime"] for m in added.get(p, [])} for p in hidden},
        **{p: {before[p]} | {m["unixDatetime"] for m in added[p]} for p in shown[:6]},
    }
    assert conversation_requests(emulator) == {d: 1 for d in digits(hidden + shown[:6])}
    # phones[4]'s new inbound message is not in the inbox: both lists are known to leave it out
    # (phones[24]'s reply, read again at its cursor, was judged when first read: not again)
    assert changes_state(second)["uncovered"] == {
        p: ["message_log"] if p == phones[24] else ["inbox", "message_log"] for p in sorted(hidden)
    }


def test_an_inbox_that_lists_only_sms_makes_the_whatsapp_phones_uncovered_until_it_lists_them():
    phones = sample_phones(12)
    whatsapp = phones[3:6]
    with Emulator({p: settled(make_conversation(p, 6, seed=5)) for p in phones}) as emulator:
        emulator.set_contacts([make_contact(p, i + 1) for i, p in enumerate(phones)])
        listing = Listing(kinds={d: "whatsapp" for d in digits(whatsapp)}, inbox_types={"sms"})
        emulator.set_listing(listing)
        config = cli.config(emulator, phone_numbers=None, page_size=20)
        first = sync(emulator, config)  # discovery: the lists read whole
        # phones[4] has sent messages only: nothing tells whether the inbox lists its replies
        flagged = [whatsapp[0], whatsapp[2]]
        assert changes_state(first)["uncovered"] == {d: ["inbox"] for d in digits(flagged)}
        phone = whatsapp[0]
        reply = new_messages(emulator, phone, "inbound")[0]
        second = sync(emulator, config, first.last_state, at=NOW + HOUR)
        assert conversation_requests(emulator) == {d: 1 for d in digits(flagged)}
        assert cli.records_by_phone(second)[phone.lstrip("+")] == {cursors(first)[phone.lstrip("+")], reply["unixDatetime"]}
        # the inbox lists every kind again: the new reply is listed, and its phone is covered again;
        # the other stays read every sync until a new message of it is listed (no new one yet)
        emulator.set_listing(Listing(kinds=listing.kinds))
        again = new_messages(emulator, phone, "inbound")[0]
        third = sync(emulator, config, second.last_state, at=NOW + 2 * HOUR)
        assert cli.records_by_phone(third)[phone.lstrip("+")] == {reply["unixDatetime"], again["unixDatetime"]}
        assert conversation_requests(emulator) == {d: 1 for d in digits(flagged)}
        assert changes_state(third)["uncovered"] == {whatsapp[2].lstrip("+"): ["inbox"]}


def test_a_message_the_sweep_finds_and_no_list_announced_makes_its_phone_read_every_sync():
    phones = sample_phones(20)
    with Emulator({p: settled(make_conversation(p, 6, seed=3)) for p in phones}) as emulator:
        config = cli.config(emulator, phone_numbers=phones, page_size=20)
        state = sync(emulator, config).last_state
        phone = phones[7]
        hidden = new_messages(emulator, phone, "inbound")[0]
        emulator.leave_out_of_lists(phone, hidden["unixDatetime"])
        for day in range(1, 8):  # the phone's sweep comes on one of these days
            out = sync(emulator, config, state, at=NOW + day * DAY)
            state = out.last_state
            if phone in cli.records_by_phone(out):
                break
        assert hidden["unixDatetime"] in cli.records_by_phone(out)[phone]
        assert changes_state(out)["uncovered"] == {phone: ["inbox"]}
        assert [w for w in warnings(out) if "not covered" in w][0].startswith(
            "Change detection: 1 of 20 phones are not covered by the inbox and the message log (1 with inbound "
            "messages the inbox does not list):"
        )
        # read every sync from then on, nothing new or not (others come due for their sweep meanwhile:
        # each read from its cursor, its newest message again)
        swept = {p: {c} for p, c in cursors(out).items() if p != phone}
        out = sync(emulator, config, state, at=NOW + (day + 1) * DAY - HOUR)
        assert conversation_requests(emulator)[phone.lstrip("+")] == 1
        assert cli.records_by_phone(out)[phone] == {hidden["unixDatetime"]}
        assert {p: t for p, t in cli.records_by_phone(out).items() if p != phone} == {
            "+" + d: swept["+" + d] for d in conversation_requests(emulator) if d != phone.lstrip("+")}
        # until a reply is listed again
        listed = new_messages(emulator, phone, "inbound")[0]
        out = sync(emulator, config, out.last_state, at=NOW + (day + 1) * DAY)
        assert cli.records_by_phone(out)[phone] == {hidden["unixDatetime"], listed["unixDatetime"]}
        assert "uncovered" not in changes_state(out)
        assert not [w for w in warnings(out) if "not covered" in w]


@pytest.mark.parametrize("listed", [True, False])
def test_a_message_that_arrives_during_a_first_sync_on_a_phone_already_read_is_read_by_the_next(listed):
    phones = sample_phones(20)
    with Emulator({p: settled(make_conversation(p, 6, seed=3)) for p in phones}) as emulator:
        if not listed:
            emulator.set_contacts([make_contact(p, i + 1) for i, p in enumerate(phones)])
        config = cli.config(emulator, phone_numbers=phones if listed else None, page_size=20, num_workers=1)
        early, late = phones[0], phones[10]
        arrived = []
        serve = emulator.page_body

        def page_body(phone, page, limit):
            if phone == late.lstrip("+") and not arrived:  # the early phone was read: a message arrives
                arrived.extend(new_messages(emulator, early, "inbound"))
            return serve(phone, page, limit)

        with patch.object(emulator, "page_body", page_body):
            first = sync(emulator, config)
        key = early if listed else early.lstrip("+")
        assert arrived and arrived[0]["unixDatetime"] not in cli.records_by_phone(first)[key]
        second = sync(emulator, config, first.last_state, at=NOW + 60)
        assert cli.records_by_phone(second) == {key: {cursors(first)[key], arrived[0]["unixDatetime"]}}
        assert conversation_requests(emulator) == {early.lstrip("+"): 1}


def test_a_delivery_status_that_changes_after_the_lookback_window_arrives_in_the_next_sync():
    """A busy phone (a reply every 4 hours) and a quiet one, each with a message whose status moves
    from PENDING to DELIVERED 2 days after it was sent; the lookback window is 1 day."""
    busy, quiet = sample_phones(2)
    start = NEWEST + 30 * DAY
    with Emulator({p: settled(make_conversation(p, 6, seed=3)) for p in (busy, quiet)}) as emulator:
        sent = {}
        for phone in (busy, quiet):
            rng = random.Random(phone)
            while (m := make_message(phone, start - 60, rng, 500))["direction"] != "outbound":
                pass
            sent[phone] = dict(m, deliveryStatus="PENDING")
            emulator.add_messages(phone, [sent[phone]])
        # a yearly sweep: none falls in these 52 hours, so that each read is for its rule
        config = cli.config(emulator, page_size=50, lookback_window_days=1, full_sweep_days=365)
        out = sync(emulator, config, at=start)
        assert changes_state(out)["pending"] == {p: start - 60 for p in sorted((busy, quiet))}
        statuses = {busy: [], quiet: []}
        for n in range(1, 14):  # every 4 hours, 52 hours
            at = start + n * 4 * HOUR
            emulator.add_messages(busy, [dict(make_message(busy, at - HOUR, random.Random(n), 600 + n), direction="inbound", deliveryStatus="RECEIVED", messageId=None)])
            if n == 12:  # 48 hours after it was sent
                for phone in (busy, quiet):
                    emulator.set_conversation(phone, [
                        dict(m, deliveryStatus="DELIVERED") if m["unixDatetime"] == start - 60 else m
                        for m in emulator.conversation(phone)
                    ])
            out = sync(emulator, config, out.last_state, at=at)
            for phone in (busy, quiet):
                statuses[phone] += [r["deliveryStatus"] for r in out.records if r["phone"] == phone and r["unixDatetime"] == start - 60]
            # one request each: the busy phone for its reply and its pending status, the quiet one for its status
            expected = {busy.lstrip("+"): 1, quiet.lstrip("+"): 1} if n <= 12 else {busy.lstrip("+"): 1}
            assert conversation_requests(emulator) == expected, (n, conversation_requests(emulator))
        # re-read every sync while PENDING, DELIVERED in the sync after it changed, then no more
        assert statuses == {busy: ["PENDING"] * 11 + ["DELIVERED"], quiet: ["PENDING"] * 11 + ["DELIVERED"]}
        assert "pending" not in changes_state(out)


def test_a_phones_later_pending_status_is_followed_after_its_oldest_one_passes_the_seven_days():
    """One PENDING message sent every day for 9 days, each DELIVERED 6.5 days after it was sent, but
    the first, which stays PENDING; a sync every 12 hours, no lookback. 0.3.0 dropped the phone once
    its oldest pending status passed 7 days: the second message's DELIVERED never arrived."""
    phone = sample_phones(1)[0]
    start = NEWEST + 30 * DAY
    sent_at = [start + d * DAY for d in range(9)]
    with Emulator({phone: settled(make_conversation(phone, 6, seed=3))}) as emulator:
        rng = random.Random(7)
        sent = []
        for n, at in enumerate(sent_at):
            while (m := make_message(phone, at, rng, 700 + n))["direction"] != "outbound":
                pass
            sent.append(dict(m, deliveryStatus="PENDING"))
        config = cli.config(emulator, page_size=50, full_sweep_days=365)
        out, synced, tracked = None, {}, []
        for n in range(19):  # every 12 hours from the first message's sending, 9 days
            at = start + n * 12 * HOUR
            delivered = {m["unixDatetime"] for m in sent[1:] if at >= m["unixDatetime"] + 6 * DAY + 12 * HOUR}
            emulator.set_conversation(phone, [
                dict(m, deliveryStatus="DELIVERED") if m["unixDatetime"] in delivered else m
                for m in [s for s in reversed(sent) if s["unixDatetime"] <= at] + settled(make_conversation(phone, 6, seed=3))
            ])
            out = sync(emulator, config, out.last_state if out else None, at=at)
            for r in out.records:
                if r["unixDatetime"] in sent_at:
                    synced[r["unixDatetime"]] = r["deliveryStatus"]
            held = changes_state(out).get("pending", {}).get(phone)
            tracked.append(held if isinstance(held, int) else held[0])
        # the last status synced of each message: the two that turned final within the 9 days arrived
        assert synced == {t: ("DELIVERED" if t in sent_at[1:3] else "PENDING") for t in sent_at}
        # followed from its oldest pending message: the first until day 7, then the oldest of the
        # later ones not final yet (the phone is read from 7 days back: day 1's is delivered by then)
        assert tracked == [sent_at[0]] * 15 + [sent_at[2]] * 2 + [sent_at[3]] * 2
        assert changes_state(out)["pending"] == {phone: [sent_at[3], sent_at[8]]}


def test_past_the_cdks_partition_limit_a_message_waiting_for_the_sweep_keeps_its_phones_cursor():
    phones = sample_phones(20)
    newcomers = [f"+3247099{n:04d}" for n in range(6)]
    with Emulator({p: settled(make_conversation(p, 6, seed=3)) for p in phones}) as emulator:
        emulator.set_contacts([make_contact(p, i + 1) for i, p in enumerate(phones)])
        config = cli.config(emulator, phone_numbers=None, page_size=20)
        # the CDK's limit (10,000 phones) lowered to 24: 20 phones, then 6 more cross it; 0.3.0's
        # cursors became one there, and the hidden message's phone started past it
        with patch.object(ConcurrentPerPartitionCursor, "SWITCH_TO_GLOBAL_LIMIT", 24):
            first = sync(emulator, config)
            waiting = phones[7]
            hidden = new_messages(emulator, waiting, "inbound")[0]  # waits for the sweep: in no list
            emulator.leave_out_of_lists(waiting, hidden["unixDatetime"])
            for i, phone in enumerate(newcomers):  # new contacts, with messages newer than the hidden one
                emulator.set_conversation(phone, settled(make_conversation(phone, 3, newest=NOW + 2 * HOUR, seed=i)))
                emulator.add_contact(phone)
            crossed = sync(emulator, config, first.last_state, at=NOW + 3 * HOUR)
            assert conversation_requests(emulator) == {d: 1 for d in digits(newcomers)}
            assert {p: len(t) for p, t in cli.records_by_phone(crossed).items()} == {d: 3 for d in digits(newcomers)}
            # the waiting phone keeps its own cursor, short of the hidden message
            assert cursors(crossed)[waiting.lstrip("+")] == cursors(first)[waiting.lstrip("+")] < hidden["unixDatetime"]
            assert len(cursors(crossed)) == 26 and "states" not in stream_state(crossed)
            # a week on, every phone is due for the sweep: each read once, from its own cursor
            after = sync(emulator, config, crossed.last_state, at=NOW + 7 * 24 * HOUR + 3 * HOUR)
        # each phone from its own cursor (the message at it again), the waiting one up to the hidden message
        expected = {d: {c} for d, c in cursors(crossed).items()}
        expected[waiting.lstrip("+")].add(hidden["unixDatetime"])
        assert cli.records_by_phone(after) == expected
        assert conversation_requests(emulator) == {d: 1 for d in digits(phones + newcomers)}
        assert cursors(after)[waiting.lstrip("+")] == hidden["unixDatetime"]

