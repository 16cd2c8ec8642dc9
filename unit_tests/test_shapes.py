"""The probe report's vocabulary: what kind and format a value is reported as (never the value)."""

import pytest

from smstools_report import describe, mask_phone


@pytest.mark.parametrize(
    "value, key, expected",
    [
        (None, "x", ("null", None)),
        (True, "mine", ("boolean", None)),
        (1749113086, "unixDatetime", ("integer", "unix seconds")),
        (1749113086123, "created_at", ("integer", "unix milliseconds")),
        (1749113086, "ID", ("integer", None)),  # a number in the range of times, not named as one
        (12.5, "credits", ("number", None)),
        ("", "memo", ("string(empty)", None)),
        ("1749113086", "date", ("string(digits)", "unix seconds")),
        ("3278800100", "number", ("string(digits)", "********00")),
        ("3278800100", "ID", ("string(digits)", None)),
        ("1234.50", "credits", ("string(decimal)", None)),
        ("-3", "order", ("string(decimal)", None)),
        ("TRUE", "locked", ("string(boolean)", None)),
        ("2025-06-05 08:44:46", "date", ("string(date)", "%Y-%m-%d %H:%M:%S")),
        ("05 jun 2025, 08:44:46", "datetime", ("string(date)", "%d %b %Y, %H:%M:%S")),
        ("2025-06-05T08:44:46Z", "date", ("string(date)", "%Y-%m-%dT%H:%M:%SZ")),
        ("2025-06-05T08:44:46+02:00", "date", ("string(date)", "%Y-%m-%dT%H:%M:%S%z")),
        ("05/06/2025", "birthday", ("string(date)", "%d/%m/%Y")),
        ("+44 (0)20 7946 0958", "phone", ("string(phone)", "+** (*)** **** **58")),
        ("0032470998812", "to", ("string(digits)", "00*********12")),
        ("39-333-1000067", "sender", ("string(phone)", "**-***-*****67")),
        ("Ciao Giulia, a domani", "message", ("string", None)),
        ([1], "file", ("array", None)),
        ({"a": 1}, "response", ("object", None)),
    ],
)
def test_describe(value, key, expected):
    assert describe(value, key) == expected


def test_a_masked_phone_keeps_two_digits_and_its_form():
    assert mask_phone("+393471234567") == "+**********67"
    assert mask_phone("0039 347 123 4567") == "00** *** *** **67"
    assert mask_phone("1") == "1"
