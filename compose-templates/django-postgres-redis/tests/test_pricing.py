"""Pricing rules: pure functions, no services."""
from decimal import Decimal

import pytest

from catalog.pricing import PricingError, discount_for, money, parse_money, quote, shipping_for, split_evenly

D = Decimal


@pytest.mark.parametrize(
    "value,expected",
    [
        ("1.005", "1.01"),  # half up, not banker's rounding
        ("1.004", "1.00"),
        ("2.675", "2.68"),
        ("0", "0.00"),
        ("-1.005", "-1.01"),
        ("123456.789", "123456.79"),
    ],
)
def test_money_rounds_half_up(value, expected):
    assert money(D(value)) == D(expected)
    assert str(money(D(value))) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("12.5", "12.50"),
        ("12,50", "12.50"),
        ("€12.50", "12.50"),
        ("$3", "3.00"),
        (" 1 200.00 ", "1200.00"),
        ("1,200.00", "1200.00"),
        ("0.005", "0.01"),
    ],
)
def test_parse_money_accepts_common_formats(text, expected):
    assert parse_money(text) == D(expected)


@pytest.mark.parametrize("text", ["", "abc", "12.5.1", "-3", "NaN", "Infinity"])
def test_parse_money_rejects_garbage(text):
    with pytest.raises(PricingError):
        parse_money(text)


def test_parse_money_rejects_non_strings():
    with pytest.raises(PricingError, match="expected a string"):
        parse_money(12.5)


@pytest.mark.parametrize(
    "coupon,subtotal,expected",
    [
        ("WELCOME10", "100.00", "10.00"),
        ("welcome10", "100.00", "10.00"),  # case-insensitive
        (" WELCOME10 ", "33.33", "3.33"),
        ("BIG25", "199.99", "0.00"),  # below minimum
        ("BIG25", "200.00", "50.00"),
        ("FIVEOFF", "19.99", "0.00"),
        ("FIVEOFF", "20.00", "5.00"),
        ("FREESHIP", "80.00", "0.00"),  # shipping coupon gives no goods discount
        ("NOPE", "80.00", "0.00"),
        ("", "80.00", "0.00"),
    ],
)
def test_discount_for(coupon, subtotal, expected):
    assert discount_for(coupon, D(subtotal)) == D(expected)


@pytest.mark.parametrize(
    "coupon,discounted,expected",
    [
        ("", "0.00", "0.00"),
        ("", "49.99", "4.90"),
        ("", "50.00", "0.00"),
        ("FREESHIP", "10.00", "0.00"),
        ("WELCOME10", "10.00", "4.90"),
    ],
)
def test_shipping_for(coupon, discounted, expected):
    assert shipping_for(coupon, D(discounted)) == D(expected)


def test_quote_small_basket_pays_shipping_and_vat():
    q = quote([(D("9.99"), 2)])
    assert q.subtotal == D("19.98")
    assert q.discount == D("0.00")
    assert q.shipping == D("4.90")
    assert q.tax == D("4.98")  # 20% of 24.88 = 4.976
    assert q.total == D("29.86")


def test_quote_with_percent_coupon_above_free_shipping():
    q = quote([(D("40.00"), 1), (D("15.00"), 2)], "WELCOME10")
    assert (q.subtotal, q.discount, q.shipping) == (D("70.00"), D("7.00"), D("0.00"))
    assert q.tax == D("12.60")
    assert q.total == D("75.60")


def test_quote_discount_can_drop_order_below_free_shipping():
    q = quote([(D("52.00"), 1)], "FIVEOFF")
    assert q.subtotal - q.discount == D("47.00")
    assert q.shipping == D("4.90")


def test_quote_empty_basket_is_free():
    q = quote([])
    assert q.total == D("0.00") and q.shipping == D("0.00")


@pytest.mark.parametrize("lines", [[(D("1.00"), 0)], [(D("1.00"), -2)], [(D("-1.00"), 1)]])
def test_quote_rejects_invalid_lines(lines):
    with pytest.raises(PricingError):
        quote(lines)


def test_quote_total_is_sum_of_parts():
    for cents in range(1, 2000, 37):
        q = quote([(D(cents) / 100, 3)], "WELCOME10")
        assert q.total == q.subtotal - q.discount + q.shipping + q.tax


@pytest.mark.parametrize(
    "amount,parts,expected",
    [
        ("10.00", 3, ["3.34", "3.33", "3.33"]),
        ("0.05", 2, ["0.03", "0.02"]),
        ("1.00", 1, ["1.00"]),
        ("0.01", 4, ["0.01", "0.00", "0.00", "0.00"]),
    ],
)
def test_split_evenly(amount, parts, expected):
    shares = split_evenly(D(amount), parts)
    assert shares == [D(e) for e in expected]
    assert sum(shares) == D(amount)


def test_split_evenly_rejects_zero_parts():
    with pytest.raises(PricingError):
        split_evenly(D("1.00"), 0)
