"""Phone discovery in an account of two virtual numbers whose inbox lists one alone (issue 21):
the phones that text only the other number, in no contact list and no message log, are found
through that number's inbox (/v1/message/inbox/{ID}), with their whole history, and their new
messages are detected; where that inbox cannot be read, one warning a sync names the number."""

from __future__ import annotations

from collections import Counter
from unittest.mock import patch

import pytest

from integration_tests import cli
from smstools_emulator import Emulator, make_conversation
from smstools_emulator.data import SECOND_NUMBER, VIRTUAL_NUMBERS
from smstools_emulator.listing import Listing

MAIN, OTHER = VIRTUAL_NUMBERS[0]["ID"], SECOND_NUMBER["ID"]  # 31, 32
A = "+393331000000"  # texts the main number, a contact
Z = "+393339000000"  # texts only the other number: inbound only, no contact
START = 1_749_200_000  # the connector's clock at the first sync


def delivered(messages: list[dict]) -> list[dict]:
    # every status final: a pending one would have its phone read again, which is not what is tested here
    return [{**m, "deliveryStatus": "DELIVERED"} if m["direction"] == "outbound" else m for m in messages]


def inbound(phone: str, count: int, newest: int) -> list[dict]:
    return [m for m in make_conversation(phone, 3 * count, newest=newest, seed=3) if m["direction"] == "inbound"][:count]


@pytest.fixture
def account():
    conversations = {A: delivered(make_conversation(A, 40, newest=START - 3_600, seed=3)), Z: inbound(Z, 48, START - 7_200)}
    with Emulator(conversations) as emulator:
        emulator.virtual_numbers = [dict(VIRTUAL_NUMBERS[0]), dict(SECOND_NUMBER)]
        emulator.set_contacts([c for c in emulator.contacts() if c["phone"].lstrip("+").replace(" ", "") != Z.lstrip("+")])
        emulator.set_listing(Listing(numbers={Z.lstrip("+"): OTHER}, inbox_number=MAIN))
        yield emulator


def sync(emulator: Emulator, at: int, state=None, **config) -> cli.Output:
    emulator.clear_requests()
    with patch("source_smstools.components.changes.now", return_value=at):
        out = cli.in_process(cli.config(emulator, phone_numbers=None, **config), cli.catalog("incremental", "conversation"), state)
    assert out.returncode == 0 and not out.errors, out.errors or out.stderr[-2000:]
    return out


def requests(emulator: Emulator) -> Counter:
    return Counter(r["path"] for r in emulator.requests if not r["path"].startswith("/v1/conversation/"))


def warnings(out: cli.Output) -> list[str]:
    return [m["log"]["message"] for m in out.of_type("LOG") if m["log"]["level"] == "WARN"]


def numbers_state(out: cli.Output) -> dict:
    return out.last_state[0]["stream"]["stream_state"]["parent_state"]["changes"]["numbers"]


def test_the_emulator_account_has_an_inbox_of_one_number(account):
    # what the connector is up against: the account's inbox leaves Z out
    assert {e["sender"].replace(" ", "").lstrip("+0") for e in account.inbox()} == {A.lstrip("+")}
    assert len(account.inbox(OTHER)) == 48 and len(account.message_log()) == 28


def test_a_phone_that_texts_only_the_other_number_is_found_with_its_history_and_followed(account):
    first = sync(account, START)
    assert {p: len(ts) for p, ts in cli.records_by_phone(first).items()} == {"393331000000": 40, "393339000000": 48}
    assert requests(account) == {
        "/v1/contact": 1, "/v1/message/inbox": 1, "/v1/message/logging": 1, "/v1/vmn": 1, f"/v1/message/inbox/{OTHER}": 1,
    }
    assert numbers_state(first) == {"at": START, "apart": [[str(OTHER), "32470998877"]], "blind": []}
    assert warnings(first) == []

    # nothing new: the other number's inbox is read down to its position (one page), the numbers not asked again
    second = sync(account, START + 3_600, first.last_state)
    assert cli.records_by_phone(second) == {}
    assert requests(account) == {"/v1/contact": 1, "/v1/message/inbox": 1, "/v1/message/logging": 1, f"/v1/message/inbox/{OTHER}": 1}

    # a new message to the other number moves Z, and Z alone
    at_cursor = max(m["unixDatetime"] for m in account.conversation(Z))
    account.add_messages(Z, inbound(Z, 1, START + 5_000))
    added = account.conversation(Z)[0]["unixDatetime"]
    third = sync(account, START + 7_200, second.last_state)
    assert cli.records_by_phone(third) == {"393339000000": {added, at_cursor}}  # the cursor is inclusive
    assert [r["phone"] for r in account.conversation_requests()] == ["393339000000"]


def test_without_the_numbers_inboxes_z_is_never_found_and_the_check_says_which_number(account):
    account.forbid(f"/v1/message/inbox/{OTHER}", "error")
    out = sync(account, START)
    assert set(cli.records_by_phone(out)) == {"393331000000"}
    assert warnings(out) == [
        f"Phone discovery cannot read the inbox of the account's virtual number(s) ID {OTHER} (+32470998877), and the "
        "account's inbox does not list their messages: phones that text only those numbers, and are in no contact list "
        "and no message log, are not found. List them in Phone Numbers (phone_numbers)."
    ]
    assert numbers_state(out)["blind"] == [[str(OTHER), "32470998877"]]
    # the next sync does not ask again before the check is due, and says it again, once
    again = sync(account, START + 3_600, out.last_state)
    assert f"/v1/message/inbox/{OTHER}" not in requests(account) and len(warnings(again)) == 1


def test_an_inbox_that_lists_every_number_costs_one_request_for_the_numbers(account):
    account.set_listing(Listing(numbers={Z.lstrip("+"): OTHER}))  # the account's inbox lists both numbers
    out = sync(account, START)
    assert {p: len(ts) for p, ts in cli.records_by_phone(out).items()} == {"393331000000": 40, "393339000000": 48}
    assert requests(account) == {"/v1/contact": 1, "/v1/message/inbox": 1, "/v1/message/logging": 1, "/v1/vmn": 1}
    assert numbers_state(out) == {"at": START, "apart": [], "blind": []}


def test_without_change_detection_every_numbers_inbox_is_read_whole(account):
    out = sync(account, START, change_detection=False)
    assert {p: len(ts) for p, ts in cli.records_by_phone(out).items()} == {"393331000000": 40, "393339000000": 48}
    assert requests(account) == {
        "/v1/contact": 1, "/v1/message/inbox": 1, "/v1/message/logging": 1, "/v1/vmn": 1,
        f"/v1/message/inbox/{MAIN}": 1, f"/v1/message/inbox/{OTHER}": 1,
    }
