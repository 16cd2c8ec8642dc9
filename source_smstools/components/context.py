"""What the components of one source share, in one object per source (`Sync`): its session with
the API (components/session.py), the answers parsed once (components/pages.py), and the
conversation stream's part of the sync (components/conversation.py: the saved state as the state
migration checked it, the reads in progress, what the records show change detection).

The CDK builds every component of a source with the same config mapping, its own copy of the
user's (made per source), and that is the one object they all get. The manifest's config
transformation `Shared` (spec.config_normalization_rules, run once per source in every runtime
before any stream is built) puts a new `Sync` in it under SYNC_KEY; each component takes it from its
config when it is built (`sync_of`). Two sources in one process (PyAirbyte, the Connector Builder's
server, the tests) each have their own; nothing is kept at module level.
"""

import threading
import weakref
from typing import Any, MutableMapping, Optional

from airbyte_cdk.sources.declarative.transformations.config_transformations.config_transformation import (
    ConfigTransformation,
)

from source_smstools.components.session import Session

SYNC_KEY = "__smstools_sync"  # the config key of the source's Sync (a name no spec field will take)


class Sync(dict):
    """One source's shared objects, as attributes. It is an empty dict as data: the CDK writes the
    config it was given to a file of its own before a command runs (Connector.configure), where it
    shows as `{}`; a copy of the config, even a deep one, holds this same object (a copy of the
    config, as the CDK's `check` overlay makes, is still the same source)."""

    def __init__(self) -> None:
        super().__init__()
        self.session = Session()
        # response -> its body parsed once (pages.body_of); an entry lives as long as its response
        self.bodies: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()
        self.bodies_lock = threading.Lock()
        # the conversation stream's part (conversation.Conversation), made by its state migration
        # each time the stream is built, before its other components: they take the one built with them
        self.conversation: Optional[Any] = None

    def __copy__(self) -> "Sync":
        return self

    def __deepcopy__(self, memo: Any) -> "Sync":
        return self

    def __repr__(self) -> str:  # a config printed in a debug log shows no bodies
        return "Sync()"

    __hash__ = object.__hash__  # one source's, not a value


def sync_of(config: Any) -> Sync:
    """The Sync of the source built with `config`. A component built outside a source (a unit test)
    gets one made in its config dict, which the components built with that dict then share."""
    found = config.get(SYNC_KEY) if hasattr(config, "get") else None
    if isinstance(found, Sync):
        return found
    made = Sync()
    if isinstance(config, MutableMapping):
        config[SYNC_KEY] = made
    return made


class Shared(ConfigTransformation):
    """Puts a new Sync in the config of each source (replacing one a copied config may carry)."""

    def transform(self, config: MutableMapping[str, Any]) -> None:
        config[SYNC_KEY] = Sync()
