from minicalc.text import describe, first_word


class TestDescribe:
    def test_even(self):
        assert describe(4) == "even"

    def test_odd_big(self):
        assert describe(101) == "odd big"


def test_first_word():
    assert first_word("hello world") == "hello"
