"""Answers that differ from the documented shape the way PHP JSON backends commonly do, without
changing what they mean: the emulator serves them when `Emulator.variations` names them (from
Python, from the control endpoint `/_emulator/variations`, or `smstools-emulator --variation NAME`).

Only successful data answers vary; error bodies and the control endpoints never do.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional

VARIATIONS = {
    "paging_as_strings": 'the envelope\'s total, shown, page and limit as strings ("2")',
    "numbers_as_strings": 'every number as a string, the records\' too ("1749113086", "1234.5")',
    "bom": "a UTF-8 byte order mark before the JSON",
    "leading_whitespace": "a newline and spaces before the JSON",
    "renamed_lists": 'the envelope\'s list under "data" instead of its documented key',
    "lists_as_objects": 'the list of records as an object with keys "0", "2", "4", ... (an array with gaps)',
    "text_html": "Content-Type: text/html on the JSON",
    "false_for_null": "false for a message's absent messageId and file, and for an envelope's empty list",
}


def check(names: Iterable[str]) -> set[str]:
    chosen = set(names)
    unknown = chosen - set(VARIATIONS)
    if unknown:
        raise ValueError(f"unknown variations: {sorted(unknown)}; known: {sorted(VARIATIONS)}")
    return chosen


def encode(payload: Any, active: set[str], records_key: Optional[str] = None, offset: int = 0) -> bytes:
    """`payload` (an envelope with its list under `records_key`, a bare list, or an object) as
    the body to send, with the `active` variations."""
    if active:
        payload = _vary(payload, active, records_key, offset)
    body = json.dumps(payload, ensure_ascii=False).encode()
    if "leading_whitespace" in active:
        body = b"\n  " + body
    if "bom" in active:
        body = b"\xef\xbb\xbf" + body
    return body


def content_type(active: set[str]) -> str:
    return "text/html; charset=UTF-8" if "text_html" in active else "application/json"


def _vary(payload: Any, active: set[str], key: Optional[str], offset: int) -> Any:
    enveloped = isinstance(payload, dict) and key is not None and isinstance(payload.get(key), list)
    if not enveloped and not isinstance(payload, list):
        return _strings(payload) if "numbers_as_strings" in active else payload
    records = payload[key] if enveloped else payload
    if "false_for_null" in active:
        records = [
            {k: False if v is None and k in ("messageId", "file") else v for k, v in r.items()} if isinstance(r, dict) else r
            for r in records
        ]
    if "numbers_as_strings" in active:
        records = _strings(records)
    if "lists_as_objects" in active and records:
        records = {str(2 * (offset + i)): r for i, r in enumerate(records)}
    if "false_for_null" in active and enveloped and not records:
        records = False
    if not enveloped:
        return records
    payload = {k: v for k, v in payload.items() if k != key}
    if active & {"paging_as_strings", "numbers_as_strings"}:
        payload = {k: str(v) if k in ("total", "shown", "page", "limit") else v for k, v in payload.items()}
    payload["data" if "renamed_lists" in active else key] = records
    return payload


def _strings(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    return value
