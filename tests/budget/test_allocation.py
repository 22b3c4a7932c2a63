"""Monthly allocations, year-to-date carry-over and amendments (pure core)."""

from __future__ import annotations

import pytest

from dopomoga.budget.allocation import available_in, cumulative, monthly_plan
from dopomoga.budget.rationing import Claim, first_come
from dopomoga.periods import next_period


def uah(text: str) -> int:
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int(cents or 0)


def test_an_even_plan_of_110000_gives_9166_67_to_january_through_august_and_9166_66_after():
    plan = monthly_plan(2023, uah("110000"), "even")
    assert plan == (uah("9166.67"),) * 8 + (uah("9166.66"),) * 4
    assert sum(plan) == uah("110000")


def test_cumulative_limits_of_the_centenarian_plan_match_the_seed():
    cum = cumulative(monthly_plan(2023, uah("110000"), "even"))
    assert cum[:6] == tuple(
        uah(x) for x in ("9166.67", "18333.34", "27500.01", "36666.68", "45833.35", "55000.02")
    )


def test_a_december_only_plan_defers_an_april_request_until_december():
    # T08: everything in December.
    plan = monthly_plan(2024, uah("50000"), "december")
    spent = [0] * 12
    assert available_in(4, plan, spent) == 0
    assert available_in(11, plan, spent) == 0
    assert available_in(12, plan, spent) == uah("50000")


def test_an_explicit_plan_must_add_up_and_stay_in_its_year():
    assert monthly_plan(2024, 300, "explicit", {"2024-03": 100, "2024-12": 200})[2] == 100
    with pytest.raises(ValueError):
        monthly_plan(2024, 301, "explicit", {"2024-03": 100, "2024-12": 200})
    with pytest.raises(ValueError):
        monthly_plan(2024, 100, "explicit", {"2023-03": 100})


def test_centenarians_a_and_b_are_paid_in_february_and_march_thanks_to_carry_over():
    # T07, with the pure core: both deferred in January, A paid in February, B in March.
    plan = monthly_plan(2023, uah("110000"), "even")
    spent = [0] * 12
    a, b = Claim("A", uah("10000")), Claim("B", uah("10000"))
    queue = [a, b]
    paid_in: dict[str, int] = {}
    for month in (1, 2, 3):
        result = first_come(available_in(month, plan, spent), queue, strict_queue=True)
        for claim in result.paid:
            spent[month - 1] += claim.amount
            paid_in[claim.key] = month
        queue = list(result.not_fitting)
    assert paid_in == {"A": 2, "B": 3}


def test_spending_in_a_later_month_limits_what_an_earlier_month_may_still_spend():
    plan = monthly_plan(2023, 1200, "even")  # 100 a month
    spent = [0] * 12
    spent[5] = 550  # June used the carry-over of January-June (600)
    assert available_in(1, plan, spent) == 50  # January: at most 600 - 550 by June
    assert available_in(6, plan, spent) == 50
    assert available_in(7, plan, spent) == 150


def test_an_amendment_that_cuts_below_what_was_paid_leaves_nothing_but_claws_nothing_back():
    spent = [0] * 12
    spent[0] = 5000
    assert available_in(2, monthly_plan(2023, 1200, "even"), spent) == 0


def test_unspent_money_does_not_cross_into_the_next_year():
    assert next_period("2023-11") == "2023-12"
    assert next_period("2023-12") is None
