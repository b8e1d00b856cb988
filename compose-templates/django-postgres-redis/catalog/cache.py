"""Cache layer on Redis (redis-py directly: Django 3.2 has no built-in Redis backend).

Keys live under the ``catalog:`` prefix: cached product documents, per-product view
counters, a fixed-window rate limiter and the "recently viewed" list.
"""
import json

import redis
from django.conf import settings

PREFIX = "catalog:"
_client = None


def client():
    """One shared connection pool per process."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    return _client


def product_key(product_id):
    return f"{PREFIX}product:{product_id}"


def get_product(product_id):
    """The cached product document, or None."""
    raw = client().get(product_key(product_id))
    return json.loads(raw) if raw is not None else None


def put_product(doc, ttl=None):
    client().set(product_key(doc["id"]), json.dumps(doc, sort_keys=True), ex=ttl or settings.PRODUCT_CACHE_TTL)


def invalidate_product(product_id):
    return client().delete(product_key(product_id))


def product_document(product_id, loader):
    """Read-through cache: returns (document, hit)."""
    doc = get_product(product_id)
    if doc is not None:
        return doc, True
    doc = loader(product_id)
    if doc is not None:
        put_product(doc)
    return doc, False


def count_view(product_id):
    """Increment and return the product's view counter; also tracks recently viewed ids."""
    pipe = client().pipeline()
    pipe.incr(f"{PREFIX}views:{product_id}")
    pipe.lrem(f"{PREFIX}recent", 0, product_id)
    pipe.lpush(f"{PREFIX}recent", product_id)
    pipe.ltrim(f"{PREFIX}recent", 0, 9)
    return pipe.execute()[0]


def views(product_id):
    return int(client().get(f"{PREFIX}views:{product_id}") or 0)


def recently_viewed():
    return [int(x) for x in client().lrange(f"{PREFIX}recent", 0, -1)]


def top_viewed(limit=5):
    """Product ids by view count, highest first (ties by id)."""
    counts = []
    for key in client().scan_iter(f"{PREFIX}views:*"):
        counts.append((int(client().get(key) or 0), int(key.rsplit(":", 1)[1])))
    counts.sort(key=lambda c: (-c[0], c[1]))
    return [pid for _, pid in counts[:limit]]


class RateLimited(Exception):
    """Too many requests in the current window."""


def hit_rate_limit(identity, limit, window_s):
    """Window opened by the first hit; returns the hits so far or raises RateLimited."""
    key = f"{PREFIX}rate:{identity}"
    pipe = client().pipeline()
    pipe.incr(key)
    # NX: only the first hit sets the expiry, so later hits do not extend the window.
    pipe.expire(key, window_s, nx=True)
    hits = pipe.execute()[0]
    if hits > limit:
        raise RateLimited(f"{identity}: {hits} hits > {limit} per {window_s}s")
    return hits


def catalog_keys():
    return sorted(client().scan_iter(f"{PREFIX}*"))
