"""The emulated account's data: conversations (generated or set by a test) and what the API derives
from them (contacts, inbox, message log, outbox, opt-outs, statistics), each phone written in one of
the forms people and systems use. `Account` holds it; `server.Emulator` serves it."""

from __future__ import annotations

import hashlib
import sys
import random
import threading
import time
from typing import Any

from smstools_emulator.listing import Listing

SENDER = "Smstools"
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

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
# one number, as most accounts have; a test of an account with more sets `virtual_numbers`
VIRTUAL_NUMBERS = [{"ID": 31, "number": "3278800100", "countrycode": "39"}]
SECOND_NUMBER = {"ID": 32, "number": "470998877", "countrycode": "32"}
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



def _time_of(message: dict[str, Any]) -> int:
    """A message's time for ordering its arrival (a hostile one may have none, or a text)."""
    value = message.get("unixDatetime")
    return value if type(value) is int else 0


def _newest_first(entries: list[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [e for _, e in sorted(entries, key=lambda e: (e[0], e[1]["ID"]), reverse=True)]


class Account:
    """The data of one account, safe to change while it is served (one lock)."""

    def __init__(self, conversations: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self._lock = threading.Lock()
        self._conversations: dict[str, list[dict[str, Any]]] = {}
        # answers built from the conversations, dropped when they change (`_changed`)
        self._page_cache: dict[Any, bytes] = {}
        self._derived: dict[str, list[dict[str, Any]]] = {}
        # Contacts, inbox, message log, outbox, opt-outs and statistics are derived from the
        # conversations unless a test sets them (see `contacts`, `inbox`, ...).
        self._contacts: list[dict[str, Any]] | None = None  # None: one contact per conversation
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
        # The entries' `ID`s: "stable" (a number made from the message), "null" (none: as some
        # backends leave them out), or "sequential": numbered as the messages are added (those a test
        # sets first, oldest first, then each added one), the lists newest entry first, so that a
        # message that arrives late, dated before others, is listed first with the highest ID.
        self.entry_ids = "stable"
        self._arrivals: dict[tuple[str, Any, Any], int] = {}
        self.unlisted: set[tuple[str, int]] = set()  # (phone digits, unixDatetime): left out of inbox and log
        self.listing = Listing()  # phones, or kinds of message, the lists leave out (see `set_listing`)
        for phone, messages in (conversations or {}).items():
            self.set_conversation(phone, messages)
        # the account's first messages arrived in the order of their dates, whatever their phone
        self._arrivals.clear()
        everything = [(_time_of(m), p, m) for p, ms in self._conversations.items() for m in ms]
        for _, p, m in sorted(everything, key=lambda e: e[0]):
            self._arrive(p, [m])

    # -- data -------------------------------------------------------------------------------
    @staticmethod
    def key(phone: str) -> str:
        return phone.lstrip("+")

    def set_conversation(self, phone: str, messages: list[dict[str, Any]]) -> None:
        """Replace `phone`'s conversation; `messages` newest first."""
        with self._lock:
            self._conversations[self.key(phone)] = list(messages)
            self._arrive(self.key(phone), sorted(messages, key=_time_of))
            self._page_cache.clear()
            self._derived.clear()

    def add_messages(self, phone: str, messages: list[dict[str, Any]]) -> None:
        """New messages arrive: they go in front, as the newest."""
        with self._lock:
            current = self._conversations.setdefault(self.key(phone), [])
            current[:0] = sorted(messages, key=lambda m: m.get("unixDatetime") or 0, reverse=True)
            self._arrive(self.key(phone), messages)
            self._page_cache.clear()
            self._derived.clear()

    @staticmethod
    def _arrival_key(phone: str, message: dict[str, Any]) -> tuple[str, Any, Any]:
        # repr: a hostile message's fields may be lists or objects (not hashable)
        return phone, repr(message.get("unixDatetime")), repr(message.get("messageId") or message.get("message"))

    def _arrive(self, phone: str, messages: list[dict[str, Any]]) -> None:
        """Numbers the messages not numbered yet, in the order given (under the lock)."""
        for m in messages:
            key = self._arrival_key(phone, m)
            if key not in self._arrivals:
                self._arrivals[key] = len(self._arrivals) + 1

    def _entries(self, entries: list[tuple[int, dict[str, Any]]], phones: list[str]) -> list[dict[str, Any]]:
        """A list's entries as `entry_ids` has them; `phones[i]` is the key of entries[i]'s phone."""
        if self.entry_ids == "sequential":
            for (_, entry), (phone, message) in zip(entries, phones):
                entry["ID"] = self._arrivals.get(self._arrival_key(phone, message), 0)
            return sorted((e for _, e in entries), key=lambda e: e["ID"], reverse=True)
        listed = _newest_first(entries)
        if self.entry_ids == "null":
            for entry in listed:
                entry["ID"] = None
        return listed

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
        return self.contacts_page(0, sys.maxsize)[1]

    def contacts_page(self, start: int, stop: int) -> tuple[int, list[dict[str, Any]]]:
        """How many contacts there are, and those from `start` to `stop` (copies): one contact per
        conversation, unless a test set them. Built for the page alone: at 100,000 phones building
        every contact for each page was most of the time a first sync's lists took."""
        with self._lock:
            if self._contacts is not None:
                return len(self._contacts), [dict(c) for c in self._contacts[start:stop]]
            phones = list(self._conversations)
        rows = range(start, min(stop, len(phones) + 1))
        # address books hold entries without a number too: the last one
        return len(phones) + 1, [
            make_contact(self.form(phones[i], "contacts"), i + 1) if i < len(phones)
            else make_contact("", i + 1, firstname="Ufficio", lastname="Amministrazione", groupid=3)
            for i in rows
        ]

    def set_contacts(self, contacts: list[dict[str, Any]]) -> None:
        with self._lock:
            self._contacts = [dict(c) for c in contacts]

    def add_contact(self, phone: str | None, **fields: Any) -> dict[str, Any]:
        current = self.contacts()
        contact = make_contact(phone, max((c["ID"] for c in current), default=0) + 1, **fields)
        self.set_contacts(current + [contact])
        return contact

    def _messages(self, direction: str, listed_in: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """The messages of that direction; those `listed_in` ("inbox" or "log") lists, if named."""
        with self._lock:
            return [
                (p, m) for p, messages in self._conversations.items()
                if listed_in is None or self.listing.lists(listed_in, p) for m in messages
                if m.get("direction") == direction and (p, m.get("unixDatetime")) not in self.unlisted
            ]

    def set_listing(self, listing: Listing) -> None:
        """Which phones, or kinds of message, the inbox and the log leave out (smstools_emulator.listing)."""
        with self._lock:
            self.listing = listing
            self._derived.clear()

    def leave_out_of_lists(self, phone: str, unix_datetime: int) -> None:
        """The inbox and the message log omit this message (it stays in the conversation)."""
        with self._lock:
            self.unlisted.add((self.key(phone), unix_datetime))
            self._derived.clear()

    def _cached(self, name: str, build: Any, shared: bool = False) -> list[dict[str, Any]]:
        """A derived list, built once per change of the data: copies of its entries, or (`shared`,
        for the server, which copies the entries of the page it serves) the list itself, not to be
        changed."""
        with self._lock:
            cached = self._derived.get(name)
        if cached is None:
            cached = build()
            with self._lock:
                self._derived[name] = cached
        return cached if shared else [dict(e) for e in cached]

    def inbox(self, number: int | None = None, shared: bool = False) -> list[dict[str, Any]]:
        """Every inbound message of every conversation, newest first: those received on the
        virtual number of that `ID` (`/v1/message/inbox/{ID}`); without one, as the account's
        inbox lists them (every number's, or one's: Listing.inbox_number). `shared`: see _cached."""
        first = self.virtual_numbers[0]["ID"] if self.virtual_numbers else None
        shown = number if number is not None else self.listing.inbox_number
        receivers = {v["ID"]: f"{v['countrycode']}{v['number']}" for v in self.virtual_numbers}

        def build() -> list[dict[str, Any]]:
            messages = [
                (p, m) for p, m in self._messages("inbound", "inbox")
                if shown is None or self.listing.number(p, first) == shown
            ]
            entries = [
                (m["unixDatetime"], {
                    "ID": stable_id("in", p, m["unixDatetime"], m.get("message")),
                    "message": m.get("message"),
                    "sender": self.form(p, "inbox"),
                    "receiver": receivers.get(self.listing.number(p, first), ""),
                    "type": self.listing.kind(p),
                    "date": api_date(m["unixDatetime"]),
                })
                for p, m in messages
            ]
            return self._entries(entries, messages)

        return self._cached("inbox" if number is None else f"inbox/{number}", build, shared)

    def message_log(self, shared: bool = False) -> list[dict[str, Any]]:
        """Every outbound message of every conversation, newest first, with its delivery status.
        `shared`: see _cached."""

        def build() -> list[dict[str, Any]]:
            entries = []
            messages = self._messages("outbound", "log")
            for p, m in messages:
                ts = m["unixDatetime"]
                read = m.get("deliveryStatus") == "DELIVERED"
                entries.append((ts, {
                    "ID": stable_id("log", p, ts, m.get("messageId")),
                    "message_ID": m.get("messageId"),
                    "message": m.get("message"),
                    "to": self.form(p, "log"),
                    "sender": m.get("sender") or SENDER,
                    "date": api_date(ts),
                    "type": self.listing.kind(p),
                    "status": m.get("deliveryStatus"),
                    "response": {
                        "read": 1 if read else 0,
                        "read_date": api_date(ts + 95) if read else None,
                        "response": None,
                        "response_sms": None,
                        "response_sms_date": None,
                    },
                }))
            return self._entries(entries, messages)

        return self._cached("log", build, shared)

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
