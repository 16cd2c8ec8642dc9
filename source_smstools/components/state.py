"""The conversation stream's saved state: checked before it is trusted, migrated from every earlier
form, and handed to the stream's partition router.

The state holds one cursor for the stream (the CDK's) and, under `parent_state.changes`, change
detection's positions and the book (components/book.py): each phone whose whole history was read,
where its next read starts and when it was last read. The CDK is given `use_global_cursor: true`
from the first sync on, so that it keeps no cursor per phone (past 10,000 phones it would give
those up, and with them each phone's history and change detection); which phones are read, and
from where, is the router's (components/discovery.py), which tells each phone's read where to
start (conversation.Conversation.reach).
"""

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.migrations.state_migration import StateMigration
from airbyte_cdk.sources.types import Config
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components.book import DAY, Book, BookError, spread, start_of
from source_smstools.components.conversation import begin

logger = logging.getLogger("airbyte")

CHANGES = "changes"  # the router's part of `parent_state`


@dataclass
class Saved:
    """The saved state as the router needs it."""

    book: Book = field(default_factory=Book)
    changes: dict = field(default_factory=dict)  # change detection's state, without the book
    # where a phone not in the book starts, this once: a state of one cursor for all phones (0.3.0
    # past 10,000 phones, or older) says nothing of which phones it covered
    default: Optional[int] = None


