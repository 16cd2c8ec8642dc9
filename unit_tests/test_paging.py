"""The paging's decisions tested directly: a phone's read (components/paging.Read), fed answers one
at a time, as the CDK's own tests feed their paginators; the components around it (the extractor,
the record filter, the paginator of components/conversation.py); and the conversation's error
handler as the CDK tests its DefaultErrorHandler: one answer in, one resolution out. The class
of answers is unit_tests/test_paging_properties.py's."""

from __future__ import annotations

import json

import pytest
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ResponseAction
from airbyte_cdk.sources.types import StreamSlice

from source_smstools.components.conversation import (
    PAGE,
    PHONES,
    ConversationExtractor,
    ConversationPage,
    ConversationPages,
    conversation_of,
)
from source_smstools.components.errors import ConversationErrorHandler
from source_smstools.components.paging import MAX_LIMIT, OCCURRENCE, Reply, PagingError, Read, Tally, key, stops_early, window
from unit_tests.mock_server.record_builder import MessageBuilder, messages

URL = "https://api.example.test/v1/conversation/393331234567?limit=3"
PARAMETERS = {"shape": "envelope", "records_key": "conversation"}
SLICE = StreamSlice(partition={"phone": "+393331234567"}, cursor_slice={"start_time": "50", "end_time": "1000"})


def answer(page, times, total=None, prefix="m", limit=3, status=200, given=None):
    r = requests.Response()
    r.status_code = status
    listed = given if given is not None else messages(prefix, times)
    body = {"total": len(listed) if total is None else total, "shown": len(listed), "page": page, "limit": limit,
            "conversation": listed}
    r._content = json.dumps(body).encode()
    url = URL if page == 1 and limit == 3 else f"{URL.replace('limit=3', f'limit={limit}')}&page={page}"
    r.request = requests.Request("GET", url).prepare()
    r.url = r.request.url
    return r


def ids(passed):
    return [m["messageId"] for m in passed]


def take(read, page, listed, total, limit=3, said=None):
    return read.take(Reply((page, limit), page if said is None else said, total, listed))


# -- the early stop ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "times, stops",
    [
        ([90, 40, 30], True),  # newest first, the last two older than 50
        ([90, 60, 30], False),  # one older: it could be out of order
        ([90, 50, 30], True),  # 50 is the cursor's own message (inclusive): the read reached it
        ([90, 51, 30], False),  # one older after a newer one: it could be out of order
        ([40, 90, 30, 20], False),  # not newest first
        ([90, 30, 0, 20, -5], True),  # 0 and -5 say nothing: the last two usable are 30 and 20
        ([90, 30, 2000, 20], True),  # later than the clock (1000): says nothing
        ([90, 30, None], False),  # one usable older than 50 only
        ([30], False),
    ],
)
def test_a_page_stops_the_read_only_when_it_proves_the_rest_older(times, stops):
    assert stops_early([{"unixDatetime": t} for t in times], lower=50, upper=1000) is stops


def test_without_a_start_there_is_no_early_stop():
    assert stops_early([{"unixDatetime": t} for t in (3, 2, 1)], lower=None, upper=None) is False


@pytest.mark.parametrize("lo, hi, expected", [(0, 4, (1, 5)), (3, 5, (2, 3)), (198, 201, (34, 6)), (1995, 2004, (134, 15))])
def test_a_window_is_the_smallest_page_that_holds_the_positions_whole(lo, hi, expected):
    page, limit = window(lo, hi)
    assert (page, limit) == expected
    assert (page - 1) * limit <= lo and hi < page * limit


# -- a read, answer by answer --------------------------------------------------------------------


def test_the_pages_of_a_well_behaved_api_are_passed_as_they_come():
    read = Read("393331234567", 3)
    # each page's last second is held until the next page shows another one
    assert ids(take(read, 1, messages("m", [9, 8, 7]), 6)) == ["m0", "m1"]
    assert read.next == (2, 3)
    assert ids(take(read, 2, messages("n", [6, 5, 4]), 6)) == ["m2", "n0", "n1", "n2"]
    assert read.next is None and read.extra == 0 and read.notes() == []


