"""An emulator of the Smstools API: a real HTTP server on 127.0.0.1.

It serves conversations newest first, paginated as documented (`limit` 1..2000, `page` from 1,
`{"total","shown","page","limit","conversation"}`), checks the X-Client-Id / X-Client-Secret
headers, answers the documented error bodies, records every request it serves and injects faults
on demand. The tests, `make demo` and `make bench` all use it, in-process or as its own process:

    python -m integration_tests.emulator --port 8765 --phones 3 --messages 500

Tests drive it through the Python API (`Emulator`); another process drives it over HTTP through
the control endpoints under `/_emulator/` (see `_control`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CLIENT_ID = "emulator-client"
CLIENT_SECRET = "emulator-secret-5f3c9a"  # tests scan every output for this value
SENDER = "Smstools"
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

FAULT_KINDS = (
    "429", "429_no_retry_after", "500", "502", "503", "504", "error_105", "reset",
    "timeout", "truncated", "non_json", "html",
)

_TEXTS_OUT = [
    "Ciao {name}, il tuo appuntamento è confermato per domani alle 10:30. 📅",
    "Gentile {name}, il suo ordine #{n} è stato spedito 🚚",
    "Hi {name}, your verification code is {n}",
    "Promemoria: la fattura {n} scade venerdì. Grazie! 🙏",
    "Buongiorno {name}! Offerta speciale: -20% fino a domenica 🎉",
    "Your parcel {n} will arrive today between 14:00 and 18:00.",
]
_TEXTS_IN = [
    "Grazie mille, a domani! 😊",
    "Posso spostare l'appuntamento a giovedì?",
    "STOP",
    "Ok 👍",
    "Non ho ricevuto il codice, potete reinviarlo?",
    "Perfetto, ci vediamo là. Ciao!",
]
_NAMES = ["Giulia", "Marco", "Sofia", "Luca", "Chiara", "Matteo", "Anna", "Pieter"]
_STATUSES = ["DELIVERED"] * 8 + ["FAILED", "PENDING", "EXPIRED"]


def format_datetime(ts: int) -> str:
    """The API's `datetime` text: '05 jun 2025, 08:44:46' (UTC)."""
    t = time.gmtime(ts)
    return f"{t.tm_mday:02d} {MONTHS[t.tm_mon - 1]} {t.tm_year}, {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def make_message(phone: str, ts: int, rng: random.Random, n: int) -> dict[str, Any]:
    """One realistic message of `phone`'s conversation at `ts`."""
    digits = phone.lstrip("+")
    if rng.random() < 0.62:
        text = rng.choice(_TEXTS_OUT).format(name=rng.choice(_NAMES), n=rng.randint(1000, 99999))
        msg: dict[str, Any] = {
            "messageId": hashlib.md5(f"{digits}:{ts}:{n}".encode()).hexdigest()[:24],
            "direction": "outbound",
            "sender": SENDER,
            "receiver": digits,
            "message": text,
            "file": None,
            "datetime": format_datetime(ts),
            "unixDatetime": ts,
            "deliveryStatus": rng.choice(_STATUSES),
        }
        if rng.random() < 0.5:
            msg["mine"] = True
    else:
        msg = {
            "messageId": None,
            "direction": "inbound",
            "sender": digits,
            "receiver": SENDER,
            "message": rng.choice(_TEXTS_IN),
            "file": None,
            "datetime": format_datetime(ts),
            "unixDatetime": ts,
            "deliveryStatus": "RECEIVED",
        }
    roll = rng.random()
    if roll < 0.04:  # the API's docs disagree on list vs object: serve both
        msg["file"] = [{"name": f"foto_{n}.jpg", "image": f"https://files.example/{n}.jpg", "mime": "image/jpeg"}]
    elif roll < 0.06:
        msg["file"] = {"name": f"ricevuta_{n}.pdf", "image": f"https://files.example/{n}.pdf", "mime": "application/pdf"}
    return msg


def make_conversation(phone: str, count: int, newest: int = 1_749_113_086, seed: int = 0, step: int = 3_607) -> list[dict[str, Any]]:
    """`count` messages of `phone`, newest first, the newest at `newest` (unix seconds)."""
    rng = random.Random(f"{seed}:{phone}")
    return [make_message(phone, newest - i * step - rng.randint(0, 59), rng, i) for i in range(count)]


