"""Tests sharing a session fixture (plugin contract: chunks that follow each other keep it)."""
import os
import time

import pytest


@pytest.fixture(scope="session")
def session_resource():
    log = os.environ.get("PROTOCOL_SESSION_LOG")
    if log:
        with open(log, "a") as f:
            f.write("setup\n")
    yield
    if log:
        with open(log, "a") as f:
            f.write("teardown\n")


@pytest.mark.parametrize("n", range(4))
def test_waits(session_resource, n):
    time.sleep(float(os.environ.get("PROTOCOL_WAIT", "0")))
    ran = os.environ.get("PROTOCOL_RAN_LOG")
    if ran:
        with open(ran, "a") as f:
            f.write("%d\n" % n)
