"""An emulator of the Smstools API: a real HTTP server on 127.0.0.1.

It serves conversations newest first, paginated as documented (`limit` 1..2000, `page` from 1,
`{"total","shown","page","limit","conversation"}`), checks the X-Client-Id / X-Client-Secret
headers, answers the documented error bodies, records every request it serves and injects faults
on demand (the data is in data.py, the faults in faults.py). The tests, `make demo` and `make
bench` all use it, in-process or as its own process:

    smstools-emulator --port 8765 --phones 3 --messages 500

Tests drive it through the Python API (`Emulator`); another process drives it over HTTP through
the control endpoints under `/_emulator/` (see `_control`).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from smstools_emulator import anomalies as odd
from smstools_emulator import faults as faulty
from smstools_emulator import variations as php
from smstools_emulator.listing import Listing
from smstools_emulator.data import Account, make_conversation, make_message, sample_phones
from smstools_emulator.faults import Faults, error_body as _error_body
from smstools_emulator.shapes import Shapes, load_report

CLIENT_ID = "emulator-client"
CLIENT_SECRET = "emulator-secret-5f3c9a"  # tests scan every output for this value


class Emulator(Account):
    """The API's behaviour over an account's data (data.Account); `start()` serves it on 127.0.0.1."""

    def __init__(
        self,
        conversations: dict[str, list[dict[str, Any]]] | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        auth_error_status: int = 401,
        latency: float = 0.0,
        port: int = 0,
        shapes: Shapes | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_error_status = auth_error_status  # the real API's status for error bodies is undocumented
        self.latency = latency
        self.shapes = shapes  # a shapes.Shapes: answers shaped as a probe report says
        self.error: dict[str, Any] | None = None  # when set, every request gets this error body
        self._variations: frozenset[str] = frozenset()  # see `variations`
        self.anomalies = odd.Anomalies(set())  # the variations that break paging (anomalies.py)
        self.faults = Faults()
        self.requests: list[dict[str, Any]] = []
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        super().__init__(conversations)

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    @property
    def variations(self) -> frozenset[str]:
        """How the answers differ from the documented shape (smstools_emulator.variations.VARIATIONS)."""
        return self._variations

    @variations.setter
    def variations(self, names: Any) -> None:
        names = set(names)
        broken = odd.check(names)
        chosen = frozenset(php.check(names - broken))
        with self._lock:
            self._variations = chosen
            self.anomalies = odd.Anomalies(broken)
            self._page_cache.clear()

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
        if self.anomalies:
            with self._lock:
                stored = self._conversations.setdefault(phone, [])
                payload, offset = self.anomalies.page(stored, phone, page, limit)
                body = self.anomalies.encode(php.encode(payload, self._variations, "conversation", offset), page)
                self.anomalies.after_answer(stored, phone, page, limit, payload["conversation"])
                self._derived.clear()
            return body
        with self._lock:
            cache_key = (phone, page, limit, self._variations)
            body = self._page_cache.get(cache_key)
            if body is None:
                messages = self._conversations.get(phone, [])
                chunk = messages[(page - 1) * limit : page * limit]
                payload = {"total": len(messages), "shown": len(chunk), "page": page, "limit": limit, "conversation": chunk}
                body = php.encode(payload, self._variations, "conversation", (page - 1) * limit)
                self._page_cache[cache_key] = body
        return body


def _page(entries: list[dict[str, Any]], start: int, stop: int, order: str = "newest_first") -> tuple[int, list[dict[str, Any]]]:
    """A list's total and copies of its entries from `start` to `stop`, in `order` (the inbox's and
    the log's: newest first as built, oldest first, or shuffled the same way for every page); only
    the page's entries are copied."""
    if order == "oldest_first":
        entries = entries[::-1]
    elif order != "newest_first":
        entries = list(entries)
        random.Random(len(entries)).shuffle(entries)
    chunk = entries[start:stop]  # a test's answer may be no list of entries: served as it is
    return len(entries), [dict(e) if isinstance(e, dict) else e for e in chunk] if isinstance(chunk, list) else chunk



