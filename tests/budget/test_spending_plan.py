"""Issue 13: spending-plan semantics that match the text, and arrears carried across years.

- A claim that does not fit this month's plan waits for the month the money is planned in; a
  program that refuses when short (1.1.7: «після вичерпання обсягу») refuses only when its
  YEAR's allocation has no room.
- What is owed on 31 December is a payable of the next year («кредиторська заборгованість»,
  002 L984, L1237-1238), paid first, before new claims, when that year's money arrives.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dopomoga.budget.allocation import cumulative
from dopomoga.budget.commands import confirmations_of_inferred
from dopomoga.budget.ledger import BudgetLedger
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from tests.budget.conftest import allocation, close, entitlement, uah
from tests.factories import application

VISUAL_117 = "zhytomyr.visual-disability-utilities"
CENT = "zhytomyr.centenarians"
TEST_VISUAL = "zaporizhzhia.test-visual"  # first_come, when_short: refuse
ANNUAL_117 = uah("1431000")  # seed 000 L28, column 7: annual plan 1 431,0 thousand UAH


@pytest.fixture(scope="module")
def real_catalog() -> Catalog:
    return Catalog.load()


def confirm_inferred(ledger: BudgetLedger, catalog: Catalog) -> None:
    """The department confirms the inferred 4 500 UAH (seed 000 L28) before paying it."""
    for command in confirmations_of_inferred(catalog.get(VISUAL_117), 2023, document="рішення ЖМР № 35 зі змінами",
                                             confirmed_by="head-of-department",
                                             occurred_at=dt.datetime(2023, 1, 1, 7, tzinfo=dt.UTC)):
        ledger.apply(command)


def applicants_117(engine: Engine, months: range = range(1, 7), n: int = 231) -> dict[int, list]:
    """231 eligible applicants (seed 000 L28: H1 2023), spread evenly over ``months``."""
    by_month: dict[int, list] = {m: [] for m in months}
    for i in range(n):
        month = months[i * len(months) // n]
        app = application(
            VISUAL_117,
            {"resident_of_community": True, "disability_group": "1" if i % 3 else "2", "disability_by_vision": True},
            submitted_on=f"2023-{month:02d}-{1 + i % 27:02d}",
            application_id=f"zt-117-{i:03d}",
            person=f"117-{i}",
        )
        decided = engine.decide(app)
        assert decided.eligible and decided.amount_kop == uah("4500")
        by_month[month].append(decided)
    return by_month


def run_year(ledger: BudgetLedger, by_month: dict[int, list], amend_after: dict[int, object] | None = None) -> list:
    decisions = []
    for month in range(1, 13):
        for ent in by_month.get(month, []):
            decisions += ledger.submit(ent)
        decisions += ledger.apply(close(VISUAL_117, f"2023-{month:02d}"))
        if amend_after and month in amend_after:
            decisions += ledger.apply(amend_after[month])
    return decisions


def final_state(ledger: BudgetLedger, ids: list[str]) -> dict[str, str]:
    return {i: ledger.payout(i).status for i in ids}


def test_zhytomyr_1_1_7_pays_all_231_with_the_seed_annual_plan_and_an_even_monthly_plan(real_catalog):
    # Was (issue 13): 72 of 231 refused, the first in January, with 92 % of the year unspent.
    ledger = BudgetLedger("sqlite://", real_catalog)
    by_month = applicants_117(Engine(real_catalog))
    ledger.apply(allocation(VISUAL_117, 2023, ANNUAL_117))  # even: 119 250,00 a month
    confirm_inferred(ledger, real_catalog)  # 4 500 UAH is worked out from the report
    decisions = run_year(ledger, by_month)
    ids = [e.application_id for month in by_month.values() for e in month]
    assert not [d for d in decisions if d.status == "refused"]
    assert set(final_state(ledger, ids).values()) == {"paid"}
    assert sum(d.payout_kop for d in ledger.final_payouts(VISUAL_117)) == uah("1039500.00")
    deferred = [d for d in decisions if d.status == "deferred"]
    assert deferred and all("заплановано" in d.explanation_uk or d.period != "2023-01" for d in deferred)
    # paid ≤ cumulative plan in every month
    rows = ledger.need_report(2023, VISUAL_117)
    paid = cumulative([r.paid_kop for r in rows])
    assert all(p <= c for p, c in zip(paid, cumulative([r.allocation_kop for r in rows]), strict=True))


def test_zhytomyr_1_1_7_with_a_plan_that_front_loads_h1_pays_all_231_by_june_as_the_seed_reports(real_catalog):
    ledger = BudgetLedger("sqlite://", real_catalog)
    by_month = applicants_117(Engine(real_catalog))
    months = {f"2023-{m:02d}": uah("173250") for m in range(1, 7)} | {
        f"2023-{m:02d}": uah("65250") for m in range(7, 13)
    }
    assert sum(months.values()) == ANNUAL_117
    ledger.apply(allocation(VISUAL_117, 2023, ANNUAL_117, kind="explicit", months=months))
    confirm_inferred(ledger, real_catalog)  # 4 500 UAH is worked out from the report
    for month in range(1, 7):
        for ent in by_month[month]:
            ledger.submit(ent)
        ledger.apply(close(VISUAL_117, f"2023-{month:02d}"))
    h1 = [d for d in ledger.final_payouts(VISUAL_117) if d.period <= "2023-06"]
    assert len(h1) == 231 and sum(d.payout_kop for d in h1) == uah("1039500.00")  # 000 L28: 1 039,5


def test_zhytomyr_1_1_7_with_the_monthly_plan_halved_mid_year_defers_and_never_refuses_while_money_remains(real_catalog):
    ledger = BudgetLedger("sqlite://", real_catalog)
    by_month = applicants_117(Engine(real_catalog), months=range(4, 10))  # April-September
    ledger.apply(allocation(VISUAL_117, 2023, ANNUAL_117))
    confirm_inferred(ledger, real_catalog)  # 4 500 UAH is worked out from the report
    even = uah("119250")
    halved = {f"2023-{m:02d}": even for m in range(1, 7)} | {f"2023-{m:02d}": even // 2 for m in range(7, 13)}
    amendment = allocation(
        VISUAL_117, 2023, sum(halved.values()), kind="explicit", months=halved, amendment="zmina-2023-06",
        at=dt.datetime(2023, 6, 30, 18, tzinfo=dt.UTC),
    )
    decisions = run_year(ledger, by_month, {6: amendment})
    ids = [e.application_id for month in by_month.values() for e in month]
    assert sum(halved.values()) >= 231 * uah("4500")  # the halved year still has room for everybody
    assert not [d for d in decisions if d.status == "refused"]
    assert any(d.status == "deferred" and d.period >= "2023-07" for d in decisions)
    assert set(final_state(ledger, ids).values()) == {"paid"}
    assert sum(d.payout_kop for d in ledger.final_payouts(VISUAL_117)) == uah("1039500.00")


def test_a_refusing_program_still_refuses_when_its_year_has_no_room(ledger, budget_catalog):
    ledger.apply(allocation(TEST_VISUAL, 2023, uah("9000")))  # 750,00 a month
    [first] = ledger.submit(entitlement(budget_catalog, TEST_VISUAL, "y-1", uah("4500"), "2023-01"))
    [second] = ledger.submit(entitlement(budget_catalog, TEST_VISUAL, "y-2", uah("4500"), "2023-01"))
    [third] = ledger.submit(entitlement(budget_catalog, TEST_VISUAL, "y-3", uah("4500"), "2023-01"))
    assert (first.status, second.status) == ("deferred", "deferred")  # January's plan is short; the year is not
    assert first.reason_code == "budget_exhausted" and "червні 2023" in first.explanation_uk
    assert third.status == "refused" and third.reason_code == "budget_exhausted"  # 9 000 is spoken for
    paid = []
    for month in range(1, 13):
        paid += [d for d in ledger.apply(close(TEST_VISUAL, f"2023-{month:02d}")) if d.status == "paid"]
    assert [(d.application_id, d.period) for d in paid] == [("y-1", "2023-06"), ("y-2", "2023-12")]


def test_claims_owed_on_31_december_are_payables_paid_first_in_january_to_the_kopiyka(ledger, budget_catalog):
    ledger.apply(allocation(CENT, 2023, uah("25000.50"), kind="december"))
    owed = [("d-1", "10000.25"), ("d-2", "10000.25"), ("d-3", "7500.10")]
    for app_id, amount in owed:
        ledger.submit(entitlement(budget_catalog, CENT, app_id, uah(amount), "2023-12"))
    year_end = ledger.apply(close(CENT, "2023-12"))
    # d-1 and d-2 were paid in December (20 000,50 of 25 000,50); d-3 does not fit the 5 000,00 left
    assert [(d.application_id, d.status, d.reason_code, d.period) for d in year_end] == [
        ("d-3", "deferred", "payable", "2024-01")
    ]
    payables = ledger.payables(2024)
    assert [(p.application_id, p.owed_since, p.claimed_kop, p.status) for p in payables] == [
        ("d-3", 2023, uah("7500.10"), "deferred")
    ]
    # A new 2024 claim arrives before the 2024 budget: it queues behind the payable.
    [new] = ledger.submit(entitlement(budget_catalog, CENT, "n-1", uah("5000"), "2024-01"))
    assert new.status == "deferred"
    released = ledger.apply(
        allocation(CENT, 2024, uah("12500.10"), kind="explicit", months={"2024-01": uah("12500.10")})
    )
    assert [(d.application_id, d.status, d.payout_kop) for d in released] == [
        ("d-3", "paid", uah("7500.10")),
        ("n-1", "paid", uah("5000.00")),
    ]
    assert released[0].reason_code == "payable_paid" and "кредиторськ" in released[0].explanation_uk.lower()
    assert ledger.status(CENT, "2024-01").paid_kop == uah("12500.10") and ledger.status(CENT, "2024-01").available_kop == 0
    assert [(p.application_id, p.status, p.paid_kop) for p in ledger.payables(2024)] == [("d-3", "paid", uah("7500.10"))]
    # nothing owed disappeared: every claim is paid
    assert sum(d.payout_kop for d in ledger.final_payouts(CENT)) == uah("32500.60")


def test_payables_go_before_new_claims_even_when_the_new_year_money_came_first(ledger, budget_catalog):
    ledger.apply(allocation(CENT, 2023, uah("100"), kind="december"))
    ledger.apply(allocation(CENT, 2024, uah("150"), kind="explicit", months={"2024-01": uah("150")}))
    ledger.submit(entitlement(budget_catalog, CENT, "old", uah("150"), "2023-12"))
    [new] = ledger.submit(entitlement(budget_catalog, CENT, "new", uah("100"), "2024-01"))
    assert new.status == "paid"  # nothing was owed yet in 2024
    decided = ledger.apply(close(CENT, "2023-12"))
    assert [(d.application_id, d.status, d.reason_code) for d in decided] == [("old", "deferred", "payable")]
    [late] = ledger.submit(entitlement(budget_catalog, CENT, "newer", uah("10"), "2024-01"))
    assert late.status == "deferred"  # the payable is first in the queue
    decided = ledger.apply(allocation(CENT, 2024, uah("300"), kind="explicit", months={"2024-01": uah("300")},
                                      amendment="zmina-1"))
    assert [d.application_id for d in decided] == ["old", "newer"]


AMOUNTS = st.sampled_from([uah("4500"), uah("1000"), uah("2500.55"), uah("9000")])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    annual=st.integers(min_value=0, max_value=uah("60000")),
    claims=st.lists(st.tuples(st.integers(1, 12), AMOUNTS), min_size=1, max_size=25),
    refuse=st.booleans(),
)
def test_property_paid_within_cumulative_plan_and_no_refusal_while_the_year_has_room(budget_catalog, annual, claims, refuse):
    program = TEST_VISUAL if refuse else CENT
    ledger = BudgetLedger("sqlite://", budget_catalog)
    ledger.apply(allocation(program, 2023, annual))
    paid_so_far = 0
    deferred: dict[str, int] = {}
    by_month: dict[int, list[tuple[str, int]]] = {}
    for i, (month, amount) in enumerate(claims):
        by_month.setdefault(month, []).append((f"p-{i:02d}", amount))

    def watch(decisions) -> None:
        nonlocal paid_so_far
        for d in decisions:
            if d.status == "refused":
                # refused only when the year's money (after what is paid and queued) cannot cover it
                assert annual - paid_so_far - sum(deferred.values()) < d.claimed_kop, d
            if d.status == "paid":
                paid_so_far += d.payout_kop
            if d.status == "deferred":
                deferred[d.application_id] = d.claimed_kop
            else:
                deferred.pop(d.application_id, None)

    for month in range(1, 13):
        for app_id, amount in by_month.get(month, []):
            watch(ledger.submit(entitlement(budget_catalog, program, app_id, amount, f"2023-{month:02d}")))
        watch(ledger.apply(close(program, f"2023-{month:02d}")))
    rows = ledger.need_report(2023, program)
    assert all(p <= c for p, c in zip(cumulative([r.paid_kop for r in rows]),
                                      cumulative([r.allocation_kop for r in rows]), strict=True))
    if not refuse:
        assert not [s for s in (ledger.payout(a).status for m in by_month.values() for a, _ in m) if s == "refused"]
        owed = {p.application_id for p in ledger.payables(2024)}
        assert owed == {a for m in by_month.values() for a, _ in m if ledger.payout(a).status == "deferred"}


def test_a_late_claim_after_december_closed_is_a_payable_of_the_next_year_for_a_deferring_program(ledger, budget_catalog):
    ledger.apply(allocation(CENT, 2023, uah("1200")))
    ledger.apply(allocation(CENT, 2024, uah("12000"), kind="explicit", months={"2024-01": uah("12000")}))
    ledger.apply(close(CENT, "2023-12"))
    decided = ledger.submit(entitlement(budget_catalog, CENT, "late-dec", uah("10000"), "2023-12"))
    assert [(d.status, d.reason_code, d.period) for d in decided] == [
        ("deferred", "payable", "2024-01"), ("paid", "payable_paid", "2024-01")]
    # a refusing program still refuses such a claim, with the reason it gives
    ledger.apply(allocation(TEST_VISUAL, 2023, uah("1200")))
    ledger.apply(close(TEST_VISUAL, "2023-12"))
    [refused] = ledger.submit(entitlement(budget_catalog, TEST_VISUAL, "late-dec-2", uah("100"), "2023-12"))
    assert refused.status == "refused" and refused.reason_code == "budget_year_ended"


def test_a_pro_rata_month_still_settles_at_its_close_and_nothing_is_carried(ledger, budget_catalog):
    bus = "zaporizhzhia.test-bus-carriers"
    ledger.apply(allocation(bus, 2021, uah("1000"), kind="december"))
    ledger.submit(entitlement(budget_catalog, bus, "pr-1", uah("3000"), "2021-12"))
    [settled] = ledger.apply(close(bus, "2021-12"))
    assert (settled.status, settled.payout_kop, settled.final) == ("prorated", uah("1000"), True)
    assert ledger.payables(2022) == []
