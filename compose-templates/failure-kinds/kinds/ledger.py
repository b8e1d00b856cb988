"""A ledger table in PostgreSQL."""
import os

import psycopg2


def connect():
    return psycopg2.connect(os.environ["DATABASE_URL"])


def ensure_table(conn):
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS ledger (id serial PRIMARY KEY, cents integer NOT NULL)")
    conn.commit()


def record(conn, cents):
    with conn.cursor() as cur:
        cur.execute("INSERT INTO ledger (cents) VALUES (%s)", (cents,))
    conn.commit()


def count(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM ledger")
        return cur.fetchone()[0]


def round_cents(amount):
    """Round a euro amount to cents (it truncates: the bug test_bug.py finds)."""
    return int(amount * 100)
