"""The conversation stream end to end: the installed CLI against the emulator, comparing the exact
records, state and requests."""

from __future__ import annotations

import math
import re
import time
from collections import Counter

import pytest

from integration_tests import cli
from smstools_emulator import CLIENT_SECRET, make_conversation, make_message
from source_smstools.components.state import phone_cursors

DAY = 86_400


def expected_records(emulator, phone: str, since: int | None = None) -> dict[tuple, dict]:
    """The records a read must give for `phone`, keyed by phone and time (see `by_message`): every
    message at or after `since`, plus the added fields but `id`. Null values are dropped: the CDK's
    serializer leaves out null keys."""
    records = {}
    for message in emulator.conversation(phone):
        if since is not None and message["unixDatetime"] < since:
            continue
        record = {**message, "phone": phone}
        # the API's own text of the time ("05 jun 2025, 08:44:46", UTC), written the ISO way: not
        # the connector's computation from unixDatetime (pinned literally in test_records_pinned)
        day, month, year, clock = re.fullmatch(r"(\d\d) (\w{3}) (\d{4}), (\d\d:\d\d:\d\d)", message["datetime"]).groups()
        record["datetime_utc"] = f"{year}-{MONTHS.index(month) + 1:02d}-{day}T{clock}Z"
        if isinstance(message.get("file"), dict):
            record["file"] = [message["file"]]  # one attachment: a list of one
        records[(phone, message["unixDatetime"])] = {k: v for k, v in record.items() if v is not None}
    return records


MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
INBOUND_ID = re.compile(r"h[0-9a-f]{32}")


def by_message(records: list[dict], once: bool = True) -> dict[tuple, dict]:
    """The records keyed by phone and time (no two messages of these conversations share a second),
    without `id`, once each `id` is checked: the messageId, or for an inbound message `h` and 32 hex
    digits (its exact value is pinned in test_inbound_ids_are_stable_across_versions), one per
    message. once: no record came twice."""
    result = {}
    for record in records:
        record = dict(record)
        given = record.get("messageId")
        if given:
            assert record.pop("id") == given, "the id of a message with a messageId is that messageId"
        else:
            assert INBOUND_ID.fullmatch(record.pop("id")), "an inbound id is 'h' and 32 hex digits"
        result[(record["phone"], record["unixDatetime"])] = record
    assert len({r["id"] for r in records}) == len(result), "two messages share an id"
    if once:
        assert len(result) == len(records), "a record came twice"
    return result


def phones(emulator) -> list[str]:
    return ["+" + p for p in emulator.phones()]


def requests_per_phone(emulator) -> dict[str, int]:
    return {p: len(emulator.conversation_requests(p)) for p in phones(emulator)}


def cursors(state: list[dict]) -> dict[str, int]:
    stream_state = state[0]["stream"]["stream_state"]
    return phone_cursors(stream_state)


def newest(emulator, phone: str) -> int:
    return max(m["unixDatetime"] for m in emulator.conversation(phone))


# -- spec, check, discover -------------------------------------------------------------------


def test_spec_lists_the_documented_fields():
    out = cli.run("spec")
    spec = out.of_type("SPEC")[0]["spec"]["connectionSpecification"]
    properties = spec["properties"]
    assert list(properties) == [
        "client_id", "client_secret", "phone_numbers", "phone_sources", "start_date",
        "lookback_window_days", "full_sweep_days", "change_detection", "page_size", "num_workers", "base_url", "shard",
    ]
    assert [properties[p]["order"] for p in properties] == list(range(12))
    assert spec["required"] == ["client_id", "client_secret"]  # no phone_numbers: discover them
    assert properties["client_secret"]["airbyte_secret"] is True
    assert (properties["page_size"]["minimum"], properties["page_size"]["maximum"], properties["page_size"]["default"]) == (1, 2000, 2000)
    assert properties["lookback_window_days"]["minimum"] == 0 and properties["lookback_window_days"]["default"] == 0
    assert (properties["full_sweep_days"]["minimum"], properties["full_sweep_days"]["default"]) == (0, 7)
    assert properties["change_detection"] == {**properties["change_detection"], "type": "boolean", "default": True}
    assert properties["base_url"]["default"] == "https://api.smsgatewayapi.com"
    assert all(properties[p].get("title") and properties[p].get("description") for p in properties)