def test_the_last_page_seen_again_after_an_arrival_is_passed_once():
    read = Read("393331234567", 3)
    page1 = messages("m", [9, 8, 7])
    take(read, 1, page1, 6)
    # one message arrived at the top: page 2 starts with page 1's last, which its messageId names
    assert ids(take(read, 2, [page1[2]] + messages("n", [6, 5]), 7)) == ["m2", "n0"]
    assert read.next == (3, 3) and read.extra == 0


def test_a_second_cut_by_a_boundary_is_read_whole_in_one_window():
    read = Read("393331234567", 3)
    assert ids(take(read, 1, messages("m", [90, 80, 70]), 9)) == ["m0", "m1"]
    # 70 on both sides of the boundary: in an order of its own on each answer, some could be on neither page
    assert ids(take(read, 2, messages("n", [70, 60, 55]), 9)) == ["n1"]  # 60: after the second cut
    assert read.next == (1, 7)  # positions 0 to 6: 70's and its neighbours, with a margin
    region = messages("m", [90, 80, 70]) + messages("n", [70, 60, 55]) + messages("o", [40])
    assert ids(take(read, 1, region, 9, limit=7)) == ["m2", "n0"]  # 70's two, from the one answer, between 80 and 60
    assert read.next == (3, 3)
    assert ids(take(read, 3, messages("o", [40, 30, 20]), 9)) == ["n2", "o0", "o1", "o2"]
    assert read.next is None and read.extra == 1
    assert read.notes() == ["1 run(s) of messages that a page boundary cut, or where the conversation's total fell, "
                            "were read again whole in one answer"]


def test_a_second_larger_than_one_answer_is_read_in_passes_and_never_fails():
    read = Read("393331234567", 1000)
    tie = [MessageBuilder(f"t{i}", 500).build() for i in range(2500)]
    listing = messages("a", [900]) + tie + messages("z", [100])
    for page in (1, 2, 3):
        take(read, page, listing[(page - 1) * 1000 : page * 1000], len(listing), limit=1000)
    assert read.next == (1, 1999)  # one pass: the positions of the second, in answers of 1999
    passed = take(read, 1, listing[:1999], len(listing), limit=1999)
    passed += take(read, 2, listing[1999:], len(listing), limit=1999)
    assert read.next is None  # the pass agrees with the pages read: the order is stable
    assert sorted(ids(passed)) == sorted([f"t{i}" for i in range(2500)] + ["z0"])
    assert read.notes() == ["messages of one second, more than one answer holds (up to 2500), were read across pages "
                            "in 1 pass(es) and deduplicated"]


def test_a_total_that_falls_has_the_boundary_read_again():
    read = Read("393331234567", 3)
    listing = messages("m", [90, 80, 70, 60, 50, 40])
    assert ids(take(read, 1, listing[:3], 6)) == ["m0", "m1"]
    # m1 was deleted once page 1 was read: page 2 starts one later, and m3 moved onto page 1, unread
    assert take(read, 2, listing[4:6], 5) == []
    # the seconds on both sides of the boundary (70 and 50) and what moved in between, in one answer
    assert read.next == (1, 8)
    now = [listing[0]] + listing[2:]
    assert ids(take(read, 1, now, 5, limit=8)) == ["m2", "m3", "m4"]
    # 40 follows where that run ended: it is read whole too, then the read ends
    assert read.next == (1, 8)
    assert ids(take(read, 1, now, 5, limit=8)) == ["m5"]
    # `total` fell: what was passed is checked against the conversation in one answer; m1 is gone
    assert read.next == (1, 2000)
    assert take(read, 1, now, 5, limit=2000) == []
    assert read.next is None and read.extra == 3


