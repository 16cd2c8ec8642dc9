"""The conversation stream's part of a sync: what its components share for one build of the
stream, handed to them through the source's Sync (components/context.py).

The state migration (state.PerPhoneState) is the first component the CDK builds for the stream
(ModelToComponentFactory.create_default_stream builds the state migrations, runs them, then the
partition router, the transformations and the retriever): it makes a new `Conversation` and puts
it on the Sync, and each component built after it takes that one (`conversation_of`). A second build of the
stream (the Connector Builder builds the streams twice) makes a second one; its components never
see the first's. unit_tests/test_state_seam.py fails if a CDK upgrade changes that order.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from source_smstools.components import coverage
from source_smstools.components.context import sync_of


class Conversation:
    def __init__(self) -> None:
        # the stream's saved state as the migration checked it (None: no saved state)
        self.saved: Optional[Mapping[str, Any]] = None
        # what the records show change detection (fed by records.MessageFields, read by the router)
        self.observations = coverage.Observations()


def begin(config: Any) -> Conversation:
    """A new part for the build of the stream that starts now (called by the state migration)."""
    part = sync_of(config).conversation = Conversation()
    return part


def conversation_of(config: Any) -> Conversation:
    """The part of the build of the stream under way (a component built without a migration before
    it, in a unit test, gets a part of its own)."""
    sync = sync_of(config)
    if sync.conversation is None:
        sync.conversation = Conversation()
    return sync.conversation
