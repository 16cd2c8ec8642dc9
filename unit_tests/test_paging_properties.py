"""The paging's invariant, for the class of conversations and answers, not one example: generated
conversations (runs of one second of any size, identical twins, times that are none), read at any
page size through the emulator's own model of a broken backend (smstools_emulator.anomalies: ties
in another order on every answer, a total that lies, pages ignored or repeated, messages arriving,
inserted and deleted between answers).

The invariant (issue 21): every message that existed for the whole read is passed, as often as it
exists (identical twins: each, with its own occurrence number), and no message more often than it
ever existed; or the read fails with PagingError (its cursor then stays where it was). Where nothing
moves, the read never fails: an answer that will be the same next time must not fail every sync.

Not in the class, by design (what `total` cannot show, docs/smstools.md): a deletion balanced by an
insertion between two answers, deletions under a total that never changes, and insertions under a
total that falls (identical messages without a messageId or a time may then be passed twice).

`make test` runs the `ci` profile (a fixed seed); `make soak` the `soak` profile (many more examples),
as HYPOTHESIS_PROFILE=soak.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from smstools_emulator.anomalies import Anomalies
from source_smstools.components.paging import OCCURRENCE, Reply, PagingError, Read, key, seconds

PHONE = "393331000000"
NEWEST = 1_700_000_000

STATIC = ["shuffle_ties", "total_inflated", "total_falling", "page_repeated", "page_ignored"]
INSERTING = ["arrivals", "late_inserts"]
DELETING = ["delete_read", "purge_oldest", "random_deletes"]

# `make test`: a fixed seed, few examples (the suite's time); `make soak` (HYPOTHESIS_PROFILE=soak):
# many more, a new seed each run, failures kept in .hypothesis/ to be replayed first next time
# (no shrinking in `make test`: a failure prints its blob to replay; shrinking one took 5 minutes)
settings.register_profile("ci", max_examples=40, derandomize=True, deadline=None, database=None, print_blob=True,
                          phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("soak", max_examples=5_000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@st.composite
def conversations(draw) -> list:
    """Newest first: seconds of one message or many (up to a few thousand), inbound messages (no
    messageId) sent twice or more in one second (twins), and messages whose time is none."""
    messages: list = []
    at = NEWEST
    for size in draw(st.lists(st.one_of(st.just(1), st.integers(2, 8), st.integers(40, 300), st.integers(1_900, 2_600)),
                              max_size=12).filter(lambda sizes: sum(sizes) <= 5_000)):
        for _ in range(size):
            n = len(messages)
            kind = draw(st.sampled_from(["outbound"] * 4 + ["inbound"] * 3 + ["twin"]))
            if kind == "twin" and messages and messages[-1]["unixDatetime"] == at and messages[-1]["messageId"] is None:
                messages.append({**messages[-1], "_id": n})  # the same text again, in the same second
            elif kind == "outbound":
                messages.append({"messageId": f"m{n}", "direction": "outbound", "sender": "Smstools", "receiver": PHONE,
                                 "message": f"text {n}", "unixDatetime": at, "_id": n})
            else:
                messages.append({"messageId": None, "direction": "inbound", "sender": PHONE, "receiver": "Smstools",
                                 "message": f"reply {n}", "unixDatetime": at, "_id": n})
        at -= draw(st.sampled_from([1, 60, 3600]))
    # times that are none, as a database orders them (0 before negative ones, nulls last, each value
    # together), or one here and there among the others (a backend that stored them as they came)
    odd = draw(st.lists(st.sampled_from([0, -5, None]), max_size=6))
    for value in sorted(odd, key=lambda v: (v is None, -(v or 0))):
        messages.append({"messageId": None, "direction": "inbound", "sender": PHONE, "receiver": "Smstools",
                         "message": "senza data", "unixDatetime": value, "_id": len(messages)})
    for at in draw(st.lists(st.integers(0, max(len(messages) - 1, 0)), max_size=3, unique=True)):
        if messages and _alone(messages, at):  # (a second's messages stay together)
            messages[at] = {**messages[at], "unixDatetime": None, "messageId": None, "message": "senza data"}
    return messages


def _alone(messages: list, at: int) -> bool:
    """Whether the message at `at` is the only one of its second."""
    when = messages[at]["unixDatetime"]
    return isinstance(when, int) and when > 0 and all(
        messages[i]["unixDatetime"] != when for i in (at - 1, at + 1) if 0 <= i < len(messages)
    )


@dataclass
class Outcome:
    passed: list
    requests: int
    error: PagingError | None
    existed: list  # every message that existed at some point of the read
    throughout: list  # those that existed for the whole read
    unverified: int = 0  # copies the read said it could not count


def read(messages: list, size: int, names: set, seed: int, lower: int | None = None) -> Outcome:
    """One read through the emulator's model of the answers (as its HTTP server serves them,
    without the HTTP): each answer a copy, as JSON would carry it."""
    stored = [dict(m) for m in messages]
    first = list(stored)  # the messages as they were when the read began (each the same object while it lives)
    api = Anomalies(names, seed=seed)
    paging = Read(PHONE, size, lower, NEWEST + 86_400)
    ever = {id(m): m for m in stored}
    passed: list = []
    requests = 0
    try:
        while paging.next is not None and requests < 2_000:
            page, limit = paging.next
            payload, _ = api.page(stored, PHONE, page, limit)
            answer = Reply((page, limit), payload["page"], payload["total"], [dict(m) for m in payload["conversation"]])
            api.after_answer(stored, PHONE, page, limit, payload["conversation"])
            for m in stored:
                ever.setdefault(id(m), m)
            requests += 1
            passed += paging.take(answer)
        assert paging.next is None, "the read did not end"
        error = None
    except PagingError as failed:
        error = failed
    left = {id(m) for m in stored}
    return Outcome(passed, requests, error, list(ever.values()), [m for m in first if id(m) in left], paging.counts["unverified"])


def check(outcome: Outcome, lower: int | None, moved: bool = False) -> None:
    """Every message of the whole read passed as often as it exists, none more often than it ever did,
    and each identical one with its own occurrence number. Where messages were inserted or deleted
    between answers (`moved`), copies of identical messages without a messageId are only known to be there
    once: as many copies as one answer held are passed, and one more that moved between two answers
    may not be (docs/smstools.md, what cannot be verified)."""
    if outcome.error is not None:
        return
    wanted = Counter(key(m) for m in outcome.throughout if _needed(m, lower))
    ever = Counter(key(dict(m)) for m in outcome.existed)
    got = Counter(key(_as_read(m)) for m in outcome.passed)
    missing = wanted - got
    # what the read said it could not verify: copies of identical messages (no messageId) of a second
    # larger than one answer, in another order on every answer; some copy of each was passed
    unverified = outcome.unverified
    assert all(k[0] == "None" and got[k] for k in missing) or not missing, "messages of the whole read not passed"
    assert moved or sum(missing.values()) <= unverified, f"{sum(missing.values())} messages of the whole read not passed"
    extra = got - ever
    # and where the read said so, copies of identical messages counted from above by its passes: as
    # many more than exist as it said it could not verify
    assert all(k[0] == "None" for k in extra) or not extra, "named messages passed more often than they ever existed"
    assert sum(extra.values()) <= unverified, f"{sum(extra.values())} messages passed more often than they ever existed"
    numbers: dict = {}
    for m in outcome.passed:
        if m.get("messageId") is None:
            numbers.setdefault(key(_as_read(m)), []).append(m.get(OCCURRENCE, 1))
    for k, seen in numbers.items():
        assert sorted(seen) == list(range(1, len(seen) + 1)), "identical messages without their own occurrence numbers"


def _needed(message: dict, lower: int | None) -> bool:
    at = seconds(message.get("unixDatetime"))
    if lower is None:
        return True
    return at is not None and at >= lower  # a time that is none is passed where the pages read hold it


def _as_read(message: dict) -> dict:
    return {k: v for k, v in message.items() if k != OCCURRENCE}


sizes = st.sampled_from([1, 2, 3, 7, 10, 50, 100, 199, 200, 1000, 2000])


@settings(PROFILE)
@given(conversations(), sizes, st.sets(st.sampled_from(STATIC), max_size=2), st.integers(0, 2**16))
def test_where_nothing_moves_every_message_is_passed_once_and_nothing_fails(messages, size, names, seed):
    assume(not {"page_repeated", "page_ignored"} <= names and len(messages) <= 400 * size)
    outcome = read(messages, size, names, seed)
    ignored = names & {"page_repeated", "page_ignored"}
    if outcome.error is not None:
        # the one failure that reading more cannot help: a backend that ignores `page`, with a
        # conversation larger than one answer
        assert ignored and (size >= 2000 or len(messages) >= 2000), outcome.error.message
        return
    check(outcome, None)



def test_page_1_for_every_page_under_a_total_that_lies_ends_with_the_conversation_read_in_one_answer():
    """The soak's case (6.170.17, b'AAFBAUECAEEEQQBBAAAAQQABQQEBQQIAQQA='): two messages of one
    second, the first inbound (no messageId), pages of 1, `page_repeated` and `total_inflated`. Page 2
    is page 1 again: that second going on with an identical message, or page 1 for every page; paging
    on never ended (2,000 requests, the harness's bound; in production MAX_PAGES, every sync)."""
    reply = {"messageId": None, "direction": "inbound", "sender": PHONE, "receiver": "Smstools",
             "message": "reply 0", "unixDatetime": NEWEST, "_id": 0}
    text = {"messageId": "m1", "direction": "outbound", "sender": "Smstools", "receiver": PHONE,
            "message": "text 1", "unixDatetime": NEWEST, "_id": 1}
    paging = Read(PHONE, 1, None, NEWEST + 86_400)
    asked, passed = [], []
    for listed in ([reply], [reply], [reply, text]):  # what the emulator answers to each request
        asked.append(paging.next)
        passed += paging.take(Reply(paging.next, paging.next[0], 1_000_000_000, [dict(m) for m in listed]))
    assert asked == [(1, 1), (2, 1), (1, 2000)] and paging.next is None
    assert passed == [reply, text]
    assert paging.notes() == [
        "page 2 held only messages of one second read already (identical messages without a messageId, or an API "
        "that answers every page with page 1): the conversation was read in one answer of 2000"
    ]
    outcome = read([reply, text], 1, {"page_repeated", "total_inflated"}, 0)  # the same, through the emulator's model
    assert (outcome.passed, outcome.requests, outcome.error) == ([reply, text], 3, None)

@settings(PROFILE)
@given(conversations(), sizes, st.sampled_from([INSERTING, DELETING]), st.integers(0, 2**16), st.data())
def test_where_messages_move_between_answers_none_is_lost_without_an_error(messages, size, kinds, seed, data):
    names = set(data.draw(st.sets(st.sampled_from(kinds), min_size=1)))
    # (a total that lies hides deletions: not with them)
    # (nor with insertions: where `total` falls as messages are inserted, identical messages without a
    # messageId and without a time cannot be told from the same ones moved down; docs/smstools.md)
    extra = ["shuffle_ties"]
    names |= set(data.draw(st.sets(st.sampled_from(extra), max_size=1)))
    # a page size that messages arriving on every answer can outrun is no read at all
    assume(len(messages) <= 400 * size and ("arrivals" not in names or size >= 5))
    outcome = read(messages, size, names, seed)
    check(outcome, None, moved=True)


@settings(PROFILE)
@given(conversations(), sizes, st.sets(st.sampled_from(STATIC[:3] + INSERTING), max_size=2), st.integers(0, 2**16), st.data())
def test_an_incremental_read_passes_every_message_from_its_start(messages, size, names, seed, data):
    timed = [m["unixDatetime"] for m in messages if isinstance(m["unixDatetime"], int) and m["unixDatetime"] > 0]
    assume(timed and len(messages) <= 400 * size and ("arrivals" not in names or size >= 5))
    lower = data.draw(st.sampled_from(timed))
    outcome = read(messages, size, names, seed, lower)
    if not names & set(INSERTING):
        assert outcome.error is None, outcome.error.message
    check(outcome, lower, moved=bool(names & set(INSERTING)))
