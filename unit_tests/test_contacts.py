"""When change detection reads the contacts whole (issue 22: at 100,000 phones they were 51 of a
nothing-new sync's 53 requests). They carry no date: page 1 is asked for every sync, and they are
read whole in the first sync, every `full_sweep_days`, and when page 1 shows another total or other
entries than at the last whole read. ChangeDetection.contacts is driven directly here against a
paged list of contacts, the sync's time set on it; the property test changes the list between syncs
in every way (added, removed, replaced or moved at any place, sizes around the page size)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from source_smstools.components import changes
from source_smstools.components.sources import PAGE_END

DAY = 86_400
HOUR = 3_600
T0 = 1_750_000_000

settings.register_profile("contacts-ci", max_examples=200, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("contacts-soak", max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile("contacts-soak" if os.environ.get("HYPOTHESIS_PROFILE") == "soak" else "contacts-ci")


class Book:
    """An account's contacts as /v1/contact pages them (ID ascending, new ones last), counting requests."""

    def __init__(self, phones: list[str], page_size: int) -> None:
        self.entries = [{"ID": i + 1, "phone": p} for i, p in enumerate(phones)]
        self.page_size = page_size
        self.requests = 0
        self._next = len(phones) + 1

    def new(self, phone: str) -> dict:
        self._next += 1
        return {"ID": self._next, "phone": phone}

    def page(self, number: int) -> list[dict]:
        self.requests += 1
        size = self.page_size
        chunk = [dict(e) for e in self.entries[(number - 1) * size:number * size]]
        end = {PAGE_END: {"page": number, "total": len(self.entries)}}
        return chunk[:-1] + [{**chunk[-1], **end}] if chunk else [end]

    def whole(self) -> list[str]:
        phones, number = [], 1
        while True:
            page = self.page(number)
            phones += [e["phone"] for e in page if "phone" in e]
            if number * self.page_size >= len(self.entries):
                return phones
            number += 1

    def phones(self) -> set[str]:
        return {e["phone"] for e in self.entries}


def sync(book: Book, state: dict, at: int, days: int = 7) -> tuple[list[str], dict]:
    """One sync's contacts: the phones it found in them, and the state it leaves for the next."""
    detection = changes.ChangeDetection({"full_sweep_days": days}, state)
    detection.at = at
    found = detection.contacts(lambda: book.page(1), book.whole, lambda page: [e["phone"] for e in page if "phone" in e])
    kept = {changes.CONTACTS: detection.contacts_kept} if detection.contacts_kept is not None else {}
    return found, {**state, **kept}


def phones(n: int, first: int = 0) -> list[str]:
    return [f"3933310{i:05d}" for i in range(first, first + n)]


# -- the named cases ------------------------------------------------------------------------------


def test_the_first_sync_reads_them_whole_and_a_sync_an_hour_later_asks_for_page_one_only():
    book = Book(phones(25), page_size=10)
    found, state = sync(book, {}, T0)
    assert (sorted(found), book.requests) == (phones(25), 4)  # page 1 asked first, then pages 1 to 3
    assert state[changes.CONTACTS]["at"] == T0 and state[changes.CONTACTS]["total"] == 25
    book.requests = 0
    found, after = sync(book, state, T0 + HOUR)
    assert (found, book.requests) == ([], 1)
    assert after == state  # the whole read's time and page 1 kept, not this sync's


def test_contacts_that_fit_on_page_one_cost_one_request_in_every_sync():
    book = Book(phones(3), page_size=10)
    found, state = sync(book, {}, T0)
    assert (sorted(found), book.requests) == (phones(3), 1)
    book.requests = 0
    assert sync(book, state, T0 + 8 * DAY)[0] and book.requests == 1  # due: page 1 holds them all


def test_a_contact_added_on_the_last_page_is_found_by_the_next_sync():
    book = Book(phones(25), page_size=10)
    _, state = sync(book, {}, T0)
    book.entries.append(book.new("393339999999"))
    book.requests = 0
    found, state = sync(book, state, T0 + HOUR)
    assert "393339999999" in found and book.requests == 4
    assert state[changes.CONTACTS] == {**state[changes.CONTACTS], "at": T0 + HOUR, "total": 26}


