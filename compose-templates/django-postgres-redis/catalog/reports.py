"""Sales reports computed in Python and in SQL."""
from collections import defaultdict
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Sum

from .models import Order, OrderLine


def revenue_by_category():
    """{category slug: revenue} over paid orders, computed by the database."""
    line_total = ExpressionWrapper(F("unit_price") * F("quantity"), output_field=DecimalField(max_digits=14, decimal_places=2))
    rows = (
        OrderLine.objects.filter(order__status=Order.Status.PAID)
        .values("product__category__slug")
        .annotate(revenue=Sum(line_total))
        .order_by("product__category__slug")
    )
    return {row["product__category__slug"]: row["revenue"] for row in rows}


def best_sellers(limit=3):
    rows = (
        OrderLine.objects.exclude(order__status=Order.Status.CANCELLED)
        .values("product__sku")
        .annotate(units=Sum("quantity"))
        .order_by("-units", "product__sku")[:limit]
    )
    return [(row["product__sku"], row["units"]) for row in rows]


def basket_affinity(orders):
    """Counts how often each pair of SKUs was bought together: {(a, b): n} with a < b."""
    pairs = defaultdict(int)
    for skus in orders:
        unique = sorted(set(skus))
        for i, a in enumerate(unique):
            for b in unique[i + 1 :]:
                pairs[(a, b)] += 1
    return dict(pairs)


def simulate_restock(demand, start, reorder_point, reorder_qty, lead_days):
    """Day-by-day stock simulation; returns (days out of stock, units short, orders placed)."""
    stock, pipeline, out_days, short, placed = start, [], 0, 0, 0
    for day, wanted in enumerate(demand):
        arriving = sum(q for d, q in pipeline if d == day)
        pipeline = [(d, q) for d, q in pipeline if d != day]
        stock += arriving
        sold = min(stock, wanted)
        stock -= sold
        if sold < wanted:
            out_days += 1
            short += wanted - sold
        if stock + sum(q for _, q in pipeline) <= reorder_point:
            pipeline.append((day + lead_days, reorder_qty))
            placed += 1
    return out_days, short, placed


def total(values):
    return sum((Decimal(v) for v in values), Decimal("0.00"))
