from minicalc.arith import clamp, safe_div, sign, total


def test_clamp_low():
    assert clamp(-5, 0, 10) == 0


def test_clamp_mid():
    assert clamp(5, 0, 10) == 5


def test_sign_positive():
    assert sign(3) == 1


def test_total_plain():
    assert total([1, 2, 3]) == 6


def test_safe_div_zero():
    assert safe_div(1, 0) is None