def test_a_contact_replaced_on_page_one_is_found_by_the_next_sync():
    book = Book(phones(25), page_size=10)
    _, state = sync(book, {}, T0)
    book.entries[4] = book.new("393339999999")
    found, _ = sync(book, state, T0 + HOUR)
    assert "393339999999" in found


def test_a_contact_replaced_past_page_one_waits_for_the_weekly_read():
    # the total and page 1 as they were: nothing says the list changed until the read every 7 days
    # (a phone that texts or is texted is found by the inbox or the message log before that)
    book = Book(phones(25), page_size=10)
    _, state = sync(book, {}, T0)
    book.entries[17] = book.new("393339999999")
    found, state = sync(book, state, T0 + 6 * DAY)
    assert found == []
    found, _ = sync(book, state, T0 + 7 * DAY)
    assert "393339999999" in found


def test_a_page_one_that_cannot_be_read_reads_them_whole_and_keeps_no_mark():
    book = Book(phones(25), page_size=10)
    _, state = sync(book, {}, T0)
    detection = changes.ChangeDetection({}, state)
    detection.at = T0 + HOUR

    def broken() -> list:
        raise ValueError("an answer we cannot read")

    assert sorted(detection.contacts(broken, book.whole, lambda page: [])) == phones(25)
    assert detection.contacts_kept is None  # the next sync reads them whole again


def test_a_clock_gone_back_reads_them_whole():
    book = Book(phones(25), page_size=10)
    _, state = sync(book, {}, T0)
    assert sync(book, state, T0 - HOUR)[0]


# -- the class ------------------------------------------------------------------------------------

CHANGES = st.tuples(
    st.sampled_from(["none", "append", "insert", "remove", "replace", "move", "swap_first"]),
    st.integers(0, 10_000),  # where
)


@PROFILE
@given(
    page_size=st.integers(1, 6),
    size=st.integers(0, 20),
    days=st.integers(1, 7),
    steps=st.lists(st.tuples(st.integers(1, 60), st.lists(CHANGES, max_size=3)), min_size=1, max_size=12),
)
def test_every_contact_is_found_once_the_list_shows_a_change_and_within_full_sweep_days_whatever_changed(
    page_size, size, days, steps,
):
    """A sync reads the contacts whole (every phone in them found) exactly when their total or page 1
    differ from those of the last whole read, or `full_sweep_days` have passed since it; any other
    sync costs one request and finds nothing. So a phone in the list for `full_sweep_days` is known."""
    book = Book(phones(size), page_size)
    found, state = sync(book, {}, T0, days)
    assert set(found) == book.phones()
    known = set(found)
    last = (T0, len(book.entries), book.page(1))  # the last whole read: when, and what it showed
    since: dict[str, int] = {p: T0 for p in book.phones()}
    at, counter = T0, 1_000
    for hours, edits in steps:
        for kind, where in edits:
            counter += 1
            edit(book, kind, where, book.new(f"39333{counter:07d}"))
        at += hours * HOUR
        for p in book.phones():
            since.setdefault(p, at)
        since = {p: t for p, t in since.items() if p in book.phones()}
        shown = (len(book.entries), book.page(1))
        book.requests = 0
        found, state = sync(book, state, at, days)
        whole = state[changes.CONTACTS]["at"] == at
        assert whole == (shown != last[1:] or at - last[0] >= days * DAY)
        if whole:
            assert sorted(found) == sorted(e["phone"] for e in book.entries)
            last = (at, *shown)
        else:
            assert (found, book.requests) == ([], 1)
        known |= set(found)
        assert {p for p, t in since.items() if at - t >= days * DAY} <= known


def edit(book: Book, kind: str, where: int, fresh: dict) -> None:
    """One change to the list: a contact added at the end or anywhere, removed, replaced, moved, or
    one of page 1 swapped with one past it (the same total)."""
    entries, i = book.entries, where % (len(book.entries) + 1)
    if kind == "append":
        entries.append(fresh)
    elif kind == "insert":
        entries.insert(i, fresh)
    elif kind in ("remove", "replace", "move") and entries:
        taken = entries.pop(i % len(entries))
        if kind == "replace":
            entries.insert(i % (len(entries) + 1), fresh)
        elif kind == "move":
            entries.insert((where // 7) % (len(entries) + 1), taken)
    elif kind == "swap_first" and len(entries) > book.page_size:
        j = book.page_size + where % (len(entries) - book.page_size)
        entries[0], entries[j] = entries[j], entries[0]
