"""The conversation stream's saved state: kept per phone, checked before it is trusted."""

from __future__ import annotations

import calendar
import logging
import time
from typing import Any, Mapping, Optional

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.migrations.state_migration import StateMigration
from airbyte_cdk.sources.types import Config
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components import changes
from source_smstools.components.conversation import begin

logger = logging.getLogger("airbyte")


class PerPhoneState(StateMigration):
    """Keeps the state strictly per phone, refuses a state it cannot trust, hands the state it
    checked to the stream's partition router (change detection compares it with the sources), and
    lowers the cursors change detection needs read further back.

    The CDK starts a phone it has no state for from the stream's global cursor: a phone added to
    the configuration later would skip its whole history. Dropping the global cursor (and the
    lookback kept beside it) makes such a phone start from `start_date` instead.

    Why the router gets its state from here: the CDK gives a custom partition router no state, and
    no other component sees the stream's state before the router is built. The factory
    (`ModelToComponentFactory.create_default_stream`) first creates the stream's state migrations
    and runs them, then builds the partition router, the transformations and the retriever: this
    migration starts the stream's part of the sync (components/conversation.py) and puts the state it
    checked there, and the components built after it take that part. This holds in every runtime
    that builds the manifest (our command, the generic source-declarative-manifest, the Builder,
    PyAirbyte); unit_tests/test_state_seam.py fails if a CDK upgrade changes that order. With no
    saved state the CDK does not call `migrate`, and the router sees None.

    Lowered cursors (the state the CDK reads from; the router sees them as saved): a phone with a
    delivery status not final (`parent_state.changes.pending`, within changes.STATUS_DAYS) is read
    back to that message; a state past the CDK's partition limit, one cursor for all phones, starts
    no later than `parent_state.changes.floor`, the oldest point a phone still needed when the
    limit was crossed (changes.floor).
    """

    # The CDK passes a custom component only the arguments its class annotates: without these
    # lines the migration never sees the config or the stream's model.
    config: Optional[Config]
    declarative_stream: Optional[Any]

    def __init__(self, config: Optional[Config] = None, declarative_stream: Optional[Any] = None, **kwargs: Any) -> None:
        self._stream = declarative_stream
        self._lookback = int((config or {}).get("lookback_window_days") or 0) * changes.DAY
        # the first component of the stream built: the stream's part of the sync starts here
        self._part = begin(config if config is not None else {})
        start_date = (config or {}).get("start_date")
        try:
            self._start = calendar.timegm(time.strptime(start_date, "%Y-%m-%dT%H:%M:%SZ")) if start_date else 0
        except (TypeError, ValueError):
            self._start = 0  # the spec's validation reports a malformed start_date

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        return bool(stream_state)

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        checked = self._checked(stream_state)
        self._part.saved = dict(checked)  # for change detection (the router)
        return self._lowered(checked)

    def _lowered(self, state: Mapping[str, Any]) -> Mapping[str, Any]:
        parent = state.get("parent_state")
        mine = parent.get(changes.KEY) if isinstance(parent, Mapping) else None
        if not isinstance(mine, Mapping):
            return state
        at = changes.now()
        if state.get("use_global_cursor"):
            lowest, cursor = mine.get("floor"), (state.get("state") or {}).get("unixDatetime")
            if type(lowest) is int and cursor and lowest < int(cursor):
                return {**state, "state": {"unixDatetime": str(max(lowest, self._start))}}
            return state
        pending = changes.live_pending(mine.get("pending"), at)
        if not pending:
            return state
        states = []
        for entry in state.get("states", []):
            phone, cursor = entry["partition"]["phone"], int(entry["cursor"]["unixDatetime"])
            # the CDK reads from the cursor minus the lookback window: reach the pending message
            back = pending.get(phone, cursor) + self._lookback
            if back < cursor:
                entry = {**entry, "cursor": {"unixDatetime": str(max(back, self._start))}}
            states.append(entry)
        return {**state, "states": states}

    def _checked(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(stream_state, Mapping):
            raise _bad_state(f"expected an object, got {type(stream_state).__name__}")
        if "states" not in stream_state:
            if "unixDatetime" in stream_state:
                # one cursor for every phone (an older or hand-written state): the CDK applies it to all
                value = self._cursor(stream_state["unixDatetime"], "the global cursor")
                return {"unixDatetime": value} if value else {}
            if stream_state.get("use_global_cursor") and isinstance(stream_state.get("state"), Mapping):
                # Past the CDK's partition limit (10,000 phones) one cursor stands for every phone.
                logger.warning(
                    "The conversation state holds one cursor for all phones (more phones than the "
                    "per-phone state keeps): every phone goes on from it, and a phone found from now on "
                    "starts from it too, without its older messages. Reset the conversation stream to "
                    "read every phone's history again."
                )
                value = self._cursor(stream_state["state"].get("unixDatetime"), "the global cursor")
                return {**stream_state, "state": {"unixDatetime": value}} if value else {}
            raise _bad_state(
                f"keys {sorted(stream_state)} are neither a per-phone state "
                '({"states": [{"partition": {"phone": ...}, "cursor": {"unixDatetime": ...}}]}) '
                'nor a global one ({"unixDatetime": ...})'
            )
        states = stream_state["states"]
        if not isinstance(states, list):
            raise _bad_state('"states" must be a list')
        migrated = []
        for entry in states:
            try:
                phone = entry["partition"]["phone"]
                value = entry["cursor"]["unixDatetime"]
            except (KeyError, TypeError):
                raise _bad_state(f"entry {str(entry)[:200]} has no partition.phone and cursor.unixDatetime")
            value = self._cursor(value, f"phone {phone}")
            if value:
                migrated.append({"partition": {"phone": phone}, "cursor": {"unixDatetime": value}})
        if stream_state.get("use_global_cursor"):
            # past the CDK's partition limit the global cursor is all there is: keep it
            return {**stream_state, "states": migrated}
        kept: dict[str, Any] = {"use_global_cursor": False, "states": migrated}
        if isinstance(stream_state.get("parent_state"), Mapping):
            # change detection's positions (components/changes.py): a sync that stops before its
            # end re-emits them as they were
            kept["parent_state"] = stream_state["parent_state"]
        return kept


    def _cursor(self, value: Any, where: str) -> Optional[str]:
        cursor = _cursor(value, where)
        # A cursor saved before its phone's first page was read sits at the stream's start; never
        # let one reach back before `start_date`.
        return str(max(int(cursor), self._start)) if cursor else None


def _cursor(value: Any, where: str) -> Optional[str]:
    """The cursor as the CDK keeps it, or None for one that must be dropped."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise _bad_state(f"the cursor of {where} is {value!r}, not a unix time in seconds")
    if seconds > time.time() + 86_400:
        # A cursor in the future would skip every message dated before it: trust nothing of it and
        # read that history again from the start date (the primary key deduplicates).
        logger.warning(f"The saved cursor of {where} ({seconds}) is in the future; reading it again from the start date.")
        return None
    return str(seconds)


def _bad_state(reason: str) -> AirbyteTracedException:
    return AirbyteTracedException(
        message=f"The saved state of the conversation stream is not usable: {reason}. "
        "Reset the stream's state (or pass none) to sync from the start date.",
        failure_type=FailureType.config_error,
    )


