"""Stock reservations, orders and the movement audit trail."""
import threading

import pytest
from django.db import connection
from django.test import TestCase, TransactionTestCase

from catalog import inventory
from catalog.models import Order, Product, StockMovement

from .conftest import make_product


@pytest.fixture(autouse=True)
def _clean_cache(redis_db):
    """Product saves invalidate Redis entries: start every test from an empty cache."""


class ReserveTests(TestCase):
    def setUp(self):
        self.product = make_product(stock=5)

    def test_reserve_decrements_and_logs(self):
        self.assertEqual(inventory.reserve(self.product, 2), 3)
        self.assertEqual(inventory.audited_stock(self.product), -2)
        self.assertEqual(StockMovement.objects.get().reason, "order")

    def test_reserve_exact_stock(self):
        self.assertEqual(inventory.reserve(self.product, 5), 0)

    def test_reserve_too_much_changes_nothing(self):
        with self.assertRaises(inventory.OutOfStock):
            inventory.reserve(self.product, 6)
        self.product.refresh_from_db()
        self.assertEqual(self.product.stock, 5)
        self.assertFalse(StockMovement.objects.exists())

    def test_receive_adds(self):
        self.assertEqual(inventory.receive(self.product, 7), 12)

    def test_receive_rejects_non_positive(self):
        with self.assertRaises(ValueError):
            inventory.receive(self.product, 0)

    def test_movements_explain_stock(self):
        inventory.receive(self.product, 10)
        inventory.reserve(self.product, 4)
        inventory.reserve(self.product, 1)
        self.product.refresh_from_db()
        self.assertEqual(self.product.stock - 5, inventory.audited_stock(self.product))


class OrderFlowTests(TestCase):
    def setUp(self):
        self.a = make_product(stock=3, price="5.00")
        self.b = make_product(stock=1, price="7.00")

    def test_place_order_reserves_every_line(self):
        order = inventory.place_order("c@example.com", [(self.a, 2), (self.b, 1)])
        self.assertEqual(order.lines.count(), 2)
        self.assertEqual(Product.objects.get(pk=self.a.pk).stock, 1)
        self.assertEqual(Product.objects.get(pk=self.b.pk).stock, 0)

    def test_place_order_is_all_or_nothing(self):
        with self.assertRaises(inventory.OutOfStock):
            inventory.place_order("c@example.com", [(self.a, 2), (self.b, 2)])
        self.assertEqual(Product.objects.get(pk=self.a.pk).stock, 3)
        self.assertFalse(Order.objects.exists())

    def test_cancel_returns_stock(self):
        order = inventory.place_order("c@example.com", [(self.a, 3)])
        inventory.cancel_order(order)
        self.assertEqual(Product.objects.get(pk=self.a.pk).stock, 3)
        self.assertEqual(Order.objects.get(pk=order.pk).status, Order.Status.CANCELLED)

    def test_cancel_twice_returns_stock_once(self):
        order = inventory.place_order("c@example.com", [(self.a, 1)])
        inventory.cancel_order(order)
        inventory.cancel_order(order)
        self.assertEqual(Product.objects.get(pk=self.a.pk).stock, 3)

    def test_order_lines_keep_price_at_order_time(self):
        order = inventory.place_order("c@example.com", [(self.a, 1)])
        Product.objects.filter(pk=self.a.pk).update(price="99.00")
        self.assertEqual(str(order.lines.get().unit_price), "5.00")


class ConcurrentReservationTests(TransactionTestCase):
    """Row locks must serialise concurrent reservations (needs committed data and threads)."""

    def test_parallel_reservations_never_oversell(self):
        product = make_product(stock=10)
        outcomes = []

        def buyer():
            try:
                inventory.reserve(product, 3)
                outcomes.append("ok")
            except inventory.OutOfStock:
                outcomes.append("out")
            finally:
                connection.close()

        threads = [threading.Thread(target=buyer) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        product.refresh_from_db()
        self.assertEqual(outcomes.count("ok"), 3)
        self.assertEqual(product.stock, 1)
        self.assertEqual(inventory.audited_stock(product), -9)
