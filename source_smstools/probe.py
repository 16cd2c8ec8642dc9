"""`source-smstools-probe`: what the real Smstools API answers, in a report safe to attach to a bug.

The connector has only met our emulator of our reading of the API. The probe calls each read
endpoint once, with a small page, and reports the shape of each answer: HTTP status, content type,
the envelope's keys and JSON types, the key holding the records, counts, and per record field the
JSON types and formats seen. It never copies a value: phones are masked but for their last two
digits, texts become lengths, dates their format, error texts are left out and the credentials
never appear. `smstools-emulator --shapes report.json` serves the shapes of such a report.

    source-smstools-probe --config secrets/config.json [--out report.json]

Exit status: 0 when the probe ran (endpoints answering errors are findings), 2 for a config it
cannot use, 1 when the report cannot be written.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import HTTPRedirectHandler, Request, build_opener

from smstools_report import REPORT_VERSION, describe
from source_smstools.components.discovery import normalize_phone

DEFAULT_BASE_URL = "https://api.smsgatewayapi.com"
PAGE = {"limit": 5, "page": 1}
MAX_FORMATS = 5  # distinct formats kept per field (masked phones differ one from another)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,40}")  # a key that is a field's name, not data

# name -> (path, query); the names are the connector's streams
ENDPOINTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "conversation": ("/v1/conversation/{phone}", PAGE),
    "contacts": ("/v1/contact", PAGE),
    "inbox": ("/v1/message/inbox", PAGE),
    "message_log": ("/v1/message/logging", PAGE),
    "outbox": ("/v1/outbox", PAGE),
    "groups": ("/v1/groups", PAGE),
    "optouts": ("/v1/optouts/list", None),
    "message_templates": ("/v1/messagetemplates", None),
    "sender_ids": ("/v1/senderids", None),
    "virtual_numbers": ("/v1/vmn", None),
    "balance": ("/v1/balance", None),
    "statistics": ("/v1/statistics", {"year": "this year", "month": "this month"}),
}
# where the connector finds phones when none is configured: endpoint -> the field holding them
PHONE_FIELDS = {"contacts": "phone", "inbox": "sender", "message_log": "to"}


class ConfigError(Exception):
    """A config the probe cannot use; the message names the cause."""


def load_config(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        config = json.loads(file.read_text())
    except ValueError as e:
        raise ConfigError(f"config file {path} is not JSON ({e.__class__.__name__} at line {getattr(e, 'lineno', '?')})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} holds a JSON {describe(config)[0]}, an object was expected")
    for key in ("client_id", "client_secret"):
        if not isinstance(config.get(key), str) or not config[key].strip():
            raise ConfigError(f"config file {path} has no {key} (a non-empty string is expected)")
    base_url = config.get("base_url") or DEFAULT_BASE_URL
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigError("base_url must start with http:// or https://")
    phones = config.get("phone_numbers") or []
    if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
        raise ConfigError("phone_numbers must be a list of strings")
    return config


# -- one request --------------------------------------------------------------------------------


class _NoRedirect(HTTPRedirectHandler):
    """A redirect is a finding (its status is reported), and following it would send the
    credentials' headers to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = build_opener(_NoRedirect)


