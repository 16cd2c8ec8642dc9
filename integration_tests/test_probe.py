"""`source-smstools-probe` against the emulator: the report's statuses, keys, types and counts,
its privacy (no phone, text, name, date or credential), and the emulator serving a report's shapes."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from integration_tests import cli
from smstools_emulator import CLIENT_ID, CLIENT_SECRET, Emulator, Shapes, format_datetime, make_conversation, sample_phones
from smstools_emulator.data import SECOND_NUMBER, VIRTUAL_NUMBERS
from smstools_emulator.listing import Listing
from source_smstools import probe

PROBE = str(Path(sys.executable).with_name("source-smstools-probe"))
A, B = "393471234567", "32470998812"
TS = 1_749_113_086  # 2025-06-05 08:44:46 UTC
JUNE_2025 = lambda: TS  # noqa: E731 - the probe's clock: statistics of June 2025


def message(direction: str, ts: int, text: str, status: str, phone: str, message_id: str | None = None, **extra) -> dict:
    out = direction == "outbound"
    return {
        "messageId": message_id, "direction": direction, "sender": "Smstools" if out else phone,
        "receiver": phone if out else "Smstools", "message": text, "file": extra.pop("file", None),
        "datetime": format_datetime(ts), "unixDatetime": ts, "deliveryStatus": status, **extra,
    }


CONVERSATIONS = {
    A: [
        message("outbound", TS, "Ciao Giulia, a domani", "DELIVERED", A, "a1b2c3", mine=True,
                file=[{"name": "foto.jpg", "image": "https://files.example/1.jpg", "mime": "image/jpeg"}]),
        message("inbound", TS - 600, "Grazie mille!", "RECEIVED", A),
        message("outbound", TS - 7200, "Your code is 4821", "PENDING", A, "d4e5f6"),
    ],
    B: [
        message("inbound", TS - 100, "STOP", "RECEIVED", B),
        message("outbound", TS - 86_400, "Offerta speciale: -20% fino a domenica", "FAILED", B, "0a0b0c"),
    ],
}
CONTACTS = [
    {"ID": 1, "phone": "+39 347 123 4567", "firstname": "Giulia", "lastname": "Rossi", "unsubscribed": 0, "groupid": 1,
     "email": "giulia.rossi@example.com", "birthday": "1985-03-14", "memo": ""},
    {"ID": 2, "phone": "0032470998812", "firstname": "Pieter", "lastname": "Peeters", "unsubscribed": 1, "groupid": 2,
     "email": "pieter@example.be", "birthday": None, "memo": "preferisce WhatsApp"},
    {"ID": 3, "phone": "", "firstname": "Ufficio", "lastname": "Amministrazione", "unsubscribed": 0, "groupid": 3,
     "email": "ufficio@example.com", "birthday": None, "memo": ""},
]
FORMS = {A: {"inbox": A, "log": "+" + A}, B: {"inbox": "+32 470 998 812", "log": "+" + B}}


def account(shapes: Shapes | None = None, conversations: dict | None = None) -> Emulator:
    emulator = Emulator(CONVERSATIONS if conversations is None else conversations, shapes=shapes)
    if conversations is None:
        emulator.set_contacts(CONTACTS)
        emulator.forms.update(FORMS)
        emulator.virtual_numbers = [dict(n) for n in (*VIRTUAL_NUMBERS, SECOND_NUMBER)]  # two: their formats differ
    return emulator


def config(emulator: Emulator, **overrides) -> dict:
    return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "base_url": emulator.url, **overrides}


def run(emulator: Emulator, **overrides) -> dict:
    return probe.probe(config(emulator, **overrides), timeout=5, now=JUNE_2025)


def overview(report: dict) -> dict:
    """Per endpoint: status, body kind, list key, counts and envelope keys."""
    return {
        name: (e["status"], e.get("body"), e.get("list_key"), e.get("counts"), e.get("keys"))
        for name, e in report["endpoints"].items()
    }


PAGED = {"total": "integer", "shown": "integer", "page": "integer", "limit": "integer"}


def test_each_endpoint_once_with_its_status_keys_types_and_counts():
    with account() as emulator:
        report = run(emulator, phone_numbers=["+" + A, B])
        requests = [(r["path"], r["query"]) for r in emulator.requests]
    page = {"limit": "5", "page": "1"}
    assert requests == [
        ("/v1/conversation/" + A, page), ("/v1/contact", page), ("/v1/message/inbox", page),
        ("/v1/message/logging", page), ("/v1/outbox", page), ("/v1/groups", page), ("/v1/optouts/list", {}),
        ("/v1/messagetemplates", {}), ("/v1/senderids", {}), ("/v1/vmn", {}), ("/v1/balance", {}),
        ("/v1/statistics", {"year": "2025", "month": "6"}),
        # and the coverage figures: the conversation, the inbox and the log with the connector's pages
        ("/v1/conversation/" + A, {"limit": "200", "page": "1"}), ("/v1/message/inbox", {"limit": "2000", "page": "1"}),
        ("/v1/message/logging", {"limit": "2000", "page": "1"}),
    ]
    assert report["version"] == 1
    assert (report["base_url"], report["phones_configured"], report["conversation_phone_from"]) == ("custom", 2, "config")
    assert overview(report) == {
        "conversation": (200, "object", "conversation", {"records": 3, "total": 3, "shown": 3}, {**PAGED, "conversation": "array"}),
        "contacts": (200, "object", "contacts", {"records": 3, "total": 3, "shown": 3}, {**PAGED, "contacts": "array"}),
        "inbox": (200, "object", "messages", {"records": 2, "total": 2, "shown": 2}, {**PAGED, "messages": "array"}),
        "message_log": (200, "object", "messages", {"records": 3, "total": 3, "shown": 3}, {**PAGED, "messages": "array"}),
        "outbox": (200, "object", "messages", {"records": 2, "total": 2, "shown": 2}, {**PAGED, "messages": "array"}),
        "groups": (200, "array", None, {"records": 3}, None),
        "optouts": (200, "array", None, {"records": 1}, None),
        "message_templates": (200, "array", None, {"records": 3}, None),
        "sender_ids": (200, "array", None, {"records": 2}, None),
        "virtual_numbers": (200, "array", None, {"records": 2}, None),
        "balance": (200, "object", None, {"records": 1}, {"credits": "number", "currency": "string", "use": "string"}),
        "statistics": (200, "object", None, {"records": 1}, {"sent": "integer", "received": "integer"}),
    }
    conversation = report["endpoints"]["conversation"]
    assert conversation["path"] == "/v1/conversation/{phone}" and conversation["content_type"] == "application/json"
    assert conversation["fields"] == {
        "messageId": {"records": 3, "types": {"null": 1, "string": 2}, "formats": {}, "lengths": [6, 6]},
        "direction": {"records": 3, "types": {"string": 3}, "formats": {}, "lengths": [7, 8]},
        "sender": {"records": 3, "types": {"string": 2, "string(digits)": 1}, "formats": {"**********67": 1}, "lengths": [8, 8]},
        "receiver": {"records": 3, "types": {"string": 1, "string(digits)": 2}, "formats": {"**********67": 2}, "lengths": [8, 8]},
        "message": {"records": 3, "types": {"string": 3}, "formats": {}, "lengths": [13, 21]},
        "file": {"records": 3, "types": {"array": 1, "null": 2}, "formats": {}},
        "file[].name": {"records": 1, "types": {"string": 1}, "formats": {}, "lengths": [8, 8]},
        "file[].image": {"records": 1, "types": {"string": 1}, "formats": {}, "lengths": [27, 27]},
        "file[].mime": {"records": 1, "types": {"string": 1}, "formats": {}, "lengths": [10, 10]},
        "datetime": {"records": 3, "types": {"string(date)": 3}, "formats": {"%d %b %Y, %H:%M:%S": 3}},
        "unixDatetime": {"records": 3, "types": {"integer": 3}, "formats": {"unix seconds": 3}},
        "deliveryStatus": {"records": 3, "types": {"string": 3}, "formats": {}, "lengths": [7, 9]},
        "mine": {"records": 1, "types": {"boolean": 1}, "formats": {}},
    }
    assert report["endpoints"]["contacts"]["fields"]["phone"] == {
        "records": 3, "types": {"string(digits)": 1, "string(empty)": 1, "string(phone)": 1},
        "formats": {"+** *** *** **67": 1, "00*********12": 1},
    }
    assert report["endpoints"]["contacts"]["fields"]["birthday"] == {
        "records": 3, "types": {"null": 2, "string(date)": 1}, "formats": {"%Y-%m-%d": 1},
    }
    log = report["endpoints"]["message_log"]["fields"]
    assert {k: (v["records"], v["types"], v["formats"]) for k, v in log.items() if k.startswith("response")} == {
        "response": (3, {"object": 3}, {}),
        "response.read": (3, {"integer": 3}, {}),
        "response.read_date": (3, {"null": 2, "string(date)": 1}, {"%Y-%m-%d %H:%M:%S": 1}),
        "response.response": (3, {"null": 3}, {}),
        "response.response_sms": (3, {"null": 3}, {}),
        "response.response_sms_date": (3, {"null": 3}, {}),
    }
    assert report["endpoints"]["virtual_numbers"]["fields"] == {
        "ID": {"records": 2, "types": {"integer": 2}, "formats": {}},
        "number": {"records": 2, "types": {"string(digits)": 2}, "formats": {"********00": 1, "*******77": 1}},
        "countrycode": {"records": 2, "types": {"string(digits)": 2}, "formats": {}},
    }


def test_without_a_configured_phone_the_conversation_of_the_first_phone_found():
    with account() as emulator:
        report = run(emulator)
        assert [r["path"] for r in emulator.requests[:4]] == [
            "/v1/contact", "/v1/message/inbox", "/v1/message/logging", "/v1/conversation/" + A,
        ]
    assert report["conversation_phone_from"] == "contacts"
    assert report["endpoints"]["conversation"]["counts"] == {"records": 3, "total": 3, "shown": 3}
    # the report keeps the order of the endpoints, whatever the order of the calls
    assert list(report["endpoints"]) == list(probe.ENDPOINTS)

    with account(conversations={}) as emulator:  # an address book without numbers, nothing received or sent
        report = run(emulator)
        assert not emulator.conversation_requests()
    conversation = report["endpoints"]["conversation"]
    assert conversation["status"] is None and conversation["skipped"].startswith("no phone configured")
    assert report["endpoints"]["contacts"]["counts"] == {"records": 1, "total": 1, "shown": 1}
    assert "Not called: no phone configured" in probe.markdown(report)


def test_the_coverage_figures_say_whether_the_lists_hold_the_conversations_messages():
    types = {"sms": 2, "whatsapp": 0, "call": 0, "other": 0}
    with account() as emulator:
        report = run(emulator, phone_numbers=["+" + A])
    # A's reply is in the inbox's span (B's reply is newer); its two sent messages: the log's span
    # begins at the older one (exclusive: others of that second could be on a page not read)
    assert report["coverage"] == {
        "conversation_messages": 3,
        "inbox": {"readable": True, "entries": 2, "undated": 0, "types": types, "hours_covered": 0.1,
                  "messages_of_its_kind": 1, "in_its_span": 1, "listed": 1},
        "message_log": {"readable": True, "entries": 3, "undated": 0, "types": {**types, "sms": 3}, "hours_covered": 24.0,
                        "messages_of_its_kind": 2, "in_its_span": 2, "listed": 2},
        "verdict": "covered",
    }
    with account() as emulator:
        emulator.set_listing(Listing(unlisted_phones={A}))
        report = run(emulator, phone_numbers=["+" + A])
        emulator.forbid("/v1/message/logging")
        forbidden = run(emulator, phone_numbers=["+" + A])
    # the lists hold B's messages only: A's reply is older than B's in the inbox, its sent messages
    # newer than the one of B's in the log (nothing tells there)
    assert report["coverage"]["verdict"] == "not covered: the inbox left out 1 of 1 messages in its span"
    assert (report["coverage"]["message_log"]["in_its_span"], report["coverage"]["message_log"]["listed"]) == (0, 0)
    assert forbidden["coverage"]["verdict"] == (
        "not covered: the inbox left out 1 of 1 messages in its span; the message log could not be read"
    )
    text = probe.markdown(report)
    assert "## coverage: do the inbox and the message log list the conversation's messages?" in text
    assert "Not covered: the inbox left out 1 of 1 messages in its span." in text
    assert A not in text + json.dumps(report)


def test_error_answers_are_findings_reported_by_their_keys_and_code():
    with account() as emulator:
        emulator.forbid("/v1/outbox", "403")
        emulator.forbid("/v1/vmn", "error")
        report = run(emulator, phone_numbers=[A])
    outbox, vmn = report["endpoints"]["outbox"], report["endpoints"]["virtual_numbers"]
    assert (outbox["status"], outbox["keys"], outbox["error_code"]) == (403, {"error": "integer", "errorMsg": "string"}, 403)
    assert (vmn["status"], vmn["keys"], vmn["error_code"]) == (200, {"error": "integer", "errorMsg": "string"}, 110)
    assert "fields" not in outbox and "counts" not in vmn

    with Emulator(CONVERSATIONS, client_secret="another-secret") as emulator:
        report = run(emulator, phone_numbers=[A])
    assert {(e["status"], e["error_code"]) for e in report["endpoints"].values()} == {(401, 104)}
    text = probe.markdown(report) + json.dumps(report)
    assert "Invalid client" not in text  # the error's text is left out: only its code
    assert "## balance: `GET /v1/balance`\n\nHTTP 401, application/json; JSON object; an error body, code 104." in text


def test_answers_that_are_not_json_and_connection_failures():
    with account() as emulator:
        emulator.set_faults(rate=1.0, kinds=("html",))
        report = run(emulator, phone_numbers=[A])
    assert report["endpoints"]["conversation"] == {
        "path": "/v1/conversation/{phone}", "query": {"limit": 5, "page": 1},
        "status": 502, "content_type": "text/html", "json": False, "length": 55, "starts_with": "html",
    }
    with account() as emulator:
        emulator.set_faults(rate=1.0, kinds=("non_json",))
        report = run(emulator, phone_numbers=[A])
    assert {k: report["endpoints"]["conversation"][k] for k in ("status", "content_type", "json", "length", "starts_with")} == {
        "status": 200, "content_type": "text/plain", "json": False, "length": 31, "starts_with": "text",
    }
    assert "Service temporarily" not in probe.markdown(report) + json.dumps(report)

    with account() as emulator:  # a reset connection is tried once more, then reported
        emulator.set_faults(rate=1.0, kinds=("reset",))
        report = run(emulator, phone_numbers=[A])
        assert len(emulator.conversation_requests()) == 2
    assert report["endpoints"]["conversation"]["failure"] == "ConnectionResetError"
    assert report["endpoints"]["contacts"]["status"] == 200

    with account() as emulator:  # nor is an answer cut off half-way
        emulator.set_faults(rate=1.0, kinds=("truncated",))
        report = run(emulator, phone_numbers=[A])
        assert len(emulator.conversation_requests()) == 1
    assert report["endpoints"]["conversation"]["failure"] == "IncompleteRead"

    with account() as emulator:  # a timeout is not retried
        emulator.set_faults(rate=1.0, kinds=("timeout",), timeout_seconds=0.5)
        report = probe.probe(config(emulator, phone_numbers=[A]), timeout=0.1, now=JUNE_2025)
        assert len(emulator.conversation_requests()) == 1
    assert (report["endpoints"]["conversation"]["status"], report["endpoints"]["conversation"]["failure"]) == (None, "timeout")
    assert "No answer: timeout." in probe.markdown(report)


def test_keys_that_are_data_are_reported_by_their_kind():
    body = {
        "+393471234567": {"2025-06-05": 3, "giulia@example.com": "x"},
        "list": [{"393471234567": "Giulia Rossi", "name": "Giulia"}],
    }
    report = probe.analyse(200, "application/json", json.dumps(body).encode())
    assert report["keys"] == {"<string(phone) key>": "object", "list": "array"}
    assert report["list_key"] == "list"
    assert report["fields"] == {
        "<string(digits) key>": {"records": 1, "types": {"string": 1}, "formats": {}, "lengths": [12, 12]},
        "name": {"records": 1, "types": {"string": 1}, "formats": {}, "lengths": [6, 6]},
    }


def test_a_redirect_is_reported_not_followed():
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", emulator.url + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with account() as emulator:
            report = probe.probe(config(emulator, base_url=f"http://127.0.0.1:{server.server_address[1]}", phone_numbers=[A]), timeout=5)
            assert emulator.requests == []  # the credentials went nowhere else
    finally:
        server.shutdown()
        server.server_close()
    assert {name: (e["status"], e["json"], e["length"]) for name, e in report["endpoints"].items()} == {name: (302, False, 0) for name in probe.ENDPOINTS}


def needles(emulator: Emulator) -> set[str]:
    """Every value the report must not hold: phones in any common form, texts, names, emails, dates, credentials."""
    found = {CLIENT_ID, CLIENT_SECRET, "2025"}
    for phone in emulator.phones():
        digits = phone.lstrip("+")
        found |= {"+" + digits, digits, "00" + digits, digits[-6:], digits[2:]}
    for records in (emulator.inbox(), emulator.message_log(), emulator.outbox(), emulator.optouts()):
        for r in records:
            found |= {r["message"] if "message" in r else r["memo"], r["date"], re.sub(r"[^0-9]", "", r.get("to") or r.get("sender") or r["number"])[-6:]}
    for p in emulator.phones():
        for m in emulator.conversation(p):
            found |= {m["message"], m["datetime"], str(m["unixDatetime"])}
    for c in emulator.contacts():
        found |= {c["firstname"], c["lastname"], c["email"]} | {v for v in (c["memo"], c["birthday"]) if v}
    for t in emulator.templates:
        found |= {t["title"], t["message"]}
    for v in emulator.virtual_numbers:
        found |= {v["number"], v["number"][-6:]}
    return found


@pytest.mark.parametrize("data", ["hand-made", "generated"])
def test_the_report_holds_no_phone_text_name_date_or_credential(data, tmp_path):
    conversations = None if data == "hand-made" else {p: make_conversation(p, 60, seed=3) for p in sample_phones(4)}
    with account(conversations=conversations) as emulator:
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(config(emulator, phone_numbers=["+" + p for p in emulator.phones()][:2])))
        assert probe.main(["--config", str(config_file), "--out", str(tmp_path / "report.json")]) == 0
        secret = needles(emulator)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["endpoints"]["conversation"]["counts"]["records"] == (3 if data == "hand-made" else 5)
    text = (tmp_path / "report.json").read_text() + probe.markdown(report)
    assert len(secret) > 50  # the scan is not vacuous
    leaked = sorted(s for s in secret if s in text)
    assert not leaked


def test_round_trip_a_report_served_by_the_emulator_is_probed_back_the_same():
    for conversations, phones in ((None, [A]), ({p: make_conversation(p, 30, seed=5) for p in sample_phones(3)}, [])):
        with account(conversations=conversations) as emulator:
            first = run(emulator, phone_numbers=phones)
        with account(shapes=Shapes(first), conversations=conversations) as emulator:
            second = run(emulator, phone_numbers=phones)
        assert second == first
        assert probe.markdown(second) == probe.markdown(first)


def test_a_variation_in_a_report_is_served_and_probed_back():
    with account() as emulator:
        report = run(emulator, phone_numbers=[A])
    varied = copy.deepcopy(report)
    conversation = varied["endpoints"]["conversation"]
    conversation["keys"] = {"total": "string(digits)", "shown": "string(digits)", "messages": "array"}
    conversation["list_key"] = "messages"
    conversation["fields"]["unixDatetime"]["types"] = {"string(digits)": 3}
    conversation["fields"]["datetime"]["formats"] = {"%Y-%m-%dT%H:%M:%SZ": 3}
    conversation["fields"]["read"] = {"records": 3, "types": {"boolean": 3}, "formats": {}}  # a field the emulator has no data for
    varied["endpoints"]["balance"]["fields"]["credits"]["types"] = {"string(decimal)": 1}
    outbox = varied["endpoints"]["outbox"]
    for key in ("list_key", "counts", "fields"):
        outbox.pop(key)
    outbox.update(status=403, keys={"error": "integer", "errorMsg": "string"}, error_code=110)
    varied["endpoints"]["groups"].update(status=502, content_type="text/html", json=False, length=40, starts_with="html")

    with account(shapes=Shapes(varied)) as emulator:
        answer = get(emulator, "/v1/conversation/" + A + "?limit=2&page=1")
        again = run(emulator, phone_numbers=[A])
    assert answer["total"] == "3" and answer["shown"] == "2" and list(answer) == ["total", "shown", "messages"]
    assert answer["messages"][0]["unixDatetime"] == str(TS) and answer["messages"][0]["datetime"] == "2025-06-05T08:44:46Z"
    assert answer["messages"][0]["read"] is False

    got = again["endpoints"]["conversation"]
    assert (got["keys"], got["list_key"], got["counts"]) == (
        {"total": "string(digits)", "shown": "string(digits)", "messages": "array"}, "messages", {"records": 3, "total": 3, "shown": 3},
    )
    assert got["fields"]["unixDatetime"] == {"records": 3, "types": {"string(digits)": 3}, "formats": {"unix seconds": 3}}
    assert got["fields"]["datetime"] == {"records": 3, "types": {"string(date)": 3}, "formats": {"%Y-%m-%dT%H:%M:%SZ": 3}}
    assert got["fields"]["read"] == {"records": 3, "types": {"boolean": 3}, "formats": {}}
    assert again["endpoints"]["balance"]["keys"] == {"credits": "string(decimal)", "currency": "string", "use": "string"}
    assert {k: again["endpoints"]["outbox"][k] for k in ("status", "keys", "error_code")} == {
        "status": 403, "keys": {"error": "integer", "errorMsg": "string"}, "error_code": 110,
    }
    assert {k: again["endpoints"]["groups"][k] for k in ("status", "json", "length", "starts_with")} == {
        "status": 502, "json": False, "length": 40, "starts_with": "html",
    }
    # what the report does not change stays as the emulator answers it
    assert again["endpoints"]["contacts"] == report["endpoints"]["contacts"]
    markdown = probe.markdown(again)
    assert "| total | string(digits) |" in markdown and "records under `messages`: 3 (total 3, shown 3)" in markdown


def get(emulator: Emulator, path: str) -> dict:
    request = urllib.request.Request(emulator.url + path, headers={"X-Client-Id": CLIENT_ID, "X-Client-Secret": CLIENT_SECRET})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


def test_a_config_it_cannot_use_exits_2_naming_the_cause(tmp_path, capsys, monkeypatch):
    assert probe.main(["--config", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err == f"source-smstools-probe: config file {tmp_path / 'missing.json'} not found\n"
    no_id = tmp_path / "no_id.json"
    no_id.write_text(json.dumps({"client_secret": CLIENT_SECRET}))
    assert probe.main(["--config", str(no_id)]) == 2
    assert capsys.readouterr().err == f"source-smstools-probe: config file {no_id} has no client_id (a non-empty string is expected)\n"
    broken = tmp_path / "broken.json"
    broken.write_text('{"client_id": ')
    assert probe.main(["--config", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"source-smstools-probe: config file {broken} is not JSON") and CLIENT_SECRET not in err
    # the console script's exit status
    monkeypatch.setattr(sys, "argv", ["source-smstools-probe", "--config", str(no_id)])
    with pytest.raises(SystemExit) as exit:
        probe.run()
    assert exit.value.code == 2


def test_the_installed_command(tmp_path):
    assert Path(PROBE).exists(), f"{PROBE} is not installed: run `make install`"
    with account() as emulator:
        config_file = tmp_path / "config.json"
        config_file.write_text(json.dumps(config(emulator, phone_numbers=[A])))
        out = tmp_path / "out" / "report.json"
        done = subprocess.run([PROBE, "--config", str(config_file), "--out", str(out)], capture_output=True, text=True, timeout=60)
        assert len(emulator.requests) == 12 + 3  # the endpoints, and the coverage figures
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert done.stdout == probe.markdown(report)
    assert done.stdout.startswith("# Smstools API probe (report version 1)\n")
    assert report["endpoints"]["conversation"]["counts"] == {"records": 3, "total": 3, "shown": 3}
    assert done.stderr == f"JSON report written to {out}: attach it to the issue.\n"


def test_the_emulator_command_serves_a_report(tmp_path):
    with account() as emulator:
        report = run(emulator, phone_numbers=[A])
    report["endpoints"]["balance"]["keys"]["credits"] = "string(decimal)"
    report["endpoints"]["balance"]["fields"]["credits"]["types"] = {"string(decimal)": 1}
    (tmp_path / "report.json").write_text(json.dumps(report))
    proc = subprocess.Popen(
        [sys.executable, "-m", "smstools_emulator", "--port", "0", "--phones", "1", "--messages", "3", "--shapes", str(tmp_path / "report.json")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:[0-9]+", line).group(0)
        request = urllib.request.Request(url + "/v1/balance", headers={"X-Client-Id": CLIENT_ID, "X-Client-Secret": CLIENT_SECRET})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.loads(answer.read()) == {"credits": "1234.5", "currency": "EUR", "use": "credits"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_connector_reads_a_served_report_of_the_same_data_as_the_data_itself():
    """The shapes hook changes nothing the report does not: a sync against the emulator serving the
    report of its own answers reads the same records."""
    streams = ["conversation", "contacts", "message_log", "groups", "balance"]
    with account() as emulator:
        report = run(emulator, phone_numbers=[A])
        plain = cli.in_process(cli.config(emulator, phone_numbers=[A, B]), cli.catalog("full_refresh", streams))
    with account(shapes=Shapes(report)) as emulator:
        shaped = cli.in_process(cli.config(emulator, phone_numbers=[A, B]), cli.catalog("full_refresh", streams))
    assert not plain.errors and not shaped.errors
    assert len(plain.records) == 5 + 3 + 3 + 3 + 1
    assert by_stream(shaped) == by_stream(plain)


def by_stream(out: cli.Output) -> dict[str, list[str]]:
    """The records of each stream, in an order that does not depend on the concurrent reads."""
    result: dict[str, list[str]] = {}
    for m in out.of_type("RECORD"):
        result.setdefault(m["record"]["stream"], []).append(json.dumps(m["record"]["data"], sort_keys=True))
    return {stream: sorted(records) for stream, records in result.items()}
