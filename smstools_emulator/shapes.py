"""The shapes of the real API's answers, as `source-smstools-probe` reports them, served by the emulator.

A probe report (JSON, `version` REPORT_VERSION) describes, per endpoint, the HTTP status, the
envelope's keys and JSON types, the key holding the records and, per record field, the JSON types
and formats seen - never a value. `Shapes(report)` (or `load_report(path)`) makes the emulator
answer each endpoint with those shapes, filled with its own data:

    Emulator(conversations, shapes=load_report("report.json"))
    smstools-emulator --shapes report.json

so that a report a user attaches to a bug becomes a test in one step.

The vocabulary of the report (`describe`: a value's kind and format) is smstools_report's, which
the probe uses too.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from smstools_report import DECIMAL, REPORT_VERSION, UNIX_MILLIS, UNIX_SECONDS, describe, digits_of, is_time_format

_FIXED_TS = 1_749_113_086  # the placeholder time: 2025-06-05 08:44:46 UTC


# -- serving a report ---------------------------------------------------------------------------


def load_report(path: str | Path) -> "Shapes":
    return Shapes(json.loads(Path(path).read_text()))


class Shapes:
    """Answers shaped as a probe report says; see the module's docstring."""

    def __init__(self, report: dict[str, Any]) -> None:
        if report.get("version") != REPORT_VERSION:
            raise ValueError(f"a probe report of version {REPORT_VERSION} was expected, got version {report.get('version')!r}")
        self.report = report
        self._routes = []
        for entry in report.get("endpoints", {}).values():
            # "/v1/conversation/{phone}" matches any phone
            pattern = re.escape(entry["path"]).replace(re.escape("{phone}"), "[^/]+")
            self._routes.append((re.compile(pattern), entry))

    def entry(self, path: str) -> dict[str, Any] | None:
        return next((e for p, e in self._routes if p.fullmatch(path)), None)

    def answer(self, raw_path: str, status: int, body: bytes, content_type: str) -> tuple[int, bytes, str]:
        """The emulator's answer (status, body, content type) reshaped as the report says.

        Only the emulator's successful JSON answers to an endpoint of the report change: its errors
        (refused credentials, injected faults) and control endpoints stay as they are."""
        url = urlsplit(raw_path)
        entry = self.entry(url.path)
        if entry is None or status != 200 or "json" not in content_type or entry.get("status") is None:
            return status, body, content_type
        try:
            natural = json.loads(body)
        except ValueError:
            return status, body, content_type
        if isinstance(natural, dict) and natural.get("error"):
            return status, body, content_type
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if not entry.get("json"):
            return entry["status"], _filler(entry.get("starts_with"), entry.get("length") or 0), entry.get("content_type") or "text/plain"
        payload = self._payload(entry, natural, query)
        return entry["status"], json.dumps(payload, ensure_ascii=False).encode(), entry.get("content_type") or content_type

    def _payload(self, entry: dict[str, Any], natural: Any, query: dict[str, str]) -> Any:
        keys: dict[str, str] = entry.get("keys") or {}
        if "error_code" in entry:  # the probe sets it for an error body only (None: a code that is not one)
            return {k: _error_value(k, kind, entry.get("error_code")) for k, kind in keys.items()}
        if isinstance(natural, list):
            records, envelope = natural, {}
        elif isinstance(natural, dict):
            list_key = next((k for k, v in natural.items() if isinstance(v, list)), None)
            records = natural[list_key] if list_key else [natural]
            envelope = {k: v for k, v in natural.items() if k != list_key}
        else:
            records, envelope = [], {}
        fields = entry.get("fields") or {}
        records = _records([r for r in records if isinstance(r, dict)], fields)
        shape = entry.get("body")
        if shape == "array":
            return records
        if shape != "object":
            return _placeholder(shape or "null", None, {}, "")
        if not entry.get("list_key"):
            return records[0] if records else _record({}, fields)
        counts = {"total": len(records), "shown": len(records), "page": query.get("page", 1), "limit": query.get("limit", len(records))}
        out = {}
        for key, kind in keys.items():
            if key == entry["list_key"]:
                out[key] = records
            else:
                value = envelope.get(key, counts.get(key))
                out[key] = _convert(value, {"types": {kind: 1}, "formats": {}}, {}, key)
        return out


def _records(records: list[dict[str, Any]], fields: dict[str, Any]) -> list[dict[str, Any]]:
    return [_record(r, fields) for r in records]