def fetch(url: str, headers: dict[str, str], timeout: float) -> tuple[int | None, str | None, bytes | str]:
    """(status, content type, body), or (None, None, the failure's kind) when no answer came.

    A connection error is tried once more; nothing else is retried: the first answer is the finding."""
    for attempt in (1, 2):
        try:
            with _OPENER.open(Request(url, headers=headers), timeout=timeout) as answer:
                return answer.status, answer.headers.get("Content-Type"), answer.read()
        except HTTPError as e:  # an answer all the same: its status and body are the finding
            try:
                return e.code, e.headers.get("Content-Type"), e.read()
            except Exception as cut:
                return None, None, cut.__class__.__name__
        except (URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                return None, None, "timeout"
            if attempt == 2:
                # the class names the failure; its text may hold the address
                return None, None, reason.__class__.__name__ if isinstance(reason, BaseException) else "connection error"
        except Exception as e:  # an answer cut off half-way (IncompleteRead), a malformed status line
            return None, None, e.__class__.__name__
    raise AssertionError("unreachable")


# -- what an answer looks like ----------------------------------------------------------------


def _body_kind(body: bytes) -> str:
    text = body.lstrip()
    if not text:
        return "empty"
    if text[:1] == b"<":
        return "html"
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return "text" if all(c.isprintable() or c.isspace() for c in decoded[:256]) else "binary"


def key_name(key: str) -> str:
    """A key as the report shows it: a name as is; a key that is not a name (a phone, a date, an
    ID, an email: data used as a key) by its kind only."""
    return key if _NAME.fullmatch(key) else f"<{describe(key)[0]} key>"


def _fields(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per record field (and one level below: `a.b` in an object, `a[].b` in a list of objects):
    in how many records (or list items) it was, its kinds and formats, the lengths of its texts."""
    fields: dict[str, dict[str, Any]] = {}

    def add(name: str, key: str, value: Any) -> None:
        kind, fmt = describe(value, key)
        spec = fields.setdefault(name, {"records": 0, "types": {}, "formats": {}})
        spec["records"] += 1
        spec["types"][kind] = spec["types"].get(kind, 0) + 1
        if fmt:
            if fmt not in spec["formats"] and len(spec["formats"]) >= MAX_FORMATS:
                fmt = "(others)"
            spec["formats"][fmt] = spec["formats"].get(fmt, 0) + 1
        if kind == "string":
            low, high = spec.get("lengths") or (len(value), len(value))
            spec["lengths"] = [min(low, len(value)), max(high, len(value))]

    for record in records:
        for key, value in record.items():
            name = key_name(key)
            add(name, key, value)
            if isinstance(value, dict):
                for sub, item in value.items():
                    add(f"{name}.{key_name(sub)}", sub, item)
            elif isinstance(value, list):
                for element in value:
                    if isinstance(element, dict):
                        for sub, item in element.items():
                            add(f"{name}[].{key_name(sub)}", sub, item)
    for spec in fields.values():
        spec["types"] = dict(sorted(spec["types"].items()))
        spec["formats"] = dict(sorted(spec["formats"].items()))
    return fields


def _count(value: Any) -> int | None:
    kind, _ = describe(value)
    if kind == "integer":
        return value
    if kind == "string(digits)":
        return int(value)
    return None


def analyse(status: int, content_type: str | None, body: bytes) -> dict[str, Any]:
    """The report of one answer: nothing in it is a value of the answer but counts and an error code."""
    out: dict[str, Any] = {"status": status, "content_type": (content_type or "")[:100] or None}
    try:
        payload = json.loads(body)
    except ValueError:
        out.update(json=False, length=len(body), starts_with=_body_kind(body))
        return out
    out["json"] = True
    out["body"] = describe(payload)[0]
    records: list[Any] | None = None
    if isinstance(payload, dict):
        out["keys"] = {key_name(k): describe(v, k)[0] for k, v in payload.items()}
        if payload.get("error"):
            code = _count(payload["error"])
            # a code, not data that happens to be digits
            out["error_code"] = code if code is not None and abs(code) < 1_000_000 else None
            return out
        lists = [k for k, v in payload.items() if isinstance(v, list)]
        # the list of records: the first list of objects, else the first list
        list_key = next((k for k in lists if any(isinstance(i, dict) for i in payload[k])), lists[0] if lists else None)
        out["list_key"] = key_name(list_key) if list_key is not None else None
        records = payload[list_key] if list_key is not None else [payload]
        out["counts"] = {"records": len(records)}
        for key in ("total", "shown"):
            if key in payload:
                out["counts"][key] = _count(payload[key])
    elif isinstance(payload, list):
        out["list_key"] = None
        records = payload
        out["counts"] = {"records": len(records)}
    if records is not None:
        out["fields"] = _fields([r for r in records if isinstance(r, dict)])
        others = sorted({describe(r)[0] for r in records if not isinstance(r, dict)})
        if others:
            out["other_items"] = others
    return out


def first_phone(payload: bytes, field: str) -> str | None:
    """The first phone the connector would find in a contacts, inbox or message log answer."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    lists = [data] if isinstance(data, list) else [v for v in data.values() if isinstance(v, list)] if isinstance(data, dict) else []
    for items in lists:
        for item in items:
            phone = normalize_phone(item.get(field)) if isinstance(item, dict) else None
            if phone:
                return phone
    return None


# -- the probe ----------------------------------------------------------------------------------


def probe(config: dict[str, Any], timeout: float = 30.0, now: Callable[[], float] = time.time) -> dict[str, Any]:
    """Calls each endpoint once and returns the report (a JSON-ready dict)."""
    base = (config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    headers = {
        "X-Client-Id": config["client_id"],
        "X-Client-Secret": config["client_secret"],
        "Accept": "application/json",
        "User-Agent": "source-smstools-probe",
    }
    today = time.gmtime(now())
    configured = [p for p in config.get("phone_numbers") or [] if p.strip()]
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "base_url": "default" if base == DEFAULT_BASE_URL else "custom",
        "phones_configured": len(configured),
        "conversation_phone_from": None,
        "endpoints": {},
    }
    phone = configured[0].strip().lstrip("+") if configured else None
    if phone:
        report["conversation_phone_from"] = "config"
    # without a configured phone, the sources of discovery go first: the conversation needs a phone
    order = list(ENDPOINTS)
    if not phone:
        order = [n for n in PHONE_FIELDS] + [n for n in order if n not in PHONE_FIELDS]
    entries: dict[str, dict[str, Any]] = {}
    for name in order:
        path, query = ENDPOINTS[name]
        entry: dict[str, Any] = {"path": path, "query": query}
        entries[name] = entry
        if name == "conversation" and not phone:
            entry.update(status=None, skipped="no phone configured, and none found in the first page of contacts, inbox or message log")
            continue
        params = dict(query or {})
        if name == "statistics":
            params = {"year": today.tm_year, "month": today.tm_mon}
        url = base + path.replace("{phone}", quote(phone or "", safe="")) + ("?" + urlencode(params) if params else "")
        status, content_type, body = fetch(url, headers, timeout)
        if status is None:
            entry.update(status=None, failure=body)
            continue
        entry.update(analyse(status, content_type, body))
        if not phone and name in PHONE_FIELDS and entry.get("json") and not entry.get("error_code"):
            phone = first_phone(body, PHONE_FIELDS[name])
            if phone:
                report["conversation_phone_from"] = name
    report["endpoints"] = {name: entries[name] for name in ENDPOINTS}
    return report


# -- Markdown -----------------------------------------------------------------------------------


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {n}" if len(counts) > 1 else k for k, n in counts.items())


def _request(entry: dict[str, Any]) -> str:
    query = entry.get("query")
    return "GET " + entry["path"] + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Smstools API probe (report version {report['version']})",
        "",
        f"Base URL: {report['base_url']}; phones configured: {report['phones_configured']}; "
        f"conversation probed with a phone from: {report['conversation_phone_from'] or 'none'}.",
        "No phone number (but masked ones, last two digits), text, date or credential is in this report.",
    ]
    for name, e in report["endpoints"].items():
        lines += ["", f"## {name}: `{_request(e)}`", ""]
        if e.get("skipped"):
            lines.append(f"Not called: {e['skipped']}.")
            continue
        if e.get("failure"):
            lines.append(f"No answer: {e['failure']}.")
            continue
        head = f"HTTP {e['status']}, {e['content_type'] or 'no content type'}"
        if not e["json"]:
            lines.append(f"{head}; not JSON: {e['length']} bytes, starting as {e['starts_with']}.")
            continue
        head += f"; JSON {e['body']}"
        if "error_code" in e:
            head += f"; an error body, code {e.get('error_code')}"
        elif "counts" in e:
            where = f"under `{e['list_key']}`" if e.get("list_key") else ("the body itself" if e["body"] == "object" else "the body")
            counts = ", ".join(f"{k} {v}" for k, v in e["counts"].items() if k != "records")
            head += f"; records {where}: {e['counts']['records']}" + (f" ({counts})" if counts else "")
        lines.append(head + ".")
        if e.get("keys"):
            lines += ["", "| key | type |", "| :-- | :-- |"] + [f"| {k} | {t} |" for k, t in e["keys"].items()]
        if e.get("fields"):
            total = e["counts"]["records"]
            lines += ["", "| record field | in | types | formats |", "| :-- | --: | :-- | :-- |"]
            for field, spec in e["fields"].items():
                notes = [f"{f} ({n})" if len(spec["formats"]) > 1 else f for f, n in spec["formats"].items()]
                if spec.get("lengths"):
                    low, high = spec["lengths"]
                    notes.append(f"<text: {low}{'' if low == high else f'-{high}'} chars>")
                seen = f"{spec['records']}/{total}" if "." not in field else str(spec["records"])
                lines.append(f"| {field} | {seen} | {_kinds(spec['types'])} | {'; '.join(notes)} |")
        if e.get("other_items"):
            lines.append(f"\nItems that are not objects: {', '.join(e['other_items'])}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="source-smstools-probe", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the connector's config file (client_id, client_secret, base_url, phone_numbers)")
    parser.add_argument("--out", default="smstools-probe.json", help="where to write the JSON report (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"source-smstools-probe: {e}", file=sys.stderr)
        return 2
    report = probe(config, timeout=args.timeout)
    sys.stdout.write(markdown(report))
    try:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    except OSError as e:
        print(f"source-smstools-probe: cannot write the report to {args.out} ({e.__class__.__name__})", file=sys.stderr)
        return 1
    print(f"JSON report written to {args.out}: attach it to the issue.", file=sys.stderr)
    return 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
