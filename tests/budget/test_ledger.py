"""The budget ledger: policies, seed scenarios, queries and idempotent replays."""

from __future__ import annotations

import datetime as dt

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.ids import decision_id
from dopomoga.rules.engine import Engine
from tests.budget.conftest import allocation, close, entitlement, uah
from tests.factories import application

BUS = "zaporizhzhia.test-bus-carriers"
LATE = "zaporizhzhia.test-late-refused"
PRIORITY = "zaporizhzhia.test-priority"
VISUAL = "zaporizhzhia.test-visual"
REPAIR = "zaporizhzhia.test-capital-repair"
CENT = "zhytomyr.centenarians"


def test_carriers_are_reserved_on_arrival_and_prorated_exactly_at_close(ledger, budget_catalog):
    # A5-08 through the ledger: 100 000 a month among 80 000 / 40 000 / 30 000.
    ledger.apply(allocation(BUS, 2021, uah("1200000")))
    for name, amount in (("A", "80000"), ("B", "40000"), ("C", "30000")):
        [pending] = ledger.submit(entitlement(budget_catalog, BUS, f"carrier-{name}", uah(amount), "2021-03"))
        assert pending.status == "pending" and not pending.final and pending.payout_kop == 0
    status = ledger.status(BUS, "2021-03")
    assert status.reserved_kop == uah("150000") and status.need_kop == uah("150000")
    assert status.available_kop == uah("300000")  # Jan-Mar carry over, nothing spent yet
    decisions = ledger.apply(close(BUS, "2021-01"))
    assert decisions == []
    ledger.apply(close(BUS, "2021-02"))
    settled = {d.application_id: d for d in ledger.apply(close(BUS, "2021-03"))}
    # Jan and Feb were unspent, so the March pool is 300 000: everyone is paid in full.
    assert {k: d.payout_kop for k, d in settled.items()} == {
        "carrier-A": uah("80000"),
        "carrier-B": uah("40000"),
        "carrier-C": uah("30000"),
    }
    assert all(d.status == "paid" and d.final and d.coefficient == "1" for d in settled.values())


def test_a5_08_prorates_within_the_monthly_allocation(ledger, budget_catalog):
    ledger.apply(allocation(BUS, 2021, uah("100000"), kind="explicit", months={"2021-01": uah("100000")}))
    for name, amount in (("A", "80000"), ("B", "40000"), ("C", "30000")):
        ledger.submit(entitlement(budget_catalog, BUS, f"carrier-{name}", uah(amount), "2021-01"))
    settled = {d.application_id: d for d in ledger.apply(close(BUS, "2021-01"))}
    assert [settled[k].payout_kop for k in ("carrier-A", "carrier-B", "carrier-C")] == [
        uah("53333.33"),
        uah("26666.67"),
        uah("20000.00"),
    ]
    assert {d.status for d in settled.values()} == {"prorated"}
    assert {d.coefficient for d in settled.values()} == {"2/3"}
    assert (
        "2/3" in settled["carrier-A"].explanation_uk
        and "53\u00a0333,33\u00a0грн" in settled["carrier-A"].explanation_uk
    )
    assert "пропорційно наданим розрахункам" in settled["carrier-A"].explanation_uk
    status = ledger.status(BUS, "2021-01")
    assert status.closed and status.coefficient == "2/3" and status.paid_kop == uah("100000")
    assert status.available_kop == 0
    assert [p.application_id for p in ledger.final_payouts(BUS, "2021-01")] == [
        "carrier-A",
        "carrier-B",
        "carrier-C",
    ]


def test_t19_july_children_are_split_53_by_219_37_and_52_by_219_36(ledger, budget_catalog):
    ledger.apply(allocation(BUS, 2023, uah("23033.33"), kind="explicit", months={"2023-07": uah("23033.33")}))
    for i in range(105):
        ledger.submit(entitlement(budget_catalog, BUS, f"child-{i:03d}", uah("1416.50"), "2023-07"))
    settled = ledger.apply(close(BUS, "2023-07"))
    payouts = sorted(d.payout_kop for d in settled)
    assert payouts.count(uah("219.37")) == 53 and payouts.count(uah("219.36")) == 52
    assert sum(payouts) == uah("23033.33")