class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: with Nagle on, each answer waited ~40 ms for the
    # client's delayed ACK (400 phones: 4.8 s against 1.0 s)
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the request log instead
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None) -> None:
        if self.emulator.shapes is not None:
            status, body, content_type = self.emulator.shapes.answer(self.path, status, body, content_type)
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
            return self._account(url.path, query, record)
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

        fault = emulator.faults.draw(page, phone)
        record["fault"] = fault
        if fault:
            return faulty.answer(self, emulator.faults, fault, record, emulator.page_body(phone, page, limit))
        record["status"] = 200
        self._send(200, emulator.page_body(phone, page, limit), php.content_type(emulator.variations))

    def _account(self, path: str, query: dict[str, str], record: dict[str, Any]) -> None:
        """The account's other endpoints, shaped as API.md gives them."""
        emulator = self.emulator
        replaced = vars(emulator)  # a list's method a test replaced (hostile or typed entries): served as it gives it

        def own(name: str, page_of: Any, order: str = "newest_first") -> Any:
            if name in replaced:
                return lambda a, b: _page(replaced[name](), a, b, order)
            return page_of

        order = emulator.list_order
        enveloped = {  # paged, {"total","shown","page","limit",<key>: [...]}: (start, stop) -> (total, entries)
            "/v1/contact": ("contacts", own("contacts", emulator.contacts_page)),
            "/v1/message/inbox": ("messages", own("inbox", lambda a, b: _page(emulator.inbox(shared=True), a, b, order), order)),
            "/v1/outbox": ("messages", lambda a, b: _page(emulator.outbox(), a, b)),
            "/v1/message/logging": ("messages", own("message_log", lambda a, b: _page(emulator.message_log(shared=True), a, b, order), order)),
        }
        lists = {  # a bare list; only /v1/groups pages
            "/v1/groups": lambda: emulator.groups,
            "/v1/optouts/list": emulator.optouts,
            "/v1/messagetemplates": lambda: emulator.templates,
            "/v1/senderids": lambda: emulator.sender_ids,
            "/v1/vmn": lambda: emulator.virtual_numbers,
        }
        number = re.fullmatch(r"/v1/message/inbox/([0-9]+)", path)
        if number and any(str(v.get("ID")) == number.group(1) for v in emulator.virtual_numbers):
            # one virtual number's inbox (an ID the account does not have: 404, as an unknown path)
            enveloped[path] = ("messages", lambda a, b: _page(emulator.inbox(int(number.group(1)), shared=True), a, b))
        if path not in enveloped and path not in lists and path not in ("/v1/balance", "/v1/statistics"):
            record["status"] = 404
            return self._json(404, _error_body(404, "Unknown endpoint"))
        how = emulator.forbidden.get(path)
        if how == "403":
            record["status"] = 403
            return self._json(403, _error_body(403, "Forbidden: this API call is not enabled for your account"))
        if how == "error":
            record["status"] = 200
            return self._json(200, _error_body(110, "This API call is not enabled for your account"))
        record["status"] = 200
        if path == "/v1/balance":
            return self._data(emulator.balance)
        if path == "/v1/statistics":
            try:
                year, month = int(query["year"]), int(query["month"])
                assert 1 <= month <= 12
            except (KeyError, ValueError, AssertionError):
                return self._json(200, _error_body(141, "Invalid year or month"))
            record["page"] = f"{year}-{month:02d}"
            return self._data(emulator.statistics(year, month))
        if path in lists and path != "/v1/groups":
            return self._data(lists[path]())
        try:
            limit = int(query.get("limit", 1000))
            assert 1 <= limit <= 2000
        except (ValueError, AssertionError):
            return self._json(200, _error_body(135, "Invalid limit"))
        try:
            page = int(query.get("page", 1))
            assert page >= 1
        except (ValueError, AssertionError):
            return self._json(200, _error_body(136, "Invalid page"))
        record["page"], record["limit"] = page, limit
        if path == "/v1/groups":
            return self._data(lists[path]()[(page - 1) * limit : page * limit], offset=(page - 1) * limit)
        key, page_of = enveloped[path]
        total, chunk = page_of((page - 1) * limit, page * limit)
        self._data({"total": total, "shown": len(chunk), "page": page, "limit": limit, key: chunk}, key, (page - 1) * limit)

    def _data(self, payload: Any, records_key: str | None = None, offset: int = 0) -> None:
        """A successful data answer, with the emulator's variations."""
        active = self.emulator.variations
        self._send(200, php.encode(payload, active, records_key, offset), php.content_type(active))


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
        if action == "add_contact":  # {"phone": ..., other contact fields}
            phone = payload.pop("phone", None)
            return self._json(200, emulator.add_contact(phone, **payload))
        if action == "forbid":  # {"path": "/v1/outbox", "how": "403" | "error" | null}
            emulator.forbid(payload["path"], payload.get("how", "403"))
            return self._json(200, {"ok": True})
        if action == "variations":  # {"variations": ["bom", ...]}: how answers differ from the documented shape
            emulator.variations = payload.get("variations") or []
            return self._json(200, {"variations": sorted(emulator.variations | emulator.anomalies.names)})
        if action == "listing":  # {"unlisted_phones": [...], "kinds": {phone: kind}, "inbox_types": [...]}
            emulator.set_listing(Listing.from_json(payload))
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
    parser.add_argument("--shapes", metavar="REPORT", help="answer with the shapes of a source-smstools-probe JSON report")
    parser.add_argument(
        "--variation", action="append", default=[], choices=sorted({**php.VARIATIONS, **odd.ANOMALIES}), metavar="NAME",
        help="answer the way a PHP backend may (repeatable): " + "; ".join(f"{k}: {v}" for k, v in php.VARIATIONS.items())
        + "; or the way a broken backend does: " + "; ".join(f"{k}: {v}" for k, v in odd.ANOMALIES.items()),
    )
    args = parser.parse_args()
    conversations = {p: make_conversation(p, args.messages, seed=args.seed) for p in sample_phones(args.phones)}
    for item in args.conversation:
        phone, count = item.split("=")
        conversations[phone] = make_conversation(phone, int(count), seed=args.seed)
    shapes = load_report(args.shapes) if args.shapes else None
    emulator = Emulator(conversations, latency=args.latency_ms / 1000, port=args.port, shapes=shapes)
    emulator.variations = args.variation
    emulator.start()
    print(f"emulator listening on {emulator.url} ({len(conversations)} conversations)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()