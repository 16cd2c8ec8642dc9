"""The one seam by which the saved state reaches change detection (components/state.py,
PerPhoneState): the CDK builds the conversation stream's state migration, with the stream's model,
before its partition router, and the router is built from that same model. These tests fail if a
CDK upgrade changes that order or stops passing `declarative_stream`: change detection would then
silently read every phone."""

from unittest.mock import patch

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.state_builder import StateBuilder
from airbyte_cdk.utils.yaml_loader import safe_load_yaml

from source_smstools import SourceSmstools
from source_smstools.components import discovery
from source_smstools.components import state as state_module
from source_smstools.source import MANIFEST

CONFIG = {"client_id": "id-1", "client_secret": "secret-1", "phone_numbers": ["+393331234567"],
          "base_url": "https://api.example.test", "start_date": "2025-01-01T00:00:00Z"}
SAVED = {
    "use_global_cursor": False,
    "states": [
        {"partition": {"phone": "+393331234567"}, "cursor": {"unixDatetime": "1749113086"}},
        # before start_date (1735689600): PerPhoneState moves it up to it
        {"partition": {"phone": "+393339999999"}, "cursor": {"unixDatetime": "1000"}},
    ],
    "parent_state": {"changes": {"at": 1749116686, "inbox": {"newest": 1749113000, "ids": ["7"]}}},
}
# what the router sees of it: each phone's cursor in the book (the second raised to start_date), and
# change detection's positions
MIGRATED = (
    {"+393331234567": 1749113086, "+393339999999": 1735689600},
    {"at": 1749116686, "inbox": {"newest": 1749113000, "ids": ["7"]}},
    None,
)


def routers_built(build) -> list:
    """The saved state each PhonePartitionRouter built while `build()` builds the streams sees."""
    seen = []
    original = discovery.PhonePartitionRouter.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        saved = self._part.saved
        seen.append(None if saved is None else ({p: c for p, (c, _) in saved.book.entries.items()}, saved.changes, saved.default))

    with patch.object(discovery.PhonePartitionRouter, "__init__", record):
        source = build()
        source.streams(CONFIG)
    return seen


def catalog():
    return CatalogBuilder().with_stream("conversation", SyncMode.incremental).build()


@pytest.mark.parametrize("runtime", ["our package", "the generic runtime"])
def test_the_router_is_built_with_the_saved_state_as_the_migration_checked_it(runtime):
    saved = StateBuilder().with_stream_state("conversation", SAVED).build()
    if runtime == "our package":
        build = lambda: SourceSmstools(catalog=catalog(), config=CONFIG, state=saved)  # noqa: E731
    else:  # what source-declarative-manifest builds: the manifest, no SourceSmstools
        manifest = safe_load_yaml(MANIFEST.read_text())
        build = lambda: ConcurrentDeclarativeSource(  # noqa: E731
            source_config=manifest, config=CONFIG, catalog=catalog(), state=saved)
    assert routers_built(build) == [MIGRATED]


def test_without_a_saved_state_the_router_gets_an_empty_book():
    assert routers_built(lambda: SourceSmstools(catalog=catalog(), config=CONFIG, state=None)) == [({}, {}, None)]


@pytest.mark.parametrize("state", [SAVED, None])
def test_the_migration_runs_before_the_router_is_built_with_a_state_and_without(state):
    events = []
    migrate, build_router = state_module.PerPhoneState.migrate, discovery.PhonePartitionRouter.__init__

    def migrating(self, stream_state):
        events.append("migrate")
        return migrate(self, stream_state)

    def building(self, *args, **kwargs):
        events.append("router")
        build_router(self, *args, **kwargs)

    saved = StateBuilder().with_stream_state("conversation", state).build() if state else None
    with patch.object(state_module.PerPhoneState, "migrate", migrating), \
            patch.object(discovery.PhonePartitionRouter, "__init__", building):
        SourceSmstools(catalog=catalog(), config=CONFIG, state=saved).streams(CONFIG)
    assert events == ["migrate", "router"]