def test_discover_describes_the_conversation_stream(emulator):
    out = cli.call("discover", cli.config(emulator))
    streams = {s["name"]: s for s in out.of_type("CATALOG")[0]["catalog"]["streams"]}
    stream = streams["conversation"]
    assert stream["source_defined_primary_key"] == [["id"]]
    assert stream["default_cursor_field"] == ["unixDatetime"]
    assert stream["source_defined_cursor"] is True
    assert sorted(stream["supported_sync_modes"]) == ["full_refresh", "incremental"]
    schema = stream["json_schema"]["properties"]
    assert {"id", "phone", "datetime_utc", "messageId", "file", "unixDatetime", "mine"} <= set(schema)
    assert emulator.requests == []  # discover needs no API call


def test_check_succeeds_with_one_conversation_request(emulator):
    out = cli.call("check", cli.config(emulator))
    assert out.connection_status["status"] == "SUCCEEDED"
    # change detection reads page 1 of the inbox and of the message log before any conversation
    # (their position is taken before a message can arrive on a phone already read)
    # (one phone's: which is drawn each sync, see PhonePartitionRouter._last_safe)
    asked = [(r["path"], r["page"]) for r in emulator.requests]
    assert asked[:2] == [("/v1/message/inbox", 1), ("/v1/message/logging", 1)] and len(asked) == 3
    assert asked[2][0] in {f"/v1/conversation/{p.lstrip('+')}" for p in emulator.phones()} and asked[2][1] == 1
    emulator.clear_requests()
    out = cli.call("check", cli.config(emulator, change_detection=False))
    assert out.connection_status["status"] == "SUCCEEDED" and len(emulator.requests) == 1


@pytest.mark.parametrize(
    "status, body, words",
    [
        (401, None, "credentials"),
        (403, None, "credentials"),
        (200, None, "refused the credentials"),  # 104 with HTTP 200: a refusal all the same
        (200, {"error": 1002, "errorMsg": "Too many failed logins"}, "refused the credentials"),
        (200, {"error": 200, "errorMsg": "IP address not allowed"}, "IP address"),
    ],
)
def test_check_fails_clearly_when_refused(emulator, status, body, words):
    emulator.auth_error_status = status
    config = cli.config(emulator)
    if body is None:
        config["client_secret"] = "wrong-secret"
    else:
        emulator.error = body
    out = cli.call("check", config)
    assert out.connection_status["status"] == "FAILED"
    assert words in out.connection_status["message"]


@pytest.mark.parametrize(
    "body, failure",
    [
        (None, "refused the credentials"),
        ({"error": 1002, "errorMsg": "Too many failed logins"}, "refused the credentials"),
        ({"error": 200, "errorMsg": "IP address not allowed"}, "IP address"),
    ],
)
def test_read_refused_is_a_config_error(emulator, body, failure):
    emulator.auth_error_status = 200
    config = cli.config(emulator)
    if body is None:
        config["client_secret"] = "wrong-secret"
    else:
        emulator.error = body
    out = cli.call("read", config, cli.catalog())
    assert out.records == []
    # one config error for the cause (not one per phone), then the CDK's summary of the failed stream
    first, closing = out.errors
    assert first["failure_type"] == "config_error" and failure in first["message"]
    assert closing["message"].startswith("During the sync, the following streams did not sync successfully: ")


# -- full refresh ----------------------------------------------------------------------------


