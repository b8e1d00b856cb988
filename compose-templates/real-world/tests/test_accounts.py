import pytest

from ledger import accounts


@pytest.mark.parametrize(
    "cents, currency, text",
    [(1234, "EUR", "12.34 EUR"), (-5, "USD", "-0.05 USD"), (700, "JPY", "700 JPY"), (0, "EUR", "0.00 EUR")],
)
def test_format_amount(cents, currency, text):
    assert accounts.format_amount(cents, currency) == text


def test_format_amount_rejects_unknown_currency():
    with pytest.raises(accounts.LedgerError, match="unknown currency"):
        accounts.format_amount(1, "XXX")


@pytest.mark.isolation
def test_first_account_gets_id_one(conn):
    assert accounts.open_account(conn, "cash", "EUR") == 1
    assert accounts.open_account(conn, "bank", "EUR") == 2


def test_balance_sums_entries(conn):
    acct = accounts.open_account(conn, "cash", "EUR")
    accounts.post(conn, acct, 1000, "opening")
    accounts.post(conn, acct, -250)
    assert accounts.balance(conn, acct) == 750


def test_zero_entry_is_refused(conn):
    acct = accounts.open_account(conn, "cash", "EUR")
    with pytest.raises(accounts.LedgerError, match="zero"):
        accounts.post(conn, acct, 0)


def test_transfer_moves_money(conn):
    a = accounts.open_account(conn, "a", "USD")
    b = accounts.open_account(conn, "b", "USD")
    accounts.post(conn, a, 500)
    accounts.transfer(conn, a, b, 200)
    assert (accounts.balance(conn, a), accounts.balance(conn, b)) == (300, 200)


@pytest.mark.parametrize(
    "amount, message", [(0, "positive"), (10_000, "insufficient"), (-3, "positive")]
)
def test_transfer_refusals(conn, amount, message):
    a = accounts.open_account(conn, "a", "EUR")
    b = accounts.open_account(conn, "b", "EUR")
    accounts.post(conn, a, 100)
    with pytest.raises(accounts.LedgerError, match=message):
        accounts.transfer(conn, a, b, amount)
    assert accounts.balance(conn, a) == 100


def test_transfer_between_currencies_is_refused(conn):
    a = accounts.open_account(conn, "a", "EUR")
    b = accounts.open_account(conn, "b", "JPY")
    accounts.post(conn, a, 100)
    with pytest.raises(accounts.LedgerError, match="different currencies"):
        accounts.transfer(conn, a, b, 50)
