"""JSON API through Django's test client (real database and Redis)."""
import json

import pytest
from django.test import TestCase

from catalog import cache
from catalog.models import Order, Product

from .conftest import make_category, make_product


@pytest.fixture(autouse=True)
def _clean_cache(redis_db):
    """Views cache products and count views in Redis: every test starts from an empty cache."""


class ApiTestCase(TestCase):
    def post_json(self, url, payload):
        return self.client.post(url, data=json.dumps(payload), content_type="application/json")


class HealthTests(ApiTestCase):
    def test_reports_both_backends(self):
        response = self.client.get("/api/health")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"db": True, "redis": True})

    def test_rejects_post(self):
        self.assertEqual(self.client.post("/api/health").status_code, 405)


class CategoryListTests(ApiTestCase):
    def test_counts_only_active_products(self):
        tools = make_category("Tools")
        make_product(tools)
        make_product(tools, active=False)
        make_category("Empty")
        data = self.client.get("/api/categories").json()["categories"]
        self.assertEqual(data, [{"slug": "empty", "name": "Empty", "products": 0}, {"slug": "tools", "name": "Tools", "products": 1}])


class ProductListTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        cls.books = make_category("Books")
        cls.games = make_category("Games")
        for i in range(25):
            make_product(cls.books, sku=f"BK-{i:02d}", name=f"Book {i}", stock=i % 3)
        make_product(cls.games, sku="GM-01", name="Chess board")
        make_product(cls.games, sku="GM-02", name="Hidden game", active=False)

    def test_first_page(self):
        data = self.client.get("/api/products").json()
        self.assertEqual(data["count"], 26)
        self.assertEqual(len(data["results"]), 20)
        self.assertEqual(data["results"][0]["sku"], "BK-00")

    def test_second_page(self):
        data = self.client.get("/api/products?page=2").json()
        self.assertEqual([p["sku"] for p in data["results"]], ["BK-20", "BK-21", "BK-22", "BK-23", "BK-24", "GM-01"])

    def test_filter_by_category(self):
        data = self.client.get("/api/products?category=games").json()
        self.assertEqual([p["sku"] for p in data["results"]], ["GM-01"])

    def test_search_is_case_insensitive(self):
        data = self.client.get("/api/products?q=CHESS").json()
        self.assertEqual(data["count"], 1)

    def test_in_stock_filter(self):
        data = self.client.get("/api/products?in_stock=1&size=50").json()
        self.assertEqual(data["count"], 17)  # 16 books with stock 1 or 2, plus the chess board
        self.assertTrue(all(p["stock"] > 0 for p in data["results"]))

    def test_custom_page_size(self):
        self.assertEqual(len(self.client.get("/api/products?size=5").json()["results"]), 5)

    def test_invalid_paging(self):
        for query in ["page=0", "size=0", "size=51", "page=x"]:
            with self.subTest(query=query):
                self.assertEqual(self.client.get(f"/api/products?{query}").status_code, 400)

    def test_page_past_end_is_empty(self):
        self.assertEqual(self.client.get("/api/products?page=9").json()["results"], [])


class ProductDetailTests(ApiTestCase):
    def setUp(self):
        self.product = make_product(price="4.20", sku="MUG-1", name="Mug")

    def test_miss_then_hit(self):
        first = self.client.get(f"/api/products/{self.product.pk}")
        second = self.client.get(f"/api/products/{self.product.pk}")
        self.assertEqual((first["X-Cache"], second["X-Cache"]), ("miss", "hit"))
        self.assertEqual(first.json(), second.json())
        self.assertEqual(second.json()["price"], "4.20")

    def test_saving_product_invalidates_cache(self):
        self.client.get(f"/api/products/{self.product.pk}")
        self.product.name = "Big mug"
        self.product.save()
        response = self.client.get(f"/api/products/{self.product.pk}")
        self.assertEqual((response["X-Cache"], response.json()["name"]), ("miss", "Big mug"))

    def test_unknown_product(self):
        self.assertEqual(self.client.get("/api/products/999999").status_code, 404)

    def test_counts_views(self):
        for _ in range(3):
            self.client.get(f"/api/products/{self.product.pk}")
        self.assertEqual(cache.views(self.product.pk), 3)

    def test_popular_orders_by_views(self):
        other = make_product(sku="MUG-2")
        self.client.get(f"/api/products/{other.pk}")
        for _ in range(2):
            self.client.get(f"/api/products/{self.product.pk}")
        data = self.client.get("/api/products/popular").json()["results"]
        self.assertEqual(data, [{"sku": "MUG-1", "views": 2}, {"sku": "MUG-2", "views": 1}])


