"""Change detection: which known phones an incremental sync reads.

The inbox lists the messages received and the message log those sent: together they say which
conversations moved since the last sync. The sources are read first (components/sources.py), before
any conversation, so that what arrives while the conversations are read is newer than the
positions kept for the next sync. Then a phone is read when it is:

- new: no cursor yet (read from `start_date`);
- moved: the inbox or the message log has an entry for it not listed at the last sync, dated at or
  after its cursor minus the lookback window, or any entry read dated after its cursor;
- failed: its read failed in the last sync (its cursor stayed where it was: what it did not read
  is read now);
- uncovered: a read of it found a message that the sources' pages should have listed and did not
  (components/coverage.py): it is read every sync until its messages are listed again;
- pending: it has an outbound message whose delivery status was not final when read, within
  `STATUS_DAYS` (its read reaches back to that message: the partition router says so);
- swept: due for the safety sweep, which reads every known phone at least once every
  `full_sweep_days`, each at a point of its own after its last read (book.sweep_due), so that no
  sync reads them all at once.

Each rule is a function of its own below. The phones known, their cursors and last reads are the
book's (components/book.py); what else the next sync needs goes in the stream state's
`parent_state.changes`: the time of this sync (`at`), the sources' positions, and the uncovered
phones and the pending ones (a time each, or the oldest and newest pending message's). A source that cannot be read turns detection off
for the sync: every known phone is read, with a warning.
"""

import logging
import os
import time
import zlib
from typing import Any, Iterable, Iterator, Mapping, Optional

from source_smstools.components import coverage, numbers
from source_smstools.components.book import DAY, sweep_due
from source_smstools.components.errors import SourceUnreadable, missed_phones
from source_smstools.components.session import Refused
# names, not the module: the single-file build (release/manifest_only.py) drops `sources.` prefixes,
# and would drop them from `airbyte_cdk.sources...` as well
from source_smstools.components.sources import (
    MAX_IDS, PAGE_END, UNREADABLE, WATCHED, Fetch, SourceRead, how_read, ids_at_newest, position, read_source, window_of,
)

logger = logging.getLogger("airbyte")

KEY = "changes"  # this module's part of the stream state's `parent_state`
CONTACTS = "contacts"  # when the contacts were last read whole, and what their first page said then
STATUS_DAYS = 7  # a delivery status not final is followed this long, then left to the lookback window
LATE = 3_600  # a message this much older than the sync was there to be listed (coverage.Observations.watch)


def now() -> int:
    """The time the sync decides by. The tests that run the command in a process of its own set
    it with SMSTOOLS_NOW (unix seconds; in-process tests patch this function); not for users."""
    return int(os.environ.get("SMSTOOLS_NOW") or time.time())


def enabled(config: Mapping[str, Any]) -> bool:
    return config.get("change_detection", True) is not False and sweep_days(config) != 0


def sweep_days(config: Mapping[str, Any]) -> int:
    value = config.get("full_sweep_days")
    return 7 if value is None else int(value)


# -- the rules ------------------------------------------------------------------------------------


