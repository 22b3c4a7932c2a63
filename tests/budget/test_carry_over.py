"""Carry-over of unspent monthly money is a per-program setting (default: carry over within the year)."""

from dopomoga.budget.allocation import available_in
from tests.budget.conftest import allocation, close, entitlement

EVEN_110K = [916_667] * 8 + [916_666] * 4  # 110 000.00 UAH in kopiyky, split evenly


def test_without_carry_over_a_month_offers_only_its_own_allocation():
    spent = [0] * 12
    assert available_in(2, EVEN_110K, spent) == 1_833_334
    assert available_in(2, EVEN_110K, spent, carry_over=False) == 916_667
    assert available_in(2, EVEN_110K, [0, 900_000] + [0] * 10, carry_over=False) == 16_667


def test_a_claim_larger_than_any_single_month_is_paid_in_february_with_carry_over_and_never_without(
    ledger, budget_catalog
):
    for program in ("zhytomyr.centenarians", "zaporizhzhia.test-no-carry"):
        ledger.apply(allocation(program, 2023, 11_000_000))
    carried = "zhytomyr.centenarians"
    strict = "zaporizhzhia.test-no-carry"
    decisions = {}
    for program in (carried, strict):
        facts = {"resident_of_community": True} if program == carried else None
        claim = entitlement(budget_catalog, program, f"{program}-a", 1_000_000, "2023-01", facts=facts)
        decisions[program] = [d.status for d in ledger.submit(claim)]
        for month in range(1, 13):
            decisions[program] += [d.status for d in ledger.apply(close(program, f"2023-{month:02d}"))]
    assert decisions[carried][:2] == ["deferred", "paid"]  # February: 18 333.34 ≥ 10 000
    assert decisions[strict][0] == "deferred" and "paid" not in decisions[strict]
    # Issue 13 changed this (was: refused at December's close). Money never carries across years,
    # but what is owed does: the claim becomes a payable of 2024, not a silent refusal.
    assert decisions[strict][-1] == "deferred" and "refused" not in decisions[strict]
    payable = ledger.payout(f"{strict}-a")
    assert payable.reason_code == "payable" and payable.period == "2024-01"
