"""Phone numbers as typed, the spec's form conventions, and how an error handler tells a host that
cannot be reached from a fault of a sync under way (components/phones.py, components/session.py)."""

import pytest
import requests
from airbyte_cdk.sources.declarative.requesters.error_handlers.backoff_strategies import ExponentialBackoffStrategy
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ResponseAction
from airbyte_cdk.utils.yaml_loader import safe_load_yaml

from source_smstools.components.errors import ParsingErrorHandler
from source_smstools.components.phones import TypedPhones, listed_form
from source_smstools.components.context import sync_of
from source_smstools.components.session import Refused, SaidAlready
from source_smstools.source import MANIFEST

SPEC = safe_load_yaml(MANIFEST.read_text())["spec"]["connection_specification"]["properties"]


@pytest.mark.parametrize(
    "typed, form",
    [
        ("+39 333 100 0000", "+393331000000"),
        ("+393331000000", "+393331000000"),  # as saved states key it: unchanged
        ("393331000000", "393331000000"),  # without +: unchanged too
        ("0039-333-100-0000", "+393331000000"),
        ("(+39) 333.100.0000", "+393331000000"),
        ("+44 (0)20 7946 0018", "+442079460018"),  # the trunk zero is not dialled from abroad
        (" +32 470 12 34 56 ", "+32470123456"),
        ("12 34", None),  # too few digits
        ("+1234567890123456", None),  # too many
        ("", None),
    ],
)
def test_a_typed_number_has_one_listed_form(typed, form):
    assert listed_form(typed) == form


def test_the_transformation_writes_each_number_once_and_leaves_what_is_no_number_for_the_validation():
    config = {"phone_numbers": ["+39 333 100 0000", "+393331000000", "12 34", "0032 470 12 34 56"]}
    TypedPhones().transform(config)
    assert config == {"phone_numbers": ["+393331000000", "12 34", "+32470123456"]}


def test_the_spec_shows_phone_numbers_and_hides_the_power_user_settings():
    assert SPEC["phone_numbers"]["always_show"] is True
    assert SPEC["phone_numbers"]["items"]["pattern_descriptor"] == "+32 470 12 34 56"
    hidden = sorted(name for name, field in SPEC.items() if field.get("airbyte_hidden"))
    assert hidden == ["base_url", "num_workers", "page_size"]


# -- a host that cannot be reached ----------------------------------------------------------


def _handler(config):
    return ParsingErrorHandler(
        config=config, parameters={},
        backoff_strategies=[ExponentialBackoffStrategy(factor=5, parameters={}, config=config)],
    )


def _timeout(url="http://127.0.0.1:9/v1/message/inbox"):
    request = requests.Request("GET", url).prepare()
    return requests.ConnectTimeout("timed out", request=request)


def _answer(url="http://127.0.0.1:9/v1/message/inbox"):
    response = requests.Response()
    response.status_code, response._content = 200, b'{"total": 0, "page": 1, "messages": []}'
    response.request = requests.Request("GET", url).prepare()
    return response


def test_a_connect_timeout_before_any_answer_is_tried_twice_with_the_cdks_short_wait_then_named():
    config = {"base_url": "http://127.0.0.1:9"}
    handler = _handler(config)
    failure = _timeout()
    first = handler.interpret_response(failure)
    assert first.response_action == ResponseAction.RETRY
    assert handler.backoff_strategies[0].backoff_time(failure, attempt_count=1) is None  # the CDK's 1 s
    with pytest.raises(Refused) as refused:
        handler.interpret_response(failure)
    assert type(refused.value) is Refused and refused.value.failure_type.value == "config_error"
    assert refused.value.message.startswith("Cannot reach the Smstools API at http://127.0.0.1:9: the connection timed out.")
    # the next request is not sent at all, and says so once, as a log line
    with pytest.raises(SaidAlready):
        sync_of(config).session.go_on()


def test_a_connect_timeout_once_the_host_has_answered_keeps_the_usual_retries():
    config = {"base_url": "http://127.0.0.1:9"}
    handler = _handler(config)
    handler.interpret_response(_answer())
    failure = _timeout()
    for _ in range(5):
        assert handler.interpret_response(failure).response_action == ResponseAction.RETRY
    assert handler.backoff_strategies[0].backoff_time(failure, attempt_count=1) == 10.0
    sync_of(config).session.go_on()  # nothing refused
