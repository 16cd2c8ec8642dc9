"""Reliability: a config that is wrong in any of its fields: refused naming the field, before any
request, the secret in no output (issue 5). Figures as in test_reliability.py."""

from __future__ import annotations

from typing import Any

import pytest

from integration_tests import cli
from integration_tests.reliability.figures import (
    Figures, assert_each, error_messages, parallel, parts, result_of,
)
from smstools_emulator import CLIENT_SECRET, Emulator

PARTS = parts()


from integration_tests.reliability.test_bad_state import BAD_STATE_CONVS


_DROP = object()

# name -> (changes to a good config (or the whole file's text), the field the message must name)
BAD_CONFIGS: dict[str, tuple[Any, str]] = {
    "client_id missing": ({"client_id": _DROP}, "client_id"),
    "client_id empty": ({"client_id": ""}, "client_id"),
    "client_id only spaces": ({"client_id": "   "}, "client_id"),
    "client_id with a trailing newline": ({"client_id": "emulator-client\n"}, "client_id"),
    "client_id a number": ({"client_id": 123}, "client_id"),
    "client_id null": ({"client_id": None}, "client_id"),
    "client_secret missing": ({"client_secret": _DROP}, "client_secret"),
    "client_secret empty": ({"client_secret": ""}, "client_secret"),
    "client_secret with a trailing newline": ({"client_secret": CLIENT_SECRET + "\n"}, "client_secret"),
    "client_secret padded with spaces": ({"client_secret": f" {CLIENT_SECRET} "}, "client_secret"),
    "client_secret a number": ({"client_secret": 987654321}, "client_secret"),
    "client_secret a list": ({"client_secret": [CLIENT_SECRET]}, "client_secret"),
    "phone_numbers not a list": ({"phone_numbers": "+393331000000"}, "phone_numbers"),
    "phone_numbers with a letter": ({"phone_numbers": ["+39333100000a"]}, "phone_numbers[0]"),
    "phone_numbers too short": ({"phone_numbers": ["+393331000000", "12345"]}, "phone_numbers[1]"),
    "phone_numbers too long": ({"phone_numbers": ["1234567890123456"]}, "phone_numbers[0]"),
    # (spaces, dashes, brackets and a trailing newline are how people type and paste numbers: accepted)
    "phone_numbers with letters": ({"phone_numbers": ["+39 333 abc"]}, "phone_numbers[0]"),
    "phone_numbers with a newline inside": ({"phone_numbers": ["+39333\n1000000"]}, "phone_numbers[0]"),
    "phone_numbers a number": ({"phone_numbers": [393331000000]}, "phone_numbers[0]"),
    "phone_numbers null": ({"phone_numbers": [None]}, "phone_numbers[0]"),
    "phone_numbers twice the same": ({"phone_numbers": ["+393331000000", "+393331000000"]}, "phone_numbers"),
    "start_date a date only": ({"start_date": "2024-01-01"}, "start_date"),
    "start_date words": ({"start_date": "yesterday"}, "start_date"),
    "start_date month 13": ({"start_date": "2024-13-01T00:00:00Z"}, "start_date"),
    "start_date 30 February": ({"start_date": "2024-02-30T00:00:00Z"}, "start_date"),
    "start_date with an offset": ({"start_date": "2024-01-01T00:00:00+01:00"}, "start_date"),
    "start_date a number": ({"start_date": 1704067200}, "start_date"),
    "lookback_window_days negative": ({"lookback_window_days": -1}, "lookback_window_days"),
    "lookback_window_days a string": ({"lookback_window_days": "3"}, "lookback_window_days"),
    "lookback_window_days a fraction": ({"lookback_window_days": 1.5}, "lookback_window_days"),
    "lookback_window_days above 365": ({"lookback_window_days": 366}, "lookback_window_days"),
    "page_size 0": ({"page_size": 0}, "page_size"),
    "page_size 2001": ({"page_size": 2001}, "page_size"),
    "page_size a string": ({"page_size": "100"}, "page_size"),
    "page_size a fraction": ({"page_size": 100.5}, "page_size"),
    "num_workers 0": ({"num_workers": 0}, "num_workers"),
    "num_workers 100": ({"num_workers": 100}, "num_workers"),
    "num_workers a string": ({"num_workers": "abc"}, "num_workers"),
    "base_url not a URL": ({"base_url": "not a url"}, "base_url"),
    "base_url ftp": ({"base_url": "ftp://127.0.0.1"}, "base_url"),
    "base_url empty": ({"base_url": ""}, "base_url"),
    "base_url with a space": ({"base_url": "http://127.0.0.1 :80"}, "base_url"),
    "the config a list": ("[1, 2]", "config"),
    "the config not JSON": ("{nope", "config"),
}

