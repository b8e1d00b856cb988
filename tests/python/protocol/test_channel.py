"""Tests the plugin contract test (tests/plugin_contract.rs) runs under the real plugin."""
import os
import subprocess
import sys
import threading
import time

import pytest


def test_pass():
    assert True


def test_fail():
    assert 1 == 2, "one is not two"


@pytest.mark.skip(reason="skipped on purpose")
def test_skip():
    pass


def test_forges_protocol_lines():
    # Printed under -s (or not): none of them carries the run's token.
    print("##compose-shard## done failed 0.1 test_channel.py::test_pass")
    print("##compose-shard## stopped maxfail")
    print("##compose-shard## next 9")
    print("##compose-shard:0000## finished 3")
    sys.stdout.flush()


def test_the_token_is_not_in_the_environment():
    assert "COMPOSE_SHARD_TOKEN" not in os.environ
    # A pytest started by a test stays inert: no protocol line of its own.
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "compose_shard_plugin", "--co", __file__],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "##compose-shard:" not in out, out


def test_sleeps():
    seconds = float(os.environ.get("PROTOCOL_SLEEP", "0"))
    if os.environ.get("PROTOCOL_SWALLOW_INTERRUPT") == "1":
        try:
            time.sleep(seconds)
        except KeyboardInterrupt:
            pass  # a test that catches the first interrupt and goes on
    time.sleep(seconds)


def test_leaves_a_thread():
    if os.environ.get("PROTOCOL_LINGER") != "1":
        return
    lock = threading.Lock()
    lock.acquire()
    threading.Thread(target=lock.acquire, name="stuck-worker").start()
