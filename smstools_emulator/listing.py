"""Which messages the inbox and the message log list: an account whose lists leave some out.

The API describes an inbox per virtual number (`/v1/message/inbox/{id}`) and a `type` filter
(sms, whatsapp, call): the default lists may well leave whole conversations out. Two switches
serve such an account: phones whose messages appear in neither list (`unlisted_phones`), and an
inbox that lists only some kinds of message (`inbox_types`; each phone's messages are of the kind
`kinds` names, sms when it names none). The message log lists every kind.

Each phone texts one of the account's virtual numbers (`numbers`: phone digits -> the number's
`ID` in /v1/vmn; the first number when it names none): its inbound messages are received on it, and
`/v1/message/inbox/{ID}` lists them. `inbox_number` makes `/v1/message/inbox` list only the
messages of one number, as an account whose inbox shows its main number alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class Listing:
    unlisted_phones: set[str] = field(default_factory=set)  # phone digits
    kinds: dict[str, str] = field(default_factory=dict)  # phone digits -> "sms", "whatsapp" or "call"
    inbox_types: Optional[set[str]] = None  # the kinds the inbox lists; None: every kind
    numbers: dict[str, int] = field(default_factory=dict)  # phone digits -> the ID of the virtual number it texts
    inbox_number: Optional[int] = None  # the one virtual number /v1/message/inbox lists; None: every one

    def kind(self, phone: str) -> str:
        return self.kinds.get(phone.lstrip("+"), "sms")

    def number(self, phone: str, first: int) -> int:
        """The ID of the virtual number `phone` texts (`first`: the account's first)."""
        return self.numbers.get(phone.lstrip("+"), first)

    def lists(self, source: str, phone: str) -> bool:
        """Whether `source` ("inbox" or "log") lists the messages of `phone`."""
        digits = phone.lstrip("+")
        if digits in self.unlisted_phones:
            return False
        return source != "inbox" or self.inbox_types is None or self.kind(digits) in self.inbox_types

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> "Listing":
        """{"unlisted_phones": [...], "kinds": {phone: kind}, "inbox_types": [...] or null,
        "numbers": {phone: ID}, "inbox_number": ID or null}"""
        types = payload.get("inbox_types")
        return cls(
            unlisted_phones={str(p).lstrip("+") for p in payload.get("unlisted_phones") or []},
            kinds={str(p).lstrip("+"): str(k) for p, k in (payload.get("kinds") or {}).items()},
            inbox_types=None if types is None else {str(t) for t in types},
            numbers={str(p).lstrip("+"): int(i) for p, i in (payload.get("numbers") or {}).items()},
            inbox_number=None if payload.get("inbox_number") is None else int(payload["inbox_number"]),
        )
