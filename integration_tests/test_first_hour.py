"""A new user's set-up mistakes, answered in seconds: a URL that cannot be reached (a closed port, a
name that does not resolve, https:// to a plain-HTTP server) and a wrong secret. In this process
(cli.call): the retry waits are recorded, not slept, and counted here instead of timed."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections import Counter

import pytest

from integration_tests import cli
from source_smstools.components.state import phone_cursors
from smstools_emulator import Emulator, make_conversation, sample_phones

ADVICE = (
    "Check API Base URL (base_url; leave it empty for https://api.smsgatewayapi.com), and that this "
    "machine can reach that host (proxy, firewall, DNS)."
)
REFUSED = "the connection was refused (nothing listens on that port)"
NO_NAME = "the host name does not resolve"
TLS = "the TLS handshake failed (is it an https:// URL to a server that speaks plain HTTP, or a proxy?)"
WRONG_SECRET = (
    "Smstools refused the credentials (error 104: Invalid client ID or client secret). Check the Client "
    "ID and Client Secret under Advanced > API authentication."
)
PHONES = ["+393331000000", "+393331000001", "+393331000002", "+393331000003", "+393331000004"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_config(base_url: str, **overrides) -> dict:
    return {"client_id": "a-client", "client_secret": "a-secret-1234", "phone_numbers": PHONES,
            "base_url": base_url, **overrides}


@pytest.fixture
def emulator():
    phones = sample_phones(10)
    with Emulator({p: make_conversation(p, 30, seed=3) for p in phones}) as server:
        yield server


def test_check_names_a_refused_connection_with_its_host_after_two_short_waits():
    port = closed_port()
    out = cli.call("check", unreachable_config(f"http://127.0.0.1:{port}"), secret="a-secret-1234", timings={})
    assert out.returncode == 0  # a failed check is an answer, not a crash (the protocol's way)
    assert out.connection_status == {
        "status": "FAILED",
        "message": f"'Stream conversation is not available: Cannot reach the Smstools API at "
        f"http://127.0.0.1:{port}: {REFUSED}. {ADVICE}'",
    }
    assert out.waits == [1, 2]  # three attempts, then no request at all
    assert "Rate limit" not in out.stdout


def test_check_names_a_host_name_that_does_not_resolve():
    out = cli.call("check", unreachable_config("http://smstools-typo.invalid"), secret="a-secret-1234", timings={})
    assert out.connection_status["status"] == "FAILED"
    assert out.connection_status["message"] == (
        f"'Stream conversation is not available: Cannot reach the Smstools API at "
        f"http://smstools-typo.invalid:80: {NO_NAME}. {ADVICE}'"
    )
    assert out.waits == [1, 2]


def test_check_names_a_tls_error_at_once(emulator):
    https = emulator.url.replace("http://", "https://")
    out = cli.call("check", unreachable_config(https), secret="a-secret-1234", timings={})
    assert out.connection_status["message"] == (
        f"'Stream conversation is not available: Cannot reach the Smstools API at {https}: {TLS}. {ADVICE}'"
    )
    assert out.waits == []  # the same handshake fails the same way next time
    assert emulator.requests == []  # the emulator saw bytes, no request it could read


@pytest.mark.parametrize("kind", ["refused", "dns", "tls"])
def test_a_read_with_nothing_reachable_ends_with_one_error_of_the_cause(emulator, kind):
    port = closed_port()
    url, host, cause, first_waits = {
        "refused": (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}", REFUSED, [1, 2]),
        "dns": ("http://smstools-typo.invalid", "http://smstools-typo.invalid:80", NO_NAME, [1, 2]),
        "tls": (emulator.url.replace("http://", "https://"), emulator.url.replace("http://", "https://"), TLS, []),
    }[kind]
    catalog = cli.catalog("incremental", list(cli.STREAMS))
    config = unreachable_config(url, num_workers=2)
    out = cli.call("read", config, catalog, secret="a-secret-1234", timings={})
    assert out.returncode == 1
    first, closing = out.errors  # ours, and the CDK's closing summary (the exit status needs it)
    assert first["message"] == f"Cannot reach the Smstools API at {host}: {cause}. {ADVICE}"
    assert first["failure_type"] == "config_error"
    assert closing["message"].startswith("During the sync, the following streams did not sync successfully: ")
    # the first worker to fail tries three times (waits 1 s and 2 s; a TLS error once), the other
    # worker at most as many if it had started; after that no request is sent at all
    assert not Counter(first_waits) - Counter(out.waits)
    assert not Counter(out.waits) - Counter(first_waits * 2)
    assert not out.records and "Rate limit" not in out.stdout


def test_a_wrong_secret_ends_the_read_at_the_first_answer_with_one_error_and_no_dumps(emulator):
    config = cli.config(emulator, client_secret="a-wrong-secret", num_workers=2)
    out = cli.call("read", config, cli.catalog("incremental", list(cli.STREAMS)), secret="a-wrong-secret", timings={})
    assert out.returncode == 1
    first, closing = out.errors
    assert (first["message"], first["internal_message"], first["failure_type"]) == (WRONG_SECRET, WRONG_SECRET, "config_error")
    assert closing["message"].startswith("During the sync, the following streams did not sync successfully: ")
    assert len(emulator.requests) <= 2  # the first round of the 2 workers, then nothing
    for dump in ("Request (body)", "Response (body)", "Response (headers)", "X-Client-Id", "errorMsg"):
        assert dump not in out.stdout
    assert out.waits == [] and not out.records


def test_check_with_a_wrong_secret_says_so(emulator):
    out = cli.call("check", cli.config(emulator, client_secret="a-wrong-secret"), secret="a-wrong-secret", timings={})
    assert out.connection_status == {"status": "FAILED", "message": f"'Stream conversation is not available: {WRONG_SECRET}'"}
    assert len(emulator.requests) == 1


def test_a_connection_lost_once_the_host_has_answered_keeps_its_retries(emulator):
    # page 1 was answered: a reset on page 2 is a transient fault, waited for as before (10 s, plus
    # the CDK's second), and nothing is lost
    emulator.set_faults(rate=1.0, kinds=("reset",), count=1, pages=(2,))
    config = cli.config(emulator, phone_numbers=["+" + emulator.phones()[0]], page_size=10)
    out = cli.call("read", config, cli.catalog(), timings={})
    assert out.returncode == 0 and not out.errors
    assert out.waits == [11.0]
    assert len(out.records) == 30


# -- phone numbers as people type them --------------------------------------------------------


def test_typed_phone_numbers_sync_and_keep_the_state_saved_for_their_plain_form():
    phone, other = "393331000000", "393331000001"
    with Emulator({phone: make_conversation(phone, 5, seed=1), other: make_conversation(other, 3, seed=2)}) as emu:
        first = cli.call("read", cli.config(emu, phone_numbers=["+393331000000"]), cli.catalog())
        assert first.returncode == 0 and len(first.records) == 5
        emu.clear_requests()
        typed = ["+39 333 100 0000", "0039-333-100-0001", "(+39) 333.100.0000"]
        second = cli.call("read", cli.config(emu, phone_numbers=typed), cli.catalog(), first.last_state)
    assert second.returncode == 0 and not second.errors
    # the same partition as before: known, with its cursor, and unchanged in the inbox and the log,
    # so change detection does not ask for it again; the new phone is read whole; the third entry
    # is the first again
    assert sorted((r["phone"], r["unixDatetime"]) for r in second.records) == sorted(
        ("+393331000001", m["unixDatetime"]) for m in make_conversation(other, 3, seed=2))
    assert sorted(phone_cursors(second.states[-1]["stream"]["stream_state"])) == ["+393331000000", "+393331000001"]
    assert [r["path"] for r in emu.requests if r["path"].startswith("/v1/conversation/")] == [
        "/v1/conversation/393331000001"]


@pytest.mark.parametrize("command", ["check", "read"])
def test_an_entry_that_cannot_be_a_phone_number_is_refused_by_name_before_any_request(emulator, command):
    config = cli.config(emulator, phone_numbers=["+39 333 100 0000", "12 34"])
    out = cli.call(command, config, cli.catalog() if command == "read" else None)
    expected = ("phone_numbers[1]: '12 34' is not a phone number. Expected the country code "
                "and the number, 6 to 15 digits, spaces, dashes, dots and brackets allowed, for example "
                "+32 470 12 34 56.")
    if command == "check":
        assert out.connection_status == {"status": "FAILED", "message": repr(f"Encountered an error while discovering streams. Error: {expected}")}
    else:
        assert out.returncode == 1
        assert [(e["message"], e["failure_type"]) for e in out.errors] == [(expected, "config_error")]
    assert emulator.requests == []


def test_letters_in_a_phone_number_are_refused_with_the_expected_form_not_a_regular_expression(emulator):
    out = cli.call("check", cli.config(emulator, phone_numbers=["+39 333 abc"]))
    assert out.connection_status == {
        "status": "FAILED", "message": "Config validation error: phone_numbers[0]: '+39 333 abc' is not in the form +32 470 12 34 56"}


def test_a_url_that_another_web_server_answers_with_404_is_said_at_once(tmp_path):
    # a web server that is not the API (a typo in the host, or a path added to the URL)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        # without change detection's inbox lookup, whose HTML answer is retried as a cut-off page
        # would be, until the conversation's 404 ends the sync (in real time, within its first wait)
        config = unreachable_config(url, change_detection=False)
        check = cli.call("check", config, secret="a-secret-1234", timings={})
        read = cli.call("read", config, cli.catalog(), secret="a-secret-1234", timings={})
    finally:
        server.shutdown()
        server.server_close()
    def expected(endpoint: str) -> str:
        return (
            f"Nothing answers {endpoint} at this API Base URL (HTTP 404, not an answer of the Smstools API). "
            "Check API Base URL (base_url): the address only, without a path such as /v1; leave it empty for "
            "https://api.smsgatewayapi.com."
        )

    said = expected("/v1/conversation/{phone}")
    assert check.connection_status == {"status": "FAILED", "message": repr(f"Stream conversation is not available: {said}")}
    assert (read.errors[0]["message"], read.errors[0]["failure_type"]) == (said, "config_error")
    assert check.waits == read.waits == []
