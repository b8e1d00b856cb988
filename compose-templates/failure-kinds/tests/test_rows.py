from kinds import ledger


class TestLedger:
    def test_1_table_exists(self, conn):
        assert ledger.count(conn) >= 0

    def test_2_records_a_payment(self, conn):
        # Leaves its row in the database: a test that does not clean up after itself.
        ledger.record(conn, 1250)
        assert ledger.count(conn) >= 1

    def test_3_unrelated(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)

    def test_4_ledger_starts_empty(self, conn):
        assert ledger.count(conn) == 0