def moved(
    read: SourceRead, position: Optional[Mapping[str, Any]], cursor_of: Mapping[str, int], at: int, lookback: int,
    window: int, late: Optional[dict[str, int]] = None,
) -> set[str]:
    """The phones (in one form) that a source's entries show moved since the last sync.

    `position`: where the last sync left the source; `window`: how far before it the source was
    read again (the log: the lookback window, for statuses sent within it); `late` gets, for a
    phone with an entry added since then but dated before its cursor minus the lookback, the
    oldest such date (its read must start there)."""
    newest = position.get("newest") if position else None
    newest = newest if isinstance(newest, int) else None
    stop = newest - window if newest is not None else None
    ids = ids_at_newest(position)  # None: that second is judged by its date
    top = position.get("top") if position else None
    found: set[str] = set()
    for phone, date, entry_id in read.entries:
        if phone is None:
            continue
        if date is None:
            found.add(phone)  # no date we can read: it may be new
            continue
        if type(top) is int and entry_id is not None and entry_id.isdigit() and int(entry_id) > top and date <= at:
            # added since the last sync (its ID is higher than any listed then), whatever its date:
            # a message listed late; the phone's read reaches back to it (`late`)
            found.add(phone)
            if late is not None and (cursor_of.get(phone) is None or date < cursor_of[phone] - lookback):
                late[phone] = min(date, late.get(phone, date))
            continue
        if (stop is not None and date < stop) or date > at:
            continue  # seen by the last sync; or dated in the future (read once its time has come)
        cursor = cursor_of.get(phone)
        # newer than the newest entry of the last sync; or not listed then, and at or after the
        # phone's cursor minus the lookback window (where its next read starts: the cursor is
        # inclusive, as the CDK's)
        new = newest is None or date > newest or (date == newest and (ids is None or entry_id is None or entry_id not in ids))
        if cursor is None or date > cursor or (new and date >= cursor - lookback):
            found.add(phone)
        elif window and date >= at - lookback:
            found.add(phone)  # sent within the lookback window of now: its status may still change
    return found


def pending_bound(at: int) -> int:
    """Statuses of messages sent before this are no longer followed."""
    return at - STATUS_DAYS * DAY


def live_pending(pending: Any, at: int) -> dict[str, tuple[int, int]]:
    """phone -> (oldest, newest) of its outbound messages whose status was not final, as a state
    keeps them (one time for a phone whose two are equal, as 0.3.0 kept the oldest), for the phones
    still followed (`followed`); what is not a phone and its times is left out."""
    if not isinstance(pending, Mapping):
        return {}
    pairs: dict[str, tuple[int, int]] = {}
    for phone, value in pending.items():
        pair = (value, value) if type(value) is int else tuple(value) if isinstance(value, list) else ()
        if len(pair) == 2 and all(type(t) is int for t in pair) and pair[0] <= pair[1]:
            pairs[phone] = pair
    return followed(pairs, at)


def followed(pairs: Mapping[str, tuple[int, int]], at: int) -> dict[str, tuple[int, int]]:
    """The phones whose newest pending message was sent within `STATUS_DAYS` of `at`, their oldest
    taken up to that bound (so a phone's oldest pending message passing the bound does not drop a
    later one; a message scheduled later has no delivery yet: when it is sent, the message log
    lists it)."""
    bound = pending_bound(at)
    return {p: (max(oldest, bound), newest) for p, (oldest, newest) in pairs.items() if bound <= newest and oldest <= at}


def next_pending(
    before: Mapping[str, tuple[int, int]], observed: Mapping[str, tuple[int, int]], read: set[str], at: int,
) -> dict[str, Any]:
    """The pending phones for the next sync, as the state keeps them: a phone read this sync has
    what its records showed (its read reached back to its oldest pending message, so none is left
    behind), one not read keeps what it had."""
    kept = {p: t for p, t in before.items() if p not in read}
    pairs = {**kept, **{p: t for p, t in observed.items() if p in read}}
    return {p: (oldest if oldest == newest else [oldest, newest]) for p, (oldest, newest) in followed(pairs, at).items()}


def contacts_mark(first_page: Optional[Iterable[Mapping[str, Any]]]) -> Optional[dict[str, Any]]:
    """What page 1 of the contacts says of them: their `total` and a checksum of that page's IDs
    and phones in order; None for a page not read or not understood."""
    if first_page is None:
        return None
    entries = [e for e in first_page if isinstance(e, Mapping)]
    if not entries or UNREADABLE in entries[0]:
        return None
    end = entries[-1].get(PAGE_END)
    total = end.get("total") if isinstance(end, Mapping) else None
    if type(total) is not int:
        return None
    # as text: an ID or a phone sent as a number one day and as a string the next is the same
    listed = [(str(e.get("ID")), str(e.get("phone"))) for e in entries if not (len(e) == 1 and PAGE_END in e)]
    return {"total": total, "first": zlib.crc32(repr(listed).encode())}