def test_identical_inbound_messages_of_one_second_are_each_passed_and_numbered():
    twin = {"messageId": None, "direction": "inbound", "sender": "393331234567", "receiver": "Smstools",
            "message": "ok", "unixDatetime": 80}
    read = Read("393331234567", 3)
    passed = take(read, 1, messages("m", [90]) + [dict(twin), dict(twin)], 4)
    passed += take(read, 2, messages("n", [70]), 4)
    assert [m.get(OCCURRENCE) for m in passed] == [None, None, 2, None]  # m0, the twin, its second, n0


@pytest.mark.parametrize(
    "said, given, error",
    [
        (1, None, "the answer says it is page 1, not the page asked for"),
        (2, "repeat", "the answer repeats page 1 (3 messages)"),
    ],
)
def test_an_api_that_ignores_the_page_is_read_in_one_answer_when_the_conversation_fits(said, given, error):
    page1 = messages("m", [90, 80, 70])
    read = Read("393331234567", 3)
    take(read, 1, page1, 5)
    assert take(read, 2, page1 if given else messages("n", [60, 50, 40]), 5, said=said) == []
    assert read.next == (1, 2000)  # what was passed fits one answer: the whole conversation in one
    assert ids(take(read, 1, page1 + messages("n", [60, 50]), 5, limit=2000)) == ["m2", "n0", "n1"]
    assert read.next is None and read.notes() == [f"{error}: the conversation was read in one answer of 2000"]


def test_an_api_that_ignores_the_page_fails_the_phone_when_the_conversation_does_not_fit():
    read = Read("393331234567", 2000)
    page1 = [MessageBuilder(f"m{i}", 3000 - i).build() for i in range(2000)]
    take(read, 1, page1, 5000, limit=2000)
    with pytest.raises(PagingError) as failure:
        take(read, 2, page1, 5000, limit=2000, said=1)
    assert failure.value.message == (
        "Phone 393331234567, page 2: the answer says it is page 1, not the page asked for; its cursor stays where it "
        "was, the next sync reads it again."
    )
    assert failure.value.failure_type == FailureType.system_error



def _twin(at=3000):
    return {"messageId": None, "direction": "inbound", "sender": "393331234567", "receiver": "Smstools",
            "message": "ok", "unixDatetime": at}


@pytest.mark.parametrize("page2, fails", [("again", True), ("rest", False)])
def test_a_page_of_what_was_read_at_the_top_is_told_from_page_1_again_by_page_2_of_2000(page2, fails):
    # pages of 1: page 2 holds page 1's one inbound message again, under a total that promises more;
    # the conversation's top does not fit one answer, so page 2 of 2000 says whether `page` is honoured
    top = [_twin(), _twin()] + [MessageBuilder(f"m{i}", 2999 - i).build() for i in range(2003)]
    read = Read("393331234567", 1)
    take(read, 1, [_twin()], 10**9, limit=1)
    assert take(read, 2, [_twin()], 10**9, limit=1) == [] and read.next == (1, 2000)
    assert take(read, 1, top[:2000], 10**9, limit=2000) == [] and read.next == (2, 2000)
    if fails:
        with pytest.raises(PagingError) as failure:
            take(read, 2, top[:2000], 10**9, limit=2000)
        assert failure.value.message == (
            "Phone 393331234567, page 2: page 2 held only messages of one second read already (identical messages "
            "without a messageId, or an API that answers every page with page 1), and page 2 of 2000 holds page 1's "
            "messages again: the API ignores `page`, and the conversation does not fit in one answer (2000 "
            "messages); its cursor stays where it was, the next sync reads it again."
        )
        return
    assert take(read, 2, top[2000:], 10**9, limit=2000) == [] and read.next == (3, 1)  # page 2 taken: the twin
    assert take(read, 3, top[2:3], 10**9, limit=1) == [] and read.next == (1, 5)  # the second, read whole
    passed = take(read, 1, top[:5], 10**9, limit=5)
    assert [m.get(OCCURRENCE) for m in passed] == [None, 2] and read.next == (4, 1)
    assert read.notes()[-1] == (
        "page 2 held only messages of one second read already: the conversation's top was read in answers of 2000, "
        "which showed that the API honours `page`, and the read went on"
    )


