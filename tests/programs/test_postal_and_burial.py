"""Zhytomyr measure 1.1.14 (000 L33): the postal cost of paying targeted assistance at the post office,
a channel cost paid to the postal operator by its monthly register at a tariff the seeds do not give
(an inferred dated parameter), charged to the measure's own budget line; and measure 1.1.10 (000 L30):
burial assistance whose categories and amount come from the assignment decision."""

from __future__ import annotations

import datetime as dt

from dopomoga.budget.commands import confirmations_of_inferred
from dopomoga.budget.ledger import BudgetLedger
from dopomoga.budget.lines import BudgetLines
from dopomoga.explain_uk import internal_markers
from tests.budget.conftest import allocation
from tests.factories import application

POSTAL = "zhytomyr.postal-delivery-costs"
BURIAL = "zhytomyr.burial-assistance"


def line(program: str, delivered: int, *, rural: bool = False, payments: int = 1) -> dict:
    return {"program": program, "payments": payments, "delivered_kop": delivered, "rural": rural}


def postal(rows: list[dict], printed: int, *, period: str = "2023-04", id_kind: str = "edrpou"):
    return application(POSTAL, {"register": rows, "printed_total_kop": printed}, submitted_on="2023-05-05",
                       period=period, id_kind=id_kind, channel="treasury", name="АТ «Укрпошта»")


def steps(decision) -> dict:
    return {s.step: s.result for s in decision.trace}


def test_the_postal_operator_is_paid_the_city_and_village_tariffs_on_the_assistance_it_delivered(engine):
    # 20 000,00 × 1,30 % = 260,00 in the city; 500,00 × 2,65 % = 13,25 in a village.
    rows = [line("zhytomyr.centenarians", 20_000_00, payments=2), line("zhytomyr.honoured-donors", 500_00, rural=True)]
    decision = engine.decide(postal(rows, printed=273_25))
    assert decision.eligible and decision.amount_kop == 273_25
    assert decision.operator.flags == []
    assert "1,30 %" in decision.explanation_uk and "2,65 %" in decision.explanation_uk
    assert "захід 1.1.14" in decision.explanation_uk
    assert internal_markers(decision.explanation_uk) == []


def test_each_postal_fee_row_is_rounded_half_up_to_the_kopiyka_before_the_rows_are_added(engine):
    # Per row: 1 234,50 × 1,30 % = 16,0485 -> 16,05 (twice); 0,50 × 1,30 % = 0,0065 -> 0,01 (three times):
    # 32,10 + 0,03 = 32,13. Rounding the unrounded sum once (32,1165) would give 32,12.
    rows = [line("zhytomyr.triplets", 1_234_50), line("zhytomyr.triplets", 1_234_50),
            line("zhytomyr.centenarians", 50), line("zhytomyr.centenarians", 50), line("zhytomyr.centenarians", 50)]
    decision = engine.decide(postal(rows, printed=32_13))
    assert decision.amount_kop == 32_13


def test_the_tariff_before_april_2021_is_the_earlier_one(engine):
    decision = engine.decide(application(POSTAL, {"register": [line("zhytomyr.centenarians", 10_000_00)],
                                                  "printed_total_kop": 115_00},
                                         submitted_on="2021-04-05", period="2021-03", id_kind="edrpou",
                                         channel="treasury", name="АТ «Укрпошта»"))
    assert decision.eligible and decision.amount_kop == 115_00  # 10 000,00 × 1,15 %


def test_assistance_outside_the_targeted_assistance_task_or_an_empty_row_is_not_charged_and_says_why(engine):
    rows = [line("zhytomyr.centenarians", 10_000_00), line("zhytomyr.children-of-fallen", 1_136_00),
            line("zhytomyr.triplets", 0, payments=0)]
    decision = engine.decide(postal(rows, printed=145_00))
    assert decision.eligible and decision.amount_kop == 130_00
    out = steps(decision)
    assert out["item:2:targeted_assistance"].startswith("False — виплата не є адресною соціальною допомогою завдання 1.1")
    assert out["item:3:delivered"].startswith("False — у рядку немає виплаченої одержувачам суми")
    assert [f.id for f in decision.operator.flags] == ["printed_total_matches"]


