"""Conversation answers that break what paging assumes, the way a broken or unusual backend does:
the emulator serves them when its `variations` name them (from Python, from the control endpoint
`/_emulator/variations`, or `smstools-emulator --variation NAME`), beside the PHP shapes of
variations.py. Unlike those, these change what an answer means.

Data anomalies change what is served, not what is stored (`Emulator.conversation` gives the
messages as set); moving anomalies change the stored conversation as requests come, as the real
data would change under a read.
"""

from __future__ import annotations

import json
import random
from typing import Any

ANOMALIES = {
    # what the messages say
    "out_of_order": "the message at positions 99, 1099, 2099, ... 30 days older than its place (out of newest-first order)",
    "odd_times": "unixDatetime of the messages at positions 99, 199, 299, ... in turn -5, 0, missing and 2100-01-01",
    "shuffle_ties": "messages of one second in a different order on each request (SQL without a tie-breaker)",
    "not_utf8": "one character of every page 2 in Latin-1 ('è' as the one byte E8), not UTF-8",
    # what the envelope says
    "total_inflated": "total 1,000,000,000 whatever the conversation holds",
    "total_falling": "total 15% of the first answer's lower on each answer of the phone (1000, 850, 700, ...), data unchanged",
    "page_repeated": "every page number answered with page 1's messages (page as asked)",
    "page_ignored": "every page number answered with page 1 (page 1 said)",
    # the conversation moving under the read
    "arrivals": "a new message arrives at the top after each conversation answer",
    "delete_read": "after each conversation answer, its page's first message is deleted",
    "purge_oldest": "a retention job deletes the conversation's oldest message after each conversation answer",
    "swap_first_page": "after a phone's first page 1 answer, 7 of its messages are deleted and 7 older ones appear further down",
    "late_inserts": "after each of the first 50 conversation answers, a message dated between two others is inserted where its time puts it",
    "random_deletes": "after each conversation answer, one message anywhere in the conversation is deleted",
}

_FUTURE = 4_102_444_800  # 2100-01-01
_MISSING = object()


def check(names: set[str]) -> set[str]:
    return {n for n in names if n in ANOMALIES}


class Anomalies:
    """The active anomalies and what they remember (requests served per phone)."""

    def __init__(self, names: set[str], seed: int = 0) -> None:
        self.names = frozenset(names)
        self.served: dict[str, int] = {}
        self.first_total: dict[str, int] = {}
        self._rng = random.Random(seed)

    def __bool__(self) -> bool:
        return bool(self.names)

    def page(self, stored: list[dict[str, Any]], phone: str, page: int, limit: int) -> tuple[dict[str, Any], int]:
        """The payload of page `page` of `limit` from the `stored` conversation, and the offset of
        its first message."""
        messages = self._as_served(stored)
        served_page = 1 if self.names & {"page_repeated", "page_ignored"} else page
        chunk = messages[(served_page - 1) * limit : served_page * limit]
        total = 1_000_000_000 if "total_inflated" in self.names else len(messages)
        if "total_falling" in self.names:
            first = self.first_total.setdefault(phone, len(messages))
            total = max(first - (first * 15 // 100) * self.served.get(phone, 0), 0)
        said = 1 if "page_ignored" in self.names else page
        return {"total": total, "shown": len(chunk), "page": said, "limit": limit, "conversation": chunk}, (served_page - 1) * limit

    def encode(self, body: bytes, page: int) -> bytes:
        """`not_utf8`: the first character of page 2 that Latin-1 has, beyond ASCII, as its one
        Latin-1 byte (a text stored in Latin-1 as it came: 'è' as E8)."""
        if "not_utf8" in self.names and page == 2:
            text = body.decode("utf-8")
            for i, char in enumerate(text):
                if 0x80 <= ord(char) <= 0xFF:
                    return text[:i].encode() + char.encode("latin-1") + text[i + 1 :].encode()
        return body

    def after_answer(self, stored: list[dict[str, Any]], phone: str, page: int, limit: int, served: list[dict[str, Any]]) -> None:
        """How the stored conversation moves once an answer is sent (called under the emulator's lock)."""
        count = self.served[phone] = self.served.get(phone, 0) + 1
        if "arrivals" in self.names:
            newest = max((m.get("unixDatetime") or 0 for m in stored if isinstance(m.get("unixDatetime"), int)), default=1_749_113_086)
            message = dict(stored[0]) if stored else {"direction": "inbound", "sender": phone, "receiver": "Smstools"}
            message.update({"messageId": f"arrival-{phone}-{count}", "unixDatetime": newest + 60, "message": f"arrival {count}"})
            stored.insert(0, message)
        if "delete_read" in self.names and served:
            first = served[0]
            for i, m in enumerate(stored):
                if m is first or m == first:
                    del stored[i]
                    break
        if "purge_oldest" in self.names and stored:
            stored.pop()
        if "late_inserts" in self.names and len(stored) >= 2 and count <= 50:
            at = self._rng.randrange(1, len(stored))
            newer, older = stored[at - 1].get("unixDatetime"), stored[at].get("unixDatetime")
            if isinstance(newer, int) and isinstance(older, int) and newer >= older:
                message = {**stored[at], "messageId": f"late-{phone}-{count}", "message": f"late {count}",
                           "unixDatetime": self._rng.randint(older, newer)}
                stored.insert(at, message)
        if "random_deletes" in self.names and stored:
            del stored[self._rng.randrange(len(stored))]
        if "swap_first_page" in self.names and page == 1 and count == 1 and len(stored) > 2 * limit:
            deleted = stored[limit - 10 : limit - 3]  # 7 of page 1, near its end
            del stored[limit - 10 : limit - 3]
            # 7 older messages appear further down, on the last page, each a second after the
            # message it follows (in order, so nothing looks out of place)
            at = len(stored) - 3
            anchor = stored[at - 1]["unixDatetime"]
            older = [
                {**m, "messageId": f"late-{phone}-{i}", "unixDatetime": anchor - 1 - i, "message": f"late {i}"}
                for i, m in enumerate(deleted)
            ]
            stored[at:at] = older

    def _as_served(self, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.names & {"out_of_order", "odd_times", "shuffle_ties"}:
            return stored
        messages = [dict(m) for m in stored]
        if "out_of_order" in self.names:
            for i in range(99, len(messages), 1000):
                messages[i]["unixDatetime"] -= 30 * 86_400
        if "odd_times" in self.names:
            for n, i in enumerate(range(99, len(messages), 100)):
                value = (-5, 0, _MISSING, _FUTURE)[n % 4]
                if value is _MISSING:
                    messages[i].pop("unixDatetime", None)
                else:
                    messages[i]["unixDatetime"] = value
        if "shuffle_ties" in self.names:
            messages = self._shuffled(messages)
        return messages

    def _shuffled(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        i = 0
        while i < len(messages):
            j = i + 1
            while j < len(messages) and messages[j].get("unixDatetime") == messages[i].get("unixDatetime"):
                j += 1
            group = messages[i:j]
            self._rng.shuffle(group)
            result.extend(group)
            i = j
        return result


