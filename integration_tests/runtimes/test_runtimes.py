"""The connector in Airbyte's other runtimes, each with nothing but airbyte-cdk installed (a venv of
its own, `make cdk-venv`): the generic runtime reads as our command does, the Connector Builder's
test read runs the injected components, and the Builder edition runs with custom code not permitted.

The forms are those `make manifest-only` writes (release/manifest_only.py, built here into a
temporary directory); the API is the emulator in this process, served on 127.0.0.1. Processes: one
per sync in the other venv (the whole file: 35 to 65 s on two busy cores), our command in this
process (cli.call).
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import yaml

from integration_tests import cli
from source_smstools.components import discovery
from source_smstools.components.state import phone_cursors
from release import manifest_only
from smstools_emulator import Emulator, make_conversation, make_message, sample_phones

ROOT = Path(__file__).resolve().parents[2]
CDK_VENV = ROOT / ".cache" / f"cdk-{manifest_only.CDK_VERSION}"
START = "2025-01-01T00:00:00Z"
NEWEST = 1_749_113_086  # the emulator's newest message: 2025-06-05 08:44:46 UTC


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("forms")
    manifest_only.build(out)
    return out


@pytest.fixture(scope="module")
def cdk_only() -> Path:
    """The venv with airbyte-cdk alone (made once per CDK version, kept in .cache)."""
    subprocess.run(["make", "-s", "-C", str(ROOT), "cdk-venv"], check=True, capture_output=True)
    installed = subprocess.run([str(CDK_VENV / "bin" / "pip"), "freeze"], capture_output=True, text=True, check=True).stdout
    assert f"airbyte-cdk=={manifest_only.CDK_VERSION}" in installed.split("\n")
    assert "source-smstools" not in installed and "source_smstools" not in installed
    return CDK_VENV / "bin"


def generic(bin: Path, form: Path, config: dict, state: Any = None, components: bool = True, debug: bool = False) -> cli.Output:
    """`read` in Airbyte's generic runtime, as the catalogue's manifest-only images run it."""
    args = ["--manifest-path", str(form / "manifest.yaml")] + (["--debug"] if debug else [])
    if components:
        args += ["--components-path", str(form / "components.py")]
    env = {"AIRBYTE_ENABLE_UNSAFE_CODE": "true" if components else "false"}
    return cli.run("read", config, cli.catalog(), state, *args, program=[str(bin / "source-declarative-manifest")], env=env)


def requests(emulator: Emulator) -> Counter:
    """The requests served, as (path, query) with their counts; the order depends on the workers."""
    with emulator._lock:
        served = [(r["path"], tuple(sorted(r["query"].items()))) for r in emulator.requests]
    emulator.clear_requests()
    return Counter(served)


def comparable(out: cli.Output) -> tuple:
    """The records (in an order of their own) and the last state, without what differs from one run to
    the next: the seconds the previous sync took and the time of the sync (change detection's sweep,
    and its floor, at most a sweep's period before it)."""
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    state = json.loads(json.dumps(out.states[-1]["stream"]["stream_state"]))
    state.pop("lookback_window", None)
    for timed in ("at", "floor"):
        state.get("parent_state", {}).get("changes", {}).pop(timed, None)
    changes = state.get("parent_state", {}).get("changes", {})
    changes.get("numbers", {}).pop("at", None)  # when the account's numbers were checked: the sync's time
    changes.get("contacts", {}).pop("at", None)  # when the contacts were read whole: the sync's time
    if "book" in changes:  # each phone's cursor; not when it was last read (the time of the sync)
        changes["book"] = phone_cursors(state)
    return sorted(out.records, key=lambda r: (r["phone"], r["id"])), state


@pytest.fixture
def account() -> Emulator:
    phones = sample_phones(3)
    conversations = {p: make_conversation(p, n, seed=3) for p, n in zip(phones, (45, 30, 12))}
    with Emulator(conversations) as emulator:
        yield emulator


def test_the_generic_runtime_reads_as_our_command(cdk_only: Path, forms: Path, account: Emulator) -> None:
    config = cli.config(account, phone_numbers=None, page_size=20, start_date=START)

    def both(state: Any) -> tuple:
        ours = cli.call("read", config, cli.catalog(), state)
        asked_by_ours = requests(account)
        theirs = generic(cdk_only, forms / "manifest-only", config, state)
        assert requests(account) == asked_by_ours
        assert comparable(theirs) == comparable(ours)
        return ours, dict(Counter(path for path, _ in asked_by_ours.elements()))

    # a discovery sync: the phones found in contacts, inbox and message log, every message
    first, asked = both(None)
    assert {p: len(ts) for p, ts in cli.records_by_phone(first).items()} == {"393331000000": 45, "393331000001": 30, "393331000002": 12}
    assert asked == {
        "/v1/contact": 1, "/v1/message/inbox": 2, "/v1/message/logging": 3, "/v1/vmn": 1,
        "/v1/conversation/393331000000": 3, "/v1/conversation/393331000001": 2, "/v1/conversation/393331000002": 1,
    }
    # new messages for one phone
    phone = sample_phones(3)[1]
    account.add_messages(phone, [make_message(phone, NEWEST + 60 * i, random.Random(i), 100 + i) for i in (1, 2)])
    second, asked = both(first.last_state)
    # the two new ones and the one at the cursor (the CDK's filter is inclusive)
    assert {p: len(ts) for p, ts in cli.records_by_phone(second).items()} == {"393331000001": 3}
    assert asked == {"/v1/contact": 1, "/v1/message/inbox": 1, "/v1/message/logging": 1, "/v1/conversation/393331000001": 1}
    # nothing new: the inbox's and the log's first pages, no conversation
    third, asked = both(second.last_state)
    assert cli.records_by_phone(third) == {}
    assert asked == {"/v1/contact": 1, "/v1/message/inbox": 1, "/v1/message/logging": 1}


def test_the_connector_builder_test_read_runs_the_injected_components(cdk_only: Path, forms: Path, account: Emulator) -> None:
    # As the Builder sends them: the manifest as a dict, components.py as text with its checksum.
    # components.py has no `from __future__ import annotations` (the build leaves it out): CDK 7.39.1
    # runs injected code before registering its module, where dataclasses cannot resolve string
    # annotations ('NoneType' object has no attribute '__dict__').
    form = forms / "manifest-only"
    code = (form / "components.py").read_text()
    config = {
        **cli.config(account, phone_numbers=[sample_phones(3)[2]], page_size=5, start_date=START),
        "__command": "test_read",
        "__injected_declarative_manifest": yaml.safe_load((form / "manifest.yaml").read_text()),
        "__injected_components_py": code,
        "__injected_components_py_checksums": {"md5": hashlib.md5(code.encode()).hexdigest()},
        "__test_read_config": {"max_records": 100, "max_pages_per_slice": 5, "max_slices": 5},
    }
    out = cli.run(
        "read", config, cli.catalog(),
        program=[str(cdk_only / "python"), "-m", "airbyte_cdk.connector_builder.main"], env={"AIRBYTE_ENABLE_UNSAFE_CODE": "true"},
    )
    # the Builder's answer: one RECORD message holding what was read (and its own logs before it)
    assert out.of_type("TRACE") == [], out.stdout[-3000:]
    (message,) = out.of_type("RECORD")
    read = message["record"]["data"]
    pages = [page for piece in read["slices"] for page in piece["pages"]]
    records = [r for page in pages for r in page["records"]]
    # one phone's 12 messages, in three pages of 5; each page's last second waits for the next page
    # to show that it ends there (a boundary may cut it)
    assert [len(page["records"]) for page in pages] == [4, 5, 3]
    assert {r["phone"] for r in records} == {"+393331000002"}
    assert len({r["id"] for r in records}) == 12
    assert [log for log in read["logs"] if log["level"] == "ERROR"] == []


def test_the_builder_edition_reads_listed_phones_without_custom_code(cdk_only: Path, forms: Path, account: Emulator) -> None:
    manifest = (forms / "builder" / "manifest.yaml").read_text()
    assert "Custom" not in manifest and "class_name" not in manifest
    phones = sample_phones(3)[:2]
    config = cli.config(account, phone_numbers=phones, page_size=20, start_date=START)

    # with custom code not permitted (no AIRBYTE_ENABLE_UNSAFE_CODE, no components.py), as in Cloud
    first = generic(cdk_only, forms / "builder", config, components=False)
    assert first.returncode == 0, first.stdout[-3000:]
    # every page of each listed phone (no early stop), nothing else
    assert dict(Counter(path for path, _ in requests(account).elements())) == {
        "/v1/conversation/393331000000": 3, "/v1/conversation/393331000001": 2,
    }
    # the same messages as our command reads, with the same fields
    ours = cli.call("read", {**config, "change_detection": False}, cli.catalog())
    requests(account)
    assert sorted(first.records, key=lambda r: r["id"]) == sorted(ours.records, key=lambda r: r["id"])
    read = cli.records_by_phone(first)
    assert {p: len(ts) for p, ts in read.items()} == {"+393331000000": 45, "+393331000001": 30}

    account.add_messages(phones[0], [make_message(phones[0], NEWEST + 60, random.Random(1), 200)])
    second = generic(cdk_only, forms / "builder", config, first.last_state, components=False)
    assert second.returncode == 0, second.stdout[-3000:]
    # the new message, and each phone's newest message of the first sync again, at its cursor (the
    # CDK's filter is inclusive; the destination deduplicates it on `id`)
    assert cli.records_by_phone(second) == {
        "+393331000000": {NEWEST + 60, max(read["+393331000000"])}, "+393331000001": {max(read["+393331000001"])},
    }
    # every page again: the conversation is newest first, but the API does not promise it
    assert dict(Counter(path for path, _ in requests(account).elements())) == {
        "/v1/conversation/393331000000": 3, "/v1/conversation/393331000001": 2,
    }


def test_the_generic_runtime_reads_phones_several_a_partition_as_our_command(
    cdk_only: Path, forms: Path, account: Emulator, tmp_path: Path
) -> None:
    # past `alone` phones the router puts several in a partition: lowered to 1 here, in the manifest
    # the generic runtime reads, and in this process for ours
    form = tmp_path / "several"
    form.mkdir()
    (form / "components.py").write_text((forms / "manifest-only" / "components.py").read_text())
    manifest = yaml.safe_load((forms / "manifest-only" / "manifest.yaml").read_text())
    manifest["definitions"]["conversation_stream"]["retriever"]["partition_router"]["alone"] = 1
    (form / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    for p, n in zip(sample_phones(5)[3:], (25, 41)):
        account.set_conversation(p, make_conversation(p, n, seed=4))
    config = cli.config(account, phone_numbers=None, page_size=20, start_date=START)
    with patch.object(discovery, "ALONE", 1):
        ours = cli.call("read", config, cli.catalog(), None)
    asked_by_ours = requests(account)
    theirs = generic(cdk_only, form, config)
    assert requests(account) == asked_by_ours
    assert comparable(theirs) == comparable(ours)
    assert {p: len(ts) for p, ts in cli.records_by_phone(theirs).items()} == {
        "393331000000": 45, "393331000001": 30, "393331000002": 12, "393331000003": 25, "393331000004": 41}
    pages = Counter()
    for (path, _), n in asked_by_ours.items():
        if path.startswith("/v1/conversation/"):
            pages[path.rsplit("/", 1)[1]] += n
    assert pages == {"393331000000": 3, "393331000001": 2, "393331000002": 1, "393331000003": 2, "393331000004": 3}
    # the generic runtime's partitions (its debug log names each slice): 5 phones in 4, 1, 2, 1 and the last alone
    debug = generic(cdk_only, form, config, debug=True)
    slices = [m["log"]["message"] for m in debug.of_type("LOG") if m["log"]["message"].startswith("slice:")]
    assert len(set(slices)) == 4, slices  # (each is logged twice: as it is made and as it is read)
    assert comparable(debug)[0] == comparable(ours)[0]
