"""Sales reports: SQL aggregates and pure computations."""
from decimal import Decimal

import pytest
from django.test import TestCase

from catalog import inventory, reports
from catalog.models import Order

from .conftest import make_category, make_product


@pytest.fixture(autouse=True)
def _clean_cache(redis_db):
    """Product saves invalidate Redis entries: start from an empty cache."""


class RevenueTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        books, games = make_category("Books"), make_category("Games")
        cls.novel = make_product(books, price="12.00", stock=100, sku="NOVEL")
        cls.atlas = make_product(books, price="30.00", stock=100, sku="ATLAS")
        cls.dice = make_product(games, price="3.50", stock=100, sku="DICE")

    def pay(self, order):
        Order.objects.filter(pk=order.pk).update(status=Order.Status.PAID)

    def test_revenue_counts_only_paid_orders(self):
        self.pay(inventory.place_order("a@example.com", [(self.novel, 2), (self.dice, 4)]))
        inventory.place_order("b@example.com", [(self.atlas, 1)])  # still open
        self.assertEqual(reports.revenue_by_category(), {"books": Decimal("24.00"), "games": Decimal("14.00")})

    def test_revenue_empty(self):
        self.assertEqual(reports.revenue_by_category(), {})

    def test_best_sellers_skip_cancelled(self):
        inventory.place_order("a@example.com", [(self.dice, 5), (self.novel, 1)])
        inventory.cancel_order(inventory.place_order("b@example.com", [(self.atlas, 9)]))
        inventory.place_order("c@example.com", [(self.novel, 2)])
        self.assertEqual(reports.best_sellers(), [("DICE", 5), ("NOVEL", 3)])

    def test_best_sellers_limit_and_ties(self):
        inventory.place_order("a@example.com", [(self.dice, 1), (self.novel, 1), (self.atlas, 1)])
        self.assertEqual(reports.best_sellers(2), [("ATLAS", 1), ("DICE", 1)])


def test_basket_affinity_counts_pairs_once_per_basket():
    baskets = [["a", "b", "c"], ["b", "a"], ["c"], ["a", "a", "b"]]
    assert reports.basket_affinity(baskets) == {("a", "b"): 3, ("a", "c"): 1, ("b", "c"): 1}


def test_basket_affinity_empty():
    assert reports.basket_affinity([]) == {}


@pytest.mark.parametrize(
    "demand,start,point,qty,lead,expected",
    [
        ([1] * 5, 10, 0, 5, 1, (0, 0, 0)),  # enough stock: never reorders
        ([5, 5, 5], 5, 0, 5, 1, (0, 0, 3)),  # each delivery lands just in time
        ([4, 4, 4], 4, 0, 2, 1, (2, 4, 3)),  # deliveries too small: short 2 a day
        ([0, 0, 0], 0, 0, 3, 2, (0, 0, 1)),  # an order in the pipeline blocks reordering
        ([3, 3, 3], 3, 2, 10, 5, (2, 6, 1)),  # delivery lands after the horizon
    ],
)
def test_simulate_restock(demand, start, point, qty, lead, expected):
    assert reports.simulate_restock(demand, start, point, qty, lead) == expected


def test_total_of_strings():
    assert reports.total(["1.10", "2.20", "3.30"]) == Decimal("6.60")
