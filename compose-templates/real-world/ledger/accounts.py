"""Accounts and entries: amounts are integer cents, a balance is the sum of its entries."""


class LedgerError(ValueError):
    """A posting the ledger refuses."""


EXPONENTS = {"EUR": 2, "USD": 2, "JPY": 0}


def format_amount(cents, currency):
    """Formats an amount of minor units, e.g. (-1234, 'EUR') -> '-12.34 EUR'."""
    if currency not in EXPONENTS:
        raise LedgerError(f"unknown currency {currency!r}")
    exponent = EXPONENTS[currency]
    sign = "-" if cents < 0 else ""
    whole, minor = divmod(abs(cents), 10**exponent)
    if exponent == 0:
        return f"{sign}{whole} {currency}"
    return f"{sign}{whole}.{minor:0{exponent}d} {currency}"


def open_account(conn, name, currency):
    """Creates an account and returns its id."""
    if currency not in EXPONENTS:
        raise LedgerError(f"unknown currency {currency!r}")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO accounts (name, currency) VALUES (%s, %s) RETURNING id",
            (name, currency),
        )
        account_id = cur.fetchone()[0]
    conn.commit()
    return account_id


def post(conn, account_id, amount_cents, memo=""):
    """Adds one entry to an account."""
    if amount_cents == 0:
        raise LedgerError("an entry of zero is not a posting")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO entries (account_id, amount_cents, memo) VALUES (%s, %s, %s)",
            (account_id, amount_cents, memo),
        )
    conn.commit()


def balance(conn, account_id):
    """The sum of an account's entries, in cents."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COALESCE(SUM(amount_cents), 0) FROM entries WHERE account_id = %s",
            (account_id,),
        )
        return int(cur.fetchone()[0])


def _currency(cur, account_id):
    cur.execute("SELECT currency FROM accounts WHERE id = %s", (account_id,))
    row = cur.fetchone()
    if row is None:
        raise LedgerError(f"no account {account_id}")
    return row[0]


def transfer(conn, source, target, amount_cents):
    """Moves money between two accounts of one currency, in one transaction."""
    if amount_cents <= 0:
        raise LedgerError("a transfer moves a positive amount")
    with conn.cursor() as cur:
        if _currency(cur, source) != _currency(cur, target):
            raise LedgerError("accounts hold different currencies")
        cur.execute(
            "SELECT COALESCE(SUM(amount_cents), 0) FROM entries WHERE account_id = %s",
            (source,),
        )
        if cur.fetchone()[0] < amount_cents:
            conn.rollback()
            raise LedgerError("insufficient funds")
        cur.executemany(
            "INSERT INTO entries (account_id, amount_cents, memo) VALUES (%s, %s, 'transfer')",
            [(source, -amount_cents), (target, amount_cents)],
        )
    conn.commit()