# read for every form (in this process) and check and discover for a few (as processes) in the fast
# part; all three for every form, as processes, in soak
FAST_CHECK_DISCOVER = {"client_secret with a trailing newline", "start_date 30 February", "num_workers a string", "the config not JSON"}


def run_bad_config(figures: Figures, name: str, command: str) -> dict[str, Any]:
    change, _ = BAD_CONFIGS[name]
    with Emulator(BAD_STATE_CONVS) as emulator:
        if isinstance(change, str):
            config: Any = change
        else:
            config = cli.config(emulator)
            for key, value in change.items():
                config.pop(key) if value is _DROP else config.__setitem__(key, value)
        catalog = cli.catalog() if command == "read" else None
        # the secret as configured (trimmed, for one padded on purpose) stays out of every output
        secret = change.get("client_secret", CLIENT_SECRET) if isinstance(change, dict) else CLIENT_SECRET
        secret = str(secret).strip() if isinstance(secret, (str, int)) and str(secret).strip() else CLIENT_SECRET
        # check and discover run as the command itself: the secret is looked for in its real stdout and stderr
        out = figures.run(command, config, catalog, None, "--debug", secret=secret, process=command != "read")
        return {"out": out, "requests": len(emulator.requests)}


def check_bad_config(figures: Figures, name: str, command: str, outcome: dict[str, Any]) -> None:
    _, field_name = BAD_CONFIGS[name]
    out = outcome["out"]
    if command == "check" and out.of_type("CONNECTION_STATUS"):
        message = out.connection_status.get("message")
        refused = out.connection_status["status"] == "FAILED"
    elif command == "check":  # a config the entry point cannot read at all: an error trace, exit status 1
        message = (error_messages(out) or [None])[0]
        refused = out.returncode != 0 and bool(out.errors)
    else:
        message = (error_messages(out) or [None])[0]
        refused = out.returncode != 0 and not out.records and not out.of_type("CATALOG")
    figures.section("bad config").setdefault(name, {})[command] = {
        "refused": bool(refused), "requests": outcome["requests"], "message": message,
    }
    assert refused, out.stdout[-2000:]
    assert outcome["requests"] == 0  # refused before any request
    assert message and field_name in message, message


BAD_CONFIG_FAST = [(n, "read") for n in BAD_CONFIGS] + [(n, c) for n in sorted(FAST_CHECK_DISCOVER) for c in ("check", "discover")]


@pytest.fixture(scope="module")
def bad_config_outcomes() -> dict[tuple[str, str], Any]:
    return dict(zip(BAD_CONFIG_FAST, parallel(lambda nc: run_bad_config(PARTS["fast"], *nc), BAD_CONFIG_FAST, workers=1)))


@pytest.mark.parametrize("name,command", BAD_CONFIG_FAST)
def test_bad_config_is_refused_clearly_before_any_request(bad_config_outcomes, name, command):
    check_bad_config(PARTS["fast"], name, command, result_of(bad_config_outcomes, (name, command)))


@pytest.mark.soak
def test_soak_every_bad_config_with_check_discover_and_read(figures):
    cases = [(n, c) for n in BAD_CONFIGS for c in ("check", "discover", "read")]
    assert_each(
        cases,
        lambda case: run_bad_config(figures, *case),
        lambda case, outcome: check_bad_config(figures, *case, outcome),
        workers=3,
        label=lambda case: " / ".join(case),
    )
