"""The account's virtual numbers, for phone discovery: an inbox that lists one number alone.

`/v1/message/inbox` may list the messages of one of the account's virtual numbers only (the API
has an inbox per number, `/v1/message/inbox/{ID}`): a phone that texts only another number, and is
in no contact list and no message log, would never be found. So, where the account has two
numbers or more (`/v1/vmn`), the inbox of each number that the inbox's entries do not show as a
`receiver` is read too, as a list of its own (its own position, its phones discovered, its changes
detected). A number whose inbox turns out to list nothing that the inbox does not is left alone
until the next check; the check comes back every `full_sweep_days`, the numbers with it. A number
whose inbox cannot be read is named in one warning a sync: discovery cannot see its phones.

The state keeps, in `parent_state.changes.numbers`: when the numbers were last checked (`at`), the
numbers read apart (`apart`) and those whose inbox cannot be read (`blind`), each as its ID and
number.
"""

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

from source_smstools.components.context import sync_of
from source_smstools.components.pages import body_of
from source_smstools.components.session import Refused
from source_smstools.components.sources import Fetch, Listed, SourceRead, Unreadable, Window, page_reader, read_source

logger = logging.getLogger("airbyte")

APART = "inbox/"  # a number's inbox, as a list of its own: "inbox/<ID>"
Number = tuple[str, str]  # (its ID in /v1/vmn, the number in one form)


@dataclass(frozen=True)
class Readers:
    """How change detection asks for the account's numbers and for one number's inbox (their
    requesters, with their error handlers: discovery.PhonePartitionRouter makes them)."""

    numbers: Callable[[], Any]  # the /v1/vmn answer, parsed
    inbox: Callable[[str], Fetch]  # a number's ID -> its inbox, a page by its number


def number_readers(requesters: Iterable[Any], config: Mapping[str, Any], page_size: int) -> Optional[Readers]:
    """The Readers of the router's page requesters named `virtual_numbers` and `number_inbox`
    (None without them: a manifest of before 0.4.0's)."""
    named = {r.name: r for r in requesters}
    listed, inbox = named.get("virtual_numbers"), named.get("number_inbox")
    if listed is None or inbox is None:
        return None
    sync = sync_of(config)

    def account_numbers() -> Any:
        response = listed.send_request()
        body = body_of(response, sync, {"shape": "list"}) if response is not None else None
        if not isinstance(body, list):
            what = "no answer" if response is None else f"HTTP {response.status_code}, " + (
                f"error {body.get('error')}" if isinstance(body, dict) and "error" in body else f"{type(body).__name__}"
            )
            raise Unreadable(f"{what} instead of a list")
        return body

    return Readers(account_numbers, lambda number_id: page_reader(inbox, config, page_size, partition={"phone": number_id}))


def account_numbers(readers: Readers, normalize: Callable[[Any], Optional[str]]) -> Optional[list[Number]]:
    """The account's numbers (`/v1/vmn`); None, said at INFO, when they cannot be read (a refusal
    of the sync is raised)."""
    try:
        return listed_numbers(readers.numbers(), normalize)
    except Refused:
        raise
    except Exception as error:  # forbidden, or no list
        reason = (getattr(error, "message", None) or str(error) or type(error).__name__).strip().rstrip(".")[:300]
        logger.info(f"Phone discovery: the account's virtual numbers could not be read ({reason}).")
        return None


def read_inboxes(
    readers: Readers, numbers: Iterable[Number], stop: Callable[[str], Optional[int]], normalize: Any, page_size: int,
) -> tuple[dict[str, SourceRead], list[Number]]:
    """Each number's inbox read down to `stop(its list's name)` (None: whole): {ID: its read}, and
    the numbers whose inbox cannot be read (a refusal of the sync is raised)."""
    reads: dict[str, SourceRead] = {}
    blind: list[Number] = []
    for number_id, number in numbers:
        try:
            reads[number_id] = read_source(None, stop(inbox_of(number_id)), "sender", normalize, page_size, readers.inbox(number_id))
        except Refused:
            raise
        except Exception:  # this number's inbox cannot be read: discovery cannot see its phones
            blind.append((number_id, number))
    return reads, blind


def inbox_of(number_id: str) -> str:
    return APART + number_id


def is_apart(name: str) -> bool:
    return name.startswith(APART)


def listed_numbers(body: Any, normalize: Callable[[Any], Optional[str]]) -> list[Number]:
    """The numbers of a `/v1/vmn` answer (a list of {ID, number, countrycode}); those without an ID
    or a number we can read are left out."""
    found: list[Number] = []
    for entry in body if isinstance(body, list) else []:
        if not isinstance(entry, Mapping) or entry.get("ID") in (None, ""):
            continue
        digits = normalize(f"{entry.get('countrycode') or ''}{entry.get('number') or ''}")
        if digits is not None:
            found.append((str(entry["ID"]), digits))
    return found


def unseen_numbers(numbers: list[Number], inbox: Optional[SourceRead]) -> list[Number]:
    """The numbers whose inbox is read apart: with two or more, those no entry of the inbox's was
    received on (a number written in another form is read apart too: it costs requests, not messages)."""
    if len(numbers) < 2:
        return []
    receivers = inbox.receivers if inbox is not None else set()
    return [n for n in numbers if n[1] not in receivers]


def adds_nothing(read: SourceRead, inbox: Optional[SourceRead]) -> bool:
    """Whether a number's inbox lists nothing the account's inbox did not (no entry, or each one's
    phone and date among the inbox's): then the inbox covers that number."""
    listed = {(p, d) for p, d, _ in inbox.entries} if inbox is not None else set()
    return all((p, d) in listed for p, d, _ in read.entries)


def joined_windows(windows: Mapping[str, Window]) -> dict[str, Window]:
    """The windows for the coverage check, the numbers' inboxes joined into the inbox's: an inbound
    message is listed when one of them lists it, over the span all of them covered."""
    parts = [w for name, w in windows.items() if name == "inbox" or is_apart(name)]
    result = {name: w for name, w in windows.items() if not is_apart(name)}
    if len(parts) > 1:
        afters = [w.after for w in parts if w.after is not None]
        result["inbox"] = Window(
            max(afters) if afters else None, min(w.upto for w in parts), Listed(pair for w in parts for pair in w.listed)
        )
    elif parts:
        result["inbox"] = parts[0]
    return result


def blind_warning(blind: Iterable[Any]) -> str:
    named = ", ".join(f"ID {i} (+{n})" for i, n in blind)
    return (
        f"Phone discovery cannot read the inbox of the account's virtual number(s) {named}, and the account's "
        "inbox does not list their messages: phones that text only those numbers, and are in no contact list "
        "and no message log, are not found. List them in Phone Numbers (phone_numbers)."
    )


def saved_numbers(previous: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers' part of the last sync's state, checked: {"at": int or None, "apart": [Number],
    "blind": [Number]} (an entry of another form is left out: that number is checked again)."""
    numbers = previous.get("numbers")
    numbers = numbers if isinstance(numbers, Mapping) else {}
    at = numbers.get("at")
    return {"at": at if type(at) is int else None, "apart": _pairs(numbers.get("apart")), "blind": _pairs(numbers.get("blind"))}


def _pairs(value: Any) -> list[Number]:
    return [
        (str(v[0]), str(v[1])) for v in value if isinstance(v, (list, tuple)) and len(v) == 2
        and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v)
    ] if isinstance(value, list) else []
