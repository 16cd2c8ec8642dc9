"""The conversation stream's own record of its phones (the book): for each phone whose whole history
was read, where its next read starts (its cursor: the time of the newest message synced, as the CDK's
per-partition cursor was) and when it was last read (for the sweep). It replaces one CDK cursor per
phone, which the CDK gives up on past 10,000 partitions; the CDK keeps one cursor for the stream.

In the state it is one string, `parent_state.changes.book`: "v1:" and the base64 of the zlib-compressed
text of one line per phone, sorted, "phone cursor last_read" (unix seconds; "-" for a cursor of a phone
with no message). 10 to 20 bytes a phone once compressed (100,000 random numbers: 1.9 MB); to read it:

    python -c "import base64,sys,zlib; print(zlib.decompress(base64.b64decode(sys.argv[1][3:])).decode())" 'v1:...'
"""

import base64
import calendar
import hashlib
import time
import zlib
from typing import Any, Dict, Mapping, Optional, Tuple

VERSION = "v1:"
DAY = 86_400


class BookError(ValueError):
    pass


def pack(prefix: str, text: str) -> str:
    """`prefix` and the base64 of the zlib-compressed `text`: the book's form, and that of a list's
    IDs in a position (sources.pack_ids)."""
    return prefix + base64.b64encode(zlib.compress(text.encode(), 9)).decode()


def unpack(prefix: str, packed: str) -> str:
    """The text `pack` packed after `prefix`; ValueError naming the kind of fault when it is none."""
    try:
        return zlib.decompress(base64.b64decode(packed[len(prefix) :], validate=True)).decode()
    except (ValueError, zlib.error, UnicodeDecodeError) as error:
        raise ValueError(type(error).__name__) from None


class Book:
    """phone -> (cursor, last read); a cursor of None: read whole, no message yet."""

    def __init__(self, entries: Optional[Dict[str, Tuple[Optional[int], int]]] = None) -> None:
        self.entries: Dict[str, Tuple[Optional[int], int]] = dict(entries or {})

    def __contains__(self, phone: str) -> bool:
        return phone in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def cursor(self, phone: str) -> Optional[int]:
        found = self.entries.get(phone)
        return found[0] if found else None

    def last_read(self, phone: str) -> Optional[int]:
        found = self.entries.get(phone)
        return found[1] if found else None

    def read(self, phone: str, newest: Optional[int], at: int) -> None:
        """`phone` read whole at `at`, its newest message at `newest` (None: none newer than before)."""
        before = self.cursor(phone)
        cursor = before if newest is None else (newest if before is None else max(before, newest))
        self.entries[phone] = (cursor, at)

    def encode(self) -> str:
        lines = "\n".join(
            f"{phone} {'-' if cursor is None else cursor} {read}" for phone, (cursor, read) in sorted(self.entries.items())
        )
        return pack(VERSION, lines)

    @classmethod
    def decode(cls, text: object) -> "Book":
        """The book of a state; BookError naming what is wrong (never the phones)."""
        if not isinstance(text, str) or not text.startswith(VERSION):
            raise BookError(f"expected a string starting with {VERSION!r}, got {type(text).__name__}")
        try:
            lines = unpack(VERSION, text)
        except ValueError as error:
            raise BookError(f"not base64 of zlib-compressed text ({error})") from None
        entries: Dict[str, Tuple[Optional[int], int]] = {}
        for number, line in enumerate(lines.split("\n") if lines else [], start=1):
            parts = line.split(" ")
            if len(parts) != 3 or not parts[2].isdigit() or not (parts[1] == "-" or parts[1].lstrip("-").isdigit()):
                raise BookError(f"line {number} is not 'phone cursor last_read'")
            entries[parts[0]] = (None if parts[1] == "-" else int(parts[1]), int(parts[2]))
        return cls(entries)


def spread(phone: str, period: int) -> int:
    """A stable share of `period` for `phone` (its sweep's place in the period)."""
    return int(hashlib.md5(phone.encode()).hexdigest()[:8], 16) % max(period, 1)


def sweep_due(phone: str, last_read: Optional[int], at: int, days: int) -> bool:
    """Whether `phone`, last read at `last_read`, is due for the sweep at `at`: every phone is read at
    least once in `days` days, each between half a period and a period after its last read, at a
    point of its own (so that phones read together, by a first sync, are swept over half a period,
    not all at once)."""
    if last_read is None:
        return True
    period = days * DAY
    return at >= last_read + period // 2 + spread(phone, period // 2 + 1)


def shard_of(phone: str, count: int) -> int:
    """The shard a phone (in its one form) belongs to, of `count`: a stable hash, the same in every run."""
    return int(hashlib.sha256(phone.encode()).hexdigest()[:12], 16) % count


def start_of(config: Mapping[str, Any]) -> int:
    """The config's `start_date` as unix seconds (0 for none; the spec's validation reports a bad one)."""
    start_date = config.get("start_date")
    try:
        return calendar.timegm(time.strptime(start_date, "%Y-%m-%dT%H:%M:%SZ")) if start_date else 0
    except (TypeError, ValueError):
        return 0