def test_full_refresh_reads_every_message_with_the_fewest_requests(emulator):
    out = cli.call("read", cli.config(emulator), cli.catalog("full_refresh"))
    assert out.returncode == 0
    expected = {}
    for phone in phones(emulator):
        expected.update(expected_records(emulator, phone))
    assert by_message(out.records) == expected
    # ceil(total / 2000) requests per phone: 2500 -> 2, 1900 -> 1, 40 -> 1
    assert requests_per_phone(emulator) == {p: math.ceil(len(emulator.conversation(p)) / 2000) for p in phones(emulator)}
    pages = [(r["phone"], r["query"].get("page", "1"), r["query"]["limit"]) for r in emulator.conversation_requests()]
    assert sorted(pages) == sorted([("393331000000", "1", "2000"), ("393331000000", "2", "2000"), ("393331000001", "1", "2000"), ("393331000002", "1", "2000")])


def test_no_request_for_a_trailing_empty_page(emulator):
    emulator.set_conversation("+393331000000", make_conversation("+393331000000", 4000, seed=1))
    out = cli.call("read", cli.config(emulator, phone_numbers=["+393331000000"]), cli.catalog("full_refresh"))
    assert len(out.records) == 4000
    assert len(emulator.conversation_requests()) == 2


def test_page_size_sets_the_limit(emulator):
    config = cli.config(emulator, phone_numbers=["+393331000000"], page_size=300)
    out = cli.call("read", config, cli.catalog("full_refresh"))
    assert by_message(out.records) == expected_records(emulator, "+393331000000")
    requests = emulator.conversation_requests()
    assert len(requests) == math.ceil(2500 / 300)
    assert {r["limit"] for r in requests} == {300}
    assert sorted(r["page"] for r in requests) == list(range(1, 10))


def test_records_have_the_added_fields_and_pass_unknown_ones_through(emulator):
    phone = "+393331000002"
    messages = [
        {**make_message(phone, 1_700_000_300, __import__("random").Random(1), 1), "direction": "inbound", "messageId": None,
         "file": [{"name": "a.jpg", "image": "https://x/a.jpg", "mime": "image/jpeg"}], "channel": "whatsapp"},
        {**make_message(phone, 1_700_000_200, __import__("random").Random(2), 2), "messageId": "m-2",
         "file": {"name": "b.pdf", "image": "https://x/b.pdf", "mime": "application/pdf"}, "mine": False},
        {**make_message(phone, 1_700_000_100, __import__("random").Random(3), 3), "messageId": "m-3", "file": None},
    ]
    messages[2].pop("mine", None)
    emulator.set_conversation(phone, messages)
    out = cli.call("read", cli.config(emulator, phone_numbers=["393331000002"]), cli.catalog())
    records = out.records
    assert [r["phone"] for r in records] == ["393331000002"] * 3  # a string, as configured
    # the hash of phone, direction, time, sender, receiver and text, as sha256sum gives it
    assert records[0]["id"] == "he09e80ba3e662f8d6587d9272e1447ba"
    assert records[0]["file"] == messages[0]["file"] and records[0]["channel"] == "whatsapp"
    # a single attachment object becomes a list of one: `file` has one shape
    assert records[1]["id"] == "m-2" and records[1]["file"] == [messages[1]["file"]] and records[1]["mine"] is False
    assert "mine" not in records[2] and "file" not in records[2]
    assert [r["datetime_utc"] for r in records] == ["2023-11-14T22:18:20Z", "2023-11-14T22:16:40Z", "2023-11-14T22:15:00Z"]


