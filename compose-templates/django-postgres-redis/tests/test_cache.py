"""Redis cache layer, as plain pytest functions."""
import json

import pytest

from catalog import cache


@pytest.fixture
def doc():
    return {"id": 7, "sku": "X-7", "name": "Widget", "price": "1.50", "stock": 3, "active": True, "category": "misc"}


def test_product_key_format():
    assert cache.product_key(42) == "catalog:product:42"


def test_get_missing_is_none(redis_db):
    assert cache.get_product(1) is None


def test_put_then_get(redis_db, doc):
    cache.put_product(doc)
    assert cache.get_product(7) == doc


def test_put_stores_sorted_json(redis_db, doc):
    cache.put_product(doc)
    raw = redis_db.get("catalog:product:7")
    assert raw == json.dumps(doc, sort_keys=True)


def test_put_sets_default_ttl(redis_db, doc, settings):
    settings.PRODUCT_CACHE_TTL = 120
    cache.put_product(doc)
    assert 118 <= redis_db.ttl("catalog:product:7") <= 120


def test_put_with_explicit_ttl(redis_db, doc):
    cache.put_product(doc, ttl=5)
    assert 4 <= redis_db.ttl("catalog:product:7") <= 5


def test_invalidate(redis_db, doc):
    cache.put_product(doc)
    assert cache.invalidate_product(7) == 1
    assert cache.invalidate_product(7) == 0
    assert cache.get_product(7) is None


def test_read_through_calls_loader_once(redis_db, doc):
    calls = []

    def loader(product_id):
        calls.append(product_id)
        return doc

    assert cache.product_document(7, loader) == (doc, False)
    assert cache.product_document(7, loader) == (doc, True)
    assert calls == [7]


def test_read_through_does_not_cache_missing(redis_db):
    assert cache.product_document(9, lambda _id: None) == (None, False)
    assert redis_db.exists("catalog:product:9") == 0


def test_count_view_increments(redis_db):
    assert [cache.count_view(3) for _ in range(4)] == [1, 2, 3, 4]
    assert cache.views(3) == 4


def test_views_of_unseen_product_is_zero(redis_db):
    assert cache.views(12345) == 0


def test_recently_viewed_most_recent_first_without_duplicates(redis_db):
    for pid in [1, 2, 3, 2]:
        cache.count_view(pid)
    assert cache.recently_viewed() == [2, 3, 1]


def test_recently_viewed_keeps_ten(redis_db):
    for pid in range(15):
        cache.count_view(pid)
    assert cache.recently_viewed() == list(range(14, 4, -1))


@pytest.mark.parametrize(
    "views,limit,expected",
    [
        ({1: 5, 2: 9, 3: 1}, 2, [2, 1]),
        ({1: 2, 2: 2, 3: 2}, 3, [1, 2, 3]),  # ties broken by id
        ({4: 1}, 5, [4]),
        ({}, 5, []),
    ],
)
def test_top_viewed(redis_db, views, limit, expected):
    for pid, n in views.items():
        for _ in range(n):
            cache.count_view(pid)
    assert cache.top_viewed(limit) == expected


def test_rate_limit_allows_up_to_limit(redis_db):
    assert [cache.hit_rate_limit("1.2.3.4", 3, 60) for _ in range(3)] == [1, 2, 3]


def test_rate_limit_rejects_over_limit(redis_db):
    for _ in range(3):
        cache.hit_rate_limit("1.2.3.4", 3, 60)
    with pytest.raises(cache.RateLimited, match="4 hits > 3"):
        cache.hit_rate_limit("1.2.3.4", 3, 60)


def test_rate_limit_is_per_identity(redis_db):
    cache.hit_rate_limit("a", 1, 60)
    assert cache.hit_rate_limit("b", 1, 60) == 1


def test_rate_limit_window_does_not_slide(redis_db):
    cache.hit_rate_limit("a", 5, 60)
    redis_db.expire("catalog:rate:a", 10)
    cache.hit_rate_limit("a", 5, 60)
    assert redis_db.ttl("catalog:rate:a") <= 10


def test_catalog_keys_lists_only_our_prefix(redis_db, doc):
    cache.put_product(doc)
    cache.count_view(7)
    redis_db.set("other:key", "x")
    assert cache.catalog_keys() == ["catalog:product:7", "catalog:recent", "catalog:views:7"]
