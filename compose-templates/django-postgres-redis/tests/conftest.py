"""Shared fixtures: a clean Redis database per test and small model factories."""
from decimal import Decimal
from itertools import count

import pytest

from catalog import cache
from catalog.models import Category, Product

_seq = count(1)


@pytest.fixture
def redis_db():
    """The app's Redis database, emptied before the test: tests assume they own it."""
    client = cache.client()
    client.flushdb()
    yield client
    client.flushdb()


def make_category(name=None):
    n = next(_seq)
    name = name or f"Category {n}"
    return Category.objects.create(name=name, slug=name.lower().replace(" ", "-"))


def make_product(category=None, price="10.00", stock=10, active=True, name=None, sku=None):
    n = next(_seq)
    return Product.objects.create(
        category=category or make_category(),
        sku=sku or f"SKU-{n:05d}",
        name=name or f"Product {n}",
        price=Decimal(price),
        stock=stock,
        active=active,
    )