def test_claims_after_their_month_closed_go_to_the_next_open_month_or_are_refused(ledger, budget_catalog):
    ledger.apply(allocation(BUS, 2021, uah("1200")))
    ledger.apply(close(BUS, "2021-04"))
    [late] = ledger.submit(entitlement(budget_catalog, BUS, "late-1", 500, "2021-04"))
    assert late.status == "pending" and late.period == "2021-05"
    ledger.apply(allocation(LATE, 2021, uah("1200")))
    ledger.apply(close(LATE, "2021-04"))
    [refused] = ledger.submit(entitlement(budget_catalog, LATE, "late-2", 500, "2021-04"))
    assert refused.status == "refused" and refused.final and refused.reason_code == "period_closed"


def test_priority_classes_are_paid_first_and_the_short_class_is_prorated(ledger, budget_catalog):
    ledger.apply(allocation(PRIORITY, 2023, 1000, kind="explicit", months={"2023-05": 1000}))
    rows = [("g1-a", 400, 1), ("g1-b", 200, 1), ("g2-a", 600, 2), ("g2-b", 200, 2)]
    for app_id, amount, group in rows:
        ent = entitlement(
            budget_catalog,
            PRIORITY,
            app_id,
            amount,
            "2023-05",
            facts={"claim_kop": amount, "disability_group": group},
        )
        ledger.submit(ent)
    settled = {d.application_id: d for d in ledger.apply(close(PRIORITY, "2023-05"))}
    assert {k: d.payout_kop for k, d in settled.items()} == {
        "g1-a": 400,
        "g1-b": 200,
        "g2-a": 300,
        "g2-b": 100,
    }
    assert settled["g1-a"].status == "paid" and settled["g2-a"].coefficient == "1/2"


def test_the_88th_applicant_is_refused_when_391_500_is_left(ledger, budget_catalog):
    # T13: an allocation with exactly 87 x 4 500 left for July.
    ledger.apply(allocation(VISUAL, 2023, uah("391500"), kind="explicit", months={"2023-07": uah("391500")}))
    results = [
        ledger.submit(entitlement(budget_catalog, VISUAL, f"vis-{i:03d}", uah("4500"), "2023-07"))[0]
        for i in range(1, 89)
    ]
    assert all(d.status == "paid" and d.final for d in results[:87])
    assert (
        results[87].status == "refused"
        and results[87].reason_code == "budget_exhausted"
        and results[87].final
    )
    assert ledger.status(VISUAL, "2023-07").available_kop == 0


def test_centenarians_a_and_b_are_deferred_in_january_and_paid_in_february_and_march(ledger, budget_catalog):
    # T07 with the real engine and the real program.
    engine = Engine(budget_catalog)
    ledger.apply(allocation(CENT, 2023, uah("110000")))
    a = engine.decide(
        application(
            CENT,
            {"resident_of_community": True},
            submitted_on="2023-01-10",
            birth_date="1922-05-01",
            person="A",
        )
    )
    b = engine.decide(
        application(
            CENT,
            {"resident_of_community": True},
            submitted_on="2023-01-20",
            birth_date="1921-02-02",
            person="B",
        )
    )
    [da] = ledger.submit(a)
    [db] = ledger.submit(b)
    assert (da.status, db.status) == ("deferred", "deferred")
    assert da.reason_code == "budget_exhausted" and not da.final
    assert "9\u00a0166,67\u00a0грн" in da.explanation_uk
    february = {d.application_id: d for d in ledger.apply(close(CENT, "2023-01"))}
    assert february[a.application_id].status == "paid" and february[a.application_id].period == "2023-02"
    assert february[b.application_id].status == "deferred" and february[b.application_id].period == "2023-02"
    march = ledger.apply(close(CENT, "2023-02"))
    assert [(d.application_id, d.status, d.period) for d in march] == [(b.application_id, "paid", "2023-03")]
    # The operator API can show the entitlement behind the payout.
    assert ledger.entitlement(a.application_id) == a
    assert ledger.payout(b.application_id).payout_kop == uah("10000")
    assert ledger.payout(b.application_id).decision_id == decision_id("payout", b.application_id)


