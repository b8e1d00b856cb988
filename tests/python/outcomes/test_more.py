import pytest


@pytest.mark.parametrize("n", range(6))
def test_many(n):
    assert n < 5


def test_property(record_property):
    record_property("answer", 42)