class QuoteTests(ApiTestCase):
    def test_quote(self):
        response = self.post_json("/api/quote", {"lines": [{"price": "20.00", "quantity": 3}], "coupon": "WELCOME10"})
        self.assertEqual(response.json()["total"], "64.80")

    def test_quote_bad_json(self):
        response = self.client.post("/api/quote", data="{", content_type="application/json")
        self.assertEqual(response.status_code, 400)
        self.assertIn("invalid JSON", response.json()["error"])

    def test_quote_missing_fields(self):
        self.assertEqual(self.post_json("/api/quote", {"lines": [{"price": "1"}]}).status_code, 400)

    def test_quote_negative_quantity(self):
        self.assertEqual(self.post_json("/api/quote", {"lines": [{"price": "1", "quantity": -1}]}).status_code, 400)


class OrderApiTests(ApiTestCase):
    def setUp(self):
        self.lamp = make_product(sku="LAMP", price="30.00", stock=2)
        self.bulb = make_product(sku="BULB", price="2.00", stock=100)

    def order(self, **overrides):
        payload = {"email": "d@example.com", "items": [{"sku": "LAMP", "quantity": 1}, {"sku": "BULB", "quantity": 5}]}
        payload.update(overrides)
        return self.post_json("/api/orders", payload)

    def test_create_order(self):
        response = self.order()
        self.assertEqual(response.status_code, 201)
        doc = response.json()
        self.assertEqual((doc["subtotal"], doc["status"]), ("40.00", "open"))
        self.assertEqual(Product.objects.get(sku="LAMP").stock, 1)

    def test_out_of_stock_is_conflict(self):
        response = self.order(items=[{"sku": "LAMP", "quantity": 3}])
        self.assertEqual(response.status_code, 409)
        self.assertFalse(Order.objects.exists())

    def test_unknown_sku(self):
        self.assertEqual(self.order(items=[{"sku": "NOPE", "quantity": 1}]).status_code, 400)

    def test_invalid_quantity(self):
        self.assertEqual(self.order(items=[{"sku": "LAMP", "quantity": "2"}]).status_code, 400)

    def test_requires_email(self):
        self.assertEqual(self.order(email="nobody").status_code, 400)

    def test_requires_items(self):
        self.assertEqual(self.order(items=[]).status_code, 400)

    def test_order_detail_roundtrip(self):
        created = self.order().json()
        self.assertEqual(self.client.get(f"/api/orders/{created['id']}").json(), created)

    def test_order_detail_unknown(self):
        self.assertEqual(self.client.get("/api/orders/424242").status_code, 404)

    def test_cancel(self):
        created = self.order().json()
        response = self.post_json(f"/api/orders/{created['id']}/cancel", {})
        self.assertEqual(response.json()["status"], "cancelled")
        self.assertEqual(Product.objects.get(sku="LAMP").stock, 2)

    def test_cannot_cancel_paid(self):
        created = self.order().json()
        Order.objects.filter(pk=created["id"]).update(status=Order.Status.PAID)
        self.assertEqual(self.post_json(f"/api/orders/{created['id']}/cancel", {}).status_code, 409)

    @pytest.mark.isolation  # the limiter key is per client address: shared Redis, shared budget
    def test_rate_limit(self):
        statuses = [self.order(items=[{"sku": "BULB", "quantity": 1}]).status_code for _ in range(31)]
        self.assertEqual(statuses.count(201), 30)
        self.assertEqual(statuses[-1], 429)
