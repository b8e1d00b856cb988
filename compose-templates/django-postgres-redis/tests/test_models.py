"""Model behaviour against the real PostgreSQL database."""
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.test import TestCase

from catalog.models import Category, Order, OrderLine, Product, StockMovement

from .conftest import make_category, make_product


class CategoryTests(TestCase):
    def test_str_is_name(self):
        self.assertEqual(str(make_category("Garden Tools")), "Garden Tools")

    def test_names_are_unique(self):
        make_category("Books")
        with self.assertRaises(IntegrityError), transaction.atomic():
            Category.objects.create(name="Books", slug="books-2")

    def test_slugs_are_unique(self):
        make_category("Toys")
        with self.assertRaises(IntegrityError), transaction.atomic():
            Category.objects.create(name="Other Toys", slug="toys")

    def test_ordered_by_name(self):
        for name in ["Zebra", "Apple", "Mango"]:
            make_category(name)
        self.assertEqual(list(Category.objects.values_list("name", flat=True)), ["Apple", "Mango", "Zebra"])

    def test_cannot_delete_category_with_products(self):
        product = make_product()
        with self.assertRaises(ProtectedError):
            product.category.delete()


class ProductTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.category = make_category("Kitchen")
        cls.product = make_product(cls.category, price="12.30", stock=4, name="Kettle", sku="KET-1")

    def test_to_dict(self):
        self.assertEqual(
            self.product.to_dict(),
            {
                "id": self.product.pk,
                "sku": "KET-1",
                "name": "Kettle",
                "price": "12.30",
                "stock": 4,
                "active": True,
                "category": "kitchen",
            },
        )

    def test_str(self):
        self.assertEqual(str(self.product), "KET-1 Kettle")

    def test_sku_unique(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            make_product(self.category, sku="KET-1")

    def test_negative_price_fails_validation(self):
        product = Product(category=self.category, sku="NEG", name="Bad", price=Decimal("-1"), stock=1)
        with self.assertRaises(ValidationError):
            product.full_clean()

    def test_negative_stock_rejected_by_database(self):
        with self.assertRaises(IntegrityError), transaction.atomic():
            Product.objects.filter(pk=self.product.pk).update(stock=-1)

    def test_price_keeps_two_decimals(self):
        p = make_product(self.category, price="3.1")
        p.refresh_from_db()
        self.assertEqual(str(p.price), "3.10")

    def test_ordering_by_sku(self):
        make_product(self.category, sku="AAA-0")
        self.assertEqual(Product.objects.first().sku, "AAA-0")

    def test_category_reverse_relation(self):
        make_product(self.category)
        self.assertEqual(self.category.products.count(), 2)


class OrderTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.a = make_product(price="10.00", sku="A")
        cls.b = make_product(price="2.50", sku="B")

    def make_order(self, coupon=""):
        order = Order.objects.create(customer_email="x@example.com", coupon=coupon)
        OrderLine.objects.create(order=order, product=self.a, quantity=2, unit_price=self.a.price)
        OrderLine.objects.create(order=order, product=self.b, quantity=4, unit_price=self.b.price)
        return order

    def test_default_status_is_open(self):
        self.assertEqual(self.make_order().status, Order.Status.OPEN)

    def test_subtotal(self):
        self.assertEqual(self.make_order().subtotal(), Decimal("30.00"))

    def test_to_dict_prices_order(self):
        doc = self.make_order("WELCOME10").to_dict()
        self.assertEqual((doc["subtotal"], doc["discount"], doc["tax"], doc["total"]), ("30.00", "3.00", "6.38", "38.28"))
        self.assertEqual([line["sku"] for line in doc["lines"]], ["A", "B"])

    def test_one_line_per_product(self):
        order = self.make_order()
        with self.assertRaises(IntegrityError), transaction.atomic():
            OrderLine.objects.create(order=order, product=self.a, quantity=1, unit_price=self.a.price)

    def test_deleting_order_deletes_lines(self):
        order = self.make_order()
        order.delete()
        self.assertFalse(OrderLine.objects.exists())

    def test_product_in_order_is_protected(self):
        self.make_order()
        with self.assertRaises(ProtectedError):
            self.a.delete()

    def test_line_total(self):
        line = self.make_order().lines.get(product=self.b)
        self.assertEqual(line.total(), Decimal("10.00"))

    def test_stock_movements_go_with_their_product(self):
        product = make_product()
        StockMovement.objects.create(product=product, delta=3, reason="delivery")
        product_id = product.pk
        product.delete()
        self.assertFalse(StockMovement.objects.filter(product_id=product_id).exists())