def test_records_pinned(emulator):
    # Three records of the fixture's conversations exactly as the connector writes them, typed out:
    # the newest inbound message, one with a list of attachments, and one whose single attachment
    # object becomes a list of one (the 36th message of the second phone).
    out = cli.call("read", cli.config(emulator, phone_numbers=["+393331000002", "+393331000001"]), cli.catalog("full_refresh"))
    records = {r["id"]: r for r in out.records}
    assert records["he41de372e7b96f634693c212a6da3697"] == {
        "direction": "inbound", "sender": "393331000002", "receiver": "Smstools",
        "message": "Posso spostare l'appuntamento a giovedì?", "datetime": "05 jun 2025, 08:44:27",
        "unixDatetime": 1749113067, "deliveryStatus": "RECEIVED", "phone": "+393331000002",
        "id": "he41de372e7b96f634693c212a6da3697", "datetime_utc": "2025-06-05T08:44:27Z",
    }
    assert records["h5638735a87e4658b5bad800dcd5d62e5"] == {
        "direction": "inbound", "sender": "393331000002", "receiver": "Smstools", "message": "Perfetto, ci vediamo là. Ciao!",
        "file": [{"name": "foto_24.jpg", "image": "https://files.example/24.jpg", "mime": "image/jpeg"}],
        "datetime": "04 jun 2025, 08:41:39", "unixDatetime": 1749026499, "deliveryStatus": "RECEIVED",
        "phone": "+393331000002", "id": "h5638735a87e4658b5bad800dcd5d62e5", "datetime_utc": "2025-06-04T08:41:39Z",
    }
    assert records["905ded1235037a42197212e5"] == {
        "messageId": "905ded1235037a42197212e5", "direction": "outbound", "sender": "Smstools", "receiver": "393331000001",
        "message": "Ciao Anna, il tuo appuntamento è confermato per domani alle 10:30. 📅",
        "file": [{"name": "ricevuta_35.pdf", "image": "https://files.example/35.pdf", "mime": "application/pdf"}],
        "datetime": "03 jun 2025, 21:40:34", "unixDatetime": 1748986834, "deliveryStatus": "DELIVERED", "mine": True,
        "phone": "+393331000001", "id": "905ded1235037a42197212e5", "datetime_utc": "2025-06-03T21:40:34Z",
    }


def test_inbound_ids_are_stable_across_versions():
    # Changing this hash would duplicate every inbound message in users' warehouses. The value is
    # sha256 of "+32470123456␟inbound␟1749113086␟32470123456␟Smstools␟Ciao!" (␟ = U+001F),
    # computed once with sha256sum, its first 32 hex digits after an "h".
    message = {"messageId": None, "direction": "inbound", "unixDatetime": 1749113086, "sender": "32470123456",
               "receiver": "Smstools", "message": "Ciao!"}
    from source_smstools.components.records import message_id

    assert message_id("+32470123456", message) == "h172966c3fc5527e0556c50d4c8c6b77d"


# -- incremental -----------------------------------------------------------------------------


def test_incremental_state_is_per_phone_and_a_second_sync_makes_one_request_per_phone(emulator):
    config = cli.config(emulator, change_detection=False)  # every phone asked, every sync
    first = cli.call("read", config, cli.catalog())
    assert len(first.records) == 2500 + 1900 + 40
    assert cursors(first.last_state) == {p: newest(emulator, p) for p in phones(emulator)}

    emulator.clear_requests()
    second = cli.call("read", config, cli.catalog(), first.last_state)
    # the inclusive cursor re-reads the newest message of each phone, nothing else
    assert sorted(r["unixDatetime"] for r in second.records) == sorted(newest(emulator, p) for p in phones(emulator))
    assert requests_per_phone(emulator) == {p: 1 for p in phones(emulator)}
    assert cursors(second.last_state) == cursors(first.last_state)


