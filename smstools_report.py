"""The vocabulary of a probe report: what kind and format a value is, said without the value.

`source-smstools-probe` describes the real API's answers with it and the emulator's `Shapes` reads
such a report back (smstools_emulator/shapes.py). Standard library only: the emulator ships
without the CDK, and the probe does not import the emulator.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

REPORT_VERSION = 1

# The date formats a string is tried against, in this order (the first that parses names it).
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%d %b %Y, %H:%M:%S",  # the conversation's `datetime`: "05 jun 2025, 08:44:46"
    "%d %b %Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d-%m-%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%H:%M:%S",
)
UNIX_SECONDS, UNIX_MILLIS = "unix seconds", "unix milliseconds"
_UNIX_RANGE = (946_684_800, 4_102_444_800)  # 2000-01-01 .. 2100-01-01
# Only a field named like a time is read as a unix time: a 10-digit phone number is in the range too.
_TIME_NAME = re.compile(r"date|time|stamp|_at$|At$|birthday", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+|-[0-9]+")
_PHONE = re.compile(r"(\+|00)?[0-9][0-9 \-./()\u00a0]*[0-9]")
_PHONE_NAME = re.compile(r"phone|number|mobile|msisdn|sender|receiver|^to$|^from$", re.IGNORECASE)


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


def mask_phone(text: str) -> str:
    """Every digit but the last two replaced by '*', the rest kept: '+39 333 100 0067' -> '+** *** *** **67'.

    A leading '00' (the international call prefix, not part of the number) stays: it is a form."""
    prefix = "00" if text.startswith("00") else ""
    text = text[len(prefix):]
    keep = len(digits_of(text)) - 2
    out = [prefix]
    for ch in text:
        if ch.isdigit():
            out.append("*" if keep > 0 else ch)
            keep -= 1
        else:
            out.append(ch)
    return "".join(out)


def _is_phone(text: str) -> bool:
    return bool(_PHONE.fullmatch(text)) and 6 <= len(digits_of(text)) <= 15


def _unix(number: int, key: str) -> str | None:
    if not _TIME_NAME.search(key):
        return None
    if _UNIX_RANGE[0] <= number < _UNIX_RANGE[1]:
        return UNIX_SECONDS
    if _UNIX_RANGE[0] * 1000 <= number < _UNIX_RANGE[1] * 1000:
        return UNIX_MILLIS
    return None


def date_format(text: str) -> str | None:
    for fmt in DATE_FORMATS:
        try:
            datetime.strptime(text, fmt)
        except ValueError:
            continue
        return fmt
    return None


def describe(value: Any, key: str = "") -> tuple[str, str | None]:
    """A value's kind (its JSON type, refined for strings) and its format, both safe to report.

    Kinds: null, boolean, integer, number, array, object, string, string(empty), string(digits),
    string(decimal), string(boolean), string(date), string(phone). Formats: a date format
    (DATE_FORMATS), "unix seconds" / "unix milliseconds" for a time field, a phone masked but for
    its last two digits; None otherwise. `key` is the field's name: it tells times and phones apart
    from other numbers.
    """
    if value is None:
        return "null", None
    if isinstance(value, bool):
        return "boolean", None
    if isinstance(value, int):
        return "integer", _unix(value, key)
    if isinstance(value, float):
        return "number", None
    if isinstance(value, list):
        return "array", None
    if isinstance(value, dict):
        return "object", None
    text = str(value)
    if text == "":
        return "string(empty)", None
    if _DIGITS.fullmatch(text):
        if _unix(int(text), key):
            return "string(digits)", _unix(int(text), key)
        phone = _PHONE_NAME.search(key) and 6 <= len(text) <= 15
        return "string(digits)", mask_phone(text) if phone else None
    if DECIMAL.fullmatch(text):
        return "string(decimal)", None
    if text.lower() in ("true", "false"):
        return "string(boolean)", None
    fmt = date_format(text)
    if fmt:
        return "string(date)", fmt
    if _is_phone(text):
        return "string(phone)", mask_phone(text)
    return "string", None


def is_time_format(fmt: str | None) -> bool:
    return fmt in DATE_FORMATS or fmt in (UNIX_SECONDS, UNIX_MILLIS)
