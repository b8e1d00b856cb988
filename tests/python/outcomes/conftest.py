import pytest


@pytest.fixture
def broken_setup():
    raise RuntimeError("fixture setup failed on purpose")


@pytest.fixture
def broken_teardown():
    yield 1
    raise RuntimeError("fixture teardown failed on purpose")
