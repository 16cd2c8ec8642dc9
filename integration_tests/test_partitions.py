"""Several phones a partition (issue 22): past its first `alone` phones the router hands phones out
several a partition, so that the CDK, which keeps a cursor a partition and copies all their keys
for each new one once it keeps 25,000, has fewer than 25,000 partitions up to 500,000 phones.
`alone` and the CDK's limits are scaled down here; what must hold is what holds one a partition:
each phone read whole and once, from its own cursor, its requests as many as its pages, a phone
found late with its whole history, a failing phone holding no other back."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack, contextmanager
from unittest.mock import patch

from airbyte_cdk.sources.declarative.incremental.concurrent_partition_cursor import (
    ConcurrentPerPartitionCursor,
)

from integration_tests import cli
from integration_tests.test_discovery import conversation_requests as requests
from integration_tests.test_discovery import every_message as every
from integration_tests.test_discovery import newest
from smstools_emulator import Emulator, make_contact, make_conversation, sample_phones
from source_smstools.components import changes, discovery
from source_smstools.components.state import phone_cursors

NOW = 1_750_000_000
# around the page size (2,000), and one empty stretch of a single message
SIZES = (2300, 1, 2000, 2001, 40, 4001, 7)


@contextmanager
def several(alone: int, switch: int | None = None, kept: int | None = None):
    """Partitions of several phones past `alone` phones (and the CDK's limits, where given); yields
    the list of the partitions handed out, each the list of its phones."""
    handed: list[list[str]] = []
    real = discovery.grouped

    def spy(phones, alone):
        for group in real(phones, alone):
            handed.append(list(group))
            yield group

    with ExitStack() as stack:
        stack.enter_context(patch.object(discovery, "ALONE", alone))
        stack.enter_context(patch.object(discovery, "grouped", spy))
        if switch is not None:
            stack.enter_context(patch.object(ConcurrentPerPartitionCursor, "SWITCH_TO_GLOBAL_LIMIT", switch))
        if kept is not None:
            stack.enter_context(patch.object(ConcurrentPerPartitionCursor, "DEFAULT_MAX_PARTITIONS_NUMBER", kept))
        yield handed


def sync(config: dict, state=None, at: int = NOW, mode: str = "incremental") -> cli.Output:
    with patch.object(changes, "now", lambda: at), patch("time.sleep"):
        return cli.in_process(config, cli.catalog(mode, "conversation"), state)


def bare(phone: str) -> str:
    """A phone as discovery and the request log name it: digits with the country code."""
    return phone.lstrip("+")


def test_listed_phones_several_a_partition_are_each_read_whole_once_in_both_modes():
    phones = sample_phones(len(SIZES))
    with Emulator({p: make_conversation(p, n, seed=3) for p, n in zip(phones, SIZES)}) as emulator:
        config = cli.config(emulator, change_detection=False)
        for mode in ("full_refresh", "incremental"):
            emulator.clear_requests()
            with several(alone=1) as handed:
                out = sync(config, mode=mode)
            assert out.returncode == 0 and not out.errors, out.errors
            # 1 alone, then 2, then 4 (one more for each further phone handed out), the last alone
            assert [len(g) for g in handed] == [1, 2, 3, 1], handed
            assert sorted(p for g in handed for p in g) == sorted(phones)
            assert cli.records_by_phone(out) == {p: every(emulator, p) for p in phones}
            assert len(out.records) == sum(SIZES)
            assert dict(requests(emulator)) == {bare(p): -(-n // 2000) for p, n in zip(phones, SIZES)}
        assert phone_cursors(out.last_state[0]["stream"]["stream_state"]) == {p: newest(emulator, p) for p in phones}


def test_past_the_cdks_limits_change_detection_reads_what_moved_and_a_phone_found_late_gets_its_history():
    phones = sample_phones(5)
    convs = {p: make_conversation(p, n, seed=4) for p, n in zip(phones, (2300, 120, 30, 25, 2001))}
    start = 1_740_000_000
    with Emulator(convs) as emulator:
        emulator.set_contacts([make_contact(p, i + 1) for i, p in enumerate(phones)])
        found = [bare(p) for p in phones]
        config = cli.config(emulator, phone_numbers=None, start_date="2025-02-19T21:20:00Z")
        with several(alone=1, switch=2, kept=3) as handed:
            first = sync(config, at=NOW)
            assert first.returncode == 0 and not first.errors, first.errors
            assert [len(g) for g in handed] == [1, 2, 1, 1]
            assert cli.records_by_phone(first) == {bare(p): every(emulator, p, start) for p in phones}
            before = phone_cursors(first.last_state[0]["stream"]["stream_state"])
            assert before == {bare(p): newest(emulator, p) for p in phones}

            # a phone found late, with a long history older than every cursor; two new messages for
            # one known phone, which the inbox lists
            late = "447700900123"
            emulator.set_conversation("+" + late, make_conversation("+" + late, 2600, seed=9, newest=min(before.values()) - 3_600))
            emulator.add_contact("+" + late)
            moved = found[1]
            news = [dict(m, unixDatetime=newest(emulator, moved) + 60 * (i + 1), messageId=f"new-{i}")
                    for i, m in enumerate(emulator.conversation(moved)[:2])]
            emulator.add_messages(moved, news)
            emulator.clear_requests()
            handed.clear()
            second = sync(config, first.last_state, at=NOW + 3_600)
            assert second.returncode == 0 and not second.errors, second.errors
            assert cli.records_by_phone(second) == {
                late: every(emulator, late, start),
                moved: {before[moved], *(m["unixDatetime"] for m in news)},
            }
            assert dict(requests(emulator)) == {late: 2, moved: 1}
            assert phone_cursors(second.last_state[0]["stream"]["stream_state"]) == {
                **before, late: newest(emulator, late), moved: newest(emulator, moved)}

            emulator.clear_requests()
            third = sync(config, second.last_state, at=NOW + 7_200)
            assert third.returncode == 0 and third.records == []
            assert requests(emulator) == Counter()


def test_a_phone_failing_in_a_partition_of_several_holds_none_of_the_others_back():
    phones = sample_phones(6)
    sizes = (150, 30, 250, 40, 60, 20)
    convs = {p: make_conversation(p, n, seed=6) for p, n in zip(phones, sizes)}
    with Emulator(convs) as emulator:
        config = cli.config(emulator, page_size=100, change_detection=False)
        with several(alone=1) as handed:
            # the first phone of the partition of 2: the phone after it in that partition is read too
            probe = sync(config, at=NOW)
            assert probe.returncode == 0
            groups = [g for g in handed if len(g) > 1]
            assert groups, handed
            broken = groups[0][0]
            emulator.set_faults(rate=1.0, kinds=("error_105",), pages=(2,), phones=(broken.lstrip("+"),))
            handed.clear()
            emulator.clear_requests()
            first = sync(config, at=NOW)
        assert first.returncode == 1
        assert f"Phone {broken.lstrip('+')}, page 2" in first.errors[0]["message"], first.errors
        assert "The 5 other phone(s) were read" in first.errors[0]["message"], first.errors
        others = set(phones) - {broken}
        assert {p for p, got in cli.records_by_phone(first).items() if got == every(emulator, p)} >= others
        assert phone_cursors(first.last_state[0]["stream"]["stream_state"]) == {p: newest(emulator, p) for p in others}
        emulator.set_faults()
        emulator.clear_requests()
        with several(alone=1):
            second = sync(config, first.last_state, at=NOW + 3_600)
        assert second.returncode == 0, second.errors
        assert cli.records_by_phone(second)[broken] == every(emulator, broken)
