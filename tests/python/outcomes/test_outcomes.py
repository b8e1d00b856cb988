"""Every outcome pytest can report, so merged totals are checked against each kind."""
import sys

import pytest


def test_pass():
    assert True


def test_fail():
    value = 1
    assert value == 2, "one is not two"


def test_setup_error(broken_setup):
    assert broken_setup


def test_teardown_error(broken_teardown):
    assert broken_teardown == 1


def test_fail_and_teardown_error(broken_teardown):
    assert broken_teardown == 2


@pytest.mark.skip(reason="skipped on purpose")
def test_skip():
    pass


@pytest.mark.xfail(reason="expected to fail")
def test_xfail():
    assert False


@pytest.mark.xfail(strict=True, reason="strict xpass")
def test_xpass_strict():
    assert True


def test_output():
    print("to stdout <&> \u00e9")
    sys.stderr.write("to stderr\n")


class TestGroup:
    @pytest.mark.parametrize("p", ["a::b", "x y", "dot.ted", "\u00fcnicode", "[br]"])
    def test_param(self, p):
        assert p

    class TestNested:
        def test_inner(self):
            assert 1