def test_a_pass_whose_page_1_holds_the_whole_conversation_ends_the_read_with_it():
    # found by the soak (page_repeated and shuffle_ties, pages of 1000): 1,956 messages of one second
    # and 8 without a time; page 2 is another 1,000 of that second (page 1 again, in another order),
    # so the pages show a second of 2,000, read in passes: each pass's page 2 was page 1 again, the 8
    # were never passed (they are not of the second) and identical copies were counted twice
    second = [MessageBuilder(f"m{i}", 5000).build() for i in range(1956)]
    timeless = [MessageBuilder(f"t{i}", (0, None)[i % 2]).build() for i in range(8)]
    read = Read("393331234567", 1000)
    assert take(read, 1, second[:1000], 1964, limit=1000) == []
    assert take(read, 2, second[956:], 1964, limit=1000) == [] and read.next == (1, 1999)  # passes
    passed = take(read, 1, second + timeless, 1964, limit=1999)
    assert ids(passed) == ids(second + timeless) and read.next is None and read.extra == 1
    assert read.notes()[0] == (
        "page 1 of 1999 held the whole conversation (1964 messages), where its pages had shown 2000 messages of one "
        "second: the conversation was read in one answer of 2000"
    )

def test_messages_older_than_the_start_are_dropped_and_times_that_place_nothing_kept():
    read = Read("393331234567", 10, lower=50, upper=1000)
    listed = [MessageBuilder("a", 2000).build(), MessageBuilder("b", 60).build(), MessageBuilder("c", 0).build(),
              MessageBuilder("d", 40).build(), MessageBuilder("e", -5).build(), MessageBuilder("f", 30).build(),
              MessageBuilder("g", None).without_time().build()]
    passed = take(read, 1, listed, 7, limit=10)
    assert [(m["messageId"], m.get("unixDatetime", "missing")) for m in passed] == [
        ("a", None), ("b", 60), ("c", 0), ("e", -5), ("g", "missing"),  # 40 and 30: older than 50
    ]
    assert read.notes() == [
        "messages whose time cannot place them: 3 with a unixDatetime that is missing, not an integer, 0 or negative "
        "(passed as sent); 1 with a unixDatetime later than the sync's clock (passed with unixDatetime empty). They "
        "are synced, and the phone's cursor does not move past them"
    ]


def test_an_answer_out_of_turn_fails_the_phone():
    read = Read("393331234567", 3)
    with pytest.raises(PagingError, match="page 2: asked out of turn"):
        take(read, 2, messages("m", [9]), 1)


# -- the components around a read -----------------------------------------------------------------


def components(config):
    return (ConversationExtractor(config=config, parameters=PARAMETERS), ConversationPage(config=config, parameters={}),
            ConversationPages(config=config, parameters=PARAMETERS, page_size=3))


def test_each_answer_is_one_record_of_what_was_asked_and_what_came():
    extractor, _, _ = components({"page_size": 3})
    [record] = extractor.extract_records(answer(2, [6, 5, 4], total=9))
    assert record[PAGE] == Reply((2, 3), 2, 9, messages("m", [6, 5, 4]))


def test_the_filter_passes_what_the_partitions_read_gives_and_the_paginator_asks_what_it_names():
    config = {"page_size": 3}
    extractor, page, pages = components(config)
    first = answer(1, [90, 80, 70], total=9)
    assert ids(page.filter_records(extractor.extract_records(first), {}, SLICE)) == ["m0", "m1"]
    assert pages.next_page_token(first, 2, None, stream_slice=SLICE) == {"page": 2, "limit": 3}
    last = answer(2, [60, 50, 40], total=9, prefix="n")
    assert ids(page.filter_records(extractor.extract_records(last), {}, SLICE)) == ["m2", "n0", "n1"]  # 40: older than 50
    assert pages.next_page_token(last, 3, None, stream_slice=SLICE) is None
    assert conversation_of(config).reads.get("+393331234567") is None  # the read is over: forgotten