def sample_phones(count: int) -> list[str]:
    return [f"+39333{1000000 + i:07d}" for i in range(count)]


@dataclass
class Faults:
    """Which requests fail, and how.

    rate: the share of conversation requests that fail (chosen by a seeded random draw);
    kinds: the fault kinds to draw from; count: at most this many faults (None: no bound);
    pages: only requests for these pages fail (None: any page).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    count: int | None = None
    pages: tuple[int, ...] | None = None
    retry_after: int = 1
    timeout_seconds: float = 3.0
    seed: int = 0
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self._rng = random.Random(self.seed)

    def draw(self, page: int) -> str | None:
        if not self.kinds or self.rate <= 0:
            return None
        if self.pages is not None and page not in self.pages:
            return None
        if self.count is not None and sum(self.injected.values()) >= self.count:
            return None
        if self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(self.kinds)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


class Emulator:
    """The API's state and behaviour; `start()` serves it on 127.0.0.1."""

    def __init__(
        self,
        conversations: dict[str, list[dict[str, Any]]] | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        auth_error_status: int = 401,
        latency: float = 0.0,
        port: int = 0,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_error_status = auth_error_status  # the real API's status for error bodies is undocumented
        self.latency = latency
        self.error: dict[str, Any] | None = None  # when set, every request gets this error body
        self.faults = Faults()
        self.requests: list[dict[str, Any]] = []
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        self._page_cache: dict[tuple[str, int, int], bytes] = {}
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        for phone, messages in (conversations or {}).items():
            self.set_conversation(phone, messages)

    # -- data -------------------------------------------------------------------------------
    @staticmethod
    def key(phone: str) -> str:
        return phone.lstrip("+")

    def set_conversation(self, phone: str, messages: list[dict[str, Any]]) -> None:
        """Replace `phone`'s conversation; `messages` newest first."""
        with self._lock:
            self._conversations[self.key(phone)] = list(messages)
            self._page_cache.clear()

    def add_messages(self, phone: str, messages: list[dict[str, Any]]) -> None:
        """New messages arrive: they go in front, as the newest."""
        with self._lock:
            current = self._conversations.setdefault(self.key(phone), [])
            current[:0] = sorted(messages, key=lambda m: m.get("unixDatetime") or 0, reverse=True)
            self._page_cache.clear()

    def conversation(self, phone: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._conversations.get(self.key(phone), []))

    def phones(self) -> list[str]:
        with self._lock:
            return list(self._conversations)

    def set_faults(self, **kwargs: Any) -> Faults:
        self.faults = Faults(**kwargs)
        return self.faults

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def conversation_requests(self, phone: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                r for r in self.requests
                if r["path"].startswith("/v1/conversation/") and (phone is None or r["phone"] == self.key(phone))
            ]

    # -- serving ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() the emulator first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "Emulator":
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def page_body(self, phone: str, page: int, limit: int) -> bytes:
        cache_key = (phone, page, limit)
        with self._lock:
            body = self._page_cache.get(cache_key)
            if body is None:
                messages = self._conversations.get(phone, [])
                chunk = messages[(page - 1) * limit : page * limit]
                body = json.dumps(
                    {"total": len(messages), "shown": len(chunk), "page": page, "limit": limit, "conversation": chunk},
                    ensure_ascii=False,
                ).encode()
                self._page_cache[cache_key] = body
        return body


def _error_body(code: int, text: str) -> dict[str, Any]:
    return {"error": code, "errorMsg": text}


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the request log instead
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode(), headers=headers)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        if url.path.startswith("/_emulator/"):
            self._control(url.path.removeprefix("/_emulator/"), payload)
        else:
            self._json(404, _error_body(404, "not found"))

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/_emulator/"):
            return self._control(url.path.removeprefix("/_emulator/"), {})
        emulator = self.emulator
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        record: dict[str, Any] = {"path": url.path, "query": query, "phone": None, "page": None, "status": None, "fault": None, "time": time.time()}
        with emulator._lock:
            emulator.requests.append(record)
        if emulator.latency:
            time.sleep(emulator.latency)

        if (self.headers.get("X-Client-Id"), self.headers.get("X-Client-Secret")) != (emulator.client_id, emulator.client_secret):
            record["status"] = emulator.auth_error_status
            return self._json(emulator.auth_error_status, _error_body(104, "Invalid client ID or client secret"))
        if emulator.error is not None:
            record["status"] = 200
            return self._json(200, emulator.error)

        if not url.path.startswith("/v1/conversation/"):
            record["status"] = 404
            return self._json(404, _error_body(404, "Unknown endpoint"))
        phone = emulator.key(unquote(url.path.removeprefix("/v1/conversation/")))
        record["phone"] = phone
        try:
            limit = int(query.get("limit", 1000))
            assert 1 <= limit <= 2000
        except (ValueError, AssertionError):
            record["status"] = 200
            return self._json(200, _error_body(135, "Invalid limit"))
        try:
            page = int(query.get("page", 1))
            assert page >= 1
        except (ValueError, AssertionError):
            record["status"] = 200
            return self._json(200, _error_body(136, "Invalid page"))
        record["page"], record["limit"] = page, limit

        fault = emulator.faults.draw(page)
        record["fault"] = fault
        if fault:
            return self._fault(fault, record, emulator.page_body(phone, page, limit))
        record["status"] = 200
        self._send(200, emulator.page_body(phone, page, limit))

    def _fault(self, kind: str, record: dict[str, Any], body: bytes) -> None:
        faults = self.emulator.faults
        if kind == "429":
            record["status"] = 429
            return self._json(429, _error_body(429, "Too many requests"), headers={"Retry-After": str(faults.retry_after)})
        if kind == "429_no_retry_after":
            record["status"] = 429
            return self._json(429, _error_body(429, "Too many requests"))
        if kind in ("500", "502", "503", "504"):
            record["status"] = int(kind)
            return self._json(int(kind), _error_body(105, "Server error"))
        if kind == "error_105":
            record["status"] = 200
            return self._json(200, _error_body(105, "Something went wrong, please try again"))
        if kind == "html":
            record["status"] = 502
            return self._send(502, b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>", "text/html")
        if kind == "non_json":
            record["status"] = 200
            return self._send(200, b"Service temporarily unavailable", "text/plain")
        if kind == "truncated":
            record["status"] = 200
            # the announced length is the whole body, the connection closes half-way
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if kind == "reset":
            record["status"] = "reset"
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            self.connection.close()
            return
        if kind == "timeout":
            record["status"] = "timeout"
            time.sleep(faults.timeout_seconds)
            self.close_connection = True
            return
        raise AssertionError(kind)

    def _control(self, action: str, payload: dict[str, Any]) -> None:
        """Control endpoints, for an emulator running as its own process."""
        emulator = self.emulator
        if action == "requests":
            with emulator._lock:
                return self._json(200, emulator.requests)
        if action == "clear_requests":
            emulator.clear_requests()
            return self._json(200, {"ok": True})
        if action == "add_messages":  # {"phone": ..., "count": N} or {"phone": ..., "messages": [...]}
            phone = payload["phone"]
            messages = payload.get("messages")
            if messages is None:
                current = emulator.conversation(phone)
                newest = max((m.get("unixDatetime") or 0 for m in current), default=1_749_113_086)
                rng = random.Random(f"new:{phone}:{newest}")
                messages = [make_message(phone, newest + 60 * (i + 1), rng, len(current) + i) for i in range(payload["count"])]
            emulator.add_messages(phone, messages)
            return self._json(200, {"added": len(messages)})
        if action == "faults":
            emulator.set_faults(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload.items()})
            return self._json(200, {"ok": True})
        if action == "latency":
            emulator.latency = float(payload.get("seconds", 0))
            return self._json(200, {"ok": True})
        if action == "summary":
            return self._json(200, {p: len(emulator.conversation(p)) for p in emulator.phones()})
        self._json(404, _error_body(404, f"unknown control action {action}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--phones", type=int, default=3, help="how many sample conversations")
    parser.add_argument("--messages", type=int, default=500, help="messages per conversation")
    parser.add_argument("--conversation", action="append", default=[], metavar="PHONE=COUNT", help="one conversation of COUNT messages (repeatable)")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    conversations = {p: make_conversation(p, args.messages, seed=args.seed) for p in sample_phones(args.phones)}
    for item in args.conversation:
        phone, count = item.split("=")
        conversations[phone] = make_conversation(phone, int(count), seed=args.seed)
    emulator = Emulator(conversations, latency=args.latency_ms / 1000, port=args.port).start()
    print(f"emulator listening on {emulator.url} ({len(conversations)} conversations)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
