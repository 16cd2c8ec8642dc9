"""conversation.Outcomes: how each phone's read ended, which the partition router waits on before it
fails the stream (the phones read well keep what they read). The clock is a counter: no real waits."""

from __future__ import annotations

import threading
from unittest.mock import patch

from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_smstools.components.conversation import Outcomes, key_of, url_key
from source_smstools.components.discovery import PhonePartitionRouter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_phone_is_keyed_as_its_conversation_url_names_it():
    assert key_of("+393331234567") == key_of("393331234567") == "393331234567"
    assert url_key("https://api.smsgatewayapi.com/v1/conversation/393331234567?limit=2000&page=3") == "393331234567"
    assert url_key("http://127.0.0.1:1/v1/conversation/%2B393331234567") == "393331234567"


def test_the_wait_ends_when_every_phone_ended_and_keeps_the_first_failure():
    outcomes = Outcomes(Clock())
    first, second = AirbyteTracedException(message="first"), AirbyteTracedException(message="second")
    outcomes.end("1", first)
    outcomes.end("1", second)
    outcomes.end("2")
    assert outcomes.wait(["1", "2"], stop=lambda: False, poll=0) is True
    assert outcomes.failed == {"1": first}


def test_the_wait_gives_up_when_the_sync_is_refused_or_nothing_answers_for_the_guard():
    clock = Clock()
    outcomes = Outcomes(clock)
    assert outcomes.wait(["1"], stop=lambda: True, poll=0) is False  # refused: every read ends unseen
    ticks = []

    def stop() -> bool:  # the clock moves on each time the wait looks
        ticks.append(clock.now)
        clock.now += 100
        return False

    assert outcomes.wait(["1"], stop=stop, poll=0) is False
    assert ticks == [100.0 * i for i in range(10)]  # up to GUARD (900 s) of nothing, then no more
    outcomes.touch()  # an answer came: the guard counts from it
    clock.now += 800
    outcomes.end("1")
    assert outcomes.wait(["1"], stop=lambda: False, poll=0) is True


def test_only_an_incremental_sync_defers_failures_and_never_for_the_last_phone():
    outcomes = Outcomes(Clock())
    assert not outcomes.defers("1")
    outcomes.deferred = True
    outcomes.loud.add("2")
    assert outcomes.defers("1") and not outcomes.defers("2")


def test_handing_out_waits_while_too_many_reads_are_under_way_and_goes_on_when_one_ends():
    outcomes = Outcomes(Clock())
    outcomes.ahead(3, 3, patience=0)  # 3 under way, 3 allowed: no wait
    ender = threading.Thread(target=outcomes.end, args=("1",))
    ender.start()
    outcomes.ahead(4, 3, patience=60)  # 4 under way: back once one ended (the notify, not the 60 s)
    ender.join()
    # two forms of one number are two reads of one key: each end counts
    outcomes.end("1")
    outcomes.ahead(5, 3, patience=0)
    outcomes.ahead(9, 3, patience=0)  # nothing ends: the wait gives up at once and the caller goes on


def test_the_router_asks_to_wait_before_each_phone_it_hands_out():
    config = {"client_id": "x", "client_secret": "y", "phone_numbers": ["+1555000001", "+1555000002", "+1555000003"]}
    made = PhonePartitionRouter(config=config, parameters={})
    asked = []
    with patch.object(Outcomes, "ahead", lambda self, handed, most: asked.append((handed, most))):
        phones = [s.partition["phone"] for s in made.stream_slices()]
    assert sorted(phones) == ["+1555000001", "+1555000002", "+1555000003"]
    assert asked == [(0, 1000), (1, 1000), (2, 1000)]
