"""Properties of the rationing core (the claims problem on whole kopiyky) and seed cases."""

from __future__ import annotations

import ast
import inspect
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from dopomoga.budget import allocation, rationing
from dopomoga.budget.rationing import Claim, district_split, first_come, priority_then_pro_rata, pro_rata
from dopomoga.money import largest_remainder

amounts = st.integers(min_value=0, max_value=10**9)
claim_lists = st.lists(amounts, min_size=1, max_size=40).map(
    lambda xs: [Claim(f"k{i:03d}", x) for i, x in enumerate(xs)]
)
budgets = st.integers(min_value=0, max_value=3 * 10**10)


def uah(text: str) -> int:
    whole, _, cents = text.partition(".")
    return int(whole) * 100 + int(cents or 0)


# -- seed scenarios -------------------------------------------------------------------------


def test_three_carriers_exceeding_the_monthly_allocation_are_prorated_to_the_kopiyka():
    # A5-08: 100 000 among 80 000 / 40 000 / 30 000
    claims = [Claim("A", uah("80000")), Claim("B", uah("40000")), Claim("C", uah("30000"))]
    result = pro_rata(uah("100000"), claims)
    assert result.awards == (uah("53333.33"), uah("26666.67"), uah("20000.00"))
    assert result.coefficient == Fraction(2, 3)
    assert result.paid == uah("100000") and result.unspent == 0


def test_three_equal_carriers_leave_the_extra_kopiyka_to_the_lowest_key():
    # A5-09: three x 50 000 against 100 000: one gets 33 333.34, deterministically.
    claims = [
        Claim("carrier-c", uah("50000")),
        Claim("carrier-a", uah("50000")),
        Claim("carrier-b", uah("50000")),
    ]
    result = pro_rata(uah("100000"), claims)
    assert result.by_key(claims) == {
        "carrier-a": uah("33333.34"),
        "carrier-b": uah("33333.33"),
        "carrier-c": uah("33333.33"),
    }


def test_claims_below_the_allocation_are_paid_in_full_and_the_rest_is_recorded_unspent():
    # A5-10
    claims = [Claim("A", uah("50000")), Claim("B", uah("40000"))]
    result = pro_rata(uah("100000"), claims)
    assert result.awards == (uah("50000"), uah("40000"))
    assert result.coefficient == 1 and result.unspent == uah("10000")


def test_july_2023_children_of_the_fallen_get_53_times_219_37_and_52_times_219_36():
    # T19: 23 033.33 among 105 children claiming 1 416.50 each
    claims = [Claim(f"child-{i:03d}", uah("1416.50")) for i in range(105)]
    result = pro_rata(uah("23033.33"), claims)
    assert sorted(result.awards).count(uah("219.37")) == 53
    assert sorted(result.awards).count(uah("219.36")) == 52
    assert result.paid == uah("23033.33")
    assert result.coefficient == Fraction(uah("23033.33"), 105 * uah("1416.50"))
    # the extra kopiyky go to the lowest keys
    assert result.awards[:53] == (uah("219.37"),) * 53


def test_fifo_mode_for_the_july_case_pays_16_children_in_full():
    claims = [Claim(f"child-{i:03d}", uah("1416.50")) for i in range(105)]
    result = first_come(uah("23033.33"), claims)
    assert len(result.paid) == 16 and result.spent == uah("22664.00")
    assert len(result.not_fitting) == 89


def test_the_88th_visually_impaired_applicant_is_not_paid():
    # T13: 391 500 left, 4 500 each: 87 fit exactly
    claims = [Claim(f"app-{i:03d}", uah("4500")) for i in range(1, 89)]
    result = first_come(uah("391500"), claims)
    assert len(result.paid) == 87 and result.left == 0
    assert [c.key for c in result.not_fitting] == ["app-088"]


def test_honoured_donors_pro_rata_gives_375_and_fifo_defers_the_fourth():
    # T14
    claims = [Claim(f"donor-{i}", uah("500")) for i in range(4)]
    assert pro_rata(uah("1500"), claims).awards == (uah("375"),) * 4
    fifo = first_come(uah("1500"), claims)
    assert [c.key for c in fifo.not_fitting] == ["donor-3"]


def test_a_strict_queue_does_not_let_a_small_claim_overtake_a_blocked_one():
    claims = [Claim("big", 800), Claim("small", 100)]
    assert [c.key for c in first_come(500, claims).paid] == ["small"]
    assert first_come(500, claims, strict_queue=True).paid == ()


def test_priority_classes_are_served_in_order_and_the_short_class_is_prorated():
    claims = [Claim("a", 300, 2), Claim("b", 400, 1), Claim("c", 100, 1), Claim("d", 200, 3)]
    result = priority_then_pro_rata(700, claims)
    assert result.by_key(claims) == {"b": 400, "c": 100, "a": 200, "d": 0}
    assert result.class_coefficients == {1: 1, 2: Fraction(2, 3), 3: 0}
    assert result.coefficient == Fraction(2, 3) and result.paid == 700


def test_district_split_follows_declared_need_when_the_plan_is_short():
    # A4-16
    needs = {"Вознесенівський": uah("300000"), "Дніпровський": uah("500000"), "Заводський": uah("200000")}
    split = district_split(uah("600000"), needs)
    assert split.shares == {
        "Вознесенівський": uah("180000"),
        "Дніпровський": uah("300000"),
        "Заводський": uah("120000"),
    }
    assert split.unallocated == 0