def test_an_ineligible_entitlement_is_refused_at_once_with_its_own_explanation(ledger, budget_catalog):
    ent = entitlement(budget_catalog, CENT, "too-young", 0, "2023-04", eligible=False)
    [decision] = ledger.submit(ent)
    assert decision.status == "refused" and decision.final and decision.reason_code == "ineligible"
    assert decision.payout_kop == 0 and decision.explanation_uk == ent.explanation_uk


def test_a_mid_year_amendment_releases_deferred_claims_in_arrival_order(ledger, budget_catalog):
    # T18: the year's money is spent; an amendment raises it and the queue moves FIFO.
    ledger.apply(allocation(CENT, 2023, uah("10000"), kind="explicit", months={"2023-01": uah("10000")}))
    first = ledger.submit(entitlement(budget_catalog, CENT, "c-1", uah("10000"), "2023-07"))
    assert first[0].status == "paid"
    waiting = [
        ledger.submit(entitlement(budget_catalog, CENT, f"c-{i}", uah("10000"), "2023-07"))[0]
        for i in (2, 3, 4)
    ]
    assert [d.status for d in waiting] == ["deferred"] * 3
    amended = allocation(
        CENT,
        2023,
        uah("30000"),
        kind="explicit",
        months={"2023-01": uah("10000"), "2023-07": uah("20000")},
        amendment="zmina-1",
        at=dt.datetime(2023, 7, 20, tzinfo=dt.UTC),
    )
    released = ledger.apply(amended)
    assert [(d.application_id, d.status) for d in released] == [("c-2", "paid"), ("c-3", "paid")]
    assert all(d.occurred_at == amended.occurred_at for d in released)
    assert ledger.payout("c-4").status == "deferred"
    assert ledger.payout("c-1").payout_kop == uah("10000")  # already paid stays paid


def test_a_december_only_plan_defers_an_april_request_until_december(ledger, budget_catalog):
    # T08
    ledger.apply(allocation(CENT, 2024, uah("50000"), kind="december"))
    [april] = ledger.submit(entitlement(budget_catalog, CENT, "pump-1", uah("20000"), "2024-04"))
    assert april.status == "deferred"
    decisions = []
    for month in range(4, 12):
        decisions += ledger.apply(close(CENT, f"2024-{month:02d}"))
    assert decisions[-1].status == "paid" and decisions[-1].period == "2024-12"
    [direct] = ledger.submit(entitlement(budget_catalog, CENT, "pump-2", uah("20000"), "2024-12"))
    assert direct.status == "paid"


def test_closing_december_carries_what_is_still_deferred_as_a_payable(ledger, budget_catalog):
    # Issue 13 changed this (was: refused with budget_year_ended): the sum owed on 31 December
    # is a payable of the next year («кредиторська заборгованість», 002 L984, L1237-1238).
    ledger.apply(allocation(CENT, 2023, uah("5000"), kind="december"))
    [d] = ledger.submit(entitlement(budget_catalog, CENT, "late-year", uah("10000"), "2023-12"))
    assert d.status == "deferred"
    [end] = ledger.apply(close(CENT, "2023-12"))
    assert end.status == "deferred" and not end.final and end.reason_code == "payable"
    assert end.period == "2024-01" and "кредиторськ" in end.explanation_uk


def test_a_program_without_appropriation_defers_or_refuses_with_no_appropriation(ledger, budget_catalog):
    # T20
    [deferred] = ledger.submit(entitlement(budget_catalog, CENT, "noapp-1", uah("10000"), "2023-03"))
    assert deferred.status == "deferred" and deferred.reason_code == "no_appropriation"
    ledger.apply(allocation(VISUAL, 2023, 0))
    [refused] = ledger.submit(entitlement(budget_catalog, VISUAL, "noapp-2", uah("4500"), "2023-03"))
    assert refused.status == "refused" and refused.reason_code == "no_appropriation"
    ledger.submit(entitlement(budget_catalog, BUS, "noapp-3", uah("100"), "2023-03"))
    [settled] = ledger.apply(close(BUS, "2023-03"))
    assert settled.status == "refused" and settled.reason_code == "no_appropriation"


