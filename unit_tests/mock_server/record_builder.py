"""Messages of a conversation, as the API sends them."""

from __future__ import annotations

from typing import Any

_UNSET = object()


class MessageBuilder:
    """An outbound message with a messageId (its `id`), at `at` (unixDatetime)."""

    def __init__(self, message_id: str, at: Any, phone: str = "393331234567") -> None:
        self._message = {
            "messageId": message_id,
            "direction": "outbound",
            "sender": "Smstools",
            "receiver": phone,
            "message": f"text {message_id}",
            "file": None,
            "datetime": "05 jun 2025, 08:44:46",
            "unixDatetime": at,
            "deliveryStatus": "DELIVERED",
        }

    def with_text(self, text: str) -> "MessageBuilder":
        self._message["message"] = text
        return self

    def without_time(self) -> "MessageBuilder":
        del self._message["unixDatetime"]
        return self

    def build(self) -> dict[str, Any]:
        return dict(self._message)


def messages(prefix: str, times: list[Any]) -> list[dict[str, Any]]:
    """One message per time, newest first as given, with ids prefix0, prefix1, ..."""
    return [MessageBuilder(f"{prefix}{i}", at).build() for i, at in enumerate(times)]
