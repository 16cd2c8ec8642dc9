"""Phones whose reads fail for good, of the class (issue 21, and the failed sync that kept every
phone's state): any number of phones, of any size around the page size, any of them failing on
any page with any of the persistent faults. The invariant: the sync fails exactly when a phone
could not be read, naming one that failed and its page; every phone that did not fail is either
saved to its newest message or, when the sync kept the state it started from, read again by the
next; and a next sync, once the fault is mended, brings every message that was not synced yet,
whatever was drawn to be read last. In-process, the clock fixed, no real waits (time.sleep
patched); a fixed seed in `make test`, more examples in `make soak`."""

from __future__ import annotations

import os
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration_tests import cli
from smstools_emulator import Emulator, make_conversation, sample_phones
from source_smstools.components import changes
from source_smstools.components import discovery
from source_smstools.components.discovery import ALONE
from source_smstools.components.records import message_id
from source_smstools.components.state import phone_cursors

PAGE = 100
NOW = 1_750_000_000

settings.register_profile("failures-ci", max_examples=20, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("failures-soak", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
PROFILE = settings.get_profile("failures-soak" if os.environ.get("HYPOTHESIS_PROFILE") == "soak" else "failures-ci")


def sync(config: dict, state, at: int) -> cli.Output:
    with patch.object(changes, "now", lambda: at), patch("time.sleep"):
        return cli.in_process(config, cli.catalog("incremental", "conversation"), state)


def cursors(out: cli.Output) -> dict:
    return phone_cursors(out.last_state[0]["stream"]["stream_state"]) if out.last_state else {}


@settings(PROFILE)
@given(
    sizes=st.lists(st.sampled_from([1, 99, 100, 101, 199, 200, 201, 250]), min_size=1, max_size=5),
    failing=st.sets(st.integers(0, 4), max_size=3),
    page=st.sampled_from([1, 2]),
    kind=st.sampled_from(["503", "error_105", "non_json", "html"]),
    minute=st.integers(0, 59),  # which phone goes last is drawn by the sync's time
    alone=st.sampled_from([1, 2, ALONE]),  # phones one a partition before several go in one
)
def test_phones_that_fail_for_good_lose_nothing_and_hold_no_other_back(sizes, failing, page, kind, minute, alone):
    phones = sample_phones(len(sizes))
    convs = {p: make_conversation(p, n, seed=5) for p, n in zip(phones, sizes)}
    broken = {phones[i] for i in failing if i < len(phones)}
    # a phone fails where it has that page
    fails = {p for p in broken if -(-len(convs[p]) // PAGE) >= page}
    newest = {p: max(m["unixDatetime"] for m in ms) for p, ms in convs.items()}
    every = {message_id(p, m) for p, ms in convs.items() for m in ms}
    with Emulator(convs) as emulator:
        config = cli.config(emulator, page_size=PAGE)
        if broken:
            emulator.set_faults(rate=1.0, kinds=(kind,), pages=(page,), phones=tuple(broken))
        with patch.object(discovery, "ALONE", alone):
            first = sync(config, None, NOW + 60 * minute)
        assert first.returncode == (1 if fails else 0), first.errors
        if fails:
            said = first.errors[0]["message"]
            assert any(f"Phone {p.lstrip('+')}, page {page}" in said for p in fails), said
            saved = cursors(first)
            # saved: every phone that did not fail at its newest, none that failed; or nothing (the
            # last phone handed out failed as it happened: the state the sync started from)
            assert saved in ({}, {p: newest[p] for p in phones if p not in fails}), (saved, fails)
        else:
            assert sorted(r["id"] for r in first.records) == sorted(every)
            assert cursors(first) == newest
            return
        emulator.set_faults()
        with patch.object(discovery, "ALONE", alone):
            second = sync(config, first.last_state, NOW + 3_600 + 60 * minute)
        assert second.returncode == 0, second.errors
        assert {r["id"] for r in first.records} | {r["id"] for r in second.records} == every
        assert cursors(second) == newest
        # a phone saved by the first sync is not read again (nothing new, nothing pending: statuses
        # the sample leaves PENDING are followed, so only phones without one are checked)
        if cursors(first):
            quiet = [p for p in phones if p not in fails and all(m["deliveryStatus"] != "PENDING" for m in convs[p])]
            read_again = {r["phone"] for r in second.records}
            assert not set(quiet) & read_again - fails, (quiet, read_again)