def test_one_number_in_two_forms_is_two_reads():
    config = {"page_size": 3}
    extractor, page, pages = components(config)
    plus = SLICE
    digits = StreamSlice(partition={"phone": "393331234567"}, cursor_slice=SLICE.cursor_slice)
    first = answer(1, [90, 80, 70], total=9)
    list(page.filter_records(extractor.extract_records(first), {}, plus))
    # the other form's first page (the same URL) starts a read of its own, not page 1 out of turn
    assert ids(page.filter_records(extractor.extract_records(answer(1, [90, 80, 70], total=9)), {}, digits)) == ["m0", "m1"]
    reads = conversation_of(config).reads
    assert reads.get("+393331234567") is not reads.get("393331234567")
    assert pages.next_page_token(first, 2, None, stream_slice=digits) == {"page": 2, "limit": 3}


def test_a_partition_of_several_phones_reads_them_one_after_another():
    config = {"page_size": 3}
    extractor, page, pages = components(config)
    # the router's partition of two: its own phone first, then the one its PHONES name after it
    both = StreamSlice(partition={"phone": "+393331234567"}, cursor_slice=SLICE.cursor_slice,
                       extra_fields={PHONES: ["+393331234567", "+32470123456"]})
    first = answer(1, [90, 80], total=2)
    assert ids(page.filter_records(extractor.extract_records(first), {}, both)) == ["m0", "m1"]
    # the first phone's read is over: the next request is the other phone's page 1 (no page asked)
    assert pages.next_page_token(first, 2, None, stream_slice=both) == {"phone": "+32470123456"}
    part = conversation_of(config)
    assert part.phone_in(both) == "+32470123456" and part.done == {"+393331234567": 90}
    other = answer(1, [70, 60, 55], total=4, prefix="o")
    # the page's last second waits for the next page, as in any read (seconds read whole)
    assert ids(page.filter_records(extractor.extract_records(other), {}, both)) == ["o0", "o1"]
    # a page of the second phone names it, for the URL
    assert pages.next_page_token(other, 3, None, stream_slice=both) == {"page": 2, "limit": 3, "phone": "+32470123456"}
    last = answer(2, [54], total=4, prefix="p")
    assert ids(page.filter_records(extractor.extract_records(last), {}, both)) == ["o2", "p0"]
    assert pages.next_page_token(last, 1, None, stream_slice=both) is None  # its last phone: the partition ends
    assert part.done == {"+393331234567": 90, "+32470123456": 70} and part.current == {}
    assert part.phone_in(both) == "+393331234567"


def test_a_failed_read_is_forgotten():
    config = {"page_size": 3}
    extractor, page, _ = components(config)
    with pytest.raises(PagingError):
        list(page.filter_records(extractor.extract_records(answer(2, [9, 8, 7])), {}, SLICE))
    assert conversation_of(config).reads.get("+393331234567") is None


# -- the error handler ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, action, failure, message",
    [
        (200, None, ResponseAction.SUCCESS, None, None),
        (503, {"error": 105, "errorMsg": "busy"}, ResponseAction.RETRY, FailureType.transient_error,
         "Phone 393331234567, page 2 (HTTP 503): Smstools server error (error 105: busy)"),
        (200, {"total": 3, "page": 2}, ResponseAction.FAIL, FailureType.system_error, None),
    ],
)
def test_the_error_handler_names_phone_and_page(status, body, action, failure, message):
    from airbyte_cdk.sources.declarative.requesters.error_handlers import HttpResponseFilter

    filters = [
        HttpResponseFilter(config={}, parameters={}, predicate="{{ response.error == 105 }}", action="RETRY",
                           error_message="Smstools server error (error 105: {{ response.errorMsg }})"),
        HttpResponseFilter(config={}, parameters={}, predicate="{{ response.conversation is not defined }}", action="FAIL",
                           failure_type="system_error", error_message="no conversation"),
    ]
    handler = ConversationErrorHandler(config={}, parameters=PARAMETERS, response_filters=filters)
    response = answer(2, [6, 5, 4], total=6, status=status)
    if body is not None:
        response._content = json.dumps(body).encode()
    resolution = handler.interpret_response(response)
    assert resolution.response_action == action
    if failure:
        assert resolution.failure_type == failure
    if message:
        assert resolution.error_message == message