def test_incremental_fetches_only_new_messages_and_stops_at_the_cursor(emulator):
    a, b, c = phones(emulator)
    config = cli.config(emulator, change_detection=False)  # every phone asked, every sync
    first = cli.call("read", config, cli.catalog())
    before = {p: newest(emulator, p) for p in (a, b, c)}

    rng = __import__("random").Random(5)
    emulator.add_messages(a, [make_message(a, before[a] + 60 * i, rng, 10_000 + i) for i in range(1, 6)])
    emulator.add_messages(b, [make_message(b, before[b] + 10 * i, rng, 20_000 + i) for i in range(1, 2501)])
    emulator.clear_requests()

    second = cli.call("read", config, cli.catalog(), first.last_state)
    expected = {}
    for p in (a, b, c):
        expected.update(expected_records(emulator, p, since=before[p]))
    assert by_message(second.records) == expected
    assert len(second.records) == 5 + 2500 + 3  # the new ones, and each phone's boundary message
    # a: 5 new fit one page; b: 2500 new span two pages, the second reaches the cursor; c: one
    assert requests_per_phone(emulator) == {a: 1, b: 2, c: 1}
    assert cursors(second.last_state) == {p: newest(emulator, p) for p in (a, b, c)}


def test_start_date_skips_older_messages_and_stops_paging(emulator):
    a = "+393331000000"
    messages = emulator.conversation(a)
    start = messages[700]["unixDatetime"]  # newest first: 701 messages are at or after it
    start_date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    config = cli.config(emulator, phone_numbers=[a], start_date=start_date, page_size=500)
    out = cli.call("read", config, cli.catalog())
    assert by_message(out.records) == expected_records(emulator, a, since=start)
    assert len(out.records) == 701
    assert len(emulator.conversation_requests()) == 2  # of the 5 pages, the second reaches start_date

    full_refresh = cli.call("read", config, cli.catalog("full_refresh"))
    assert by_message(full_refresh.records) == expected_records(emulator, a, since=start)


def test_a_phone_added_later_gets_its_whole_history(emulator):
    a, b, c = phones(emulator)
    first = cli.call("read", cli.config(emulator, phone_numbers=[a, b], change_detection=False), cli.catalog())
    assert set(cursors(first.last_state)) == {a, b}

    emulator.clear_requests()
    config = cli.config(emulator, phone_numbers=[a, b, c], change_detection=False)  # every phone asked
    second = cli.call("read", config, cli.catalog(), first.last_state)
    records = by_message(second.records)
    assert {k: v for k, v in records.items() if v["phone"] == c} == expected_records(emulator, c)
    assert sorted(r["unixDatetime"] for r in records.values() if r["phone"] != c) == sorted([newest(emulator, a), newest(emulator, b)])
    assert cursors(second.last_state) == {p: newest(emulator, p) for p in (a, b, c)}


def test_lookback_re_reads_recent_days_so_status_changes_arrive(emulator):
    a = "+393331000000"
    # every sync (change detection re-reads a phone only for messages sent within the window of
    # now: integration_tests/test_changes.py)
    config = cli.config(emulator, phone_numbers=[a], lookback_window_days=2, page_size=20, change_detection=False)
    first = cli.call("read", config, cli.catalog())
    cursor = newest(emulator, a)

    # a message sent a day before the cursor gets delivered after the first sync
    messages = emulator.conversation(a)
    changed = next(m for m in messages if m["unixDatetime"] < cursor - DAY and m["direction"] == "outbound")
    changed["deliveryStatus"] = "DELIVERED" if changed["deliveryStatus"] != "DELIVERED" else "FAILED"
    emulator.set_conversation(a, messages)
    emulator.clear_requests()

    second = cli.call("read", config, cli.catalog(), first.last_state)
    assert by_message(second.records) == expected_records(emulator, a, since=cursor - 2 * DAY)
    assert by_message(second.records)[(a, changed["unixDatetime"])]["deliveryStatus"] == changed["deliveryStatus"]
    # 2 days at about one message an hour: 49 or so messages, 3 pages of 20, not the 125 pages of the history
    assert len(emulator.conversation_requests()) == math.ceil(len(second.records) / 20)