def test_a_postal_register_from_a_person_or_with_no_rows_is_refused(engine):
    person = engine.decide(postal([line("zhytomyr.centenarians", 100_00)], 1_30, id_kind="rnokpp"))
    assert [c.id for c in person.conditions if not c.passed] == ["operator_is_an_organisation"]
    empty = engine.decide(postal([], 0, period="2023-05"))
    assert [c.id for c in empty.conditions if not c.passed] == ["register_not_empty"]


def test_the_postal_fee_waits_for_the_tariff_to_be_confirmed_and_is_charged_to_measure_1_1_14(catalog, engine):
    decision = engine.decide(postal([line("zhytomyr.centenarians", 10_000_00)], 130_00))
    assert sorted(decision.operator.pending_confirmation) == ["postal_tariff_rural_bp", "postal_tariff_urban_bp"]
    lines = BudgetLines.load(catalog.root)
    assert lines.line_of(POSTAL).code == "1.1.14"
    ledger = BudgetLedger("sqlite://", catalog)
    ledger.apply(allocation(POSTAL, 2023, 15_000_00))  # 1.1.14: 15,0 тис. грн with amendments (000 L33)
    [held] = ledger.submit(decision)
    assert held.status == "held" and held.reason_code == "awaiting_confirmation"
    confirmations = confirmations_of_inferred(catalog.get(POSTAL), 2023, document="договір з АТ «Укрпошта»",
                                              confirmed_by="head-of-department",
                                              occurred_at=dt.datetime(2023, 5, 10, 9, tzinfo=dt.UTC))
    released = [d for c in confirmations for d in ledger.apply(c)]
    assert [(d.status, d.payout_kop) for d in released] == [("paid", 130_00)]


BURIAL_FACTS = {"deceased_id": "АЗ-1/2023", "deceased_registered_in_community": True, "applicant_buried": True,
                "deceased_in_programme_category": True, "assigned_amount": 13_856_63}


def test_burial_assistance_pays_the_amount_of_the_assignment_decision_to_the_person_who_buried(engine):
    decision = engine.decide(application(BURIAL, BURIAL_FACTS, submitted_on="2023-05-05"))
    assert decision.eligible and decision.amount_kop == 13_856_63
    assert "захід 1.1.10" in decision.explanation_uk and decision.operator.pending_confirmation == []


def test_burial_assistance_is_refused_without_an_assigned_amount_or_to_someone_who_did_not_bury(engine):
    none = engine.decide(application(BURIAL, {**BURIAL_FACTS, "assigned_amount": 0}, submitted_on="2023-05-05"))
    assert [c.id for c in none.conditions if not c.passed] == ["amount_assigned"]
    other = engine.decide(application(BURIAL, {**BURIAL_FACTS, "applicant_buried": False}, submitted_on="2023-05-05"))
    assert [c.id for c in other.conditions if not c.passed] == ["applicant_buried"]


def test_a_second_burial_assistance_for_the_same_deceased_is_refused(engine):
    first = engine.decide(application(BURIAL, BURIAL_FACTS, submitted_on="2023-05-05", person=1))
    assert first.eligible
    second = engine.decide(application(BURIAL, BURIAL_FACTS, submitted_on="2023-05-20", person=2))
    assert not second.eligible and "вже призначено" in second.explanation_uk


def test_a_deceased_already_given_burial_help_under_measure_1_1_11_gets_none_under_1_1_10_and_vice_versa(engine):
    executor = {"deceased_id": "АЗ-7/2023", "deceased_registered_in_community": True, "applicant_role": "will_executor",
                "deceased_in_programme_category": True, "assigned_amount": 2_500_00}
    assert engine.decide(application("zhytomyr.burial-executor", executor, submitted_on="2023-05-05", person=1)).eligible
    second = engine.decide(application(BURIAL, {**BURIAL_FACTS, "deceased_id": "АЗ-7/2023"}, submitted_on="2023-05-09",
                                       person=2))
    assert [c.id for c in second.conditions if not c.passed] == ["frequency_limit"]
    assert "і за заходом 1.1.11" in second.explanation_uk
    # the other way round, for another deceased
    assert engine.decide(application(BURIAL, {**BURIAL_FACTS, "deceased_id": "АЗ-8/2023"}, submitted_on="2023-05-05",
                                     person=3)).eligible
    third = engine.decide(application("zhytomyr.burial-executor", {**executor, "deceased_id": "АЗ-8/2023"},
                                      submitted_on="2023-05-09", person=4))
    assert [c.id for c in third.conditions if not c.passed] == ["frequency_limit"]
