"""Reliability: a saved state that is broken, of another shape or another version: read sensibly or
refused clearly, before any request (issue 5). Figures as in test_reliability.py."""

from __future__ import annotations

from typing import Any

import pytest

from integration_tests import cli
from integration_tests.reliability.figures import (
    Figures, assert_each, compare, configured, conversations, error_messages, ids_of, parallel, parts, result_of,
)
from smstools_emulator import Emulator

PARTS = parts()


def _stream(stream_state: Any, name: str = "conversation") -> list[dict[str, Any]]:
    return [{"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": stream_state}}]


def _per_phone(values: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    return _stream({"use_global_cursor": False, "states": [
        {"partition": {"phone": p}, "cursor": {"unixDatetime": v}} for p, v in values.items()
    ], **extra})


BAD_STATE_CONVS = conversations((30, 12), seed=4)
_A, _B = (configured(p) for p in BAD_STATE_CONVS)
_CUT = BAD_STATE_CONVS[_A][9]["unixDatetime"]  # the 10th newest message of phone A


def _from(cut: int | None, phone: str) -> set[str]:
    return ids_of(phone, [m for m in BAD_STATE_CONVS[phone] if cut is None or m["unixDatetime"] >= cut])


EVERYTHING = _from(None, _A) | _from(None, _B)

# name -> (state file content, what happens: the ids it must deliver, or the words of its refusal)
BAD_STATES: dict[str, tuple[Any, Any]] = {
    "null": ("null", EVERYTHING),
    "an empty list": ([], EVERYTHING),
    "an empty object": ({}, EVERYTHING),
    "another stream's state": (_stream({"unixDatetime": str(_CUT)}, "other_stream"), EVERYTHING),
    "a LEGACY state message": ([{"type": "LEGACY", "data": {"conversation": {"unixDatetime": str(_CUT)}}}], EVERYTHING),
    "one cursor for every phone (older shape)": (_stream({"unixDatetime": str(_CUT)}), _from(_CUT, _A) | _from(_CUT, _B)),
    "a cursor as a number, not a string": (_per_phone({_A: _CUT}), _from(_CUT, _A) | _from(None, _B)),
    "a cursor in the future": (_per_phone({_A: "99999999999", _B: str(_CUT)}), _from(None, _A) | _from(_CUT, _B)),
    "a negative cursor": (_per_phone({_A: "-5"}), EVERYTHING),
    "a phone that is not configured": (_per_phone({"+390000000000": str(_CUT)}), EVERYTHING),
    "the CDK's own shape, with global state and lookback": (
        _per_phone({_A: str(_CUT)}, state={"unixDatetime": "99999999999"}, lookback_window=5), _from(_CUT, _A) | _from(None, _B)),
    "an empty file": ("", "state file"),
    "not JSON": ("{nope", "state file"),
    "a state message of no type": ([{}], "state file"),
    "a legacy dict, not a list of messages": ({"conversation": {"unixDatetime": str(_CUT)}}, "state file"),
    "stream_state a list": (_stream([1, 2]), "state file"),
    "stream_state a string": (_stream("abc"), "state file"),
    "a GLOBAL state with shared state": ([{"type": "GLOBAL", "global": {"shared_state": {"x": 1}, "stream_states": []}}], "GLOBAL"),
    "unknown keys": (_stream({"foo": 1}), "saved state of the conversation stream is not usable"),
    '"states" not a list': (_stream({"states": "x"}), "saved state of the conversation stream is not usable"),
    "an entry without a cursor": (_stream({"states": [{"partition": {"phone": _A}}]}), "saved state of the conversation stream is not usable"),
    "a cursor that is not a number": (_per_phone({_A: "abc"}), "not a unix time"),
    "a null cursor": (_per_phone({_A: None}), "not a unix time"),
    "a cursor with a fraction": (_per_phone({_A: "1749000000.5"}), "not a unix time"),
    "a cursor that is a list": (_per_phone({_A: [1]}), "not a unix time"),
}


def run_bad_state(figures: Figures, name: str) -> dict[str, Any]:
    content, _ = BAD_STATES[name]
    with Emulator(BAD_STATE_CONVS) as emulator:
        out = figures.run("read", cli.config(emulator, page_size=10), cli.catalog(), content, "--debug")
        return {"out": out, "requests": len(emulator.requests)}


def check_bad_state(figures: Figures, name: str, outcome: dict[str, Any]) -> None:
    _, expectation = BAD_STATES[name]
    out = outcome["out"]
    if isinstance(expectation, set):
        tally = compare(out.records, expectation)
        figures.section("bad state")[name] = {"outcome": "read", **tally}
        assert out.returncode == 0, error_messages(out)
        # never a silent skip: every message the state does not cover arrives
        assert (tally["lost"], tally["unexpected"]) == (0, 0), tally
    else:
        message = error_messages(out)[0] if out.errors else None
        figures.section("bad state")[name] = {"outcome": "refused", "message": message, "requests": outcome["requests"]}
        assert out.returncode != 0 and not out.records
        assert outcome["requests"] == 0  # refused before anything is read
        assert expectation in message, message


@pytest.fixture(scope="module")
def bad_state_outcomes() -> dict[str, Any]:
    names = list(BAD_STATES)
    return dict(zip(names, parallel(lambda n: run_bad_state(PARTS["fast"], n), names, workers=1)))


@pytest.mark.parametrize("name", list(BAD_STATES))
def test_a_bad_state_works_sensibly_or_fails_clearly(bad_state_outcomes, name):
    check_bad_state(PARTS["fast"], name, result_of(bad_state_outcomes, name))


@pytest.mark.soak
def test_soak_every_bad_state(figures):
    assert_each(
        list(BAD_STATES),
        lambda name: run_bad_state(figures, name),
        lambda name, outcome: check_bad_state(figures, name, outcome),
        workers=3,
    )
