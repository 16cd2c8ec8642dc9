"""What the records tell change detection: the span a source's read covered, a message it left
out, one no source announced, statuses not final; and the one Observations that the state
migration gives the partition router and the records' transformation."""

import threading

from airbyte_cdk.models import (
    AirbyteStateBlob, AirbyteStateMessage, AirbyteStateType, AirbyteStreamState, StreamDescriptor, SyncMode,
)
from airbyte_cdk.test.catalog_builder import CatalogBuilder

from source_smstools.components.coverage import Observations, final, uncovered
from source_smstools.components.discovery import normalize_phone
from source_smstools.components.records import MessageFields
from source_smstools.components.sources import SourceRead, Window, window_of
from source_smstools.source import SourceSmstools

AT = 1_749_200_000


def test_final_statuses_are_the_gateways_end_states_and_anything_else_may_still_change():
    assert all(final(s) for s in ("DELIVERED", "delivered ", "FAILED", "UNDELIV", "EXPIRED", "REJECTD", "RECEIVED"))
    assert not any(final(s) for s in ("PENDING", "SENT", "ACCEPTED", "BUFFERED", "UNKNOWN", "SCHEDULED", "", None, 3))


def test_a_read_covers_the_span_of_its_pages_after_its_oldest_second_or_everything_when_whole():
    read = SourceRead(entries=[("39333", AT - 10, "1"), (None, AT - 20, "2"), ("39334", AT - 30, "3"), ("39335", AT + 99, "4")], whole=False)
    w = window_of(read, AT)
    assert (w.after, w.upto) == (AT - 30, AT - 10)  # an entry dated in the future is no part of it
    assert set(w.listed) == {("39333", AT - 10), ("39334", AT - 30), ("39335", AT + 99)}
    assert [w.covers(d) for d in (AT - 30, AT - 29, AT - 10, AT - 9)] == [False, True, True, False]
    assert window_of(SourceRead(entries=read.entries), AT).after is None  # read to its end
    assert window_of(SourceRead(entries=[("39333", None, "1")]), AT) is None


def watching(**kwargs):
    seen = Observations()
    inbox = Window(AT - 1000, AT - 10, frozenset({("393331000000", AT - 500)}))
    seen.watch({"inbox": inbox}, {"+393331000000": AT - 800, "+393331000001": AT - 5000}, kwargs.get("unannounced", ()), normalize_phone, AT - 3600)
    return seen


def message(date, direction="inbound", status="RECEIVED"):
    return {"unixDatetime": date, "direction": direction, "deliveryStatus": status}


def test_a_message_inside_a_lists_window_that_the_list_left_out_is_missing_and_one_it_listed_is_listed():
    seen = watching()
    seen.observe("+393331000000", message(AT - 500))  # listed (the phone in another form)
    seen.observe("+393331000000", message(AT - 400))  # in the window, not listed
    seen.observe("+393331000001", message(AT - 5000))  # at its cursor: judged when first read
    seen.observe("+393331000001", message(AT - 5))  # after the window: not judged
    seen.observe("+393331000002", message(AT - 20))  # a new phone (no cursor): in the window, not listed
    seen.observe("+393331000002", message(AT - 20, "outbound", "DELIVERED"))  # the log was not read
    assert seen.listed == {"+393331000000": {"inbox"}}
    assert seen.missing == {"+393331000000": {"inbox"}, "+393331000002": {"inbox"}}


def test_a_message_no_list_announced_on_a_phone_read_for_another_rule_is_missing():
    seen = watching(unannounced=["+393331000001"])
    seen.observe("+393331000001", message(AT - 2000))  # after its cursor, before the window
    assert seen.missing == {"+393331000001": {"inbox"}}
    # not newer than an hour before the sync, nor than the lists' newest: it may have come since
    seen = watching(unannounced=["+393331000001"])
    seen.observe("+393331000001", message(AT - 5))
    assert seen.missing == {}


def test_the_oldest_and_newest_outbound_messages_whose_status_is_not_final_are_kept_per_phone_from_every_thread():
    seen = Observations()
    phones = [f"+39333100000{n}" for n in range(4)]

    def read(phone):
        for i in range(200):
            seen.observe(phone, message(AT - i, "outbound", "PENDING" if i % 50 == 7 else "DELIVERED"))
        seen.observe(phone, message(AT - 999, "inbound", "WHATEVER"))  # inbound: no delivery to follow

    threads = [threading.Thread(target=read, args=(p,)) for p in phones]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert seen.pending == {p: (AT - 157, AT - 7) for p in phones}
    # a status no longer followed (sent before the bound change detection sets) is left out
    seen = Observations()
    seen.pending_since = AT - 100
    for i in (157, 107, 57, 7):
        seen.observe(phones[0], message(AT - i, "outbound", "PENDING"))
    assert seen.pending == {phones[0]: (AT - 57, AT - 7)}


def test_a_phone_stays_uncovered_until_a_read_finds_its_messages_listed_and_none_left_out():
    seen = Observations()
    seen.missing = {"b": {"inbox"}}
    seen.listed = {"a": {"inbox"}, "b": {"message_log"}, "c": {"inbox"}}
    before = {"a": ["inbox"], "c": ["inbox", "message_log"], "d": ["inbox"]}
    # a: listed again; b: newly missing; c: the inbox listed it, the log still unknown; d: not read
    assert uncovered(before, seen, {"a", "b", "c"}) == {"b": ["inbox"], "c": ["message_log"], "d": ["inbox"]}


def test_the_state_migration_gives_the_router_the_saved_state_and_both_it_and_the_transformation_one_observations():
    config = {"client_id": "x", "client_secret": "y", "phone_numbers": ["+393331000000"]}
    saved = {
        "use_global_cursor": False,
        "states": [{"partition": {"phone": "+393331000000"}, "cursor": {"unixDatetime": "1749113086"}}],
    }
    state = [AirbyteStateMessage(
        type=AirbyteStateType.STREAM,
        stream=AirbyteStreamState(stream_descriptor=StreamDescriptor(name="conversation"), stream_state=AirbyteStateBlob(**saved)),
    )]
    catalog = CatalogBuilder().with_stream("conversation", SyncMode.incremental).build()
    builds = []
    for _ in range(2):
        source = SourceSmstools(catalog=catalog, config=config, state=state)
        stream = next(s for s in source.streams(config) if s.name == "conversation")
        router = stream.get_partition_router()
        retriever = stream._stream_partition_generator._partition_factory._retriever
        [fields] = [t for t in retriever.record_selector.transformations if isinstance(t, MessageFields)]
        assert router._part.saved.book.entries.keys() == {"+393331000000"}
        assert router._part.saved.book.cursor("+393331000000") == 1749113086
        assert isinstance(router._part.observations, Observations) and fields._observations is router._part.observations
        builds.append(router._part.observations)
    assert builds[0] is not builds[1]  # one per build of the stream: per sync