def test_a_sync_that_fails_midway_resumes_without_losing_messages(emulator):
    a, b, c = phones(emulator)
    config = cli.config(emulator, page_size=500, num_workers=1)
    # page 3 of every phone fails for good: phone a (5 pages) and b (4 pages) stop midway
    emulator.set_faults(rate=1.0, kinds=("503",), pages=(3,))
    failed = cli.call("read", config, cli.catalog())
    assert failed.errors
    assert failed.returncode != 0

    emulator.set_faults()
    resumed = cli.call("read", config, cli.catalog(), failed.last_state)
    assert resumed.returncode == 0
    union = by_message(failed.records) | by_message(resumed.records, once=False)
    expected = {}
    for p in (a, b, c):
        expected.update(expected_records(emulator, p))
    assert union == expected


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "504", "error_105", "reset", "timeout", "truncated", "non_json", "html"])
def test_transient_faults_are_retried_and_nothing_is_lost(emulator, kind):
    # a `timeout` answer comes after 1.5 s, past the 1 s read timeout
    emulator.set_faults(rate=0.5, kinds=(kind,), count=3, seed=11, timeout_seconds=1.5)
    config = cli.config(emulator, page_size=400)
    out = cli.call("read", config, cli.catalog(), timings={**cli.TIMINGS, cli.short_waits.TIMEOUT: "1"})
    assert out.returncode == 0, out.errors
    expected = {}
    for p in phones(emulator):
        expected.update(expected_records(emulator, p))
    assert by_message(out.records) == expected
    assert sum(emulator.faults.injected.values()) == 3
    pages = sum(math.ceil(len(emulator.conversation(p)) / 400) for p in phones(emulator))
    assert len(emulator.conversation_requests()) == pages + 3  # one retry per fault


def test_retry_after_is_honoured(emulator):
    emulator.set_faults(rate=1.0, kinds=("429",), count=1, retry_after=2)
    out = cli.call("read", cli.config(emulator, phone_numbers=["+393331000002"]), cli.catalog())
    assert len(out.records) == 40
    limited, retried = emulator.conversation_requests()
    assert limited["status"] == 429 and retried["status"] == 200
    # the one wait before the retry, recorded instead of slept: the 2 s asked, plus the CDK's 1 s
    assert out.waits == [2 + 1]



def test_the_command_in_its_own_process_gets_the_tests_short_waits(emulator):
    # the test-only waits (integration_tests/short_waits), not a setting of the connector: without
    # them a process test of a fault would wait the manifest's 10 s, 20 s, ...
    emulator.set_faults(rate=1.0, kinds=("503",), count=1)
    out = cli.run("read", cli.config(emulator, phone_numbers=["+393331000002"]), cli.catalog())
    assert out.returncode == 0 and len(out.records) == 40
    retried = [m["log"]["message"] for m in out.of_type("LOG") if "Retrying in" in m["log"]["message"]]
    # the first backoff, 0.05 * 2 s, plus the CDK's second (the manifest's factor 5 would make 11 s)
    assert retried == ["UserDefinedBackoffException: Rate limit exceeded (HTTP 503). Retrying in 1.1 seconds."]

# -- bad configuration -----------------------------------------------------------------------


# (a number typed with spaces, "+39 333 1234567", is a phone number: test_first_hour.py)
@pytest.mark.parametrize("bad", ["12ab34", "+12345", "1234567890123456"])
def test_a_malformed_phone_number_is_refused_by_name(emulator, bad):
    config = cli.config(emulator, phone_numbers=["+393331000000", bad])
    for command, catalog in (("check", None), ("read", cli.catalog())):
        out = cli.call(command, config, catalog)
        text = out.connection_status.get("message", "") if command == "check" else " ".join(e["message"] for e in out.errors)
        assert bad in text
    assert emulator.requests == []


