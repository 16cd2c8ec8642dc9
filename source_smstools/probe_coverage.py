"""The probe's coverage figures: whether the inbox and the message log list the messages of the
conversation probed, as change detection assumes (components/coverage.py checks it every sync).

Three requests more than the shapes: the conversation's first page (up to 200 messages), and the
first page of the inbox and of the message log (up to 2000 entries each, as change detection reads
them). Counts only: no phone, text, date or `type` value outside sms, whatsapp and call.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

from source_smstools.components.discovery import normalize_phone
from source_smstools.components.sources import LISTS, WATCHED, parse_date

KINDS = ("sms", "whatsapp", "call")
QUERIES = {"conversation": {"limit": 200, "page": 1}, "inbox": {"limit": 2000, "page": 1}, "message_log": {"limit": 2000, "page": 1}}


def _records(body: bytes, key: str) -> Optional[list]:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    records = data.get(key) if isinstance(data, dict) else None
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else None


def figures(phone: str, get: Callable[[str, dict], tuple[Optional[int], Any, bytes]]) -> dict[str, Any]:
    """`get(name, query)`: the answer of the conversation ("conversation"), the inbox or the log."""
    status, _, body = get("conversation", QUERIES["conversation"])
    messages = _records(body, "conversation") if status == 200 else None
    if messages is None:
        return {"verdict": "not measured: the conversation could not be read"}
    form = normalize_phone(phone)
    report: dict[str, Any] = {"conversation_messages": len(messages)}
    verdicts = []
    for name in WATCHED:
        status, _, body = get(name, QUERIES[name])
        entries = _records(body, "messages") if status == 200 else None
        if entries is None:
            report[name] = {"readable": False}
            verdicts.append(f"the {name.replace('_', ' ')} could not be read")
            continue
        dated = [(normalize_phone(e.get(WATCHED[name])), parse_date(e.get("date"))) for e in entries]
        dates = [d for _, d in dated if d is not None]
        kinds = {k: sum(1 for e in entries if e.get("type") == k) for k in KINDS}
        kinds["other"] = len(entries) - sum(kinds.values())
        whole = len(entries) < QUERIES[name]["limit"]
        listed = set(dated)
        mine = [m for m in messages if LISTS.get(m.get("direction")) == name and isinstance(m.get("unixDatetime"), int)]
        inside = [m for m in mine if dates and (whole or m["unixDatetime"] > min(dates)) and m["unixDatetime"] <= max(dates)]
        found = sum(1 for m in inside if (form, m["unixDatetime"]) in listed)
        report[name] = {
            "readable": True, "entries": len(entries), "undated": len(entries) - len(dates), "types": kinds,
            "hours_covered": round((max(dates) - min(dates)) / 3600, 1) if dates else 0,
            "messages_of_its_kind": len(mine), "in_its_span": len(inside), "listed": found,
        }
        if inside and found < len(inside):
            verdicts.append(f"the {name.replace('_', ' ')} left out {len(inside) - found} of {len(inside)} messages in its span")
        elif not inside:
            verdicts.append(f"no message of the conversation falls in the {name.replace('_', ' ')}'s span")
    left_out = [v for v in verdicts if "left out" in v or "could not" in v]
    report["verdict"] = (
        "not covered: " + "; ".join(left_out) if left_out
        else "covered" if not verdicts else "partly measured: " + "; ".join(verdicts)
    )
    return report
