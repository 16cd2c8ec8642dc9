"""Faults on demand: which conversation requests fail (`Faults`, a seeded draw) and how each kind
of fault is answered (`answer`)."""

from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any


def error_body(code: int, text: str) -> dict[str, Any]:
    """The API's error answer."""
    return {"error": code, "errorMsg": text}

FAULT_KINDS = (
    "429", "429_no_retry_after", "500", "502", "503", "504", "error_105", "reset",
    "timeout", "truncated", "non_json", "html",
)


@dataclass
class Faults:
    """Which requests fail, and how.

    rate: the share of conversation requests that fail (chosen by a seeded random draw);
    kinds: the fault kinds to draw from; count: at most this many faults (None: no bound);
    pages: only requests for these pages fail (None: any page); phones: only these phones' (digits;
    None: any phone); max_consecutive: a request (phone
    and page) that failed this many times in a row is answered (None: no bound), so that a random
    draw never outlasts the connector's retries and the test stays deterministic in its outcome.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    count: int | None = None
    pages: tuple[int, ...] | None = None
    phones: tuple[str, ...] | None = None
    retry_after: int = 1
    timeout_seconds: float = 3.0
    seed: int = 0
    max_consecutive: int | None = None
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self._rng = random.Random(self.seed)
        self._streak: dict[tuple[str | None, int], int] = {}

    def draw(self, page: int, phone: str | None = None) -> str | None:
        if not self.kinds or self.rate <= 0:
            return None
        if self.pages is not None and page not in self.pages:
            return None
        if self.phones is not None and (phone or "").lstrip("+") not in {p.lstrip("+") for p in self.phones}:
            return None
        if self.count is not None and sum(self.injected.values()) >= self.count:
            return None
        streak = self._streak.pop((phone, page), 0)
        if self.max_consecutive is not None and streak >= self.max_consecutive:
            return None
        if self._rng.random() >= self.rate:
            return None
        self._streak[(phone, page)] = streak + 1
        kind = self._rng.choice(self.kinds)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


def answer(handler: Any, faults: Faults, kind: str, record: dict[str, Any], body: bytes) -> None:
    """Answer a request with the fault `kind` (`body`: the answer it would have had), through the
    server's request handler; `record` (the request log's entry) gets the status sent."""
    if kind == "429":
        record["status"] = 429
        return handler._json(429, error_body(429, "Too many requests"), headers={"Retry-After": str(faults.retry_after)})
    if kind == "429_no_retry_after":
        record["status"] = 429
        return handler._json(429, error_body(429, "Too many requests"))
    if kind in ("500", "502", "503", "504"):
        record["status"] = int(kind)
        return handler._json(int(kind), error_body(105, "Server error"))
    if kind == "error_105":
        record["status"] = 200
        return handler._json(200, error_body(105, "Something went wrong, please try again"))
    if kind == "html":
        record["status"] = 502
        return handler._send(502, b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>", "text/html")
    if kind == "non_json":
        record["status"] = 200
        return handler._send(200, b"Service temporarily unavailable", "text/plain")
    if kind == "truncated":
        record["status"] = 200
        # the announced length is the whole body, the connection closes half-way
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        return
    if kind == "reset":
        record["status"] = "reset"
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        handler.close_connection = True
        handler.connection.close()
        return
    if kind == "timeout":
        record["status"] = "timeout"
        time.sleep(faults.timeout_seconds)
        handler.close_connection = True
        return
    raise AssertionError(kind)
