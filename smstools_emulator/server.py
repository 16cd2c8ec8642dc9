"""An emulator of the Smstools API: a real HTTP server on 127.0.0.1.

It serves conversations newest first, paginated as documented (`limit` 1..2000, `page` from 1,
`{"total","shown","page","limit","conversation"}`), checks the X-Client-Id / X-Client-Secret
headers, answers the documented error bodies, records every request it serves and injects faults
on demand. The tests, `make demo` and `make bench` all use it, in-process or as its own process:

    smstools-emulator --port 8765 --phones 3 --messages 500

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

from smstools_emulator.shapes import Shapes, load_report
from smstools_emulator import anomalies as odd
from smstools_emulator import variations as php

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


# -- the account's other data -----------------------------------------------------------------
# Derived from the conversations, so that the same phones appear in contacts, inbox and message
# log, each written in one of the forms people and systems use (the connector reduces them to one).
PHONE_STYLES = ("plus", "digits", "00", "spaced", "dashed")
GROUPS = [
    {"ID": 1, "name": "Clienti", "locked": 0, "whatsapp": 0},
    {"ID": 2, "name": "VIP", "locked": 1, "whatsapp": 1},
    {"ID": 3, "name": "Fornitori", "locked": 0, "whatsapp": 0},
]
TEMPLATES = [
    {"ID": 11, "title": "Conferma appuntamento", "message": "Ciao {name}, confermiamo il tuo appuntamento.", "order": 1},
    {"ID": 12, "title": "Spedizione", "message": "Il tuo ordine è stato spedito 🚚", "order": 2},
    {"ID": 13, "title": "Verification code", "message": "Your verification code is {code}", "order": 3},
]
SENDER_IDS = [{"ID": 21, "name": SENDER, "order": 1}, {"ID": 22, "name": "MyShop", "order": 2}]
VIRTUAL_NUMBERS = [{"ID": 31, "number": "3278800100", "countrycode": "39"}, {"ID": 32, "number": "470998877", "countrycode": "32"}]
BALANCE = {"credits": 1234.5, "currency": "EUR", "use": "credits"}
_SURNAMES = ["Rossi", "Bianchi", "Esposito", "Romano", "Colombo", "Peeters", "Ricci", "Marino"]


def phone_form(phone: str, style: str) -> str:
    """`phone` (international, with or without +) written in `style`."""
    d = phone.lstrip("+")
    forms = {
        "plus": "+" + d,
        "digits": d,
        "00": "00" + d,
        "spaced": f"+{d[:2]} {d[2:5]} {d[5:8]} {d[8:]}".rstrip(),
        "dashed": f"{d[:2]}-{d[2:5]}-{d[5:]}",
    }
    return forms[style]


def default_style(phone: str, source: str) -> str:
    return PHONE_STYLES[int(hashlib.md5(f"{source}:{phone.lstrip('+')}".encode()).hexdigest()[:4], 16) % len(PHONE_STYLES)]


def api_date(ts: int) -> str:
    """The `date` of inbox, log, outbox and opt-out entries: 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def stable_id(*parts: Any) -> int:
    return int(hashlib.md5(":".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def make_contact(phone: str | None, contact_id: int, **fields: Any) -> dict[str, Any]:
    """A contact as /v1/contact lists it; `phone` is stored exactly as given."""
    rng = random.Random(f"contact:{contact_id}")
    first, last = rng.choice(_NAMES), rng.choice(_SURNAMES)
    contact = {
        "ID": contact_id,
        "phone": phone,
        "firstname": first,
        "lastname": last,
        "unsubscribed": 0,
        "groupid": rng.choice([1, 1, 2, 3]),
        "email": f"{first}.{last}{contact_id}@example.com".lower(),
        "birthday": rng.choice([None, f"19{rng.randint(50, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"]),
        "memo": rng.choice(["", "cliente dal 2019", "preferisce WhatsApp"]),
    }
    contact.update(fields)
    return contact


@dataclass
class Faults:
    """Which requests fail, and how.

    rate: the share of conversation requests that fail (chosen by a seeded random draw);
    kinds: the fault kinds to draw from; count: at most this many faults (None: no bound);
    pages: only requests for these pages fail (None: any page); max_consecutive: a request (phone
    and page) that failed this many times in a row is answered (None: no bound), so that a random
    draw never outlasts the connector's retries and the test stays deterministic in its outcome.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    count: int | None = None
    pages: tuple[int, ...] | None = None
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
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        self._page_cache: dict[tuple[str, int, int], bytes] = {}
        self._lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        # The account's other data. Contacts, inbox, message log, outbox, opt-outs and statistics
        # are derived from the conversations unless a test sets them (see `contacts`, `inbox`, ...).
        self._contacts: list[dict[str, Any]] | None = None  # None: one contact per conversation
        self._derived: dict[str, list[dict[str, Any]]] = {}
        self.forms: dict[str, dict[str, str]] = {}  # phone digits -> {"contacts"|"inbox"|"log": as written there}
        self.groups = [dict(g) for g in GROUPS]
        self.templates = [dict(t) for t in TEMPLATES]
        self.sender_ids = [dict(s) for s in SENDER_IDS]
        self.virtual_numbers = [dict(v) for v in VIRTUAL_NUMBERS]
        self.balance: dict[str, Any] = dict(BALANCE)
        self.forbidden: dict[str, str] = {}  # path -> "403" or "error": this account may not use it
        # The API's inbox and message log are newest first here; their real order is undocumented.
        # "oldest_first" or "shuffled" serves them so (paged after the reordering).
        self.list_order = "newest_first"
        self.unlisted: set[tuple[str, int]] = set()  # (phone digits, unixDatetime): left out of inbox and log
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
            self._derived.clear()

    def add_messages(self, phone: str, messages: list[dict[str, Any]]) -> None:
        """New messages arrive: they go in front, as the newest."""
        with self._lock:
            current = self._conversations.setdefault(self.key(phone), [])
            current[:0] = sorted(messages, key=lambda m: m.get("unixDatetime") or 0, reverse=True)
            self._page_cache.clear()
            self._derived.clear()

    def conversation(self, phone: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._conversations.get(self.key(phone), []))

    def phones(self) -> list[str]:
        with self._lock:
            return list(self._conversations)

    # -- the account's other endpoints ---------------------------------------------------------
    def form(self, phone: str, source: str) -> str:
        """How `phone` is written in `source` ("contacts", "inbox" or "log")."""
        digits = self.key(phone)
        return self.forms.get(digits, {}).get(source) or phone_form(digits, default_style(digits, source))

    def contacts(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._contacts is not None:
                return [dict(c) for c in self._contacts]
            phones = list(self._conversations)
        contacts = [make_contact(self.form(p, "contacts"), i + 1) for i, p in enumerate(phones)]
        # address books hold entries without a number too
        contacts.append(make_contact("", len(phones) + 1, firstname="Ufficio", lastname="Amministrazione", groupid=3))
        return contacts

    def set_contacts(self, contacts: list[dict[str, Any]]) -> None:
        with self._lock:
            self._contacts = [dict(c) for c in contacts]

    def add_contact(self, phone: str | None, **fields: Any) -> dict[str, Any]:
        current = self.contacts()
        contact = make_contact(phone, max((c["ID"] for c in current), default=0) + 1, **fields)
        self.set_contacts(current + [contact])
        return contact

    def _messages(self, direction: str) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [
                (p, m) for p, messages in self._conversations.items() for m in messages
                if m.get("direction") == direction and (p, m.get("unixDatetime")) not in self.unlisted
            ]

    def leave_out_of_lists(self, phone: str, unix_datetime: int) -> None:
        """The inbox and the message log omit this message (it stays in the conversation)."""
        with self._lock:
            self.unlisted.add((self.key(phone), unix_datetime))
            self._derived.clear()

    def _cached(self, name: str, build: Any) -> list[dict[str, Any]]:
        with self._lock:
            cached = self._derived.get(name)
        if cached is None:
            cached = build()
            with self._lock:
                self._derived[name] = cached
        return [dict(e) for e in cached]

    def inbox(self) -> list[dict[str, Any]]:
        """Every inbound message of every conversation, newest first."""
        receiver = VIRTUAL_NUMBERS[0]["countrycode"] + VIRTUAL_NUMBERS[0]["number"]

        def build() -> list[dict[str, Any]]:
            entries = [
                (m["unixDatetime"], {
                    "ID": stable_id("in", p, m["unixDatetime"], m.get("message")),
                    "message": m.get("message"),
                    "sender": self.form(p, "inbox"),
                    "receiver": receiver,
                    "type": "sms",
                    "date": api_date(m["unixDatetime"]),
                })
                for p, m in self._messages("inbound")
            ]
            return _newest_first(entries)

        return self._cached("inbox", build)

    def message_log(self) -> list[dict[str, Any]]:
        """Every outbound message of every conversation, newest first, with its delivery status."""

        def build() -> list[dict[str, Any]]:
            entries = []
            for p, m in self._messages("outbound"):
                ts = m["unixDatetime"]
                read = m.get("deliveryStatus") == "DELIVERED"
                entries.append((ts, {
                    "ID": stable_id("log", p, ts, m.get("messageId")),
                    "message_ID": m.get("messageId"),
                    "message": m.get("message"),
                    "to": self.form(p, "log"),
                    "sender": m.get("sender") or SENDER,
                    "date": api_date(ts),
                    "type": "sms",
                    "status": m.get("deliveryStatus"),
                    "response": {
                        "read": 1 if read else 0,
                        "read_date": api_date(ts + 95) if read else None,
                        "response": None,
                        "response_sms": None,
                        "response_sms_date": None,
                    },
                }))
            return _newest_first(entries)

        return self._cached("log", build)

    def outbox(self) -> list[dict[str, Any]]:
        """Scheduled messages: a reminder for the first two conversations, two days after their newest message."""

        def build() -> list[dict[str, Any]]:
            with self._lock:
                firsts = [(p, max((m.get("unixDatetime") or 0 for m in ms), default=0)) for p, ms in list(self._conversations.items())[:2]]
            return [
                {"ID": stable_id("out", p), "message": "Promemoria: il tuo appuntamento è domani 📅", "to": "+" + p,
                 "type": "sms", "date": api_date(newest + 2 * 86_400), "reference": f"reminder-{i + 1}", "messageid": None}
                for i, (p, newest) in enumerate(firsts)
            ]

        return self._cached("outbox", build)

    def optouts(self) -> list[dict[str, Any]]:
        """The numbers that answered STOP, from their first STOP, newest first."""

        def build() -> list[dict[str, Any]]:
            first: dict[str, int] = {}
            for p, m in self._messages("inbound"):
                if (m.get("message") or "").strip().upper() == "STOP":
                    first[p] = min(first.get(p, m["unixDatetime"]), m["unixDatetime"])
            entries = [(ts, {"number": "+" + p, "memo": "STOP", "date": api_date(ts)}) for p, ts in first.items()]
            return [e for _, e in sorted(entries, key=lambda e: (e[0], e[1]["number"]), reverse=True)]

        return self._cached("optouts", build)

    def statistics(self, year: int, month: int) -> dict[str, int]:
        """Messages sent and received in that calendar month (UTC)."""
        counts = {"outbound": 0, "inbound": 0}
        with self._lock:
            for messages in self._conversations.values():
                for m in messages:
                    t = time.gmtime(m.get("unixDatetime") or 0)
                    if (t.tm_year, t.tm_mon) == (year, month) and m.get("direction") in counts:
                        counts[m["direction"]] += 1
        return {"sent": counts["outbound"], "received": counts["inbound"]}

    def forbid(self, path: str, how: str | None = "403") -> None:
        """This account may not use `path`: answer HTTP 403 ("403") or an error body ("error"); None lifts it."""
        if how is None:
            self.forbidden.pop(path, None)
        else:
            assert how in ("403", "error"), how
            self.forbidden[path] = how

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


def _error_body(code: int, text: str) -> dict[str, Any]:
    return {"error": code, "errorMsg": text}


def _newest_first(entries: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [e for _, e in sorted(entries, key=lambda e: (e[0], e[1]["ID"]), reverse=True)]


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"

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
            return self._fault(fault, record, emulator.page_body(phone, page, limit))
        record["status"] = 200
        self._send(200, emulator.page_body(phone, page, limit), php.content_type(emulator.variations))

    def _account(self, path: str, query: dict[str, str], record: dict[str, Any]) -> None:
        """The account's other endpoints, shaped as API.md gives them."""
        emulator = self.emulator
        enveloped = {  # paged, {"total","shown","page","limit",<key>: [...]}
            "/v1/contact": ("contacts", emulator.contacts),
            "/v1/message/inbox": ("messages", emulator.inbox),
            "/v1/outbox": ("messages", emulator.outbox),
            "/v1/message/logging": ("messages", emulator.message_log),
        }
        lists = {  # a bare list; only /v1/groups pages
            "/v1/groups": lambda: emulator.groups,
            "/v1/optouts/list": emulator.optouts,
            "/v1/messagetemplates": lambda: emulator.templates,
            "/v1/senderids": lambda: emulator.sender_ids,
            "/v1/vmn": lambda: emulator.virtual_numbers,
        }
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
        key, items = enveloped[path]
        everything = items()
        if path in ("/v1/message/inbox", "/v1/message/logging") and emulator.list_order != "newest_first":
            if emulator.list_order == "oldest_first":
                everything.reverse()
            else:
                random.Random(len(everything)).shuffle(everything)
        chunk = everything[(page - 1) * limit : page * limit]
        self._data({"total": len(everything), "shown": len(chunk), "page": page, "limit": limit, key: chunk}, key, (page - 1) * limit)

    def _data(self, payload: Any, records_key: str | None = None, offset: int = 0) -> None:
        """A successful data answer, with the emulator's variations."""
        active = self.emulator.variations
        self._send(200, php.encode(payload, active, records_key, offset), php.content_type(active))

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
        if action == "add_contact":  # {"phone": ..., other contact fields}
            phone = payload.pop("phone", None)
            return self._json(200, emulator.add_contact(phone, **payload))
        if action == "forbid":  # {"path": "/v1/outbox", "how": "403" | "error" | null}
            emulator.forbid(payload["path"], payload.get("how", "403"))
            return self._json(200, {"ok": True})
        if action == "variations":  # {"variations": ["bom", ...]}: how answers differ from the documented shape
            emulator.variations = payload.get("variations") or []
            return self._json(200, {"variations": sorted(emulator.variations | emulator.anomalies.names)})
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
