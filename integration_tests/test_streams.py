"""The account's streams other than `conversation`, end to end: the installed CLI against the
emulator, comparing exact records, requests and state."""

from __future__ import annotations

import calendar
import math
import random
import time
from collections import Counter

import pytest
from freezegun import freeze_time

from integration_tests import cli
from smstools_emulator import Emulator, api_date, make_contact, make_message

OTHERS = [name for name in cli.STREAMS if name != "conversation"]
PATHS = {
    "contacts": "/v1/contact", "groups": "/v1/groups", "inbox": "/v1/message/inbox", "outbox": "/v1/outbox",
    "message_log": "/v1/message/logging", "optouts": "/v1/optouts/list", "message_templates": "/v1/messagetemplates",
    "sender_ids": "/v1/senderids", "virtual_numbers": "/v1/vmn", "balance": "/v1/balance", "statistics": "/v1/statistics",
}


def read(emulator: Emulator, streams, sync_mode="full_refresh", state=None, **overrides) -> cli.Output:
    """A read in this process (cli.call): these tests are about the streams, not the command."""
    out = cli.call("read", cli.config(emulator, **overrides), cli.catalog(sync_mode, streams), state)
    assert out.returncode == 0 and not out.errors, out.errors or out.stderr[-2000:]
    return out


def of(out: cli.Output, stream: str) -> list[dict]:
    return [m["record"]["data"] for m in out.of_type("RECORD") if m["record"]["stream"] == stream]


def served(items: list[dict]) -> list[dict]:
    """As the connector emits them: the CDK's serializer leaves out top-level null values."""
    return [{k: v for k, v in item.items() if v is not None} for item in items]


def by(key: str, records: list[dict]) -> dict:
    result = {r[key]: r for r in records}
    assert len(result) == len(records), "a record came twice"
    return result


def requests(emulator: Emulator) -> Counter:
    return Counter(r["path"] for r in emulator.requests)


def stream_state(out: cli.Output, stream: str) -> dict:
    return [s for s in out.states if s["stream"]["stream_descriptor"]["name"] == stream][-1]["stream"]["stream_state"]


# The statistics stream reads every month up to the current one: the tests that read it run on a
# fixed day, in the middle of its month, and name the months they expect.
TODAY = "2026-11-15T12:00:00Z"
SINCE_2025_01 = [(2025, m) for m in range(1, 13)] + [(2026, m) for m in range(1, 12)]  # to November 2026


def statistics(emulator: Emulator, months: list[tuple[int, int]]) -> dict[tuple[int, int], dict]:
    return {
        (y, m): {**emulator.statistics(y, m), "year": y, "month": m, "month_start": f"{y}-{m:02d}-01"}
        for y, m in months
    }


@freeze_time(TODAY, tick=True)
def test_every_stream_gives_exactly_what_the_api_serves(emulator):
    out = read(emulator, OTHERS, start_date="2025-01-01T00:00:00Z")
    assert by("ID", of(out, "contacts")) == by("ID", served(emulator.contacts()))
    assert by("ID", of(out, "groups")) == by("ID", emulator.groups)
    assert by("ID", of(out, "inbox")) == by("ID", served(emulator.inbox()))
    assert by("ID", of(out, "outbox")) == by("ID", served(emulator.outbox()))
    assert by("ID", of(out, "message_log")) == by("ID", served(emulator.message_log()))
    assert by("number", of(out, "optouts")) == by("number", served(emulator.optouts()))
    assert by("ID", of(out, "message_templates")) == by("ID", emulator.templates)
    assert by("ID", of(out, "sender_ids")) == by("ID", emulator.sender_ids)
    assert by("ID", of(out, "virtual_numbers")) == by("ID", emulator.virtual_numbers)
    assert of(out, "balance") == [emulator.balance]
    got = {(r["year"], r["month"]): r for r in of(out, "statistics")}
    assert got == statistics(emulator, SINCE_2025_01)
    # the data are consistent: the inbox and the log are the conversations' two directions
    assert len(emulator.inbox()) + len(emulator.message_log()) == sum(len(emulator.conversation(p)) for p in emulator.phones())
    # one request per endpoint (everything fits a page of 2,000), one per month for statistics
    expected = {PATHS[s]: 1 for s in OTHERS if s != "statistics"}
    expected["/v1/message/logging"] = math.ceil(len(emulator.message_log()) / 2000)
    expected["/v1/statistics"] = 23
    assert requests(emulator) == expected
    asked = sorted((int(r["query"]["year"]), int(r["query"]["month"])) for r in emulator.requests_to("/v1/statistics"))
    assert asked == SINCE_2025_01


