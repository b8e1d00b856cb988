"""Parameters made at collection time: their test ids differ at every collection, as in
suites that parametrize with uuid4() or random data."""

import secrets
import uuid

import pytest

TOKENS = [str(uuid.uuid4()) for _ in range(3)]


@pytest.mark.parametrize("token", TOKENS)
def test_token_round_trips_through_broker(broker, token):
    broker.set(f"token:{token}", token)
    assert broker.get(f"token:{token}").decode() == token


class TestNonces:
    @pytest.mark.parametrize("nonce", [secrets.token_hex(4) for _ in range(2)])
    def test_nonce_is_hex(self, nonce):
        assert int(nonce, 16) >= 0 and len(nonce) == 8
