"""Records as they leave the connector: the fields added to each message of a conversation, and
every field in the type its schema declares."""

import hashlib
import logging
import math
import time
from dataclasses import InitVar, dataclass
from typing import Any, Dict, List, Mapping, MutableMapping, Optional, Tuple

from airbyte_cdk.sources.declarative.extractors.type_transformer import TypeTransformer
from airbyte_cdk.sources.declarative.transformations import RecordTransformation
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState

from source_smstools.components.conversation import conversation_of
from source_smstools.components.paging import OCCURRENCE

logger = logging.getLogger("airbyte")


def message_id(phone: str, message: Mapping[str, Any], occurrence: int = 1) -> str:
    """`messageId`, or for inbound messages (which have none) a stable hash of what identifies them;
    the second (third, ...) of identical messages of one second has `-2` (`-3`, ...) after it, so that
    two messages are two rows, and the first keeps the `id` it always had."""
    given = message.get("messageId")
    if given not in (None, ""):
        return str(given)
    key = "\x1f".join(
        str(message.get(name))
        for name in ("direction", "unixDatetime", "sender", "receiver", "message")
    )
    made = "h" + hashlib.sha256(f"{phone}\x1f{key}".encode()).hexdigest()[:32]
    return made if occurrence == 1 else f"{made}-{occurrence}"


