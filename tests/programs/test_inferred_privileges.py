"""Privileges whose rate the seeds do not give (issue 14): the rate is a dated parameter marked
``inferred`` with the reading written in the program file's operator-only fields; a provider's
register is computed at that rate, the decision waits for the department to confirm it, and the
sentence the provider receives cites only the act and the clause.

Zhytomyr 000 L39 (measure 3.1.2: visual disability I-II and family members), L41 (3.1.4: «Заслужений
донор України»); Kamianske 002 L151-152, L916-917 (families of fallen Afghan veterans, tram-accident
victims, visual disability I-II, honorary citizens: housing, utilities and phone-line rental)."""

from __future__ import annotations

import datetime as dt

import pytest

from dopomoga.budget.commands import confirmations_of_inferred
from dopomoga.budget.ledger import BudgetLedger
from dopomoga.explain_uk import internal_markers
from tests.budget.conftest import allocation
from tests.factories import application, rnokpp

VISUAL = "zhytomyr.visual-disability-housing-privilege"
DONORS = "zhytomyr.honoured-donors-housing-privilege"
AFGHAN = "kamianske.afghan-families-housing-privilege"
TRAM = "kamianske.tram-accident-victims-housing-privilege"
KM_VISUAL = "kamianske.visual-disability-housing-privilege"
HONORARY = "kamianske.honorary-citizens-housing-privilege"
ZHYTOMYR = {VISUAL: "visual_disability_1_2", DONORS: "honoured_donor"}
KAMIANSKE = {AFGHAN: "family_of_fallen_afghan_veteran", TRAM: "tram_accident_victim",
             KM_VISUAL: "visual_disability_1_2", HONORARY: "honorary_citizen"}


def row(category: str, service: str = "housing", *, billed: int = 1_200_00, norm: int = 1_000_00, members: int = 3,
        household: int = 4, resident_field: str = "resident_of_city", resident: bool = True, account: str = "001") -> dict:
    return {"account": account, "beneficiary_id": rnokpp(f"b-{account}"), "category": category, "service": service,
            "billed_kop": billed, "norm_kop": norm, "members_covered": members, "household_size": household,
            resident_field: resident}


def register(program: str, rows: list[dict], printed: int, *, period: str, submitted: str, id_kind: str = "edrpou"):
    return application(program, {"register": rows, "printed_total_kop": printed}, submitted_on=submitted,
                       period=period, id_kind=id_kind, channel="treasury", name="КП «Житлосервіс»")


def zhytomyr(program: str, rows: list[dict], printed: int, period: str = "2023-04"):
    return register(program, rows, printed, period=period, submitted="2023-05-05")


def kamianske(program: str, rows: list[dict], printed: int, period: str = "2021-05"):
    return register(program, rows, printed, period=period, submitted="2021-06-07")


def steps(decision) -> dict:
    return {s.step: s.result for s in decision.trace}


def test_a_provider_is_paid_half_of_the_bill_within_norms_of_a_visually_disabled_person_s_covered_family(engine):
    # 3 of 4 registered covered: housing 1 200 over a 1 000 norm -> 1 000 × 3/4 × 50 % = 375;
    # utilities 800 within a 900 norm -> 800 × 3/4 × 50 % = 300.
    rows = [row("visual_disability_1_2", resident_field="resident_of_community"),
            row("visual_disability_1_2", "utilities", billed=800_00, norm=900_00, account="002",
                resident_field="resident_of_community")]
    decision = engine.decide(zhytomyr(VISUAL, rows, printed=675_00))
    assert decision.eligible and decision.amount_kop == 675_00
    assert "захід 3.1.2" in decision.explanation_uk and "50,00 %" in decision.explanation_uk
    assert [(f.id, f.item) for f in decision.operator.flags] == [("billed_within_norm", 1)]


@pytest.mark.parametrize("program", [*ZHYTOMYR, *KAMIANSKE])
def test_a_privilege_at_an_inferred_rate_waits_for_the_department_to_confirm_the_rate(engine, program):
    category = {**ZHYTOMYR, **KAMIANSKE}[program]
    resident = "resident_of_community" if program in ZHYTOMYR else "resident_of_city"
    claim = (zhytomyr if program in ZHYTOMYR else kamianske)(program, [row(category, resident_field=resident)], printed=0)
    decision = engine.decide(claim)
    assert decision.eligible and decision.amount_kop > 0
    assert "housing_privilege_rate_bp" in decision.operator.pending_confirmation
    assert any("INFERRED" in s.source for s in decision.operator.sources)
    assert internal_markers(decision.explanation_uk) == []
    assert "INFERRED" not in decision.explanation_uk and "обране прочитання" not in decision.explanation_uk