class PerPhoneState(StateMigration):
    """Checks the saved state and brings every form of it to this one: `{"use_global_cursor": true,
    "parent_state": {"changes": {..., "book": "v1:..."}}}`. Earlier forms: a cursor per phone
    (`states`, 0.2.0 and 0.3.0, with 0.3.0's change detection under `parent_state.changes`), one
    cursor for all phones (0.3.0 past 10,000 phones: `use_global_cursor` with its `floor`; or a bare
    `{"unixDatetime": ...}`). Nothing they say is lost: each phone goes on from its cursor.

    Why the router gets its state from here: the CDK gives a custom partition router no state, and
    no other component sees the stream's state before the router is built. The factory
    (`ModelToComponentFactory.create_default_stream`) first creates the stream's state migrations and
    runs them (an empty state too: `should_migrate` says yes), then builds the partition router, the
    transformations and the retriever: this migration starts the stream's part of the sync
    (components/conversation.py) and puts what it read there, and the components built after it take
    that part. This holds in every runtime that builds the manifest (our command, the generic
    source-declarative-manifest, the Builder, PyAirbyte); unit_tests/test_state_seam.py fails if a
    CDK upgrade changes that order.
    """

    # The CDK passes a custom component only the arguments its class annotates: without this line
    # the migration never sees the config.
    config: Optional[Config]

    def __init__(self, config: Optional[Config] = None, **kwargs: Any) -> None:
        config = config if config is not None else {}
        # the first component of the stream built: the stream's part of the sync starts here
        self._part = begin(config)
        self._part.saved = Saved()
        self._period = int(config.get("full_sweep_days") or 7) * DAY
        self._start = start_of(config)

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        return True  # a first sync too: the CDK is to keep one cursor from the start

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        saved = self._read(stream_state or {})
        self._part.saved = saved
        changes = dict(saved.changes)
        if saved.default is not None:
            changes["default"] = saved.default
        if saved.book or stream_state:
            changes["book"] = saved.book.encode()
        state: dict[str, Any] = {"use_global_cursor": True}
        if stream_state:
            state["parent_state"] = {CHANGES: changes}  # what a sync that fails leaves as it was
        return state

    def _read(self, stream_state: Mapping[str, Any]) -> Saved:
        if not isinstance(stream_state, Mapping):
            raise _bad_state(f"expected an object, got {type(stream_state).__name__}")
        parent = stream_state.get("parent_state")
        changes = parent.get(CHANGES) if isinstance(parent, Mapping) else None
        changes = dict(changes) if isinstance(changes, Mapping) else {}
        book = self._book(changes.pop("book", None))
        default = changes.pop("default", None)
        changes.pop("floor", None)  # 0.3.0's: its place is `default` now
        saved = Saved(book, changes, default if type(default) is int else None)
        if "states" in stream_state:
            self._merge_states(saved, stream_state["states"])
        if stream_state.get("use_global_cursor") and isinstance(stream_state.get("state"), Mapping) and "book" not in (
            parent.get(CHANGES) if isinstance(parent, Mapping) and isinstance(parent.get(CHANGES), Mapping) else {}
        ):
            # 0.3.0 past the CDK's partition limit: one cursor for all phones, started no later than
            # `floor`, the oldest point a phone not read still needed
            cursor = self._cursor(stream_state["state"].get("unixDatetime"), "the global cursor")
            floor = (parent.get(CHANGES) or {}).get("floor") if isinstance(parent, Mapping) else None
            if cursor is not None:
                saved.default = min(cursor, floor) if type(floor) is int else cursor
        elif "unixDatetime" in stream_state and "states" not in stream_state:
            saved.default = self._cursor(stream_state["unixDatetime"], "the global cursor")
        elif not stream_state.get("use_global_cursor") and "states" not in stream_state and stream_state and not parent:
            raise _bad_state(
                f"keys {sorted(stream_state)} are neither this connector's state "
                '({"use_global_cursor": true, "parent_state": {"changes": {...}}}), a per-phone one '
                '({"states": [{"partition": {"phone": ...}, "cursor": {"unixDatetime": ...}}]}) '
                'nor a global one ({"unixDatetime": ...})'
            )
        if saved.default is not None:
            saved.default = max(saved.default, self._start)
            logger.warning(
                "The conversation state holds one cursor for all phones (an earlier release's, past 10,000 "
                "phones): this sync reads every phone from it, and keeps each phone's own from then on. A phone "
                "that an earlier sync found after it was made did not get its older messages then: reset the "
                "conversation stream to read every phone's history again."
            )
        return saved

    def _book(self, text: Any) -> Book:
        if text is None:
            return Book()
        try:
            return Book.decode(text)
        except BookError as error:
            raise _bad_state(f"parent_state.changes.book is not a book of phones: {error}")

    def _merge_states(self, saved: Saved, states: Any) -> None:
        """0.2.0's and 0.3.0's cursor per phone, into the book. Their last read is not known: each
        phone's is put at its own point of the sweep's period before the last sync, so that the sweep
        reads them over the period to come, not all at once."""
        if not isinstance(states, list):
            raise _bad_state('"states" must be a list')
        at = saved.changes.get("at") if type(saved.changes.get("at")) is int else int(time.time())
        for entry in states:
            try:
                phone = entry["partition"]["phone"]
                value = entry["cursor"]["unixDatetime"]
            except (KeyError, TypeError):
                raise _bad_state(f"entry {str(entry)[:200]} has no partition.phone and cursor.unixDatetime")
            cursor = self._cursor(value, f"phone {phone}")
            if cursor is None or not isinstance(phone, str):
                continue  # read again from the start date
            known = saved.book.cursor(phone)
            last = saved.book.last_read(phone)
            saved.book.entries[phone] = (max(cursor, known or cursor), last if last is not None else at - spread(phone, self._period))

    def _cursor(self, value: Any, where: str) -> Optional[int]:
        """A saved cursor as unix seconds (never before `start_date`), or None for one to drop."""
        try:
            seconds = int(value)
        except (TypeError, ValueError):
            raise _bad_state(f"the cursor of {where} is {value!r}, not a unix time in seconds")
        if seconds > time.time() + DAY:
            # a cursor in the future would skip every message dated before it: trust nothing of it and
            # read that history again from the start date (the primary key deduplicates)
            logger.warning(f"The saved cursor of {where} ({seconds}) is in the future; reading it again from the start date.")
            return None
        return max(seconds, self._start)


def _bad_state(reason: str) -> AirbyteTracedException:
    return AirbyteTracedException(
        message=f"The saved state of the conversation stream is not usable: {reason}. "
        "Reset the stream's state (or pass none) to sync from the start date.",
        failure_type=FailureType.config_error,
    )


def phone_cursors(stream_state: Mapping[str, Any]) -> dict:
    """phone -> its cursor (unix seconds; None for a phone read whole with no message yet), of a state
    this connector wrote: for tools and tests that look into a state."""
    parent = stream_state.get("parent_state") if isinstance(stream_state, Mapping) else None
    text = (parent or {}).get(CHANGES, {}).get("book") if isinstance(parent, Mapping) else None
    return {} if text is None else {p: c for p, (c, _) in Book.decode(text).entries.items()}
