"""Stock changes with row locks and an audit trail."""
from django.db import transaction
from django.db.models import Sum

from .models import Order, OrderLine, Product, StockMovement


class OutOfStock(Exception):
    """Not enough stock to fulfil a request."""


def receive(product, quantity, reason="delivery"):
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    with transaction.atomic():
        locked = Product.objects.select_for_update().get(pk=product.pk)
        locked.stock += quantity
        locked.save(update_fields=["stock"])
        StockMovement.objects.create(product=locked, delta=quantity, reason=reason)
    return locked.stock


def reserve(product, quantity, reason="order"):
    with transaction.atomic():
        locked = Product.objects.select_for_update().get(pk=product.pk)
        if locked.stock < quantity:
            raise OutOfStock(f"{locked.sku}: {quantity} requested, {locked.stock} in stock")
        locked.stock -= quantity
        locked.save(update_fields=["stock"])
        StockMovement.objects.create(product=locked, delta=-quantity, reason=reason)
    return locked.stock


def place_order(email, items, coupon=""):
    """Create an order from [(product, quantity)], reserving stock atomically (all or nothing)."""
    with transaction.atomic():
        order = Order.objects.create(customer_email=email, coupon=coupon)
        for product, quantity in items:
            reserve(product, quantity, reason=f"order:{order.pk}")
            OrderLine.objects.create(order=order, product=product, quantity=quantity, unit_price=product.price)
    return order


def cancel_order(order):
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status == Order.Status.CANCELLED:
            return order
        for line in order.lines.select_related("product"):
            receive(line.product, line.quantity, reason=f"cancel:{order.pk}")
        order.status = Order.Status.CANCELLED
        order.save(update_fields=["status"])
    return order


def audited_stock(product):
    """Stock according to the movement log."""
    return product.movements.aggregate(total=Sum("delta"))["total"] or 0