def iso_utc(seconds: Any) -> Optional[str]:
    """The time of a positive `unixDatetime`; None for anything else (0 and below are no time)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        return None
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):
        return None


@dataclass
class MessageFields(RecordTransformation):
    """Adds `phone`, `id` and `datetime_utc` to a message, and gives `file` one shape.

    One Python call per record instead of three Jinja templates: templates were about a third of
    the read time in profiles. Each record is also shown to the stream's coverage.Observations (in
    its part of the sync, components/conversation.py): change detection learns from it which
    messages the inbox and the message log left out, and which delivery statuses may still change.
    """

    parameters: InitVar[Mapping[str, Any]]
    config: Optional[Config] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._part = conversation_of(self.config if self.config is not None else {})
        self._observations = self._part.observations

    def transform(
        self,
        record: MutableMapping[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        phone = self._part.phone_in(stream_slice) if stream_slice else ""
        seconds = record.get("unixDatetime")
        if isinstance(seconds, str) and seconds.isdigit():  # a PHP backend's "1749113086"
            seconds = record["unixDatetime"] = int(seconds)
        # false or "" is a PHP backend's way of saying there is none (null: inbound, no attachment)
        given = record.get("messageId")
        if given is False or given == "":
            record["messageId"] = None
        # the API sends a list of attachments or a single attachment object: always a list, so that
        # destinations get one type (the schema's array) and queries one shape
        attachments = record.get("file")
        if isinstance(attachments, dict):
            record["file"] = [attachments]
        elif attachments is False or attachments == "":
            record["file"] = None
        record["phone"] = phone
        record["id"] = message_id(phone, record, record.pop(OCCURRENCE, 1))
        record["datetime_utc"] = iso_utc(seconds)
        self._observations.observe(phone, record)




# -- one type per field ---------------------------------------------------------------------------
# The Python types a JSON type accepts as it is (bool is not an integer, as in JSON Schema).
_ACCEPTS = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "object": (dict,), "array": (list,),
}
_TRUE = ("true", "t", "yes", "y", "on", "1")
_FALSE = ("false", "f", "no", "n", "off", "0")
_MISSING = object()

# (field, accepted Python types, JSON type, plan of its properties, plan of its items' properties)
Plan = List[Tuple[str, Tuple[type, ...], str, Optional[list], Optional[list]]]


def convert(value: Any, kind: str) -> Any:
    """`value` in JSON type `kind` when that loses nothing ("5" -> 5, "1.5" -> 1.5, 5.0 -> 5, 7 -> "7",
    "true" -> True, 1 -> True); otherwise `value` unchanged (5.5 is no integer, "G-7" no number)."""
    if kind == "integer":
        if isinstance(value, bool):
            return int(value)
        number = _number(value) if isinstance(value, str) else value
        if isinstance(number, float) and number.is_integer():
            return int(number)
        return number if isinstance(number, int) else value
    if kind == "number":
        number = _number(value) if isinstance(value, str) else _MISSING
        return value if number is _MISSING else number
    if kind == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value) if isinstance(value, (int, float)) else value
    if kind == "boolean":
        if isinstance(value, str):
            word = value.strip().lower()
            return True if word in _TRUE else False if word in _FALSE else value
        return bool(value) if isinstance(value, int) and value in (0, 1) else value
    return value


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return _MISSING
    return number if math.isfinite(number) else _MISSING


def _json_type(value: Any) -> str:
    for kind, accepted in (("boolean", (bool,)), ("integer", (int,)), ("number", (float,)), ("string", (str,)), ("object", (dict,)), ("array", (list,))):
        if isinstance(value, accepted):
            return kind
    return "null" if value is None else type(value).__name__


def plan(schema: Mapping[str, Any]) -> Plan:
    """What to check in a record of `schema`: each property with one type besides null (all of ours)."""
    steps: Plan = []
    for name, sub in (schema.get("properties") or {}).items():
        kinds = sub.get("type")
        kinds = [kinds] if isinstance(kinds, str) else [k for k in kinds or [] if k != "null"]
        if len(kinds) != 1 or kinds[0] not in _ACCEPTS:
            continue
        items = sub.get("items")
        steps.append((
            name, _ACCEPTS[kinds[0]], kinds[0],
            plan(sub) if kinds[0] == "object" else None,
            plan(items) if kinds[0] == "array" and isinstance(items, dict) and items.get("properties") else None,
        ))
    return steps


@dataclass
class SchemaTypes(TypeTransformer):
    """Each field of a record in the type its schema declares (a `schema_normalization`).

    The conversions of the CDK's `schema_normalization: Default` ("5" -> 5 for an integer, "1.5" ->
    1.5 for a number), without what would lose data (5.5 is not truncated to 5, a null stays null,
    True becomes "true", not "True"), at a thirtieth of its cost: the CDK validates every record
    with jsonschema, 86 us a message, as much as the rest of the read; this looks at the declared
    fields and converts only a value whose type differs. A value that cannot take its type is
    passed on unchanged, and said once per field.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._stream = str((parameters or {}).get("stream_label") or "")
        self._planned: Tuple[Any, Plan] = (None, [])
        self._reported: set = set()

    def transform(self, record: Dict[str, Any], schema: Mapping[str, Any]) -> None:
        # the CDK hands the same (cached) schema to every record of a stream: planned once. One
        # tuple, so that threads reading partitions at once never see a plan of another schema.
        planned = self._planned
        if planned[0] is not schema:
            planned = self._planned = (schema, plan(schema))
        self._apply(record, planned[1], "")

    def _apply(self, record: Dict[str, Any], steps: Plan, path: str) -> None:
        for name, accepted, kind, properties, items in steps:
            value = record.get(name)
            if value is None:
                continue
            if type(value) not in accepted:
                value = convert(value, kind)
                if type(value) not in accepted:
                    self._report(f"{path}{name}", kind, value)
                    continue
                record[name] = value
            if properties:
                self._apply(value, properties, f"{path}{name}.")
            elif items:
                for item in value:
                    if isinstance(item, dict):
                        self._apply(item, items, f"{path}{name}[].")

    def _report(self, field: str, kind: str, value: Any) -> None:
        if field in self._reported:
            return
        self._reported.add(field)
        where = f"{self._stream} field {field}" if self._stream else f"field {field}"
        logger.warning(
            f"Smstools sent {where} as {_json_type(value)} where the schema says {kind}, and it could not be "
            "converted: passed on unchanged (said once per field and sync)."
        )
