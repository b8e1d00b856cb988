from kinds import ledger


def test_rounding():
    assert ledger.round_cents(0.29) == 29


def test_whole_euros():
    assert ledger.round_cents(3) == 300