def _record(record: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """`record` with the fields of `fields` (one level of "a.b" / "a[].b" below), in their order.

    A field the report saw in every record that this record lacks gets a typed placeholder (the
    emulator has no data for it); one the report saw in some records only is optional: it is
    there when the emulator's record has it."""
    top = {name: spec for name, spec in fields.items() if "." not in name}
    every = max((spec.get("records", 0) for spec in top.values()), default=0)
    out = {}
    for name, spec in top.items():
        subs = {k.split(".", 1)[1]: v for k, v in fields.items() if k.startswith(name + ".") or k.startswith(name + "[].")}
        if name in record:
            out[name] = _convert(record[name], spec, subs, name)
        elif spec.get("records", 0) >= every:
            out[name] = _placeholder(_main_kind(spec), _time_format(spec), subs, name, spec)
    return out


def _main_kind(spec: dict[str, Any], value: Any = None) -> str:
    """The kind most records had (a non-null one for a value that is not null)."""
    types = spec.get("types") or {"null": 1}
    ranked = sorted(types, key=lambda k: (-types[k], k))
    if value is not None:
        ranked = [k for k in ranked if k != "null"] or ranked
    return ranked[0]


def _time_format(spec: dict[str, Any]) -> str | None:
    return next((f for f in spec.get("formats") or {} if is_time_format(f)), None)


def _timestamp(value: Any, key: str) -> int | None:
    kind, fmt = describe(value, key)
    if fmt == UNIX_SECONDS:
        return int(value)
    if fmt == UNIX_MILLIS:
        return int(value) // 1000
    if kind == "string(date)":
        parsed = datetime.strptime(value, fmt)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return int(parsed.timestamp())
    return None


def _render_time(ts: int, kind: str, fmt: str) -> Any:
    number = ts * 1000 if fmt == UNIX_MILLIS else ts
    if fmt in (UNIX_SECONDS, UNIX_MILLIS):
        return str(number) if kind.startswith("string") else number
    text = datetime.fromtimestamp(ts, timezone.utc).strftime(fmt)
    return text.lower() if "%b" in fmt else text  # the API writes months in lower case


def _convert(value: Any, spec: dict[str, Any], subs: dict[str, Any], key: str) -> Any:
    """`value` as the kind (and format) the report gives the field."""
    kind, fmt = describe(value, key)
    types, formats = spec.get("types") or {}, spec.get("formats") or {}
    target = kind if kind in types else _main_kind(spec, value)
    wanted = _time_format(spec)
    ts = _timestamp(value, key)
    if ts is not None and wanted and (target != kind or fmt not in formats):
        return _render_time(ts, target, wanted)
    if target == kind:
        if kind == "object":
            return _record(value, subs) if subs else value
        if kind == "array" and subs:
            return [_record(v, subs) if isinstance(v, dict) else v for v in value]
        return value
    if target == "null":
        return None
    if target == "object":  # a list of one object becomes that object
        first = value[0] if isinstance(value, list) and value else value
        return _record(first if isinstance(first, dict) else {}, subs)
    if target == "array":
        items = value if isinstance(value, list) else [] if value is None else [value]
        return [_record(v, subs) if isinstance(v, dict) and subs else v for v in items]
    if value is None or isinstance(value, (dict, list)):
        return _placeholder(target, wanted, subs, key, spec)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    digits = digits_of(text)
    if target == "string(digits)":
        return str(int(value)) if isinstance(value, (bool, float)) else digits or "0"
    if target == "integer":
        return int(float(text)) if DECIMAL.fullmatch(text) or digits == text else int(bool(value)) if isinstance(value, bool) else 0
    if target == "number":
        return float(text) if DECIMAL.fullmatch(text) or digits == text else 0.5
    if target == "string(decimal)":
        return str(float(text)) if DECIMAL.fullmatch(text) or digits == text else "0.5"
    if target == "boolean":
        return text not in ("0", "false", "")
    if target == "string(boolean)":
        return "true" if text not in ("0", "false", "") else "false"
    if target == "string(phone)" and 6 <= len(digits) <= 15:
        return _as_phone(digits, formats)
    if target == "string":
        return text
    return _placeholder(target, wanted, subs, key, spec)


def _as_phone(digits: str, formats: dict[str, int]) -> str:
    """`digits` written like the first masked phone of the report with as many digits, else '+digits'."""
    for mask in formats:
        if len(digits_of(mask.replace("*", "0"))) == len(digits):
            it = iter(digits)
            return "".join(next(it) if ch == "*" or ch.isdigit() else ch for ch in mask)
    return "+" + digits


def _placeholder(kind: str, fmt: str | None, subs: dict[str, Any], key: str, spec: dict[str, Any] | None = None) -> Any:
    """A value of `kind` for a field the emulator has no data for."""
    if fmt:
        return _render_time(_FIXED_TS, kind, fmt)
    simple = {
        "null": None, "boolean": False, "integer": 0, "number": 0.5, "string": "placeholder",
        "string(empty)": "", "string(digits)": "0", "string(decimal)": "0.5", "string(boolean)": "false",
        "string(date)": _render_time(_FIXED_TS, kind, "%Y-%m-%d %H:%M:%S"), "array": [],
    }
    if kind == "object":
        return _record({}, subs)
    if kind == "string(phone)":
        return _as_phone("393330000000", (spec or {}).get("formats") or {})
    return simple.get(kind, "placeholder")


def _error_value(key: str, kind: str, code: Any) -> Any:
    if key == "error" and code is not None:
        return str(code) if kind.startswith("string") else code
    if key == "errorMsg":
        return "Error served from a probe report"
    return _placeholder(kind, None, {}, key)


def _filler(starts_with: str | None, length: int) -> bytes:
    """A non-JSON body of the kind and length the report saw."""
    start = {"html": b"<html><body>", "empty": b"", "binary": b"\x00\x01"}.get(starts_with or "", b"Not JSON ")
    return (start + b"x" * length)[:length] if length else start
