"""Catalogue and order models."""
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Product(models.Model):
    category = models.ForeignKey(Category, related_name="products", on_delete=models.PROTECT)
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    stock = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self):
        return f"{self.sku} {self.name}"

    def to_dict(self):
        return {
            "id": self.pk,
            "sku": self.sku,
            "name": self.name,
            "price": str(self.price),
            "stock": self.stock,
            "active": self.active,
            "category": self.category.slug,
        }


class Order(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        PAID = "paid"
        CANCELLED = "cancelled"

    customer_email = models.EmailField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    coupon = models.CharField(max_length=32, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def subtotal(self):
        return sum((line.total() for line in self.lines.all()), Decimal("0.00"))

    def to_dict(self):
        from .pricing import quote

        q = quote([(line.unit_price, line.quantity) for line in self.lines.all()], self.coupon)
        return {
            "id": self.pk,
            "email": self.customer_email,
            "status": self.status,
            "lines": [line.to_dict() for line in self.lines.all()],
            "subtotal": str(q.subtotal),
            "discount": str(q.discount),
            "tax": str(q.tax),
            "total": str(q.total),
        }


class OrderLine(models.Model):
    order = models.ForeignKey(Order, related_name="lines", on_delete=models.CASCADE)
    product = models.ForeignKey(Product, related_name="order_lines", on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="one_line_per_product"),
        ]

    def total(self):
        return self.unit_price * self.quantity

    def to_dict(self):
        return {"sku": self.product.sku, "quantity": self.quantity, "unit_price": str(self.unit_price)}


class StockMovement(models.Model):
    """Audit trail of every stock change; the sum of deltas equals the product's stock."""

    product = models.ForeignKey(Product, related_name="movements", on_delete=models.CASCADE)
    delta = models.IntegerField()
    reason = models.CharField(max_length=64)
    created = models.DateTimeField(auto_now_add=True)
