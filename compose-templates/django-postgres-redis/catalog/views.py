"""JSON API views."""
import json
from decimal import Decimal, InvalidOperation

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import cache, inventory, pricing
from .models import Category, Order, Product

PAGE_SIZE_MAX = 50


def error(status, message):
    return JsonResponse({"error": message}, status=status)


def load_product(product_id):
    product = Product.objects.select_related("category").filter(pk=product_id).first()
    return product.to_dict() if product else None


@require_GET
def health(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        db_ok = cursor.fetchone()[0] == 1
    redis_ok = bool(cache.client().ping())
    return JsonResponse({"db": db_ok, "redis": redis_ok}, status=200 if db_ok and redis_ok else 503)


@require_GET
def categories(request):
    data = [
        {"slug": c.slug, "name": c.name, "products": c.products.filter(active=True).count()}
        for c in Category.objects.all()
    ]
    return JsonResponse({"categories": data})


@require_GET
def products(request):
    qs = Product.objects.select_related("category").filter(active=True)
    if "category" in request.GET:
        qs = qs.filter(category__slug=request.GET["category"])
    if request.GET.get("q"):
        qs = qs.filter(name__icontains=request.GET["q"])
    if request.GET.get("in_stock") == "1":
        qs = qs.filter(stock__gt=0)
    try:
        page = int(request.GET.get("page", "1"))
        size = int(request.GET.get("size", "20"))
    except ValueError:
        return error(400, "page and size must be integers")
    if page < 1 or not 1 <= size <= PAGE_SIZE_MAX:
        return error(400, f"page must be >= 1 and size between 1 and {PAGE_SIZE_MAX}")
    total = qs.count()
    items = [p.to_dict() for p in qs[(page - 1) * size : page * size]]
    return JsonResponse({"count": total, "page": page, "results": items})


@require_GET
def product_detail(request, product_id):
    doc, hit = cache.product_document(product_id, load_product)
    if doc is None:
        return error(404, f"no product {product_id}")
    cache.count_view(product_id)
    response = JsonResponse(doc)
    response["X-Cache"] = "hit" if hit else "miss"
    return response


@require_GET
def popular(request):
    ids = cache.top_viewed(int(request.GET.get("limit", "5")))
    by_id = {p.pk: p for p in Product.objects.filter(pk__in=ids)}
    return JsonResponse({"results": [{"sku": by_id[i].sku, "views": cache.views(i)} for i in ids if i in by_id]})


def parse_body(request):
    try:
        return json.loads(request.body or b"{}"), None
    except json.JSONDecodeError as exc:
        return None, error(400, f"invalid JSON: {exc.msg}")


@csrf_exempt
@require_POST
def quote(request):
    body, err = parse_body(request)
    if err:
        return err
    try:
        lines = [(Decimal(str(line["price"])), int(line["quantity"])) for line in body.get("lines", [])]
        q = pricing.quote(lines, body.get("coupon", ""))
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        return error(400, f"invalid lines: {exc}")
    return JsonResponse({k: str(v) for k, v in q.__dict__.items()})


@csrf_exempt
@require_POST
def create_order(request):
    try:
        cache.hit_rate_limit(request.META.get("REMOTE_ADDR", "?"), limit=30, window_s=60)
    except cache.RateLimited as exc:
        return error(429, str(exc))
    body, err = parse_body(request)
    if err:
        return err
    email = body.get("email", "")
    if "@" not in email:
        return error(400, "a valid email is required")
    items = []
    for entry in body.get("items", []):
        product = Product.objects.filter(sku=entry.get("sku"), active=True).first()
        if product is None:
            return error(400, f"unknown sku {entry.get('sku')!r}")
        quantity = entry.get("quantity", 0)
        if not isinstance(quantity, int) or quantity < 1:
            return error(400, f"invalid quantity for {product.sku}")
        items.append((product, quantity))
    if not items:
        return error(400, "an order needs at least one item")
    try:
        order = inventory.place_order(email, items, body.get("coupon", ""))
    except inventory.OutOfStock as exc:
        return error(409, str(exc))
    return JsonResponse(order.to_dict(), status=201)


@require_GET
def order_detail(request, order_id):
    order = Order.objects.filter(pk=order_id).prefetch_related("lines__product").first()
    if order is None:
        return error(404, f"no order {order_id}")
    return JsonResponse(order.to_dict())


@csrf_exempt
@require_POST
def cancel_order(request, order_id):
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        return error(404, f"no order {order_id}")
    if order.status == Order.Status.PAID:
        return error(409, "paid orders cannot be cancelled")
    order = inventory.cancel_order(order)
    return JsonResponse(order.to_dict())