def test_an_honoured_donor_s_privilege_covers_only_the_donor_and_flags_family_members_in_the_register(engine):
    # The measure names only the title holder: 1 000 × 1/4 × 50 % = 125, whatever the register claims.
    rows = [row("honoured_donor", members=3, resident_field="resident_of_community")]
    decision = engine.decide(zhytomyr(DONORS, rows, printed=125_00))
    assert decision.eligible and decision.amount_kop == 125_00
    assert sorted(f.id for f in decision.operator.flags) == ["beneficiary_only", "billed_within_norm"]
    assert "захід 3.1.4" in decision.explanation_uk


def test_a_row_of_another_category_or_a_resident_elsewhere_is_not_counted_and_says_why(engine):
    rows = [row("visual_disability_1_2", resident_field="resident_of_community"),
            row("honoured_donor", account="002", resident_field="resident_of_community"),
            row("visual_disability_1_2", account="003", resident_field="resident_of_community", resident=False)]
    decision = engine.decide(zhytomyr(VISUAL, rows, printed=375_00))
    assert decision.eligible and decision.amount_kop == 375_00
    out = steps(decision)
    assert out["item:2:category_covered"].startswith("False — пільговик не є особою з інвалідністю по зору")
    assert out["item:3:resident"].startswith("False — пільговик не зареєстрований на території")


def test_a_kamianske_phone_line_rental_is_half_the_rental_per_subscriber_not_a_household_share(engine):
    # Phone: 180 × 50 % = 90 (no household share); housing of an Afghan veteran's family:
    # 1 000 × 3/4 × 50 % = 375.
    rows = [row("family_of_fallen_afghan_veteran"),
            row("family_of_fallen_afghan_veteran", "phone_rental", billed=180_00, norm=180_00, members=1, household=1,
                account="002")]
    decision = engine.decide(kamianske(AFGHAN, rows, printed=465_00))
    assert decision.eligible and decision.amount_kop == 465_00
    assert "абонентної плати за телефон" in decision.explanation_uk


@pytest.mark.parametrize("program", [TRAM, KM_VISUAL, HONORARY])
def test_a_kamianske_privilege_of_a_person_counts_only_the_beneficiary_s_share_of_the_household(engine, program):
    decision = engine.decide(kamianske(program, [row(KAMIANSKE[program])], printed=125_00))
    assert decision.eligible and decision.amount_kop == 125_00  # 1 000 × 1/4 × 50 %
    assert "beneficiary_only" in [f.id for f in decision.operator.flags]


def test_a_kamianske_register_of_another_category_s_rows_pays_nothing_and_a_person_s_register_is_refused(engine):
    decision = engine.decide(kamianske(HONORARY, [row("tram_accident_victim")], printed=0))
    assert decision.eligible and decision.amount_kop == 0
    assert steps(decision)["item:1:category_covered"].startswith("False — пільговик не є почесним громадянином")
    person = engine.decide(register(HONORARY, [row("honorary_citizen")], 125_00, period="2021-05",
                                    submitted="2021-06-07", id_kind="rnokpp"))
    assert not person.eligible
    assert [c.id for c in person.conditions if not c.passed] == ["provider_is_an_organisation"]


def test_a_kamianske_privilege_month_after_the_2018_2022_programme_is_refused(engine):
    decision = engine.decide(register(KM_VISUAL, [row("visual_disability_1_2")], 125_00, period="2023-01",
                                      submitted="2023-02-06"))
    assert not decision.eligible and decision.amount_kop == 0
    assert "строк дії програми закінчився 31.12.2022" in decision.explanation_uk


def test_a_provider_s_register_at_an_inferred_rate_is_held_until_the_department_confirms_the_rates(catalog, engine):
    ledger = BudgetLedger("sqlite://", catalog)
    ledger.apply(allocation(VISUAL, 2023, 1_050_900_00))  # measure 3.1.2, annual volume with amendments
    rows = [row("visual_disability_1_2", resident_field="resident_of_community")]
    [held] = ledger.submit(engine.decide(zhytomyr(VISUAL, rows, printed=375_00)))
    assert held.status == "held" and held.payout_kop == 0 and held.reason_code == "awaiting_confirmation"
    confirmations = confirmations_of_inferred(
        catalog.get(VISUAL), 2023, document="порядок надання пільг, рішення ЖМР від 24.12.2020 № 35 зі змінами",
        confirmed_by="head-of-department", occurred_at=dt.datetime(2023, 5, 10, 9, tzinfo=dt.UTC))
    assert sorted(c.parameter for c in confirmations) == ["housing_privilege_rate_bp", "utilities_privilege_rate_bp"]
    released = [d for c in confirmations for d in ledger.apply(c)]
    assert [(d.status, d.payout_kop) for d in released] == [("paid", 375_00)]
