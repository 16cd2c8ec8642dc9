"""One phone's read of its conversation: which page to ask for next, and which messages of each
answer to pass. A state machine of its own (`Read`), fed the answers one at a time; the CDK's
components around it are in components/conversation.py.

The API pages a conversation with `page` and `limit` only, newest first, and nothing in an answer is
trusted beyond what the answers read so far show:

- Two pages meet cleanly when the first message of the next page (after the last page's messages
  seen again, when messages arrived above and say so with their messageId: passed once) is of
  another second than the last page's last message, and `total` did not fall. A `total` that fell
  may mean that messages deleted above moved unread ones onto the page already read: the seconds on
  both sides of the boundary are then read again as one run, and what lies between is passed.
- Messages of one second come in no order the API promises: the last second of what was read is
  held back (a run) until a message of another second follows, and when a page boundary cut it (or
  `total` fell at a boundary inside it), it is read whole in one window, between messages of the
  seconds before and after it. A run larger than one answer can hold is read across pages in
  passes, deduplicated, until two passes agree (a stable order) or every position is accounted for:
  never an error that the next sync would meet again; where a pass's page 1 holds the whole
  conversation (pages that said more were not what was asked for), that answer is the read.
  Messages without a usable time (missing, 0, negative) that share a value are a run too.
- A read ends at a short or empty page, or where `total` says when it never changed during the read,
  or before the last page on evidence (`stops_early`). An API that ignores `page` is read in one
  answer of the largest size when the conversation fits in it.
- A full page of nothing but messages read already, all of the one second the read has found so
  far, is that second going on (identical messages without a messageId, or ties in another order),
  or an API that answers every page with page 1, under a total that may promise more forever: the
  conversation's top is read in one answer of the largest size, which ends the read when it holds
  the whole conversation; else page 2 of that size tells the two apart (page 1's messages again:
  the phone fails, no request reaches further).
- Identical messages without a messageId (two inbound texts of one second) are two messages: the
  second one is passed with OCCURRENCE 2 (records.MessageFields gives it an `id` of its own).

What reading more cannot settle (the conversation keeps moving under the read) fails the phone with
PagingError, naming the phone and the page; its cursor stays where it was, and the next sync reads it
again. What was read more, and why, is said once per read, when it ends (`notes`).
"""

import logging
import math
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Tuple

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

logger = logging.getLogger("airbyte")

MAX_LIMIT = 2000  # the API's largest page
ATTEMPTS = 3  # windows of one boundary or run, each wider, before another way is taken
PASSES = 12  # passes over a run larger than one answer
MAX_PAGES = 100_000  # a bound no conversation reaches: a backend that never stops paging
OCCURRENCE = "__occurrence"  # on the second (third, ...) of identical messages, for records.MessageFields

Ask = Tuple[int, int]  # (page, limit)
Key = Tuple[Any, ...]


def seconds(value: Any) -> Optional[int]:
    """A message's `unixDatetime` as an integer (a PHP backend's "1749113086" too); None otherwise."""
    if type(value) is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def key(message: Any) -> Key:
    """What tells two messages apart (the fields the connector's `id` is made of), as sent."""
    if not isinstance(message, dict):
        return (repr(message),)
    return tuple(
        str(message.get(name)) for name in ("messageId", "direction", "unixDatetime", "sender", "receiver", "message")
    )


def second(message: Any) -> Any:
    """The second a message belongs to: its time; for a time that is none (missing, 0, negative, not
    a number), the value as sent, so that the messages sharing such a value are one run too. (A
    backend may store such values anywhere: no order is assumed among them.)"""
    value = message.get("unixDatetime") if isinstance(message, dict) else None
    at = seconds(value)
    return at if at is not None and at > 0 else ("none", repr(value))


def named(message: Any) -> bool:
    """Whether a message has a messageId (two with one key are then one message, seen twice)."""
    return isinstance(message, dict) and message.get("messageId") not in (None, "", False)


def counted_from_above(passes: List[List[Key]], size: int) -> Counter:
    """Each key as often as the passes (each a list of the keys one pass over a run held) say it is
    there at the most, within reason: its average count plus two standard errors of it, rounded up
    (a key seen is kept at least once); then, should that fall short of `size` in all, brought up to
    it by the keys whose estimate is furthest below. Counted from above: an identical copy may be
    passed once too often, and is not left out (the passes' average, rounded, left some out)."""
    per_pass = [Counter(keys) for keys in passes]
    n = len(per_pass)
    counts: Counter = Counter()
    off: dict = {}
    for k in set().union(*per_pass):
        values = [c[k] for c in per_pass]
        mean = sum(values) / n
        spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        counts[k] = max(1, math.ceil(mean + 2 * spread / math.sqrt(n) - 1e-9))
        off[k] = mean - counts[k]
    short = size - sum(counts.values())
    for k in sorted(off, key=lambda k: (-off[k], repr(k)))[: max(short, 0)]:
        counts[k] += 1
    return counts


