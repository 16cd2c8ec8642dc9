"""The answers of the conversation endpoint: {"total", "shown", "page", "limit", "conversation"}."""

from __future__ import annotations

import json
from typing import Any, Optional

from airbyte_cdk.test.mock_http import HttpResponse


class ConversationResponseBuilder:
    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self._total: Optional[int] = None
        self._page = 1
        self._limit = 2000
        self._replace: Optional[tuple[bytes, bytes]] = None

    @classmethod
    def page(cls, page: int = 1, limit: int = 2000) -> "ConversationResponseBuilder":
        builder = cls()
        builder._page, builder._limit = page, limit
        return builder

    def with_messages(self, messages: list[dict[str, Any]]) -> "ConversationResponseBuilder":
        self._messages = list(messages)
        return self

    def with_total(self, total: int) -> "ConversationResponseBuilder":
        self._total = total
        return self

    def with_bytes_replaced(self, old: bytes, new: bytes) -> "ConversationResponseBuilder":
        """The body with `old` (UTF-8 text) replaced by `new` (e.g. a Latin-1 byte)."""
        self._replace = (old, new)
        return self

    def build(self) -> HttpResponse:
        total = len(self._messages) if self._total is None else self._total
        body = json.dumps(
            {"total": total, "shown": len(self._messages), "page": self._page, "limit": self._limit, "conversation": self._messages},
            ensure_ascii=False,
        ).encode()
        if self._replace:
            body = body.replace(*self._replace)
        return HttpResponse(body, 200)
