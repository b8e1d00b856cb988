"""Tests that only pass when the suite owns its PostgreSQL database (or server).

Sequences restarting at 1, exact row counts of committed data, a LISTEN/NOTIFY channel
with a fixed name and cluster-wide objects (roles, databases) are all correct for one
suite against its own server, and break when two copies share a database or a server.
"""
import threading
import time

import pytest
from django.db import connection
from django.test import TransactionTestCase

from catalog import events, inventory
from catalog.models import Category, Order, Product

from .conftest import make_category, make_product

pytestmark = pytest.mark.isolation


class SequenceTests(TransactionTestCase):
    reset_sequences = True

    def test_ids_start_at_one(self):
        ids = [make_category(f"Seq {i}").pk for i in range(3)]
        self.assertEqual(ids, [1, 2, 3])

    def test_product_ids_are_dense(self):
        category = make_category("Dense")
        products = [make_product(category) for _ in range(5)]
        time.sleep(0.3)  # a realistic gap (e.g. a background import) between the writes
        products.append(make_product(category))
        self.assertEqual([p.pk for p in products], [1, 2, 3, 4, 5, 6])

    def test_order_numbers_follow_each_other(self):
        product = make_product(stock=100)
        numbers = [inventory.place_order(f"n{i}@example.com", [(product, 1)]).pk for i in range(4)]
        self.assertEqual(numbers, [1, 2, 3, 4])


@pytest.mark.django_db(transaction=True)
def test_committed_orders_are_counted_exactly(redis_db):
    product = make_product(stock=50)
    done = []

    def buyer(i):
        inventory.place_order(f"t{i}@example.com", [(product, 2)])
        done.append(i)
        connection.close()

    threads = [threading.Thread(target=buyer, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 5
    assert Order.objects.count() == 5
    assert Product.objects.get(pk=product.pk).stock == 40


@pytest.mark.django_db(transaction=True)
def test_table_holds_only_our_rows(redis_db):
    category = make_category("Owned")
    for i in range(10):
        make_product(category, sku=f"OWN-{i}")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert Product.objects.count() == 10
        assert Category.objects.count() == 1
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_notifications_on_fixed_channel_are_ours():
    connection.ensure_connection()
    listener = connection.get_new_connection(connection.get_connection_params())
    try:
        events.listen(listener)
        for i in range(5):
            events.publish("stock", seq=i)
            time.sleep(0.1)
        received = []
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            received += events.drain(listener, 0.1)
        assert received == [{"kind": "stock", "seq": i} for i in range(5)]
    finally:
        listener.close()


ROLE = "shop_reporting"


class ClusterRoleTests(TransactionTestCase):
    """Roles are cluster-wide: every database on the server sees the same ones."""

    def tearDown(self):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {ROLE}" if self.role_exists() else "SELECT 1")
            cursor.execute(f"DROP ROLE IF EXISTS {ROLE}")

    def role_exists(self):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [ROLE])
            return cursor.fetchone()[0] == 1

    def test_reporting_role_can_read_catalog(self):
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {ROLE} NOLOGIN")
            cursor.execute(f"GRANT SELECT ON catalog_product TO {ROLE}")
            time.sleep(0.8)  # the role exists while reports are generated
            cursor.execute("SELECT has_table_privilege(%s, 'catalog_product', 'SELECT')", [ROLE])
            self.assertTrue(cursor.fetchone()[0])
            cursor.execute("SELECT has_table_privilege(%s, 'catalog_order', 'SELECT')", [ROLE])
            self.assertFalse(cursor.fetchone()[0])

    def test_reporting_role_is_created_once(self):
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {ROLE} NOLOGIN")
            deadline = time.monotonic() + 0.8
            while time.monotonic() < deadline:
                cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'shop\\_%%'")
                self.assertEqual(cursor.fetchone()[0], 1)
                time.sleep(0.05)


class ClusterDatabaseTests(TransactionTestCase):
    ARCHIVE = "shop_archive"

    def tearDown(self):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {self.ARCHIVE}")

    def test_archive_database_lifecycle(self):
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {self.ARCHIVE}")
            time.sleep(0.5)
            cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE 'shop\\_archive%%'")
            self.assertEqual([row[0] for row in cursor.fetchall()], [self.ARCHIVE])
