"""Exact money: integer kopiyky, named roundings, largest-remainder apportionment.

No float ever touches money. Amounts are ``int`` kopiyky (1 UAH = 100 kop). Every
rounding has a name, and the name is recorded in the decision trace:

- ``round_half_up(n, d)``: n/d rounded to the nearest integer, halves away from zero
  (the Ukrainian accounting convention; used for per-person amounts);
- ``floor_div(n, d)``: n/d rounded down (always lawful under a ceiling);
- ``largest_remainder(total, weights, keys)``: splits ``total`` in proportion to
  ``weights`` so that the parts add up to ``total`` exactly (Hamilton's method),
  ties broken by ``keys`` so the result never depends on arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction

KOP_PER_UAH = 100


def round_half_up(numerator: int, denominator: int) -> int:
    """Round numerator/denominator to the nearest integer, halves away from zero."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator < 0:
        return -round_half_up(-numerator, denominator)
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (1 if 2 * remainder >= denominator else 0)


def floor_div(numerator: int, denominator: int) -> int:
    """Round numerator/denominator down (towards minus infinity)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    return numerator // denominator


def uah_to_kop(text: str | int | Decimal) -> int:
    """Parse an exact hryvnia amount ("10000", "7907.50", Decimal) into kopiyky.

    Refuses floats and anything with more than two decimals: money in files and
    events is written exactly, so a third decimal is an error, not something to round.
    """
    if isinstance(text, float):  # pragma: no cover - defensive: floats are a bug
        raise TypeError("money must not be a float")
    try:
        value = Decimal(str(text).replace(" ", "").replace("\u00a0", "").replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"not an amount of money: {text!r}") from None
    kop = value * KOP_PER_UAH
    if kop != kop.to_integral_value():
        raise ValueError(f"more than two decimals in an amount of money: {text!r}")
    return int(kop)


def format_uah(kop: int) -> str:
    """Ukrainian presentation: thin-space thousands, comma decimals: '26 666,67 грн'."""
    sign = "-" if kop < 0 else ""
    whole, cents = divmod(abs(kop), KOP_PER_UAH)
    grouped = f"{whole:,}".replace(",", "\u00a0")
    return f"{sign}{grouped},{cents:02d}\u00a0грн"


def kop_to_decimal_str(kop: int) -> str:
    """'2666667' -> '26666.67' (for machine formats: CSV, XML)."""
    sign = "-" if kop < 0 else ""
    whole, cents = divmod(abs(kop), KOP_PER_UAH)
    return f"{sign}{whole}.{cents:02d}"


def largest_remainder(total: int, weights: Sequence[int], keys: Sequence[str]) -> list[int]:
    """Split ``total`` kopiyky in proportion to ``weights`` (Hamilton / largest remainder).

    Each part gets the floor of its exact quota ``total * w / sum(w)``; the leftover
    kopiyky go one each to the largest fractional remainders; equal remainders are
    ordered by ``keys`` (ascending), so the result is independent of input order.
    Guarantees: ``sum(parts) == total``; every part within one kopiyka of its quota.
    """
    if len(weights) != len(keys):
        raise ValueError("weights and keys differ in length")
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("total and weights must not be negative")
    if len(set(keys)) != len(keys):
        raise ValueError("tie-break keys must be unique")
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total:
            raise ValueError("cannot split a positive total over zero weights")
        return [0] * len(weights)
    parts: list[int] = []
    remainders: list[tuple[int, str, int]] = []
    for index, (weight, key) in enumerate(zip(weights, keys, strict=True)):
        quota, remainder = divmod(total * weight, weight_sum)
        parts.append(quota)
        remainders.append((remainder, key, index))
    leftover = total - sum(parts)
    # Largest remainder first; equal remainders by key ascending.
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _, _, index in remainders[:leftover]:
        parts[index] += 1
    return parts


def fraction_str(value: Fraction) -> str:
    """Exact, canonical text of a coefficient: '1', '0', '1000/1549' (lowest terms)."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
