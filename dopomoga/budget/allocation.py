"""Monthly limits from an annual appropriation, and year-to-date availability.

Pure functions on ``int`` kopiyky, no I/O.

- :func:`monthly_plan` turns an annual appropriation and its plan into 12 monthly
  allocations: ``even`` (annual/12 by largest remainder, the leftover kopiyky to the
  earliest months: 110 000,00 ⇒ Jan–Aug 9 166,67 and Sep–Dec 9 166,66), ``december``
  (everything in December, 003:L138, T08) or ``explicit`` (the plan's own vector).
- :func:`available_in` gives what may still be spent in a month under the cumulative,
  year-to-date rule: unspent allocation of earlier months carries forward within the
  budget year (T07), never across years. Money spent in a month also consumes the
  allocation of every later month's cumulative limit, so the limit checked is
  ``min over m' >= m of (allocated up to m' - spent up to m')``; this stays right when
  claims for different months are settled out of order.
- Amendments: a later ``AllocationSet`` for the same program, district and year replaces
  the whole plan (the ledger keeps every version); money already paid stays paid - if an
  amendment cuts below what was spent, availability is 0, nothing is clawed back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import accumulate, islice
from operator import sub

from dopomoga.money import largest_remainder
from dopomoga.periods import split_period

MONTHS = tuple(f"{m:02d}" for m in range(1, 13))


def monthly_plan(
    year: int, annual_kop: int, kind: str, months: Mapping[str, int] | None = None
) -> tuple[int, ...]:
    """Twelve monthly allocations (January first) adding up to ``annual_kop`` exactly."""
    if type(annual_kop) is not int or annual_kop < 0:
        raise ValueError("annual_kop must be a non-negative int of kopiyky")
    if kind == "even":
        # Equal weights: every remainder ties, so the keys "01" < "02" < ... give the
        # leftover kopiyky to the earliest months.
        return tuple(largest_remainder(annual_kop, [1] * 12, list(MONTHS)))
    if kind == "december":
        return (0,) * 11 + (annual_kop,)
    if kind == "explicit":
        if months is None:
            raise ValueError("an explicit plan needs its months")
        vector = [0] * 12
        for period, amount in months.items():
            y, m = split_period(period)
            if y != year:
                raise ValueError(f"plan month {period} is not in {year}")
            if type(amount) is not int or amount < 0:
                raise ValueError(f"plan month {period}: amount must be a non-negative int")
            vector[m - 1] = amount
        if sum(vector) != annual_kop:
            raise ValueError("explicit monthly plan must add up to the annual appropriation")
        return tuple(vector)
    raise ValueError(f"unknown plan kind {kind!r}")


def cumulative(plan: Sequence[int]) -> tuple[int, ...]:
    """Year-to-date allocation at the end of each month."""
    return tuple(accumulate(plan))


def available_in(month: int, plan: Sequence[int], spent: Sequence[int], carry_over: bool = True) -> int:
    """Kopiyky that may still be spent in ``month`` (1-12) under the cumulative limit.

    ``plan`` and ``spent`` are 12 monthly amounts (``spent`` = paid so far, charged to
    each month). The result is ``max(0, min over m' >= month of cum_plan[m'] - cum_spent[m'])``.
    With ``carry_over=False`` (a program whose months do not carry unspent money forward)
    it is simply that month's allocation minus what was paid in it.
    """
    if not 1 <= month <= 12:
        raise ValueError("month must be 1-12")
    if not carry_over:
        return max(0, plan[month - 1] - spent[month - 1])
    # min over m' >= month of (cum_plan[m'] - cum_spent[m']), in C (a ledger asks this once per claim)
    head = min(islice(map(sub, accumulate(plan), accumulate(spent)), month - 1, 12))
    return max(0, head)


def planned_month(month: int, plan: Sequence[int], spent: Sequence[int], need: int, carry_over: bool = True) -> int | None:
    """The first month from ``month`` on whose year-to-date money covers ``need`` kopiyky.

    This is when a deferred claim will be paid if nothing else changes (the «помісячний
    розпис» plans the money in that month); ``None`` when no month of the year has it (the
    claim becomes a payable at year end if it is still owed).
    """
    for candidate in range(month, 13):
        if available_in(candidate, plan, spent, carry_over) >= need:
            return candidate
    return None


def year_room(plan: Sequence[int] | None, spent: Sequence[int]) -> int:
    """What the year's allocation still has: annual − everything paid in the year (never < 0)."""
    if plan is None:
        return 0
    return max(0, sum(plan) - sum(spent))