@freeze_time(TODAY, tick=True)
def test_without_start_date_statistics_go_back_24_months(emulator):
    out = read(emulator, "statistics")
    # 730 days before 15 November 2026 is 15 November 2024: from that month on
    expected = [(2024, 11), (2024, 12)] + [(2025, m) for m in range(1, 13)] + [(2026, m) for m in range(1, 12)]
    assert sorted((r["year"], r["month"]) for r in of(out, "statistics")) == expected


def test_start_date_filters_the_dated_streams(emulator):
    out = read(emulator, ["inbox", "message_log", "optouts"], start_date="2025-05-01T00:00:00Z")
    for stream, items in (("inbox", emulator.inbox()), ("message_log", emulator.message_log()), ("optouts", emulator.optouts())):
        expected = [i for i in served(items) if i["date"] >= "2025-05-01 00:00:00"]
        assert 0 < len(expected) < len(items)
        assert sorted(r["date"] for r in of(out, stream)) == sorted(i["date"] for i in expected), stream


def test_pages_follow_total_and_stop_without_an_empty_page(emulator):
    emulator.set_contacts([make_contact(f"+39347{i:07d}", i + 1) for i in range(1234)])
    out = read(emulator, ["contacts", "inbox", "message_log", "groups"], page_size=500)
    assert len(of(out, "contacts")) == 1234 and len(of(out, "inbox")) == len(emulator.inbox())
    assert len(of(out, "message_log")) == len(emulator.message_log())

    def pages(path: str) -> list[tuple[int, int]]:
        return sorted((r["page"], r["limit"]) for r in emulator.requests_to(path))

    assert pages("/v1/contact") == [(1, 500), (2, 500), (3, 500)]
    assert pages("/v1/message/inbox") == [(p, 500) for p in range(1, math.ceil(len(emulator.inbox()) / 500) + 1)]
    assert pages("/v1/message/logging") == [(p, 500) for p in range(1, math.ceil(len(emulator.message_log()) / 500) + 1)]
    assert pages("/v1/groups") == [(1, 500)]  # a bare list: a short page is the last
    # the first request of each carries no page, as the conversation's
    assert all("page" not in emulator.requests_to(path)[0]["query"] for path in ("/v1/contact", "/v1/groups"))


def test_groups_page_until_a_short_page(emulator):
    emulator.groups = [{"ID": i, "name": f"Gruppo {i}", "locked": 0, "whatsapp": 0} for i in range(1, 6)]
    out = read(emulator, "groups", page_size=2)
    assert [r["ID"] for r in of(out, "groups")] == [1, 2, 3, 4, 5]
    assert sorted(r["page"] for r in emulator.requests_to("/v1/groups")) == [1, 2, 3]


def test_inbox_log_and_optouts_go_on_from_their_date(emulator):
    streams = ["inbox", "message_log", "optouts"]
    first = read(emulator, streams, "incremental")
    for stream, items in (("inbox", emulator.inbox()), ("message_log", emulator.message_log()), ("optouts", emulator.optouts())):
        assert len(of(first, stream)) == len(items)
        assert stream_state(first, stream) == {"date": max(i["date"] for i in items)}
    state = {s["stream"]["stream_descriptor"]["name"]: s for s in first.states}  # the last of each stream
    cursors = {name: stream_state(first, name)["date"] for name in streams}

    # new messages arrive in a conversation, one of them a STOP
    phone = "+" + emulator.phones()[2]
    newest = max(m["unixDatetime"] for m in emulator.conversation(phone))
    rng = random.Random(4)
    new = [make_message(phone, newest + 600 * (i + 1), rng, 90_000 + i) for i in range(6)]
    new.append({**make_message(phone, newest + 9_000, rng, 99_999), "direction": "inbound", "messageId": None, "message": "STOP", "sender": phone[1:], "receiver": "Smstools"})
    emulator.add_messages(phone, new)
    emulator.clear_requests()

    second = read(emulator, streams, "incremental", list(state.values()))
    for stream, items in (("inbox", emulator.inbox()), ("message_log", emulator.message_log()), ("optouts", emulator.optouts())):
        # every entry at or after the cursor: the new ones and the one at the cursor
        expected = sorted(i["date"] for i in items if i["date"] >= cursors[stream])
        assert sorted(r["date"] for r in of(second, stream)) == expected, stream
    assert len(of(second, "inbox")) >= 2 and len(of(second, "message_log")) >= 2
    # the order of these lists is not documented: every page is read again and filtered here
    assert requests(emulator)["/v1/message/logging"] == math.ceil(len(emulator.message_log()) / 2000)