def contacts_due(before: Any, mark: Optional[Mapping[str, Any]], at: int, days: int) -> bool:
    """Whether the contacts are read whole this sync: in the first (no read before), every
    `days` after the last whole read, and whenever their first page shows another total or other
    entries than then (or cannot be read)."""
    if not isinstance(before, Mapping) or type(before.get("at")) is not int or mark is None:
        return True
    if at - before["at"] >= days * DAY or before["at"] > at:
        return True
    return before.get("total") != mark["total"] or before.get("first") != mark["first"]


def uncovered_of(previous: Mapping[str, Any]) -> dict[str, list[str]]:
    """phone -> the sources that do not cover it, as the state keeps it."""
    found = previous.get("uncovered")
    if not isinstance(found, Mapping):
        return {}
    return {p: [s for s in names if s in WATCHED] for p, names in found.items() if isinstance(names, list)}


# -- the sync's decision ------------------------------------------------------------------------


class ChangeDetection:
    """Decides which phones a sync reads, from `previous` (the last sync's `parent_state.changes`,
    as state.PerPhoneState checked it; {} for none) and the book's `cursors` (phone -> where its next
    read starts) and `last_reads` (phone -> when it was last read), both for the phones known (those
    whose whole history was read); `final_state()` is what goes in `parent_state` for the next sync,
    once every phone handed out is read. `observations` gets the facts the records show
    (components/coverage.py)."""

    def __init__(
        self, config: Mapping[str, Any], previous: Optional[Mapping[str, Any]] = None,
        cursors: Optional[Mapping[str, int]] = None, last_reads: Optional[Mapping[str, int]] = None,
        observations: Optional[coverage.Observations] = None,
    ) -> None:
        self.config = config
        self.previous: Optional[dict[str, Any]] = dict(previous) if previous else None
        self.cursors: Mapping[str, int] = cursors or {}
        self.last_reads: Mapping[str, int] = last_reads or {}
        self.lookback = int(config.get("lookback_window_days") or 0) * DAY
        self.days = sweep_days(config)
        self.page_size = int(config.get("page_size") or 2000)
        self.at = now()
        self.observations = observations or coverage.Observations()
        self.observations.pending_since = pending_bound(self.at)
        self.state: Optional[dict[str, Any]] = None  # set once every phone is handed out
        self.unreadable: list[str] = []  # the sources this sync could not read
        self.handed: set[str] = set()
        self.late: dict[str, int] = {}  # phone (one form) -> the date its read reaches back to (moved)
        self.targets = 0
        self._known: dict[str, int] = {}
        self._numbers: Optional[dict[str, Any]] = None  # the account's numbers, for the next sync (numbers.py)
        self.contacts_kept: Optional[dict[str, Any]] = None  # the contacts' last whole read, as the next sync gets it
        self._notes: list[str] = []
        self._warned = False

    def contacts(self, first_page: Optional[Any], whole: Any, phones_of: Any) -> list[str]:
        """The phones of the contacts when this sync reads them whole, else none. Contacts carry no
        date: nothing in them says which are new. So they are read whole in the first sync, then
        every `full_sweep_days` (as the sweep reads every known phone again), and as soon as their
        first page, asked for every sync (`first_page`: a callable giving page 1's entries, or None
        where there is none), shows another total or other entries. A phone that texts or is texted
        is found by the inbox or the message log anyway; the contacts find the ones they leave out.
        `whole`: reads them all, its phones (what it raises goes to the caller, and the next sync
        reads them whole again); `phones_of`: the phones of page 1's entries, where it holds them all."""
        before = (self.previous or {}).get(CONTACTS)
        try:
            page = list(first_page()) if first_page is not None else None
        except (Refused, SourceUnreadable):
            raise  # the config is wrong (the sync ends here); or the account may not read them
        except Exception:
            page = None  # read whole, which says what is wrong if it is
        mark = contacts_mark(page)
        if not contacts_due(before, mark, self.at, self.days):
            self.contacts_kept = dict(before)
            self._notes.append(
                f"contacts not read again: their first page is as when they were read whole, {_ago(self.at - before['at'])} "
                f"(read whole every {self.days} days)"
            )
            return []
        shown = sum(1 for e in page or () if isinstance(e, Mapping) and not (len(e) == 1 and PAGE_END in e))
        phones = phones_of(page) if mark is not None and mark["total"] <= shown else whole()
        self.contacts_kept = {"at": self.at, **mark} if mark is not None else None
        return phones

    def phones(
        self, sources_: Mapping[str, Any], found: Iterable[str], listed: Optional[list[str]], normalize: Any,
        discover_from: Iterable[str] = (), fetchers: Optional[Mapping[str, Fetch]] = None,
        mine: Any = lambda phone: True, readers: Optional[numbers.Readers] = None,
    ) -> Iterator[str]:
        """The phones to read. `sources_`: name -> parent stream, for the inbox and the log (both
        are read for changes); `found`: phones found in the contacts; `listed`: the configured
        phones (None: discovery, where a phone unknown so far is new when found in the contacts
        or in `discover_from`'s sources); `fetchers`: name -> its page_reader, to read an
        oldest-first source from its last pages; `mine`: whether a phone is this connection's (its
        shard's); `readers`: how to ask for the account's virtual numbers and a number's inbox (a
        number's inbox the inbox does not cover is read as a source of its own, numbers.py). The
        sources are read before the first phone is handed out."""
        previous = self.previous or {}
        discover_from = set(discover_from)
        if listed is not None:
            targets = list(dict.fromkeys(listed))
            forms = {p: normalize(p) for p in targets}
            cursor_of = {forms[p]: self.cursors[p] for p in targets if p in self.cursors}
        else:
            targets = list(dict.fromkeys(found))
            cursor_of = {p: c for p, c in self.cursors.items() if normalize(p) == p}
        reads, fallback = self._read(sources_, previous, discover_from, fetchers, normalize)
        if readers is not None and "inbox" in discover_from:
            apart = self._apart(previous, reads.get("inbox"), readers, normalize)
            reads.update(apart)
            discover_from |= set(apart)
        state: dict[str, Any] = {"at": self.at}
        for name in list(sources_) + [n for n in reads if numbers.is_apart(n)]:
            before = previous.get(name) if isinstance(previous.get(name), Mapping) else None
            kept = position(reads[name], before, self.at) if name in reads else before
            if kept:
                state[name] = dict(kept)
            if name in reads and kept and "ids" not in kept:
                logger.warning(by_date(name, reads[name]))
        if listed is None:
            seen = [p for name, read in reads.items() if name in discover_from for p, _, _ in read.entries if p and mine(p)]
            targets = list(dict.fromkeys(targets + seen + [p for p in cursor_of if mine(p)]))
            forms = {p: p for p in targets}
        self.targets = len(targets)
        windows = numbers.joined_windows({name: w for name, read in reads.items() if (w := window_of(read, self.at))})
        known = [p for p in targets if forms[p] in cursor_of]
        self._known = {p: self.cursors[p] for p in known if p in self.cursors}
        if fallback:
            logger.warning(
                f"Change detection is off for this sync: {fallback}. Every phone's conversation is read "
                f"({len(targets):,} phones, at least one request each) instead of only those that changed."
            )
            self.observations.watch(windows, self._known, (), normalize)
            chosen = targets
        else:
            chosen = self._decide(targets, known, forms, cursor_of, reads, previous, windows, normalize)
        reads = {}  # the entries read: only the windows' (phone, date) pairs are needed from here on
        for phone in chosen:
            self.handed.add(phone)
            yield phone
        if self._numbers is not None:
            state["numbers"] = self._numbers
        if self.contacts_kept is not None:
            state[CONTACTS] = self.contacts_kept
        self.state = state

    def _read(
        self, sources_: Mapping[str, Any], previous: Mapping[str, Any], discover_from: set[str],
        fetchers: Optional[Mapping[str, Fetch]], normalize: Any,
    ) -> tuple[dict[str, SourceRead], Optional[str]]:
        """Each source read down to its position (the log, the lookback window further); the
        reason detection is off this sync, when one cannot be read."""
        reads: dict[str, SourceRead] = {}
        fallback: Optional[str] = None
        for name, stream in sources_.items():
            stop = self._stop(name, previous)
            # a first read whose phones nobody needs (listed phones: each is read whole anyway)
            # only sets the position
            position_only = stop is None and name not in discover_from
            try:
                reads[name] = read_source(
                    stream, stop, WATCHED[name], normalize, self.page_size, (fetchers or {}).get(name), position_only
                )
            except Refused:
                raise  # the config is wrong: the sync ends here, said once
            except Exception as error:  # forbidden, or an answer we cannot understand
                self.unreadable.append(name)
                if name in discover_from:
                    logger.warning(missed_phones(name, _reason(error)))
                fallback = fallback or f"the {name.replace('_', ' ')} could not be read ({_reason(error)})"
        self._notes += [how_read(n, r, self._stop(n, previous) is None) for n, r in reads.items()]
        return reads, fallback

    def _apart(
        self, previous: Mapping[str, Any], inbox: Optional[SourceRead], readers: numbers.Readers, normalize: Any,
    ) -> dict[str, SourceRead]:
        """The inboxes of the account's numbers that the inbox does not cover, read down to their
        positions: the numbers asked for again every `full_sweep_days` (and each number's inbox
        read then, to see whether the inbox covers it), the last check's kept in between."""
        before = numbers.saved_numbers(previous)
        due = before["at"] is None or self.at - before["at"] >= self.days * DAY
        candidates, blind = before["apart"], before["blind"]
        if due:
            listed = numbers.account_numbers(readers, normalize)
            # the numbers of the last check when they cannot be read
            candidates = before["apart"] + before["blind"] if listed is None else numbers.unseen_numbers(listed, inbox)
            blind = []
        found, unreadable = numbers.read_inboxes(readers, candidates, lambda name: self._stop(name, previous), normalize, self.page_size)
        blind = blind + unreadable
        reads: dict[str, SourceRead] = {}
        apart = []
        for number_id, number in candidates:
            read = found.get(number_id)
            if read is None or (due and numbers.adds_nothing(read, inbox)):
                continue  # cannot be read; or the inbox lists this number's messages
            name = numbers.inbox_of(number_id)
            self._notes.append(how_read(f"inbox of virtual number ID {number_id}", read, self._stop(name, previous) is None))
            reads[name] = read
            apart.append((number_id, number))
        if blind:
            logger.warning(numbers.blind_warning(blind))
        self._numbers = {"at": self.at if due else before["at"], "apart": [list(n) for n in apart], "blind": [list(n) for n in blind]}
        return reads

    def _stop(self, name: str, previous: Mapping[str, Any]) -> Optional[int]:
        position = previous.get(name) if isinstance(previous.get(name), Mapping) else None
        newest = position.get("newest") if position else None
        if not isinstance(newest, int):
            return None
        return newest - (self.lookback if name == "message_log" else 0)

    def _decide(
        self, targets: list[str], known: list[str], forms: Mapping[str, str], cursor_of: Mapping[str, int],
        reads: Mapping[str, SourceRead], previous: Mapping[str, Any], windows: Mapping[str, Any], normalize: Any,
    ) -> list[str]:
        """The phones of each rule, in order, each once; logs how many of each."""
        changed: set[str] = set()
        for name, read in reads.items():
            position = previous.get(name) if isinstance(previous.get(name), Mapping) else None
            window = self.lookback if name == "message_log" and self.lookback > 0 else 0
            changed |= moved(read, position, cursor_of, self.at, self.lookback, window, self.late)
        pending = live_pending(previous.get("pending"), self.at)
        failed_before = {p for p in previous.get("failed") or [] if isinstance(p, str)}
        reads_of = self.last_reads
        flagged = uncovered_of(previous)
        rules = {
            # first: the last phone handed out fails where it fails (conversation.Outcomes.loud),
            # and the first is never the last
            "failed": [p for p in known if p in failed_before],
            "new": [p for p in targets if forms[p] not in cursor_of],
            "moved": [p for p in known if forms[p] in changed],
            "uncovered": [p for p in known if p in flagged],
            "pending": [p for p in known if p in pending],
            "swept": [p for p in known if sweep_due(p, reads_of.get(p), self.at, self.days)],
        }
        chosen: dict[str, str] = {}
        for rule, phones in rules.items():
            for phone in phones:
                chosen.setdefault(phone, rule)
        counts = {rule: sum(1 for r in chosen.values() if r == rule) for rule in rules}
        logger.info(
            f"Change detection: {len(chosen):,} of {len(targets):,} phones read: "
            + (f"{counts['failed']:,} whose read failed in the last sync, " if counts["failed"] else "")
            + f"{counts['new']:,} new, {counts['moved']:,} with new entries in the inbox or the message log, "
            f"{counts['uncovered']:,} not "
            f"covered by them, {counts['pending']:,} with a delivery status not final, {counts['swept']:,} due for "
            f"the {self.days}-day sweep"
            + (" (no phone's last read known: every phone)" if known and not reads_of else "")
            + (f"; {'; '.join(self._notes)}." if self._notes else ".")
        )
        # a known phone that no source showed moved: a message after its cursor is one no source announced
        unannounced = [p for p, rule in chosen.items() if rule not in ("new", "moved", "failed")]
        self.observations.watch(windows, self._known, unannounced, normalize, self.at - LATE)
        return list(chosen)

    def final_state(self, failed: Iterable[str] = ()) -> dict[str, Any]:
        """What the next sync needs, once every phone handed out is read (records observed).
        `failed`: the phones whose read failed (they are read again by the next sync, and what
        their records showed is not taken for a whole read)."""
        state = dict(self.state or {})
        previous = self.previous or {}
        seen = self.observations
        failed = set(failed)
        read = self.handed - failed
        # a phone no longer synced (taken out of Phone Numbers, no longer found) is left out
        synced = set(self._known) | self.handed
        left_out = {p: v for p, v in coverage.uncovered(uncovered_of(previous), seen, read).items() if p in synced}
        pending = next_pending(live_pending(previous.get("pending"), self.at), seen.pending, read, self.at)
        pending = {p: t for p, t in pending.items() if p in synced}
        if left_out:
            state["uncovered"] = dict(sorted(left_out.items()))
        if pending:
            state["pending"] = dict(sorted(pending.items()))
        if failed:
            state["failed"] = sorted(failed)
        if left_out and not self._warned:
            self._warned = True
            logger.warning(coverage_warning(left_out, self.targets))
        return state


