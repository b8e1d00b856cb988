"""Deliberately slow tests: real waiting on Redis expiry, real computation, bulk SQL."""
import random
import time
from decimal import Decimal

import pytest
from django.db.models import Avg, Count, Sum

from catalog import cache, reports
from catalog.models import Category, Product
from catalog.pricing import quote

pytestmark = pytest.mark.slow


def test_cached_product_expires_after_ttl(redis_db):
    cache.put_product({"id": 1, "sku": "TTL"}, ttl=1)
    assert cache.get_product(1) == {"id": 1, "sku": "TTL"}
    time.sleep(1.3)
    assert cache.get_product(1) is None


def test_rate_limit_window_reopens(redis_db):
    cache.hit_rate_limit("slow", 1, 1)
    with pytest.raises(cache.RateLimited):
        cache.hit_rate_limit("slow", 1, 1)
    time.sleep(1.2)
    assert cache.hit_rate_limit("slow", 1, 1) == 1


def test_restock_policy_search():
    """Grid-search the cheapest reorder policy that never runs out over two simulated years."""
    rng = random.Random(20240501)
    demand = [rng.randint(0, 9) for _ in range(730)]
    best = None
    for point in range(0, 60, 2):
        for qty in range(10, 120, 5):
            out_days, short, placed = reports.simulate_restock(demand, 30, point, qty, 3)
            if out_days == 0:
                cost = placed * 25 + point * 2
                if best is None or cost < best[0]:
                    best = (cost, point, qty)
    assert best is not None
    _, point, qty = best
    assert reports.simulate_restock(demand, 30, point, qty, 3)[0] == 0
    # A smaller reorder point with the same quantity must run out at least once.
    if point > 0:
        assert reports.simulate_restock(demand, 30, point - 2, qty, 3)[0] > 0


def test_basket_affinity_on_large_history():
    rng = random.Random(7)
    skus = [f"S{i}" for i in range(40)]
    baskets = [rng.sample(skus, rng.randint(1, 6)) for _ in range(30000)]
    pairs = reports.basket_affinity(baskets)
    expected_pairs = sum(len(b) * (len(b) - 1) // 2 for b in baskets)
    assert sum(pairs.values()) == expected_pairs
    assert all(a < b for a, b in pairs)


def test_quote_invariants_exhaustively():
    for cents in range(1, 30001, 7):
        for coupon in ("", "WELCOME10", "FIVEOFF", "BIG25", "FREESHIP"):
            q = quote([(Decimal(cents) / 100, 1)], coupon)
            assert q.total == q.subtotal - q.discount + q.shipping + q.tax
            assert Decimal("0") <= q.discount <= q.subtotal


@pytest.mark.django_db
def test_bulk_catalog_aggregates(redis_db):
    category = Category.objects.create(name="Bulk", slug="bulk")
    Product.objects.bulk_create(
        Product(category=category, sku=f"B{i:05d}", name=f"Bulk {i}", price=Decimal(i % 100) + Decimal("0.99"), stock=i % 7)
        for i in range(20000)
    )
    stats = Product.objects.aggregate(n=Count("id"), stock=Sum("stock"), avg=Avg("price"))
    assert stats["n"] == 20000
    assert stats["stock"] == sum(i % 7 for i in range(20000))
    assert round(stats["avg"], 2) == Decimal("50.49")