def window(lo: int, hi: int) -> Optional[Ask]:
    """The page and limit of the smallest page that holds positions lo..hi (0-based) whole."""
    lo = max(lo, 0)
    for limit in range(hi - lo + 1, MAX_LIMIT + 1):
        start = (lo // limit) * limit
        if start + limit > hi:
            return start // limit + 1, limit
    return None


def overlap(before: list, messages: list) -> int:
    """How many of the last messages of `before` the list `messages` starts with (seen again), by
    their keys; only the messages of the first message's second can start it."""
    if not before or not messages:
        return 0
    first, at = key(messages[0]), _time(messages[0])
    for k in range(min(len(before), len(messages)), 0, -1):
        candidate = before[-k]
        if _time(candidate) == at and key(candidate) == first and _keys(before[len(before) - k :]) == _keys(messages[:k]):
            return k
    return 0


def _time(message: Any) -> Any:
    return message.get("unixDatetime") if isinstance(message, dict) else None


def _keys(messages: list) -> List[Key]:
    return [key(m) for m in messages]


def _same(messages: list, before: list) -> bool:
    """Whether a page holds the messages of the page before (a repeated page), in any order: one
    second's messages may come in another order on every answer."""
    if not messages or len(messages) != len(before):
        return False
    if key(messages[0]) == key(before[0]) and _keys(messages) == _keys(before):
        return True
    return Counter(_keys(messages)) == Counter(_keys(before))


class Tally:
    """How often each key was passed in one read, compact: each key as its 64-bit hash, in buckets of
    arrays, about 20 bytes a message. The keys themselves (tuples of six texts, which keep each
    message's texts alive) took about 700 bytes a message: a read of 300,000 messages peaked at 315
    MiB, 105 with this. Two keys of one hash count as one: in a read of a million messages, a chance
    of about 3 in 10^8 that any two of its messages do."""

    LOAD = 16  # keys per bucket, on average, before the buckets double

    def __init__(self) -> None:
        self._buckets = [array("q") for _ in range(8)]
        self._size = 0

    def __getitem__(self, k: Key) -> int:
        h = hash(k)
        buckets = self._buckets
        return buckets[h & (len(buckets) - 1)].count(h)

    def add(self, k: Key) -> None:
        h = hash(k)
        buckets = self._buckets
        buckets[h & (len(buckets) - 1)].append(h)
        self._size += 1
        if self._size > self.LOAD * len(buckets):
            wider = [array("q") for _ in range(2 * len(buckets))]
            mask = len(wider) - 1
            for bucket in buckets:
                for h in bucket:
                    wider[h & mask].append(h)
            self._buckets = wider


class PagingError(AirbyteTracedException):
    """What paging cannot go on from: the phone fails, its cursor stays where it was."""

    def __init__(self, phone: str, page: int, what: str) -> None:
        message = f"Phone {phone}, page {page}: {what}; its cursor stays where it was, the next sync reads it again."
        super().__init__(message=message, internal_message=message, failure_type=FailureType.system_error)


@dataclass
class Reply:
    """A conversation answer as paging needs it: what was asked, and what came."""

    ask: Ask
    page: Any  # the page the answer says it is
    total: Any
    messages: list


@dataclass
class Run:
    """The messages at the end of what was read, of its last second (or, where `total` fell at a
    boundary inside it, of the seconds around that boundary), held back until a message of an older
    second follows; read whole when a page boundary cut it (`split`).

    Its place in an answer is between its neighbours, each known by its second: `above`, that of
    the message before it, and `below`, that of the message after it (for messages without a time,
    the value they share); `before` and `after` are those messages' keys, None at the conversation's
    start and end."""

    first: Any  # its first (newest) second
    last: Any  # its last second, while it goes on
    members: list
    start: int  # the position of its first message, in the listing as now read
    above: Any
    before: Optional[Key]
    page: int  # the page it starts on
    split: bool = False
    end: int = 0  # the position of its last message, once it ends
    below: Any = None
    after: Optional[Key] = None
    moved: int = 0  # how far `total` moved while it was read
    counted: Counter = field(default_factory=Counter)  # each member, as often as one answer held it

    def add(self, members: list) -> None:
        """Members of one answer."""
        self.members += members
        self.counted |= Counter(key(m) for m in members)

    def timed(self) -> bool:
        """Whether seconds bound it: its own, and its neighbours', where they have one, on either
        side of them."""
        return (
            isinstance(self.first, int) and isinstance(self.last, int)
            and (not isinstance(self.above, int) or self.above > self.first)
            and (not isinstance(self.below, int) or self.below < self.last)
        )

    def bounds(self) -> Tuple[float, float]:
        """The seconds its span lies strictly between: its neighbours', or, where a neighbour has
        none (no time, or none there), just beyond its own first and last."""
        top = self.above if isinstance(self.above, int) else (math.inf if self.before is None else self.first + 1)
        bottom = self.below if isinstance(self.below, int) else (-math.inf if self.after is None else self.last - 1)
        return top, bottom

    def holds(self, message: Any) -> bool:
        """Whether a message of an answer is one of the run's."""
        at = second(message)
        if not self.timed():
            return at == self.first
        top, bottom = self.bounds()
        return isinstance(at, int) and bottom < at < top

    def region(self, messages: list, ask: Ask) -> Optional[Tuple[int, int]]:
        """Where it lies in an answer, between its neighbours, when the answer shows where both are:
        the first and last index of what is between them (its messages, and any that moved in
        between; none, when all of them went). A neighbour is known by its second (for messages
        without a time, by the value they share); the conversation's start and end by the answer's.
        Where a neighbour's value recurs (messages without a time here and there), the place that
        holds most of the run's messages as read, and of those the nearest to them, is taken."""
        page, limit = ask
        n = len(messages)
        ordered = isinstance(self.above, int) and self.timed()
        if self.before is None:
            starts = [0] if page == 1 else []
        elif isinstance(self.above, int):  # one second's messages are together: after the last of them
            above = [i for i, m in enumerate(messages) if self._is_above(m)]
            starts = [above[-1] + 1] if above else []
        else:
            starts = [i + 1 for i, m in enumerate(messages) if self._is_above(m)]
        found = []
        for start in starts:
            end = self._end(messages, start, n < limit)
            if end is None or (ordered and any(self._is_above(m) for m in messages[start : end + 1])):
                continue
            found.append((self._likeness(messages[start : end + 1]), start, end))
        if not found:
            return None
        found.sort(key=lambda f: (-f[0], -f[1]))  # the most alike; of those, the nearest to its messages
        return found[0][1], found[0][2]

    def _end(self, messages: list, start: int, ends: bool) -> Optional[int]:
        """The last index before its neighbour below, from `start` (or the conversation's end)."""
        if self.after is None:
            return len(messages) - 1 if ends else None
        below = next((j for j in range(start, len(messages)) if self._is_below(messages[j])), None)
        return below - 1 if below is not None else None

    def _likeness(self, region: list) -> int:
        """How many of the run's messages as read a region holds."""
        return sum((Counter(key(m) for m in region) & Counter(key(m) for m in self.members)).values())

    def _is_above(self, message: Any) -> bool:
        """Whether a message is of its neighbour's above, or newer (where seconds order them)."""
        at = second(message)
        if isinstance(self.above, int) and self.timed():
            return isinstance(at, int) and at >= self.above
        return self.above is not None and at == self.above

    def _is_below(self, message: Any) -> bool:
        at = second(message)
        if isinstance(self.below, int) and self.timed():
            return isinstance(at, int) and at <= self.below
        # a neighbour below without a time (None too) is known by its value
        return self.after is not None and at == self.below


def _past(messages: list, run: Run) -> bool:
    """Whether an answer holds messages after the run's (older, or without a time after its own)."""
    where = [i for i, m in enumerate(messages) if run.holds(m)]
    return bool(where) and where[-1] + 1 < len(messages)


@dataclass
class Step:
    """A request beyond the pages of the read's size: a window of a run (`run`), passes over a run
    larger than one answer (`passes`), the whole conversation in one answer (`whole`), or, where
    `total` fell during the read, the conversation read again in answers of the largest size to
    pass what moved past the pages as they were read (`check`)."""

    kind: str
    ask: Ask
    run: Optional[Run] = None
    attempts: int = 0
    page: int = 0  # the page whose run (or whose answer) this is
    why: str = ""  # `whole`: what the page answered
    # passes
    todo: List[Ask] = field(default_factory=list)
    found: list = field(default_factory=list)  # this pass's members, in the order read
    done: List[List[Key]] = field(default_factory=list)  # each pass's keys, in order
    most: Counter = field(default_factory=Counter)  # each key, as often as one answer held it
    sums: Counter = field(default_factory=Counter)  # each key, as often as all passes together held it
    example: Dict[Key, Any] = field(default_factory=dict)
    stale: int = 0  # passes in a row that found nothing new
    totals: set = field(default_factory=set)  # the totals its answers said (more than one: it moved)
    cuts: set = field(default_factory=set)  # `check`: the seconds an answer ended in
    held: Optional[Reply] = None  # `top`: the page that made it be asked, taken once it is settled


class Read:
    """One phone's read of its conversation in one sync. `next` is the request to make (None: the
    read is over); `take(answer)` gives the messages of the answer to that request to pass.

    `lower`: the oldest time to pass (the cursor minus the lookback; None: every message);
    `upper`: the sync's clock (a message dated later is passed with its time emptied)."""

    def __init__(self, phone: str, size: int, lower: Optional[int] = None, upper: Optional[int] = None) -> None:
        self.phone, self.size, self.lower, self.upper = phone, size, lower, upper
        self.next: Optional[Ask] = (1, size)
        self.page = 0  # the last page of `size` read
        self.total: Optional[int] = None  # as the last such page said it
        self.changed = 0  # pages whose total was not the one before
        self.prev: list = []  # the messages of the last page read
        self.last: Optional[Key] = None  # the last message read before the held run: its key
        self.last_at: Any = None  # and its second
        self.run: Optional[Run] = None
        self.plans: Deque[Step] = deque()
        self.after: Optional[Ask] = None  # the page to ask for once the plans are done
        self.ending = False  # the read ends once the plans are done
        self.held: list = []  # messages older than `lower`, passed if a newer one follows
        self.early: Optional[Counter] = Counter()  # the keys passed, while they fit one answer
        self.passed = 0
        self.recent: Deque[Key] = deque()  # the keys of the last messages passed, as many as two answers hold
        self.recently: Dict[Key, int] = {}  # how often each of `recent` is in it
        self.occurrences: Counter = Counter()  # the unnamed keys passed of the second `counting`
        self.counting: Any = None
        self.timeless: Counter = Counter()  # the unnamed keys passed without a usable time
        self.extra = 0  # requests beyond the pages of `size`
        self.counts: Counter = Counter()  # what was read more, and why, for `notes`
        self.odd = self.later = 0
        self.ignored = ""  # what an answer that ignored `page` said
        self.newest: Optional[int] = None  # the newest time of the messages passed (no later than `upper`)
        self.seen = Tally()  # every key passed, as often as passed (what `check` compares with)
        self.said_total: Optional[int] = None  # the total of the last answer
        self.fell = False  # an answer's total was lower than the one before: messages went, others moved up
        self.checked = False
        self.probed = False  # the conversation's top was read in one answer (`top`)

    # -- an answer in ---------------------------------------------------------------------------

    def take(self, answer: Reply) -> list:
        """The messages of `answer` (to the request `next` named) to pass; sets `next`."""
        if answer.ask != self.next:
            raise PagingError(self.phone, answer.ask[0], f"asked out of turn (page {self.page} was the last read)")
        if isinstance(answer.total, int):
            self.fell |= self.said_total is not None and answer.total < self.said_total
            self.said_total = answer.total
        if self.plans:
            self.extra += 1
            plan = self.plans[0]
            step = {"run": self._run_read, "passes": self._passed, "whole": self._whole, "check": self._checked,
                    "top": self._top}[plan.kind]
            return step(plan, answer)
        return self._page(answer)

    def _page(self, answer: Reply) -> list:
        page, messages = answer.ask[0], answer.messages
        if answer.page != page:
            return self._whole_plan(page, f"the answer says it is page {answer.page}, not the page asked for")
        if page > 1 and self._repeats(messages, answer.total):
            return self._whole_plan(page, f"the answer repeats page {self.page} ({len(messages)} messages)")
        if page > 1 and self._again(messages):
            return self._top_plan(answer)
        out: list = []
        skip = 0
        if page > 1:
            above, skip = self._above(messages, answer.total - self.total)
            if skip and not above and answer.total - self.total < skip:
                # messages read already, newer than where the read is, with not as many new ones above:
                # an earlier page again
                return self._whole_plan(page, f"the answer repeats messages of earlier pages ({skip} messages)")
            out += self._emit(above)
            skip += self._seen_again(messages[skip:], answer.total - self.total)
        fell = page > 1 and answer.total < self.total
        run = self.run
        if self.total is not None and answer.total != self.total:
            self.changed += 1
            if run is not None:
                run.moved += abs(answer.total - self.total)
        if run is not None:
            run.start += skip  # the messages that arrived above moved it down
        self.total_before = self.total if self.total is not None else answer.total
        self.page, self.total, self.prev = page, answer.total, messages
        start = (page - 1) * self.size
        i = skip
        if run is not None:
            if not isinstance(run.last, int) and answer.total > self.total_before:
                i = self._before_timeless(run, messages, i, answer.total - self.total_before)
            i = self._join(run, messages, i, fell)
            if i < len(messages):
                self.run = None
                run.end, run.below, run.after = start + i - 1, second(messages[i]), key(messages[i])
                out += self._ended(run)
        out += self._rest(messages[i:], start + i)
        return out + self._decide(answer)

    def _repeats(self, messages: list, total: Any) -> bool:
        """Whether the page is the last page again (an API that ignores `page`), not as many new
        messages having arrived above; identical messages all of the held run's second are that
        second going on (twins), read with it."""
        if not _same(messages, self.prev) or total - self.total >= len(messages):
            return False
        twins = self.run is not None and all(not named(m) and second(m) == self.run.last for m in messages)
        return not twins

    def _again(self, messages: list) -> bool:
        """Whether a full page holds only messages of the held run read already, the run being all
        the read has found (one second, from the top): that second going on, or page 1 again
        (`_top_plan`)."""
        run = self.run
        return (
            not self.probed and run is not None and run.before is None and run.first == run.last
            and len(messages) >= self.size and all(second(m) == run.last and run.counted[key(m)] for m in messages)
        )

    def _above(self, messages: list, grew: int) -> Tuple[list, int]:
        """The page's first messages that belong above what was read, being newer than its last
        second: where `total` grew, messages inserted since the last page was read, and that page's
        own messages moved down by them (passed over). Those newer than the whole held run are
        passed; those between it and its neighbour above are its own now, and the run is read whole.
        Where `total` did not grow, messages read already there are an earlier page again (the whole
        page of them is counted), and new ones are no insertion: the last page's last second was out
        of order, and the page goes on as it is."""
        run = self.run
        if run is None:
            edge = self.last_at + 1 if isinstance(self.last_at, int) else None
        elif isinstance(run.last, int):
            edge = run.last + 1
        else:  # a run of messages without a time: what is newer than its neighbour above
            edge = run.above if isinstance(run.above, int) else None
        if edge is None:
            return [], 0
        i = 0
        while i < len(messages) and isinstance(second(messages[i]), int) and second(messages[i]) >= edge:
            i += 1
        if not i:
            return [], 0
        seen = {key(m) for m in self.prev} | {key(m) for m in run.members} if run is not None else {key(m) for m in self.prev}
        new = [m for m in messages[:i] if key(m) not in seen and key(m) not in self.recently]
        if grew <= 0:
            return ([], i) if not new else ([], 0)
        if run is None or not isinstance(run.first, int):
            return new, i
        top = run.above if isinstance(run.above, int) else (math.inf if run.before is None else run.first + 1)
        inside = [m for m in new if second(m) < top]
        if inside:
            run.add(inside)
            run.split = True
        return [m for m in new if second(m) >= top], i

    def _seen_again(self, messages: list, grew: int) -> int:
        """How many of the page's first messages are the last page's again because as many arrived
        above (`total` grew by at least as many). Of those, the ones without a messageId at the end,
        of the held run's second, may instead be twins of theirs in another order: they are read with
        the run (whole), not passed over."""
        again = overlap(self.prev, messages)
        if not again or grew < again:
            return 0
        run = self.run
        while again and run is not None and not named(messages[again - 1]) and second(messages[again - 1]) == run.last:
            again -= 1
        return again

    def _before_timeless(self, run: Run, messages: list, i: int, grew: int) -> int:
        """A held run of messages without a time, and a page that does not begin with it after
        messages arrived: no second says where the new ones belong, so the run's value is looked for
        among the page's first messages, as many as arrived. What comes before it is between the run
        and its neighbour above: the run is read whole with it (its window holds both)."""
        found = next((j for j in range(i, min(len(messages), i + grew + 1)) if second(messages[j]) == run.last), None)
        if found is None or found == i:
            return i
        run.split = True
        return found

    def _join(self, run: Run, messages: list, i: int, fell: bool) -> int:
        """The page's first messages that belong to the held run: those of its last second (a
        boundary cut it), and, where `total` fell at this boundary, the page's first second too."""
        if fell:
            run.split = True  # messages of its second may have moved up onto the page already read
            if i < len(messages) and isinstance(run.last, int) and isinstance(second(messages[i]), int):
                run.last = second(messages[i])
        j = i
        while j < len(messages) and second(messages[j]) == run.last:
            j += 1
        if j > i:
            run.add(messages[i:j])
            run.split = True
        return j

    def _ended(self, run: Run) -> list:
        """A run followed by a message of an older second: passed as read when no boundary cut it,
        else read whole."""
        self.last, self.last_at = (key(run.members[-1]), run.last) if run.members else (self.last, self.last_at)
        if run.split:
            self._plan_run(run, 0)
            return []
        return self._emit(run.members)

    def _rest(self, messages: list, start: int) -> list:
        """Messages after the held run: passed, but for those of the last second, held as the new run
        (the next page may go on with it)."""
        if not messages:
            return []
        at = second(messages[-1])
        cut = len(messages)
        while cut > 0 and second(messages[cut - 1]) == at:
            cut -= 1
        out = self._emit(messages[:cut])
        if cut:
            self.last, self.last_at = key(messages[cut - 1]), second(messages[cut - 1])
        if not self._kept(at):
            self.last, self.last_at = key(messages[-1]), at
            return out + self._emit(messages[cut:])
        top = start + cut == 0
        self.run = Run(
            first=at, last=at, members=[], start=start + cut, page=self.page,
            above=None if top else self.last_at, before=None if top else self.last,
        )
        self.run.add(messages[cut:])
        return out

    def _kept(self, at: Any) -> bool:
        """Whether a second's messages are passed at all: one older than `lower` is not held as a run
        (a time that is none, 0 or negative places nothing: always passed)."""
        return not isinstance(at, int) or at <= 0 or self.lower is None or at >= self.lower

    # -- the end of a page: what next ------------------------------------------------------------

    def _decide(self, answer: Reply) -> list:
        page, messages = answer.ask[0], answer.messages
        ends = not messages or len(messages) < self.size
        if not messages and answer.total > (page - 1) * self.size:
            self.counts["empty"] = page
        if not ends and self.changed == 0 and page * self.size >= answer.total:
            ends = True  # the total never changed during the read: trusted
        if not ends and stops_early(messages, self.lower, self.upper):
            ends = True
        if not ends and page >= MAX_PAGES:
            raise PagingError(self.phone, page + 1, f"more than {MAX_PAGES} pages")
        self.after, self.ending = (None, True) if ends else ((page + 1, self.size), False)
        return self._go_on()

    def _go_on(self) -> list:
        """The next request: the first plan's, else the page decided, else the end (where a held run
        that a boundary cut is read whole first)."""
        if self.plans:
            self.next = self.plans[0].ask
            return []
        if not self.ending:
            self.next = self.after
            return []
        run, self.run = self.run, None
        if run is not None:
            run.end = run.start + len(run.members) - 1
            out = self._ended(run)
            if self.plans:
                return out + self._go_on()
        else:
            out = []
        if self.fell and not self.checked and not self.ignored:
            # messages deleted while the read went on moved the others up, some perhaps past the
            # boundary of a page already read: what was passed is checked against the conversation
            # read again, in answers of the largest size
            self.checked = True
            self.plans.append(Step("check", (1, MAX_LIMIT)))
            self.next = (1, MAX_LIMIT)
            return out
        self.next = None
        return out

    def _done(self, out: list) -> list:
        self.plans.popleft()
        return out + self._go_on()

    def _instead(self, plan: Step) -> None:
        """`plan` in place of the first plan (another attempt, or another way)."""
        self.plans[0] = plan

    # -- a run read whole -------------------------------------------------------------------------

    def _plan_run(self, run: Run, attempts: int, replace: bool = False) -> None:
        margin = 2 ** (attempts + 1) + run.moved
        ask = window(run.start - 1 - margin, run.end + 1 + margin) if attempts < ATTEMPTS else None
        plan = self._passes_plan(run) if ask is None else Step("run", ask, run=run, attempts=attempts, page=run.page)
        if replace:
            self._instead(plan)
        else:
            self.plans.append(plan)

    def _run_read(self, plan: Step, answer: Reply) -> list:
        """A window of a run: its messages, once one answer holds them all together between its
        neighbours; else a wider window, then passes."""
        run, messages = plan.run, answer.messages
        found = run.region(messages, answer.ask)
        if found is not None:
            first, last = found
            self.counts["runs"] += 1
            held = self.run
            if held is not None and run.after is not None and held.members and key(held.members[0]) == run.after:
                # the run held now begins where this one ended: messages of its second may have moved
                # in before it (this answer shows where it begins, not all of it), and what comes
                # before it is what this answer shows there
                held.split = True
                held.above, held.before = second(messages[last]), key(messages[last])
            return self._done(self._emit(messages[first : last + 1]))
        if run.after is None and len(messages) == answer.ask[1] and _past(messages, run):
            # the pages said the conversation ends with this run, and this answer goes on after it:
            # pages that are not what was asked for
            return self._whole_plan(plan.page, "the pages end where an answer of another size goes on")
        self._plan_run(run, plan.attempts + 1, replace=True)
        return self._go_on()

    # -- a run larger than one answer, in passes ---------------------------------------------

    def _passes_plan(self, run: Run) -> Step:
        plan = Step("passes", (0, 0), run=run, page=run.page)
        plan.most = Counter(run.counted)  # the pages read are one pass already
        plan.done.append([key(m) for m in run.members])
        plan.sums.update(plan.done[-1])
        for m in run.members:
            plan.example.setdefault(key(m), m)
        self._next_pass(plan)
        return plan

    def _next_pass(self, plan: Step) -> None:
        run = plan.run
        limit = MAX_LIMIT - len(plan.done) % 3  # the cuts between answers move from one pass to the next
        lo, hi = max(run.start - 1 - run.moved, 0), run.end + 1 + run.moved
        plan.todo = [(p, limit) for p in range(lo // limit + 1, hi // limit + 2)]
        plan.found = []
        plan.ask = plan.todo.pop(0)

    def _passed(self, plan: Step, answer: Reply) -> list:
        """One answer of a pass over a large run: its members counted; once the pass is over, the
        run is settled when two passes agree (a stable order: the members by position), or when every
        position is accounted for, or, the conversation moving, when passes stop finding anything new;
        else the next pass. A page 1 shorter than asked is the whole conversation: the read ends with it."""
        run = plan.run
        if answer.ask[0] == 1 and len(answer.messages) < answer.ask[1] and self.early is not None and not (
            self.fell or run.moved
        ):
            # page 1 shorter than asked holds the whole conversation, where the pages had shown one
            # second alone larger than one answer, `total` unmoved: pages not what was asked for
            # (where it fell, messages deleted: the check at the read's end looks for what moved)
            self.ignored = (
                f"page 1 of {answer.ask[1]} held the whole conversation ({len(answer.messages)} messages), where its "
                f"pages had shown {run.end - run.start + 1} messages of one second"
            )
            return self._whole(plan, answer)
        members = [m for m in answer.messages if run.holds(m)]
        plan.found += members
        plan.totals.add(answer.total)
        counts = Counter(key(m) for m in members)
        grew = any(n > plan.most[k] for k, n in counts.items())
        plan.most |= counts
        for m in members:
            plan.example.setdefault(key(m), m)
        plan.stale = 0 if grew else plan.stale
        if plan.todo:
            plan.ask = plan.todo.pop(0)
            self.next = plan.ask
            return []
        if run.after is None and len(answer.messages) >= answer.ask[1]:
            # the run ends the conversation, and the answer that reaches past its end is full: pages
            # that are not what was asked for
            return self._whole_plan(plan.page, "the pages end where an answer of another size goes on")
        order = [key(m) for m in plan.found]
        # two passes alike, the conversation still: the members by position (identical ones too)
        stable = order == plan.done[-1] and len(plan.totals) == 1 and not run.moved
        plan.done.append(order)
        plan.sums.update(order)
        plan.stale = 0 if grew else plan.stale + 1
        size = run.end - run.start + 1
        still = run.moved == 0 and len(plan.totals) == 1
        # every position accounted for, each key at most once per pass (with identical messages in
        # another order on each answer, one seen twice in a pass can hide another not seen at all)
        whole = still and sum(plan.most.values()) >= size and max(plan.most.values(), default=0) <= 1
        # a still conversation in another order on every answer: every pass holds each message once,
        # so all passes are worth making (their average counts identical ones); a moving one: until
        # passes stop finding anything new
        if stable or whole or (plan.stale >= 3 and not still) or len(plan.done) > PASSES:
            self.counts["large runs"] += 1
            self.counts["passes"] += len(plan.done) - 1
            if stable:
                members = plan.found
            else:
                counted = counted_from_above(plan.done, size) if still else plan.most
                members = [dict(plan.example[k]) for k, n in counted.items() for _ in range(n)]
            self.counts["largest run"] = max(self.counts["largest run"], len(members))
            if not (stable or whole):
                # what the answers cannot show is how many identical messages (no messageId) one
                # second holds beyond what one answer does: counted from above, from the passes (a
                # still conversation), or as the most one answer held (a moving one)
                self.counts["unverified"] += sum((plan.most - counted).values()) + sum((counted - plan.most).values()) if still else max(size - len(members), 0)
                self.counts["unverified runs"] += 1
            return self._done(self._emit(members))
        if len(plan.done) > PASSES:
            raise PagingError(
                self.phone, run.page,
                f"{size} messages of one second, more than one answer holds, came in another order on each of "
                f"{PASSES} passes over them while the conversation moved, and the passes did not find them all",
            )
        self._next_pass(plan)
        self.next = plan.ask
        return []

    # -- what moved past the pages, where `total` fell ----------------------------------------

    def _checked(self, plan: Step, answer: Reply) -> list:
        """One answer of the conversation read again: a named message not passed yet is passed at
        once; identical unnamed ones are passed, as many more as the listing holds beyond those
        passed, once the listing is read through without its total changing (else it is read again,
        up to ATTEMPTS times, then each as often as one answer held it, said as unverified)."""
        messages = answer.messages
        plan.totals.add(answer.total)
        plan.found.append(len(messages))
        out = []
        for m in messages:
            k = key(m)
            if named(m):
                if not self.seen[k] and not plan.most[k]:
                    out.append(m)
                plan.most[k] = 1
            else:
                plan.example.setdefault(k, m)
        unnamed = Counter(key(m) for m in messages if not named(m))
        plan.done.append(list(unnamed.elements()))
        if messages and len(messages) >= answer.ask[1]:
            plan.cuts.add(second(messages[-1]))  # a second the next answer may show again, in another order
        out = self._emit(out)
        ends = len(messages) < answer.ask[1] or stops_early(messages, self.lower, self.upper)
        if not ends:
            if answer.ask[0] >= MAX_PAGES:
                raise PagingError(self.phone, answer.ask[0] + 1, f"more than {MAX_PAGES} pages")
            plan.ask = (answer.ask[0] + 1, MAX_LIMIT)
            self.next = plan.ask
            return out
        listed: Counter = Counter()
        most: Counter = Counter()
        for keys in plan.done:
            listed.update(keys)
            most |= Counter(keys)
        for k in listed:
            if second(plan.example[k]) in plan.cuts:
                listed[k] = most[k]  # cut by an answer's end: as many as one answer held, never counted twice
        still = len(plan.totals) == 1 or len(plan.found) == 1
        if not still and plan.attempts + 1 < ATTEMPTS:
            again = Step("check", (1, MAX_LIMIT), attempts=plan.attempts + 1)
            again.most = plan.most  # the named ones found stay found
            self._instead(again)
            self.next = again.ask
            return out
        if not still:
            self.counts["check unverified"] += max(sum(listed.values()) - sum(most.values()), 0)
            self.counts["check moved"] = ATTEMPTS
            listed = most
        self.counts["checked"] += len(plan.found)
        more = [dict(plan.example[k]) for k, n in listed.items() for _ in range(n - self.seen[k])]
        out += self._emit(more)
        self.plans.popleft()
        self.next = None
        return out

    # -- an API that ignores `page` ---------------------------------------------------------

    def _top_plan(self, answer: Reply) -> list:
        """A page of nothing but what was read already, at the top (`_again`): the messages going on
        cannot be told from an API that answers every page with page 1, and paging on would never
        end where its total lies too. Page 1, which such an API answers right, of the largest size."""
        self.probed = True
        page = answer.ask[0]
        why = (
            f"page {page} held only messages of one second read already (identical messages without a messageId, "
            "or an API that answers every page with page 1)"
        )
        self.plans.append(Step("top", (1, MAX_LIMIT), page=page, why=why, held=answer))
        self.next = (1, MAX_LIMIT)
        return []

    def _top(self, plan: Step, answer: Reply) -> list:
        """The conversation's top: the whole conversation when it fits (the read ends with it);
        else page 2 of the same size, which an API that ignores `page` answers with page 1's messages
        again (the phone fails: no request reaches further); one that does not honours it, and the
        page is taken as it came."""
        if plan.ask[0] == 1:
            if len(answer.messages) < MAX_LIMIT and self.early is not None:
                self.ignored = plan.why
                return self._whole(plan, answer)
            plan.found = answer.messages
            plan.ask = self.next = (2, MAX_LIMIT)
            return []
        if answer.page != 2 or Counter(_keys(answer.messages)) == Counter(_keys(plan.found)):
            raise PagingError(
                self.phone, plan.page,
                f"{plan.why}, and page 2 of {MAX_LIMIT} holds page 1's messages again: the API ignores `page`, and "
                f"the conversation does not fit in one answer ({MAX_LIMIT} messages)",
            )
        self.counts["top"] = plan.page
        self.plans.popleft()
        return self._page(plan.held)

    def _whole_plan(self, page: int, what: str) -> list:
        """The conversation in one answer of the largest size, when what was passed so far is known
        (it fits one answer); else the phone fails: no other request reaches further."""
        if self.early is None or (self.size >= MAX_LIMIT and not self.plans):
            raise PagingError(self.phone, page, what)
        self.ignored = what
        self.plans.clear()
        self.plans.append(Step("whole", (1, MAX_LIMIT), page=page, why=what))
        self.next = (1, MAX_LIMIT)
        return []

    def _whole(self, plan: Step, answer: Reply) -> list:
        """The conversation in one answer: what was not passed yet, when it holds the whole of it."""
        if answer.page != 1 or len(answer.messages) >= MAX_LIMIT:
            raise PagingError(
                self.phone, plan.page, f"{plan.why}, and the conversation does not fit in one answer ({MAX_LIMIT} messages)"
            )
        self.counts["ignored"] += 1
        left = Counter(self.early)
        out = []
        for m in answer.messages:
            k = key(m)
            if left[k]:
                left[k] -= 1
            else:
                out.append(m)
        self.plans.clear()
        self.run, self.next = None, None
        return self._emit(out)

    # -- messages out ---------------------------------------------------------------------------

    def _emit(self, messages: list) -> list:
        """The messages to pass, of those read: those older than `lower` held back (passed when a
        newer one follows: they were out of order), a time later than the sync's clock emptied, the
        second (third, ...) of identical unnamed messages of one second marked with OCCURRENCE, and a
        message with a messageId passed already never passed again (an answer that lied about where
        it is, with a total that lies too, can show it twice)."""
        out: list = []
        for message in messages:
            at = seconds(message.get("unixDatetime")) if isinstance(message, dict) else None
            if at is not None and at > 0:
                if self.lower is not None and at < self.lower:
                    self.held.append(message)
                    if len(self.held) > MAX_LIMIT:  # bounded: passed, which loses nothing
                        self._pass_all(out, self.held)
                        self.held.clear()
                    continue
                if self.held:
                    self._pass_all(out, self.held)
                    self.held.clear()
            else:
                self.odd += 1
            self._pass_all(out, [message])
        return out

    def _pass_all(self, out: list, messages: list) -> None:
        for message in messages:
            k = key(message)
            if named(message) and self.seen[k]:
                self.counts["again"] += 1
                continue
            out.append(self._numbered(message, k))

    def _numbered(self, message: Any, k: Key) -> Any:
        self.passed += 1
        if self.early is not None:
            self.early[k] += 1
            if self.passed > MAX_LIMIT:
                self.early = None
        self.seen.add(k)
        self.recent.append(k)
        recently = self.recently
        recently[k] = recently.get(k, 0) + 1
        if len(self.recent) > 2 * MAX_LIMIT:
            gone = self.recent.popleft()
            if recently[gone] > 1:
                recently[gone] -= 1
            else:
                del recently[gone]  # a key kept at 0 would keep every key passed
        if not isinstance(message, dict):
            return message
        if not named(message):
            at = second(message)
            if isinstance(at, int):
                if at != self.counting:
                    self.counting, self.occurrences = at, Counter()
                counts = self.occurrences
            else:
                counts = self.timeless
            counts[k] += 1
            if counts[k] > 1:
                message[OCCURRENCE] = counts[k]
        when = seconds(message.get("unixDatetime"))
        if when is not None and self.upper is not None and when > self.upper:
            self.later += 1
            message["unixDatetime"] = None  # the cursor must not move past messages not read yet
        elif when is not None and when > 0 and (self.newest is None or when > self.newest):
            self.newest = when
        return message

    # -- what to say once -----------------------------------------------------------------------

    def notes(self) -> List[str]:
        """What this read did beyond reading its pages, each said once, when the read ends."""
        said = []
        c = self.counts
        if c["empty"]:
            said.append(f"an empty page (page {c['empty']}), where the conversation's total promised more; the read ends there")
        if c["runs"]:
            said.append(
                f"{c['runs']} run(s) of messages that a page boundary cut, or where the conversation's total fell, "
                "were read again whole in one answer"
            )
        if c["large runs"]:
            said.append(
                f"messages of one second, more than one answer holds (up to {c['largest run']}), were read across "
                f"pages in {c['passes']} pass(es) and deduplicated"
            )
        if c["unverified runs"]:
            said.append(
                f"{c['unverified runs']} second(s) of more messages than one answer holds came in another order on "
                "every answer, and passes over them stopped finding new ones; identical messages without a "
                f"messageId among them could not all be counted, and were counted from above: as many as "
                f"{c['unverified']} of them may be synced once too often (or, where the conversation moved, missing)"
            )
        if c["checked"]:
            said.append(
                f"the conversation's total fell while it was read (messages deleted): it was read again in "
                f"{c['checked']} answer(s) of {MAX_LIMIT} to pass what moved past the pages as they were read"
                + (f"; it moved on each of {c['check moved']} such reads, and identical messages without a messageId "
                   f"beyond what one answer showed could not be counted (as many as {c['check unverified']})"
                   if c["check unverified"] else "")
            )
        if c["ignored"]:
            said.append(f"{self.ignored}: the conversation was read in one answer of {MAX_LIMIT}")
        if c["top"]:
            said.append(
                f"page {c['top']} held only messages of one second read already: the conversation's top was read "
                f"in answers of {MAX_LIMIT}, which showed that the API honours `page`, and the read went on"
            )
        if self.changed:
            said.append(f"the conversation's total changed on {self.changed} of {self.page} pages while it was read")
        if self.odd or self.later:
            what = []
            if self.odd:
                what.append(f"{self.odd} with a unixDatetime that is missing, not an integer, 0 or negative (passed as sent)")
            if self.later:
                what.append(f"{self.later} with a unixDatetime later than the sync's clock (passed with unixDatetime empty)")
            said.append(
                "messages whose time cannot place them: " + "; ".join(what)
                + ". They are synced, and the phone's cursor does not move past them"
            )
        return said



def stops_early(messages: list, lower: Optional[int], upper: Optional[int]) -> bool:
    """Whether a page proves that the pages after it hold only messages older than `lower` (the
    cursor minus the lookback): its messages with a usable time (a positive integer no later than
    `upper`, the sync's clock) in newest-first order, the last of them older than `lower` and the
    one before it no newer than `lower` (the inclusive cursor's own message, at `lower` without a
    lookback, is one). One message past that point after newer ones could be one out of order: the
    read goes on. Messages whose time cannot place them prove nothing, and are passed wherever they are."""
    if lower is None or len(messages) < 2:
        return False
    top = upper if upper is not None else math.inf

    def usable(at: Optional[int]) -> bool:
        return at is not None and 0 < at <= top

    last = []  # the last two usable times, from the end: the usual page is decided by these alone
    for message in reversed(messages):
        at = seconds(message.get("unixDatetime")) if isinstance(message, dict) else None
        if usable(at):
            last.append(at)
            if len(last) == 2:
                break
    if len(last) < 2 or last[0] >= lower or last[1] > lower:
        return False
    newer = math.inf
    for message in messages:
        at = seconds(message.get("unixDatetime")) if isinstance(message, dict) else None
        if usable(at):
            if at > newer:
                return False  # not newest first
            newer = at
    return True
