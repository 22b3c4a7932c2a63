from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dopomoga.money import (
    floor_div,
    format_uah,
    fraction_str,
    kop_to_decimal_str,
    largest_remainder,
    round_half_up,
    uah_to_kop,
)


def test_round_half_up_rounds_halves_away_from_zero():
    assert round_half_up(5, 2) == 3
    assert round_half_up(-5, 2) == -3
    assert round_half_up(4, 3) == 1
    assert round_half_up(2 * 4_000_000 * 14, 2 * 21) == 2_666_667  # 40 000 UAH × 14/21 m² = 26 666.67


def test_floor_div_never_rounds_up():
    assert floor_div(7, 2) == 3
    assert floor_div(-7, 2) == -4


def test_hryvnia_text_becomes_exact_kopiyky_and_a_third_decimal_is_refused():
    assert uah_to_kop("7907.50") == 790_750
    assert uah_to_kop("10 000") == 1_000_000
    assert uah_to_kop("2736,25") == 273_625
    with pytest.raises(ValueError, match="more than two decimals"):
        uah_to_kop("1.005")
    with pytest.raises(ValueError):
        uah_to_kop("десять")


def test_amounts_are_shown_the_ukrainian_way():
    assert format_uah(2_666_667) == "26\u00a0666,67\u00a0грн"
    assert kop_to_decimal_str(2_666_667) == "26666.67"
    assert kop_to_decimal_str(5) == "0.05"


def test_the_july_2023_case_splits_23_033_33_uah_as_53_times_219_37_and_52_times_219_36():
    parts = largest_remainder(2_303_333, [141_650] * 105, [f"child-{i:03d}" for i in range(105)])
    assert sum(parts) == 2_303_333
    assert sorted(Counter_of(parts).items()) == [(21_936, 52), (21_937, 53)]


def Counter_of(values):
    from collections import Counter

    return Counter(values)


def test_equal_remainders_go_to_the_smallest_keys_whatever_the_input_order():
    keys = ["carrier-b", "carrier-a", "carrier-c"]
    parts = largest_remainder(10_000_000, [5_000_000] * 3, keys)
    assert dict(zip(keys, parts, strict=True)) == {"carrier-a": 3_333_334, "carrier-b": 3_333_333, "carrier-c": 3_333_333}


@given(
    st.integers(min_value=0, max_value=10**9),
    st.lists(st.integers(min_value=0, max_value=10**8), min_size=1, max_size=40),
)
def test_largest_remainder_adds_up_exactly_and_stays_within_one_kopiyka_of_each_quota(total, weights):
    if sum(weights) == 0:
        return
    keys = [f"k{i}" for i in range(len(weights))]
    parts = largest_remainder(total, weights, keys)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        quota = Fraction(total * weight, sum(weights))
        assert abs(part - quota) < 1
        assert isinstance(part, int)


def test_coefficients_are_exact_fractions_in_lowest_terms():
    assert fraction_str(Fraction(2, 3)) == "2/3"
    assert fraction_str(Fraction(4, 4)) == "1"
