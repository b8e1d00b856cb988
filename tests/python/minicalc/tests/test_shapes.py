import pytest

from minicalc.geometry.shapes import Rect, classify


def test_square():
    assert classify(Rect(2, 2)) == "square"


def test_degenerate():
    assert classify(Rect(0, 3)) == "degenerate rect"


def test_negative():
    with pytest.raises(ValueError):
        Rect(-1, 2)