def test_lookback_brings_back_delivery_status_changes(emulator):
    first = read(emulator, "message_log", "incremental")
    cursor = stream_state(first, "message_log")["date"]
    # a message sent two days before the cursor is now FAILED
    phone = emulator.phones()[0]
    messages = emulator.conversation(phone)
    cursor_ts = calendar.timegm(time.strptime(cursor, "%Y-%m-%d %H:%M:%S"))
    changed = next(m for m in messages if m["direction"] == "outbound" and cursor_ts - 3 * 86_400 < m["unixDatetime"] < cursor_ts - 86_400)
    messages = [dict(m, deliveryStatus="FAILED") if m is changed else m for m in messages]
    emulator.set_conversation("+" + phone, messages)
    state = [first.states[-1]]

    without = read(emulator, "message_log", "incremental", state)
    assert changed["messageId"] not in {r["message_ID"] for r in of(without, "message_log")}
    within = read(emulator, "message_log", "incremental", state, lookback_window_days=3)
    got = {r["message_ID"]: r for r in of(within, "message_log")}
    assert got[changed["messageId"]]["status"] == "FAILED"
    three_days_back = api_date(cursor_ts - 3 * 86_400)
    assert sorted(r["date"] for r in of(within, "message_log")) == sorted(
        i["date"] for i in emulator.message_log() if i["date"] >= three_days_back
    )


@freeze_time(TODAY, tick=True)
def test_statistics_read_the_last_month_again_and_no_older_one(emulator):
    first = read(emulator, "statistics", "incremental", start_date="2025-03-10T00:00:00Z")
    assert stream_state(first, "statistics") == {"month_start": "2026-11-01"}
    emulator.clear_requests()
    second = read(emulator, "statistics", "incremental", [first.states[-1]], start_date="2025-03-10T00:00:00Z")
    assert [(r["year"], r["month"]) for r in of(second, "statistics")] == [(2026, 11)]
    assert [(r["query"]["year"], r["query"]["month"]) for r in emulator.requests] == [("2026", "11")]


@pytest.mark.parametrize("how", ["403", "error"])
def test_a_stream_the_account_cannot_use_is_skipped_with_a_warning(emulator, how):
    for path in ("/v1/outbox", "/v1/groups", "/v1/balance"):
        emulator.forbid(path, how)
    out = read(emulator, ["contacts", "outbox", "groups", "balance", "sender_ids"])
    assert of(out, "outbox") == of(out, "groups") == of(out, "balance") == []
    assert by("ID", of(out, "contacts")) == by("ID", served(emulator.contacts()))
    assert by("ID", of(out, "sender_ids")) == by("ID", emulator.sender_ids)
    warnings = [m["log"]["message"] for m in out.of_type("LOG") if m["log"]["level"] == "WARN"]
    for stream, path in (("outbox", "/v1/outbox"), ("groups", "/v1/groups"), ("balance", "/v1/balance")):
        assert [w for w in warnings if f"read {path} " in w and f"the {stream} stream is skipped" in w], warnings
        assert len(emulator.requests_to(path)) == 1  # asked once, not retried
    statuses = {s["stream"]["stream_descriptor"]["name"] for s in out.states}
    assert {"outbox", "groups", "balance"} <= statuses  # the skipped streams still end cleanly


def test_refused_credentials_fail_every_stream_rather_than_skip_it(emulator):
    out = cli.call("read", cli.config(emulator, client_id="someone-else"), cli.catalog("full_refresh", ["contacts", "groups"]))
    assert out.returncode != 0
    assert out.records == []
    # the refusal is said once (then the CDK's summary of the failed streams), and each of the two
    # streams ends incomplete: none passes for an empty one
    refusals = [e for e in out.errors if e["message"].startswith("Smstools refused the credentials")]
    assert [e["failure_type"] for e in refusals] == ["config_error"], out.errors
    statuses = {m["trace"]["stream_status"]["stream_descriptor"]["name"]: m["trace"]["stream_status"]["status"]
                for m in out.of_type("TRACE") if m["trace"]["type"] == "STREAM_STATUS"}
    assert statuses == {"contacts": "INCOMPLETE", "groups": "INCOMPLETE"}


def test_an_answer_of_an_unexpected_shape_fails_its_stream_at_once_and_the_others_go_on(emulator):
    emulator.contacts = lambda: "not a list"  # served as {"total": 10, ..., "contacts": "not a list"}
    out = cli.run("read", cli.config(emulator), cli.catalog("full_refresh", ["contacts", "groups", "sender_ids"]))
    assert out.returncode != 0
    assert len(emulator.requests_to("/v1/contact")) == 1  # the same answer would come again: not retried
    assert of(out, "contacts") == []
    assert by("ID", of(out, "groups")) == by("ID", emulator.groups)
    assert by("ID", of(out, "sender_ids")) == by("ID", emulator.sender_ids)
    assert out.errors[0]["message"] == (
        "Smstools answered /v1/contact with JSON of an unexpected shape: expected an object with total (number), "
        "page (number) and contacts (array); came an object with keys total (number), shown (number), "
        "page (number), limit (number), contacts (string)."
    )
    assert [e["failure_type"] for e in out.errors] == ["system_error", "config_error"], out.errors
