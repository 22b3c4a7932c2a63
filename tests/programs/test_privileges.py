"""Privileges paid to the provider (issue 14, item 1): a provider's monthly register, a rate per
service within consumption norms for the beneficiary and the family members covered, each row with
its own reason when it does not count, and the provider's printed total flagged, never refused.

Kamianske 002 L259-260 («Родина героя»: extra 50 %), L274-275 (servicemen in the ATO and their
families: housing 100 %, utilities 50 %), L276-278 (volunteer fighters: 50 %); Zhytomyr 000 L80
(measure 13.4.1: 50 % of the exemption from the local budget) and L50 (4.3.1, telecom)."""

from __future__ import annotations

import pytest

from tests.factories import application, rnokpp

KAMIANSKE_UNKNOWN_TERM = [
    "ato-current-repair", "ato-defender-day", "ato-demobilisation", "ato-land-documents", "centenarian-stipend",
    "fallen-ato-family-monthly", "fallen-child-birthday", "fallen-family-current-repair",
    "fallen-family-defender-day", "war-disabled-capital-repair", "ato-servicemen-housing-privilege",
    "volunteer-fighters-housing-privilege", "fallen-family-housing-privilege",
]


def row(category: str, service: str = "housing", *, billed: int = 1_200_00, norm: int = 1_000_00, members: int = 3,
        household: int = 4, resident_field: str = "resident_of_city", resident: bool = True, account: str = "001") -> dict:
    return {"account": account, "beneficiary_id": rnokpp(f"b-{account}"), "category": category, "service": service,
            "billed_kop": billed, "norm_kop": norm, "members_covered": members, "household_size": household,
            resident_field: resident}


def register(program: str, rows: list[dict], printed: int, *, period: str = "2021-05", submitted: str = "2021-06-07",
             id_kind: str = "edrpou"):
    return application(program, {"register": rows, "printed_total_kop": printed}, submitted_on=submitted,
                       period=period, id_kind=id_kind, channel="treasury", name="КП «Житлосервіс»")


def steps(decision) -> dict:
    return {s.step: s.result for s in decision.trace}


ATO = "kamianske.ato-servicemen-housing-privilege"


def test_a_provider_is_paid_100_percent_of_housing_and_50_percent_of_utilities_for_a_serviceman_s_covered_family(engine):
    # 3 of 4 registered people covered; housing billed 1 200 over a 1 000 norm -> 1 000 × 3/4 × 100 % = 750;
    # utilities 800 within a 900 norm -> 800 × 3/4 × 50 % = 300.
    rows = [row("ato_serviceman"), row("ato_serviceman", "utilities", billed=800_00, norm=900_00, account="002")]
    decision = engine.decide(register(ATO, rows, printed=1_050_00))
    assert decision.eligible and decision.amount_kop == 1_050_00
    assert decision.application.applicant.id_kind == "edrpou"
    assert "житло — 100,00 %, комунальні послуги — 50,00 %" in decision.explanation_uk
    assert [(f.id, f.item) for f in decision.operator.flags] == [("billed_within_norm", 1)]


def test_a_row_of_another_category_and_a_row_with_more_members_than_the_household_each_say_why_they_do_not_count(engine):
    rows = [row("ato_serviceman"), row("veteran", account="002"), row("ato_serviceman", members=5, account="003"),
            row("ato_serviceman", "telephone", account="004")]
    decision = engine.decide(register(ATO, rows, printed=750_00))
    assert decision.eligible and decision.amount_kop == 750_00
    out = steps(decision)
    assert out["item:2:category_covered"].startswith("False — пільговик не є військовослужбовцем")
    assert out["item:3:members_within_household"].startswith("False — кількість осіб, на яких поширюється пільга")
    assert out["item:4:service_covered"].startswith("False — пільга надається лише на оплату житла")
    assert "item:2:amount" not in out and "item:3:amount" not in out and "item:4:amount" not in out


def test_the_provider_s_decision_names_each_register_row_it_did_not_count_with_the_reason_and_the_clause(engine):
    rows = [row("ato_serviceman"), row("veteran", account="002"), row("ato_serviceman", members=5, account="003")]
    decision = engine.decide(register(ATO, rows, printed=750_00))
    text = decision.explanation_uk
    assert text.startswith("Призначено 750,00\xa0грн")
    tail = text[text.index("Не враховано: "):]
    clause = next(c.clause for c in decision.conditions)  # any clause: the row reasons cite their own
    assert tail.startswith("Не враховано: рядок 2 — пільговик не є військовослужбовцем")
    assert "; рядок 3 — кількість осіб, на яких поширюється пільга" in tail
    assert "рядок 1 " not in tail and clause  # the counted row is not listed
    for number in (2, 3):  # each reason carries the clause of its row condition, as in the trace
        step = next(s for s in decision.trace if s.step.startswith(f"item:{number}:") and str(s.result).startswith("False"))
        assert f"({step.clause})" in tail


def test_a_register_whose_rows_all_count_gets_no_list_of_excluded_rows(engine):
    decision = engine.decide(register(ATO, [row("ato_serviceman")], printed=750_00))
    assert "Не враховано" not in decision.explanation_uk


def test_a_provider_s_printed_total_that_differs_is_flagged_for_reconciliation_but_the_computed_sum_is_paid(engine):
    decision = engine.decide(register(ATO, [row("ato_serviceman", billed=900_00)], printed=1_000_00))
    assert decision.eligible and decision.amount_kop == 675_00
    assert [f.id for f in decision.operator.flags] == ["printed_total_matches"]
    assert "звірити" not in decision.explanation_uk


