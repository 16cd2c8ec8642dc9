import pytest

from smstools_emulator import Emulator, make_conversation, sample_phones


@pytest.fixture
def emulator():
    """Three realistic conversations of 2,500, 1,900 and 40 messages, served on 127.0.0.1."""
    phones = sample_phones(3)
    conversations = {p: make_conversation(p, n, seed=7) for p, n in zip(phones, (2500, 1900, 40))}
    with Emulator(conversations) as server:
        yield server
