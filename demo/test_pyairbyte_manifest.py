"""PyAirbyte's manifest executor (`get_source(..., source_manifest=...)`) reads the conversation
stream of `make manifest-only`'s directory, with its components.py beside the manifest, as
PyAirbyte runs a catalogue connector that has custom components. Runs in the demo venv
(`make test-pyairbyte`); the API is the emulator on 127.0.0.1, PyAirbyte offline.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("AIRBYTE_LOGGING_ROOT", tempfile.mkdtemp(prefix="pyairbyte-logs-"))
warnings.filterwarnings("ignore", category=FutureWarning)

ab = pytest.importorskip("airbyte", reason="PyAirbyte is in the demo venv only: run `make test-pyairbyte`")
from airbyte.caches import DuckDBCache  # noqa: E402

from release import manifest_only  # noqa: E402
from smstools_emulator import CLIENT_ID, CLIENT_SECRET, Emulator, make_conversation  # noqa: E402

PHONES = {"+393331000000": 45, "+32470123456": 12}


def test_the_manifest_executor_reads_the_conversation_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest_only.build(tmp_path)
    monkeypatch.setenv("AIRBYTE_ENABLE_UNSAFE_CODE", "true")  # components.py is custom code
    conversations = {p: make_conversation(p, n, seed=11) for p, n in PHONES.items()}
    with Emulator(conversations) as emulator:
        config = {
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "phone_numbers": list(PHONES),
            "page_size": 20, "base_url": emulator.url,
        }
        source = ab.get_source("source-smstools", config=config, source_manifest=tmp_path / "manifest-only" / "manifest.yaml")
        source.select_streams(["conversation"])
        cache = DuckDBCache(db_path=tmp_path / "smstools.duckdb", schema_name="manifest", cache_dir=tmp_path / "cache")
        source.read(cache=cache)
        served = [(r["path"], r["query"].get("page", "1")) for r in emulator.requests]
        # a second sync, nothing new: what PyAirbyte's manifest executor hands the source
        emulator.clear_requests()
        source.read(cache=cache)
        again = [(r["path"], r["query"].get("page", "1")) for r in emulator.requests]
    rows = [tuple(r.values()) for r in cache.run_sql_query(
        "select phone, count(*), count(distinct id) from manifest.conversation group by phone order by phone")]
    assert rows == [("+32470123456", 12, 12), ("+393331000000", 45, 45)]
    # pages of 20: 3 for 45 messages, 1 for 12; and change detection's positions, page 1 of the
    # inbox and of the message log
    assert sorted(served) == [
        ("/v1/conversation/32470123456", "1"),
        ("/v1/conversation/393331000000", "1"), ("/v1/conversation/393331000000", "2"), ("/v1/conversation/393331000000", "3"),
        ("/v1/message/inbox", "1"), ("/v1/message/logging", "1"),
    ]
    # pinned: PyAirbyte 0.71.3's manifest executor does not pass the state it saved to the source,
    # so the second sync reads every page again (docs/smstools.md, PyAirbyte: the recipe that keeps
    # the state); the cache keeps one row per message
    assert sorted(again) == sorted(served)
    rows = [tuple(r.values()) for r in cache.run_sql_query(
        "select phone, count(distinct id) from manifest.conversation group by phone order by phone")]
    assert rows == [("+32470123456", 12), ("+393331000000", 45)]


def test_the_generic_runtime_as_local_executable_keeps_the_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipe until PyAirbyte's manifest executor passes the state (docs/smstools.md, PyAirbyte):
    the CDK's generic runtime, `source-declarative-manifest`, as PyAirbyte's local executable, with
    the manifest and components.py in the config as the runtime takes them; PyAirbyte passes it the
    saved state, so the second sync reads no conversation again."""
    manifest_only.build(tmp_path)
    form = tmp_path / "manifest-only"
    monkeypatch.setenv("AIRBYTE_ENABLE_UNSAFE_CODE", "true")  # components.py is custom code
    code = (form / "components.py").read_text()
    conversations = {p: make_conversation(p, n, seed=11) for p, n in PHONES.items()}
    with Emulator(conversations) as emulator:
        config = {
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "phone_numbers": list(PHONES),
            "page_size": 20, "base_url": emulator.url,
            "__injected_declarative_manifest": yaml.safe_load((form / "manifest.yaml").read_text()),
            "__injected_components_py": code,
            "__injected_components_py_checksums": {"md5": hashlib.md5(code.encode()).hexdigest()},
        }
        runtime = Path(sys.executable).parent / "source-declarative-manifest"
        source = ab.get_source("source-smstools", config=config, local_executable=str(runtime))
        source.select_streams(["conversation"])
        cache = DuckDBCache(db_path=tmp_path / "smstools.duckdb", schema_name="generic", cache_dir=tmp_path / "cache")
        source.read(cache=cache)
        served = sorted((r["path"], r["query"].get("page", "1")) for r in emulator.requests)
        emulator.clear_requests()
        source.read(cache=cache)
        again = sorted((r["path"], r["query"].get("page", "1")) for r in emulator.requests)
    assert served == [
        ("/v1/conversation/32470123456", "1"),
        ("/v1/conversation/393331000000", "1"), ("/v1/conversation/393331000000", "2"), ("/v1/conversation/393331000000", "3"),
        ("/v1/message/inbox", "1"), ("/v1/message/logging", "1"),
    ]
    # the state came back: the inbox and the message log show nothing moved, no conversation is read
    assert again == [("/v1/message/inbox", "1"), ("/v1/message/logging", "1")]
    rows = [tuple(r.values()) for r in cache.run_sql_query(
        "select phone, count(*), count(distinct id) from generic.conversation group by phone order by phone")]
    assert rows == [("+32470123456", 12, 12), ("+393331000000", 45, 45)]