def test_district_split_caps_at_need_by_default_and_splits_literally_on_request():
    # A4-17
    needs = {"Вознесенівський": uah("300000"), "Дніпровський": uah("500000"), "Заводський": uah("200000")}
    capped = district_split(uah("1200000"), needs)
    assert capped.shares == needs and capped.unallocated == uah("200000")
    literal = district_split(uah("1200000"), needs, cap_at_need=False)
    assert list(literal.shares.values()) == [uah("360000"), uah("600000"), uah("240000")]
    assert literal.unallocated == 0


# -- properties -----------------------------------------------------------------------------


@given(budgets, claim_lists)
def test_the_sum_of_awards_never_exceeds_the_money_and_spends_it_all_when_claims_exceed_it(available, claims):
    result = pro_rata(available, claims)
    total = sum(c.amount for c in claims)
    assert sum(result.awards) == result.paid <= available
    assert result.paid == min(available, total)


@given(budgets, claim_lists)
def test_nobody_gets_more_than_claimed_and_everyone_is_within_a_kopiyka_of_the_exact_share(available, claims):
    result = pro_rata(available, claims)
    for claim, award in zip(claims, result.awards, strict=True):
        assert 0 <= award <= claim.amount
        assert abs(award - claim.amount * result.coefficient) < 1


@given(budgets, claim_lists)
def test_the_fast_apportionment_equals_the_reference_largest_remainder(available, claims):
    total = sum(c.amount for c in claims)
    expected = (
        [c.amount for c in claims]
        if total <= available
        else largest_remainder(available, [c.amount for c in claims], [c.key for c in claims])
    )
    assert list(pro_rata(available, claims).awards) == expected


@given(
    budgets, st.integers(min_value=0, max_value=10**9), st.integers(min_value=2, max_value=30), claim_lists
)
def test_equal_claims_receive_awards_within_one_kopiyka(available, amount, copies, others):
    claims = others + [Claim(f"eq{i:02d}", amount) for i in range(copies)]
    awards = pro_rata(available, claims).by_key(claims)
    equal = [awards[f"eq{i:02d}"] for i in range(copies)]
    assert max(equal) - min(equal) <= 1


@given(budgets, claim_lists, st.data())
def test_removing_claimants_with_their_awards_leaves_the_others_unchanged_within_a_kopiyka(
    available, claims, data
):
    result = pro_rata(available, claims)
    keep = data.draw(st.lists(st.booleans(), min_size=len(claims), max_size=len(claims)))
    kept = [c for c, k in zip(claims, keep, strict=True) if k]
    removed_awards = sum(a for a, k in zip(result.awards, keep, strict=True) if not k)
    again = pro_rata(available - removed_awards, kept).by_key(kept)
    before = result.by_key(claims)
    for claim in kept:
        assert abs(again[claim.key] - before[claim.key]) <= 1


@given(budgets, st.integers(min_value=0, max_value=10**9), claim_lists)
def test_more_money_never_lowers_an_award_by_more_than_a_kopiyka(available, extra, claims):
    # Alabama paradox: integer resource monotonicity holds only within one kopiyka.
    small = pro_rata(available, claims).awards
    large = pro_rata(available + extra, claims).awards
    assert all(b >= a - 1 for a, b in zip(small, large, strict=True))


@given(budgets, claim_lists, st.randoms(use_true_random=False))
def test_arrival_order_does_not_change_pro_rata_results(available, claims, random):
    shuffled = list(claims)
    random.shuffle(shuffled)
    assert pro_rata(available, claims).by_key(claims) == pro_rata(available, shuffled).by_key(shuffled)


@given(budgets, st.lists(st.tuples(amounts, st.integers(0, 3)), min_size=1, max_size=30))
def test_priority_rationing_respects_the_money_the_claims_and_the_class_order(available, rows):
    claims = [Claim(f"k{i:03d}", a, p) for i, (a, p) in enumerate(rows)]
    result = priority_then_pro_rata(available, claims)
    assert sum(result.awards) == result.paid == min(available, sum(a for a, _ in rows))
    for claim, award in zip(claims, result.awards, strict=True):
        assert 0 <= award <= claim.amount
        if award < claim.amount:  # somebody cut: no later class gets anything
            assert all(
                a == 0 for c, a in zip(claims, result.awards, strict=True) if c.priority > claim.priority
            )


@given(
    budgets,
    st.dictionaries(st.text("abcdef", min_size=1, max_size=4), amounts, min_size=1, max_size=8),
    st.booleans(),
)
def test_district_shares_never_exceed_the_plan(annual, needs, cap):
    split = district_split(annual, needs, cap_at_need=cap)
    assert sum(split.shares.values()) + split.unallocated == annual or sum(needs.values()) == 0
    if cap:
        assert all(split.shares[d] <= needs[d] for d in needs)


@settings(max_examples=30)
@given(budgets, claim_lists)
def test_first_come_pays_whole_claims_only_and_never_more_than_the_money(available, claims):
    result = first_come(available, claims)
    assert result.spent == sum(c.amount for c in result.paid) <= available
    assert len(result.paid) + len(result.not_fitting) == len(claims)


def test_no_float_anywhere_in_the_budget_core():
    for module in (rationing, allocation):
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), module.__name__
            assert not (isinstance(node, ast.Name) and node.id == "float"), module.__name__
            assert not isinstance(node, ast.Div), f"true division in {module.__name__}"