def test_the_secret_stays_out_of_debug_output(emulator):
    config = cli.config(emulator, phone_numbers=["+393331000002"])
    out = cli.run("read", config, cli.catalog(), None, "--debug")
    assert len(out.records) == 40
    assert "'X-Client-Secret': '****'" in out.stdout + out.stderr  # the header is logged, masked
    assert CLIENT_SECRET not in out.stdout + out.stderr


def test_a_killed_sync_resumes_from_its_last_state_without_losing_messages(emulator, tmp_path):
    a, b, c = phones(emulator)
    config = cli.config(emulator, page_size=200, num_workers=1)
    emulator.latency = 0.05  # slow enough to be killed half-way
    proc = cli.start("read", {"config": config, "catalog": cli.catalog()}, tmp_path)
    deadline = time.time() + 60
    while len(emulator.conversation_requests()) < 12 and time.time() < deadline:
        time.sleep(0.02)
    cli.kill(proc)
    killed = cli.parse((tmp_path / "out.jsonl").read_text())
    killed_records = [m["record"]["data"] for m in killed if m["type"] == "RECORD"]
    killed_states = [m["state"] for m in killed if m["type"] == "STATE"]
    assert 0 < len(killed_records) < 2500 + 1900 + 40

    emulator.latency = 0
    resumed = cli.call("read", config, cli.catalog(), killed_states[-1:] or None)
    assert resumed.returncode == 0
    union = by_message(killed_records, once=False) | by_message(resumed.records)
    expected = {}
    for p in (a, b, c):
        expected.update(expected_records(emulator, p))
    assert union == expected


def test_keys_the_spec_does_not_know_change_nothing(emulator):
    # the test knobs of 0.1.0 (backoff, read timeout, phone limit) included: the config never sets them
    unknown = {"backoff_factor": 0.01, "read_timeout_seconds": 0.001, "max_phones_with_own_state": 1, "foo": {"bar": 1}}
    outcomes = []
    for extra in ({}, unknown):
        emulator.clear_requests()
        emulator.set_faults(rate=1.0, kinds=("503",), count=1)  # one retry: its wait shows the backoff
        out = cli.call("read", cli.config(emulator, page_size=1000, **extra), cli.catalog(), None, timings={})
        # which request the one fault hits depends on which phone's request comes first: the pages
        # answered, and the statuses, are the same whichever it is
        answered = Counter((r["path"], r["page"]) for r in emulator.requests if r["status"] == 200)
        requests = (answered, Counter(r["status"] for r in emulator.requests))
        state = dict(out.last_state[0]["stream"]["stream_state"])
        # what differs from run to run: the seconds the sync took, and the time change detection read at
        del state["lookback_window"], state["parent_state"]["changes"]["at"]
        # and when each phone was read (the book's): its cursors are compared
        state["parent_state"]["changes"]["book"] = phone_cursors(state)
        outcomes.append((out.returncode, sorted(r["id"] for r in out.records), state, requests, out.waits))
    emulator.set_faults()
    assert outcomes[0][0] == 0 and len(outcomes[0][1]) == 2500 + 1900 + 40
    assert outcomes[0][4] == [11]  # the manifest's backoff, 5 × 2 s for the first retry, plus the CDK's own second
    assert outcomes[1][:3] == outcomes[0][:3] and outcomes[1][4] == outcomes[0][4]
    # the conversations' 3 + 2 + 1 pages; page 1 of the inbox (of 2) and of the message log (of 3),
    # which is all change detection needs of them on a first sync of listed phones (their position);
    # and the one 503 before its retry
    assert outcomes[1][3] == outcomes[0][3] and outcomes[0][3][1] == {200: 6 + 1 + 1, 503: 1}
    inbox_and_log = {k: v for k, v in outcomes[0][3][0].items() if k[0] in ("/v1/message/inbox", "/v1/message/logging")}
    assert inbox_and_log == {("/v1/message/inbox", 1): 1, ("/v1/message/logging", 1): 1}
    assert set(outcomes[0][3][0].values()) == {1}  # each page answered once
