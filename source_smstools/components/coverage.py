"""What the conversation's records tell change detection: whether the inbox and the message log
list every message (coverage), and which delivery statuses may still change (pending).

Change detection trusts the inbox to list every inbound message and the message log every
outbound one. Nothing documents that they do (the API lists an inbox per virtual number, and a
`type` filter), so each sync checks it on the conversations it reads anyway: a message dated inside
the span a source's pages covered this sync (`sources.Window`) that the source did not list, or a
message after a phone's cursor on a phone that no source showed moved, shows that the source does
not cover that phone (or that kind of message). Such a phone is read every sync until a later read
finds its messages of that kind listed again.

The records reach this module through `MessageFields` (records.py), the transformation every
record of the stream passes, in the threads that read the phones. One `Observations` is made per
build of the stream, by the state migration (state.PerPhoneState), which sees the stream's model
before the CDK builds the stream's components from it: it puts the same object on the partition
router's model and on the transformation's, so both get it as a constructor argument, in every
runtime that builds the manifest. It is therefore per sync; thread-safe (the CDK reads each phone
in one thread at a time, so a phone's figures have one writer; they change under one lock, and a
record that changes nothing takes none); and bounded: per phone read, one timestamp and at most
two source names, whatever the number of messages. The windows it compares with hold the
(phone, date) pairs of the list entries read this sync, as the sync's reads of the lists do.
"""

import threading
from typing import Any, Callable, Iterable, Mapping, MutableMapping, Optional

from source_smstools.components.sources import LISTS, Window

# Delivery statuses that do not change any more, as SMS gateways report them (SMPP's final
# states, CMPP's seven-letter forms, and the words of Twilio, Vonage, Infobip, seven.io and Sinch):
# delivered, failed one way or another, expired, rejected, deleted or cancelled; RECEIVED and READ
# for the inbound messages some gateways mark. ACCEPTED, SENT, BUFFERED, ENROUTE, UNKNOWN and any
# status not listed here count as not final: a status we do not know may still move, and following
# it costs a bounded re-read (changes.STATUS_DAYS), where trusting it could miss its change.
FINAL = frozenset({
    "DELIVERED", "DELIVRD", "DELIVERED_TO_HANDSET",
    "UNDELIVERED", "UNDELIV", "UNDELIVERABLE", "NOTDELIVERED", "NOT_DELIVERED",
    "FAILED", "EXPIRED", "REJECTED", "REJECTD", "DELETED", "CANCELED", "CANCELLED",
    "BLIST", "NOROUTE", "RECEIVED", "READ",
})


def final(status: Any) -> bool:
    return status in FINAL or (isinstance(status, str) and status.strip().upper() in FINAL)


class Observations:
    """This sync's facts from the records, per phone (the partition's `phone`, as handed out).

    `watch` is called by change detection once the sources are read and before any phone is
    handed out: the windows the sources covered, and for each known phone that no source showed
    moved, its cursor (a message after it, dated before the sources' newest entry, is one no
    source announced). `observe` is called for every record."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: Mapping[str, Window] = {}
        self._cursors: Mapping[str, int] = {}
        self._unannounced: set[str] = set()
        self._horizon = 0
        self._normalize: Callable[[Any], Optional[str]] = lambda p: p
        self._forms: MutableMapping[str, Optional[str]] = {}
        self.pending: dict[str, tuple[int, int]] = {}  # phone -> (oldest, newest) outbound message whose status is not final
        # statuses of messages sent before this are no longer followed (changes.STATUS_DAYS): a phone's
        # oldest pending message past the bound must not hide a later one that is within it
        self.pending_since = 0
        self.missing: dict[str, frozenset[str]] = {}  # phone -> the sources that left out one of its messages
        self.listed: dict[str, frozenset[str]] = {}  # phone -> the sources that listed one in their window
        self._names: dict[frozenset, frozenset] = {}  # each combination of sources once

    def watch(
        self, windows: Mapping[str, Window], cursors: Mapping[str, int], unannounced: Iterable[str],
        normalize: Callable[[Any], Optional[str]], listed_by: int = 0,
    ) -> None:
        """`cursors`: the known phones' saved cursors (a message at or before a phone's cursor was
        judged when it was first read: a re-read of it, for the lookback window or a pending
        status, tells nothing new). `unannounced`: the known phones handed out that no source
        showed moved. `listed_by`: a message dated up to then was there when the sources were read
        (the newest entry they listed, or an hour before the sync began: a source that lists
        messages late, or a clock a little off, does not pass for one that leaves them out)."""
        horizon = max([w.upto for w in windows.values()] + [listed_by])
        with self._lock:
            self._windows, self._cursors, self._normalize = dict(windows), dict(cursors), normalize
            self._unannounced, self._horizon = set(unannounced), horizon

    def observe(self, phone: str, record: Mapping[str, Any]) -> None:
        date = record.get("unixDatetime")
        if date.__class__ is not int:
            return  # none, or not a number (a bool is no date either)
        source = LISTS.get(record.get("direction"))
        if source is None:
            return
        if source == "message_log" and date >= self.pending_since and not final(record.get("deliveryStatus")):
            with self._lock:
                oldest, newest = self.pending.get(phone, (date, date))
                self.pending[phone] = (min(oldest, date), max(newest, date))
        window = self._windows.get(source)
        if window is None or date <= self._cursors.get(phone, date - 1):
            return  # not read this sync: nothing to compare with; or judged when first read
        if (window.after is None or date > window.after) and date <= window.upto:
            form = self._forms.get(phone)
            if form is None:
                form = self._normalize(phone)
                form = self._forms[phone] = phone if form == phone else form  # the phone's own string when the same
            verdict = self.listed if (form, date) in window.listed else self.missing
        elif phone in self._unannounced and date <= self._horizon:
            # newer than what the phone's last read found, there when the sources were read, and
            # no source showed the phone moved: the source did not list it
            verdict = self.missing
        else:
            return
        found = verdict.get(phone)
        if found is None or source not in found:
            with self._lock:
                names = verdict.get(phone, frozenset()) | {source}
                # one frozenset of each combination of sources, shared by the phones: a set per phone
                # was 216 bytes (20 MiB at 100,000 phones)
                verdict[phone] = self._names.setdefault(names, names)


def uncovered(before: Mapping[str, Any], seen: Observations, read: set[str]) -> dict[str, list[str]]:
    """phone -> the sources that do not cover it, for the next sync: a source that left out one
    of its messages this sync is added; one that listed its messages this sync and left out none
    is taken off. A phone not read, or read without a message in a window, keeps what it had."""
    result: dict[str, list[str]] = {}
    for phone in set(before) | set(seen.missing):
        names = set(before.get(phone) or ())
        if phone in read:
            names -= seen.listed.get(phone, set()) - seen.missing.get(phone, set())
        names |= seen.missing.get(phone, set())
        if names:
            result[phone] = sorted(names)
    return result