def by_date(name: str, read: SourceRead) -> str:
    """Said once a sync for a source whose newest second is judged by its date."""
    unnamed = sum(1 for _, _, i in read.entries if i is None)
    why = (
        f"{unnamed:,} of the {len(read.entries):,} entries read have no ID" if unnamed
        else f"its newest second has more than {MAX_IDS:,} entries"
    )
    return (
        f"Change detection: the {name.replace('_', ' ')} cannot say which entries of its newest second are new "
        f"({why}): the phones of that second are read again in each sync until a newer entry is listed."
    )


def coverage_warning(left_out: Mapping[str, list[str]], targets: int) -> str:
    inbox = sum(1 for names in left_out.values() if "inbox" in names)
    log = sum(1 for names in left_out.values() if "message_log" in names)
    why = [f"{inbox:,} with inbound messages the inbox does not list"] if inbox else []
    why += [f"{log:,} with outbound messages the message log does not list"] if log else []
    return (
        f"Change detection: {len(left_out):,} of {max(targets, len(left_out)):,} phones are not covered by the inbox and "
        f"the message log ({', '.join(why)}): they are read every sync until those lists show their messages "
        "again. The lists may leave out some of your numbers or kinds of message (WhatsApp, calls); if every "
        "phone is named here, their dates may be in another time zone than UTC."
    )


def _ago(seconds: int) -> str:
    """'3 hours ago' for the log."""
    hours = seconds // 3600
    return f"{hours // 24} day(s) ago" if hours >= 48 else f"{hours} hour(s) ago" if hours else "less than an hour ago"


def _reason(error: Exception) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return message.strip().rstrip(".")[:300]