def test_district_allocations_are_checked_first_come_within_each_district(ledger, budget_catalog):
    ledger.apply(allocation(REPAIR, 2021, uah("40000"), district="Дніпровський"))
    ledger.apply(allocation(REPAIR, 2021, uah("0"), district="Заводський"))
    [ok] = ledger.submit(
        entitlement(budget_catalog, REPAIR, "rep-1", uah("3000"), "2021-09", district="Дніпровський")
    )
    [wait] = ledger.submit(
        entitlement(budget_catalog, REPAIR, "rep-2", uah("3000"), "2021-09", district="Заводський")
    )
    assert ok.status == "paid" and ok.district == "Дніпровський"
    assert wait.status == "deferred" and wait.district == "Заводський"
    assert ledger.status(REPAIR, "2021-09", "Дніпровський").paid_kop == uah("3000")


def test_the_need_report_shows_need_allocation_paid_and_shortfall_per_month(ledger, budget_catalog):
    ledger.apply(allocation(BUS, 2021, uah("100000"), kind="explicit", months={"2021-01": uah("100000")}))
    for name, amount in (("A", "80000"), ("B", "40000"), ("C", "30000")):
        ledger.submit(entitlement(budget_catalog, BUS, f"carrier-{name}", uah(amount), "2021-01"))
    ledger.apply(close(BUS, "2021-01"))
    rows = ledger.need_report(2021, BUS)
    assert len(rows) == 12
    january = rows[0]
    assert (january.need_kop, january.allocation_kop, january.paid_kop) == (
        uah("150000"),
        uah("100000"),
        uah("100000"),
    )
    assert january.shortfall_kop == uah("50000") and january.unpaid_kop == uah("50000")
    assert january.coefficient == "2/3" and january.closed


def test_decisions_carry_payee_payment_rules_and_the_inputs_time(ledger, budget_catalog):
    ent = entitlement(budget_catalog, VISUAL, "copy-1", 100, "2023-02")
    ledger.apply(allocation(VISUAL, 2023, uah("1200")))
    [d] = ledger.submit(ent)
    assert d.payee == ent.application.applicant and d.payment == ent.application.payment
    assert d.rules == ent.rules and d.occurred_at == ent.occurred_at
    assert d.entitlement_decision_id == ent.decision_id
    assert "захід 1.1.7" in d.explanation_uk


def test_a_file_database_survives_reopening(tmp_path, budget_catalog):
    url = f"sqlite:///{tmp_path / 'var' / 'budget.db'}"
    first = BudgetLedger(url, budget_catalog)
    first.apply(allocation(VISUAL, 2023, uah("1200")))
    [d] = first.submit(entitlement(budget_catalog, VISUAL, "persist-1", 100, "2023-02"))
    first.close()
    again = BudgetLedger(url, budget_catalog)
    assert again.payout("persist-1") == d
    assert again.submit(entitlement(budget_catalog, VISUAL, "persist-1", 100, "2023-02")) == [d]


def test_a_publisher_gets_each_decision_with_the_json_the_ledger_stored_also_on_replay(ledger, budget_catalog):
    ledger.apply(allocation(BUS, 2021, uah("1200000")))
    claims = [entitlement(budget_catalog, BUS, f"carrier-{n}", uah("1000"), "2021-03") for n in "AB"]
    first = ledger.submit_many(claims, encoded=True)
    again = ledger.submit_many(claims, encoded=True)  # at-least-once: the same input twice
    for decided, replayed in zip(first, again, strict=True):
        [(decision, body)] = decided
        assert body == decision.model_dump_json()
        assert replayed == decided  # same model, same bytes
    [(_, stored)] = ledger.submit(claims[0], encoded=True)
    assert stored == first[0][0].body
    assert [d.model_dump_json() for d in ledger.submit(claims[1])] == [first[1][0].body]
