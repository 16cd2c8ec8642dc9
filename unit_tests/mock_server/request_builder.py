"""The requests of the conversation endpoint, as HttpMocker matches them."""

from __future__ import annotations

from typing import Optional

from airbyte_cdk.test.mock_http import HttpRequest

BASE = "https://api.example.test"
CLIENT_ID, CLIENT_SECRET = "id-1", "secret-1"
HEADERS = {"X-Client-Id": CLIENT_ID, "X-Client-Secret": CLIENT_SECRET}


def config(**overrides) -> dict:
    """A config for the mocked API: listed phones, change detection off (conversation requests only)."""
    return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "base_url": BASE, "change_detection": False, **overrides}


class ConversationRequestBuilder:
    """GET /v1/conversation/{phone}?limit=L[&page=P]: the first request carries no page."""

    def __init__(self, phone: str) -> None:
        self._phone = phone.lstrip("+")
        self._limit = 2000
        self._page: Optional[int] = None

    @classmethod
    def of(cls, phone: str) -> "ConversationRequestBuilder":
        return cls(phone)

    def with_limit(self, limit: int) -> "ConversationRequestBuilder":
        self._limit = limit
        return self

    def with_page(self, page: int) -> "ConversationRequestBuilder":
        self._page = page
        return self

    def build(self) -> HttpRequest:
        params = {"limit": str(self._limit)}
        if self._page is not None:
            params["page"] = str(self._page)
        return HttpRequest(f"{BASE}/v1/conversation/{self._phone}", query_params=params, headers=HEADERS)
