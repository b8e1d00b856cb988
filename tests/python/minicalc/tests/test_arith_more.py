import pytest

from minicalc.arith import clamp, sign, total


def test_clamp_high():
    assert clamp(50, 0, 10) == 10


@pytest.mark.parametrize("x,expected", [(-2, -1), (0, 0)])
def test_sign_rest(x, expected):
    assert sign(x) == expected


def test_total_skip():
    assert total([1, -2, 3], skip_negative=True) == 4
