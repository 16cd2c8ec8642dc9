"""One account split across connections (`shard`): each phone belongs to one shard, by a stable hash
of its one form, and each connection keeps its own state. Together the connections sync every
message once; a count changed to a multiple of the old one, each new connection starting from the
state of shard (index % old count), reads nothing again."""

from __future__ import annotations

from collections import Counter

import pytest

from integration_tests import cli
from integration_tests.test_changes import (
    DIGITS, NOW, account, conversation_requests, cursors, discovering, new_messages, sync,  # noqa: F401 (fixture)
)
from source_smstools.components.book import shard_of


def sharded(emulator, index: int, count: int) -> dict:
    return discovering(emulator, shard={"index": index, "count": count})


def ids(out: cli.Output) -> Counter:
    return Counter(r["id"] for r in out.records)


def test_two_shards_sync_every_message_exactly_once_between_them_and_each_keeps_its_own_phones(account):
    every = Counter(r["id"] for r in sync(account, discovering(account)).records)
    assert len(every) == 120 and set(every.values()) == {1}
    firsts = [sync(account, sharded(account, i, 2)) for i in (0, 1)]
    assert ids(firsts[0]) + ids(firsts[1]) == every
    # the split this hash gives the 20 sample phones, pinned: 9 and 11
    mine = [sorted(cursors(out)) for out in firsts]
    assert [len(m) for m in mine] == [9, 11] and sorted(mine[0] + mine[1]) == sorted(DIGITS)
    assert all(shard_of(p, 2) == i for i, m in enumerate(mine) for p in m)

    changed = [DIGITS[0], DIGITS[5], DIGITS[9]]
    added = [m for d in changed for m in new_messages(account, "+" + d, "inbound")]
    seconds = []
    for i in (0, 1):
        seconds.append(sync(account, sharded(account, i, 2), firsts[i].last_state, at=NOW + 60))
        # each connection reads its own changed phones, once, and nothing of the other's
        assert set(conversation_requests(account)) == {d for d in changed if shard_of(d, 2) == i}
    new = {m["unixDatetime"] for m in added}
    got = [r for out in seconds for r in out.records if r["unixDatetime"] in new]
    assert sorted(r["phone"] for r in got) == sorted(changed)


def test_a_count_doubled_with_each_new_shard_given_its_old_shards_state_reads_nothing_again(account):
    olds = [sync(account, sharded(account, i, 2)) for i in (0, 1)]
    # 2 -> 4: a phone's shard of 4, modulo 2, is its shard of 2
    news = [sync(account, sharded(account, j, 4), olds[j % 2].last_state, at=NOW + 60) for j in range(4)]
    assert [out.records for out in news] == [[], [], [], []]
    phone = DIGITS[3]
    new_messages(account, "+" + phone, "inbound")
    after = [sync(account, sharded(account, j, 4), news[j].last_state, at=NOW + 120) for j in range(4)]
    # its shard alone reads it: the new message and the one at its cursor (the cursor is inclusive)
    assert [len(out.records) for out in after] == [2 if shard_of(phone, 4) == j else 0 for j in range(4)]


def test_a_count_changed_otherwise_reads_the_phones_that_moved_whole_once_and_loses_nothing(account):
    olds = [sync(account, sharded(account, i, 2)) for i in (0, 1)]
    news = [sync(account, sharded(account, j, 3), olds[j % 2].last_state, at=NOW + 60) for j in range(3)]
    moved = [d for d in DIGITS if shard_of(d, 3) % 2 != shard_of(d, 2)]
    assert len(moved) == 13  # pinned: the phones whose new shard's state did not hold them
    # each moved phone read whole (its 6 messages again), the others not at all
    assert sorted(r["phone"] for out in news for r in out.records) == sorted(d for d in moved for _ in range(6))
    again = [sync(account, sharded(account, j, 3), news[j].last_state, at=NOW + 120) for j in range(3)]
    assert [out.records for out in again] == [[], [], []]


@pytest.mark.parametrize("shard, said", [
    ({"index": 2, "count": 2}, "shard: expected an index from 0 to count - 1 and a count of 1 or more, got index 2 and count 2."),
    ({"index": -1, "count": 2}, "Config validation error: shard.index: -1 is less than the minimum of 0"),
    ({"index": 0, "count": 0}, "Config validation error: shard.count: 0 is less than the minimum of 1"),
])
def test_a_shard_out_of_range_is_refused_by_name_before_any_request(account, shard, said):
    out = cli.in_process(discovering(account, shard=shard), cli.catalog("incremental"), None)
    assert out.returncode != 0 and account.requests == []
    assert out.errors[0]["failure_type"] == "config_error"
    assert out.errors[0]["message"] == said