def test_a_message_that_random_deletes_move_past_a_page_read_is_passed_by_the_check_after_total_fell():
    # found by the property test (smallest of its kind): one message deleted anywhere after each
    # answer, pages of 1; before the check, one of the last messages moved up past a page
    # boundary already read and was never passed, with exit 0
    from unit_tests.test_paging_properties import PHONE, check, read as read_through

    def sent(n, message_id, text, at):
        inbound = message_id is None
        return {"messageId": message_id, "direction": "inbound" if inbound else "outbound",
                "sender": PHONE if inbound else "Smstools", "receiver": "Smstools" if inbound else PHONE,
                "message": text, "unixDatetime": at, "_id": n}

    listing = [sent(n, *m) for n, m in enumerate([
        ('m0', 'text 0', 1700000000),
        ('m1', 'text 1', 1700000000),
        (None, 'STOP', 1700000000),
        ('m3', 'text 3', 1700000000),
        (None, 'ok', 1700000000),
        (None, 'grazie', 1699999999),
        (None, 'STOP', 1699999998),
        (None, 'STOP', 1699999998),
        ('m8', 'text 8', 1699999998),
        (None, 'ok', 1699999997),
        ('m10', 'text 10', 1699999997),
        ('m11', 'text 11', 1699999997),
        (None, 'ok', 1699999996),
        (None, 'grazie', 1699999996),
        ('m14', 'text 14', 1699999996),
        ('m15', 'text 15', 1699999996),
        (None, 'grazie', 1699999996),
        ('m17', 'text 17', 1699999995),
        ('m18', 'text 18', 1699999995),
        ('m19', 'text 19', 1699999995),
        (None, 'grazie', 1699999995),
        ('m21', 'text 21', 1699999995),
        (None, 'senza data', 0),
        (None, 'senza data', -5),
    ])]
    outcome = read_through(listing, 1, {"random_deletes"}, 81)
    assert outcome.error is None
    check(outcome, None)
    assert sorted(m["_id"] for m in outcome.throughout) == [12, 22, 23]
    assert sorted(m["_id"] for m in outcome.passed) == [1, 2, 4, 5, 7, 8, 9, 12, 15, 17, 22, 23]
    assert outcome.requests == 21


# -- what a read keeps ---------------------------------------------------------------------------


def test_a_long_read_keeps_the_keys_of_two_answers_and_a_tally_of_every_message():
    # the keys hold each message's texts: a read keeps them for the last two answers of the largest
    # size only (its Counter of them kept every key passed, at 0, as long as the read went on)
    read = Read("393331234567", 1000)
    listing = messages("m", list(range(60_000, 0, -10)))
    passed = []
    for page in range(1, 7):
        passed += take(read, page, listing[(page - 1) * 1000 : page * 1000], 6000, limit=1000)
    assert len(passed) == 6000 and read.next is None
    assert len(read.recent) == len(read.recently) == 2 * MAX_LIMIT
    assert (read.seen[key(listing[0])], read.seen[key(listing[-1])], read.seen[key(messages("x", [5])[0])]) == (1, 1, 0)


def test_a_tally_counts_each_key_as_often_as_it_was_added_as_it_grows():
    tally = Tally()
    keys = [("m", str(i)) for i in range(1000)]
    for k in keys:
        tally.add(k)
    tally.add(keys[7])
    assert [tally[k] for k in keys[:9]] == [1, 1, 1, 1, 1, 1, 1, 2, 1]
    assert sum(tally[k] for k in keys) == 1001 and tally[("m", "1000")] == 0