def test_a_privilege_register_filed_by_a_person_rather_than_a_provider_is_refused(engine):
    decision = engine.decide(register(ATO, [row("ato_serviceman")], printed=750_00, id_kind="rnokpp"))
    assert not decision.eligible
    assert [c.id for c in decision.conditions if not c.passed] == ["provider_is_an_organisation"]


def test_a_second_register_of_the_same_provider_for_the_same_month_is_refused(engine):
    assert engine.decide(register(ATO, [row("ato_serviceman")], printed=750_00)).eligible
    again = register(ATO, [row("ato_serviceman")], printed=750_00)
    again = again.model_copy(update={"application_id": "priv-second", "event_id": "ev-priv-second"})
    decision = engine.decide(again)
    assert not decision.eligible and [c.id for c in decision.conditions if not c.passed] == ["frequency_limit"]


def test_a_volunteer_fighter_s_privilege_covers_only_the_volunteer_and_flags_family_members_in_the_register(engine):
    # 1 000 × 1/4 × 50 % = 125, although the provider listed 3 people.
    decision = engine.decide(register("kamianske.volunteer-fighters-housing-privilege",
                                      [row("volunteer_fighter")], printed=375_00))
    assert decision.eligible and decision.amount_kop == 125_00
    assert {f.id for f in decision.operator.flags} == {"volunteer_only", "billed_within_norm", "printed_total_matches"}


def test_families_of_fallen_servicemen_get_the_extra_50_percent_on_housing_and_utilities_under_rodyna_heroya(engine):
    rows = [row("family_of_fallen_serviceman", billed=1_000_00, members=2, household=2),
            row("family_of_fallen_serviceman", "utilities", billed=600_00, norm=700_00, members=2, household=2,
                account="002")]
    decision = engine.decide(register("kamianske.fallen-family-housing-privilege", rows, printed=800_00))
    assert decision.eligible and decision.amount_kop == 800_00 and decision.operator.flags == []
    assert "Програма «Родина героя»" in decision.explanation_uk


def test_a_privilege_month_after_2021_is_refused_because_the_programme_s_term_is_not_confirmed(engine):
    decision = engine.decide(register(ATO, [row("ato_serviceman")], printed=750_00, period="2022-01",
                                      submitted="2022-02-07"))
    assert not decision.eligible and [c.id for c in decision.conditions] == ["programme_term"]
    assert "31.12.2021" in decision.explanation_uk and "не підтвердив" in decision.explanation_uk


@pytest.mark.parametrize("name", KAMIANSKE_UNKNOWN_TERM)
def test_every_kamianske_program_whose_term_the_report_does_not_give_ends_with_2021_and_says_why(catalog, name):
    [version] = catalog.get(f"kamianske.{name}").spec.rules
    assert str(version.effective_to) == "2021-12-31"
    assert version.term_uk and "не зазначено" in version.term_uk and "31.12.2021" in version.term_uk


def test_a_rodyna_heroya_defender_day_payment_in_2022_is_refused_with_the_unconfirmed_term(engine):
    facts = {"resident_of_city": True, "deceased_id": "dec-1", "family_member_of_fallen_serviceman": True}
    decision = engine.decide(application("kamianske.fallen-family-defender-day", facts, submitted_on="2022-10-10"))
    assert not decision.eligible and decision.amount_kop == 0
    assert "строк дії Програми «Родина героя» в наявних документах не зазначено" in decision.explanation_uk


HOUSING_EXEMPTION = "zhytomyr.fallen-defenders-families-housing-exemption"


def test_the_local_budget_pays_the_provider_half_of_the_exempted_bill_of_a_fallen_defender_s_family(engine):
    # Two of three registered people are family members of the fallen: 900 × 2/3 × 50 % = 300.
    rows = [row("family_of_fallen_defender", "utilities", billed=900_00, norm=900_00, members=2, household=3,
                resident_field="resident_of_community")]
    claim = register(HOUSING_EXEMPTION, rows, printed=300_00, period="2023-04", submitted="2023-05-05")
    decision = engine.decide(claim)
    assert decision.eligible and decision.amount_kop == 300_00 and decision.operator.flags == []
    assert "захід 13.4.1" in decision.explanation_uk and "50,00 %" in decision.explanation_uk


def test_a_family_member_registered_outside_the_community_is_not_counted_and_an_empty_register_is_refused(engine):
    rows = [row("family_of_fallen_defender", resident_field="resident_of_community", resident=False)]
    decision = engine.decide(register(HOUSING_EXEMPTION, rows, printed=0, period="2023-04", submitted="2023-05-05"))
    assert decision.eligible and decision.amount_kop == 0
    assert steps(decision)["item:1:resident"].startswith("False — пільговик не зареєстрований на території")
    empty = engine.decide(register(HOUSING_EXEMPTION, [], printed=0, period="2023-05", submitted="2023-06-05"))
    assert not empty.eligible and [c.id for c in empty.conditions if not c.passed] == ["register_not_empty"]


def test_the_zhytomyr_telecom_privilege_pays_the_provider_s_calculation_and_flags_a_rate_above_half(engine):
    base = {"account": "0412000001", "beneficiary_id": rnokpp("t1"), "law_ground": "ст. 12 Закону України «Про статус ветеранів війни, гарантії їх соціального захисту»",
            "rate_bp": 5000, "billed_kop": 180_00, "resident_of_community": True}
    rows = [base, {**base, "account": "0412000002", "rate_bp": 10000}]
    claim = register("zhytomyr.communication-privileges", rows, printed=270_00, period="2023-04", submitted="2023-05-05")
    decision = engine.decide(claim)
    assert decision.eligible and decision.amount_kop == 270_00
    assert [(f.id, f.item) for f in decision.operator.flags] == [("rate_at_most_half", 2)]
    assert "захід 4.3.1" in decision.explanation_uk
