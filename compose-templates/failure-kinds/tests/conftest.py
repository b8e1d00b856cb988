import pytest

from kinds import ledger


@pytest.fixture
def conn():
    connection = ledger.connect()
    ledger.ensure_table(connection)
    yield connection
    connection.close()
