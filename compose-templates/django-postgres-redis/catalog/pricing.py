"""Order pricing: subtotal, coupon discounts, VAT, rounding. Pure functions, no database."""
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
VAT_RATE = Decimal("0.20")

# Coupon code -> (kind, value, minimum subtotal).
COUPONS = {
    "WELCOME10": ("percent", Decimal("10"), Decimal("0")),
    "BIG25": ("percent", Decimal("25"), Decimal("200")),
    "FIVEOFF": ("fixed", Decimal("5.00"), Decimal("20")),
    "FREESHIP": ("shipping", Decimal("0"), Decimal("0")),
}
SHIPPING_FLAT = Decimal("4.90")
FREE_SHIPPING_FROM = Decimal("50.00")


class PricingError(ValueError):
    """A quote was requested for invalid input."""


def money(value):
    """Round to cents, half up, the way invoices are rounded."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def parse_money(text):
    """Parse '12.5', '12,50', '€12.50', ' 1 200.00 ' into a Decimal with two places."""
    if not isinstance(text, str):
        raise PricingError(f"expected a string, got {type(text).__name__}")
    cleaned = text.strip().replace("€", "").replace("$", "").replace(" ", "")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    elif "," in cleaned:
        cleaned = cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except Exception as exc:
        raise PricingError(f"not an amount: {text!r}") from exc
    if not value.is_finite():
        raise PricingError(f"not an amount: {text!r}")
    if value < 0:
        raise PricingError(f"negative amount: {text!r}")
    return money(value)


@dataclass(frozen=True)
class Quote:
    subtotal: Decimal
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal


def discount_for(coupon, subtotal):
    """The discount a coupon gives on a subtotal (0 when unknown or below its minimum)."""
    if not coupon:
        return Decimal("0.00")
    entry = COUPONS.get(coupon.strip().upper())
    if entry is None:
        return Decimal("0.00")
    kind, value, minimum = entry
    if subtotal < minimum:
        return Decimal("0.00")
    if kind == "percent":
        return money(subtotal * value / 100)
    if kind == "fixed":
        return min(money(value), subtotal)
    return Decimal("0.00")


def shipping_for(coupon, discounted):
    if discounted == 0:
        return Decimal("0.00")
    if coupon and coupon.strip().upper() == "FREESHIP":
        return Decimal("0.00")
    if discounted >= FREE_SHIPPING_FROM:
        return Decimal("0.00")
    return SHIPPING_FLAT


def quote(lines, coupon=""):
    """Price lines of (unit_price, quantity); VAT applies to goods after discount plus shipping."""
    subtotal = Decimal("0.00")
    for unit_price, quantity in lines:
        unit_price = Decimal(unit_price)
        if quantity <= 0:
            raise PricingError(f"quantity must be positive, got {quantity}")
        if unit_price < 0:
            raise PricingError(f"unit price must not be negative, got {unit_price}")
        subtotal += unit_price * quantity
    subtotal = money(subtotal)
    discount = discount_for(coupon, subtotal)
    discounted = subtotal - discount
    shipping = shipping_for(coupon, discounted)
    tax = money((discounted + shipping) * VAT_RATE)
    return Quote(subtotal, discount, shipping, tax, money(discounted + shipping + tax))


def split_evenly(amount, parts):
    """Split an amount into `parts` cent-exact shares whose sum is the amount (first shares get the extra cents)."""
    if parts <= 0:
        raise PricingError("parts must be positive")
    cents = int(money(amount) * 100)
    base, extra = divmod(cents, parts)
    return [money(Decimal(base + (1 if i < extra else 0)) / 100) for i in range(parts)]
