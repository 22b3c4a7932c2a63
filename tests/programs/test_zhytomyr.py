"""Zhytomyr programs (seeds 000 and 003; spec 000-003-zhytomyr.md §3, §8 T06-T22).

Expected amounts are derived here from the spec's arithmetic (ПМ values of
domain-facts.md §1, shares stated in the measures), never copied from the engine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dopomoga.errors import ApplicationError
from dopomoga.explain_uk import internal_markers
from dopomoga.rules.engine import Engine
from schemas.events import ApplicationSubmitted
from tests.factories import application

# ПМ, UAH -> kopiyky (domain-facts.md §1)
PM_UNDER_6_2023 = 2272_00
PM_UNDER_6_2024 = 2563_00
PM_6_18_2023 = 2833_00
PM_6_18_2024 = 3196_00


def half(pm_kop: int) -> int:
    """50 % of a ПМ in kopiyky, rounded half up (all the values used here are exact)."""
    return (pm_kop * 50 + 50) // 100


def refused_by(decision) -> list[str]:
    return [c.id for c in decision.conditions if not c.passed]


def refusal_of(engine, program_id: str, facts: dict, **options) -> list[str]:
    """The conditions that refuse one application of ``program_id`` with ``facts``."""
    return refused_by(engine.decide(application(program_id, facts, **options)))


# --- T06: centenarians (1.1.12, 000:L32) ---------------------------------------------------

CENTENARIAN = {"resident_of_community": True}


def test_a_person_born_in_march_1923_gets_10_000_uah_in_april_2023(engine):
    decision = engine.decide(
        application("zhytomyr.centenarians", CENTENARIAN, submitted_on="2023-04-01", birth_date="1923-03-10")
    )
    assert decision.eligible and decision.amount_kop == 10_000_00


def test_the_day_before_the_100th_birthday_is_refused_and_the_birthday_itself_is_paid(engine):
    before = engine.decide(
        application(
            "zhytomyr.centenarians", CENTENARIAN, submitted_on="2023-07-14", birth_date="1923-07-15", person=2
        )
    )
    assert not before.eligible and refused_by(before) == ["aged_100_or_more"] and before.amount_kop == 0
    on_the_day = engine.decide(
        application(
            "zhytomyr.centenarians", CENTENARIAN, submitted_on="2023-07-15", birth_date="1923-07-15", person=2
        )
    )
    assert on_the_day.eligible and on_the_day.amount_kop == 10_000_00


def test_a_102_year_old_is_eligible_because_the_rule_says_100_or_more(engine):
    decision = engine.decide(
        application(
            "zhytomyr.centenarians", CENTENARIAN, submitted_on="2023-04-01", birth_date="1921-01-01", person=4
        )
    )
    assert decision.eligible and decision.amount_kop == 10_000_00


def test_a_centenarian_already_paid_is_refused_a_second_one_off_payment(engine):
    first = application(
        "zhytomyr.centenarians", CENTENARIAN, submitted_on="2023-04-01", birth_date="1923-03-10", person=5
    )
    again = application(
        "zhytomyr.centenarians", CENTENARIAN, submitted_on="2024-04-02", birth_date="1923-03-10", person=5
    )
    assert engine.decide(first).eligible
    second = engine.decide(again)
    assert not second.eligible and refused_by(second) == ["frequency_limit"]


# --- T09: triplets (1.1.6, 000:L27) ---------------------------------------------------------


def triplets(
    count: int = 3, born: str = "2021-03-15", record: str = "AZ-2021-0315", in_family: int | None = None
):
    return {
        "resident_of_community": True,
        "birth_record_id": record,
        "children_born_at_one_birth": count,
        "children_birth_date": born,
        "children_in_family": count if in_family is None else in_family,
    }


def test_in_may_2023_a_set_of_triplets_gets_3_408_uah(engine):
    decision = engine.decide(
        application("zhytomyr.triplets", triplets(), submitted_on="2023-05-05", period="2023-05")
    )
    assert half(PM_UNDER_6_2023) == 1_136_00
    assert decision.eligible and decision.amount_kop == 3 * half(PM_UNDER_6_2023) == 3_408_00


def test_the_subsistence_minimum_change_on_1_january_2024_raises_triplets_help_to_3_844_50(engine):
    december = engine.decide(
        application("zhytomyr.triplets", triplets(), submitted_on="2023-12-04", period="2023-12")
    )
    january = engine.decide(
        application("zhytomyr.triplets", triplets(), submitted_on="2024-01-03", period="2024-01")
    )
    assert december.amount_kop == 3 * half(PM_UNDER_6_2023) == 3_408_00
    assert january.amount_kop == 3 * half(PM_UNDER_6_2024) == 3_844_50
    assert [p.effective_from.isoformat() for p in january.parameters if p.name == "pm_children_under_6"] == [
        "2024-01-01"
    ]


def test_the_month_of_the_third_birthday_is_paid_in_full_because_the_children_are_2_on_its_first_day(engine):
    march = engine.decide(
        application("zhytomyr.triplets", triplets(), submitted_on="2024-03-20", period="2024-03")
    )
    assert march.eligible and march.amount_kop == 3 * half(PM_UNDER_6_2024)


def test_in_april_2024_triplets_born_in_march_2021_are_over_3_and_refused(engine):
    decision = engine.decide(
        application("zhytomyr.triplets", triplets(), submitted_on="2024-04-02", period="2024-04")
    )
    assert not decision.eligible and decision.amount_kop == 0
    assert refused_by(decision) == ["under_3_on_first_day_of_month"]


def test_twins_are_refused_because_the_measure_requires_triplets(engine):
    decision = engine.decide(
        application(
            "zhytomyr.triplets",
            triplets(count=2, record="AZ-TWINS"),
            submitted_on="2023-05-05",
            period="2023-05",
        )
    )
    assert not decision.eligible and refused_by(decision) == ["triplets"]


def test_quadruplets_are_paid_for_each_of_the_four_children(engine):
    decision = engine.decide(
        application(
            "zhytomyr.triplets",
            triplets(count=4, record="AZ-QUAD"),
            submitted_on="2023-05-05",
            period="2023-05",
        )
    )
    assert decision.eligible and decision.amount_kop == 4 * 1_136_00


def test_triplets_already_paid_for_a_month_are_refused_when_the_other_parent_applies(engine):
    engine.decide(
        application("zhytomyr.triplets", triplets(), submitted_on="2023-05-05", period="2023-05", person=1)
    )
    other_parent = engine.decide(
        application("zhytomyr.triplets", triplets(), submitted_on="2023-05-06", period="2023-05", person=2)
    )
    assert not other_parent.eligible and refused_by(other_parent) == ["frequency_limit"]


def test_only_the_triplets_living_in_the_family_are_counted(engine):
    decision = engine.decide(
        application(
            "zhytomyr.triplets",
            triplets(in_family=2, record="AZ-TWO-HOME"),
            submitted_on="2023-05-05",
            period="2023-05",
        )
    )
    assert decision.amount_kop == 2 * 1_136_00


# --- T10: children of fallen servicemen (13.2.2, 000:L79) -------------------------------------


def child_of_fallen(born: str, child_id: str = "child-1"):
    return {
        "resident_of_community": True,
        "child_id": child_id,
        "child_birth_date": born,
        "parent_fallen_serviceman": True,
        "applicant_is_legal_representative": True,
    }


@pytest.mark.parametrize(
    ("born", "period", "expected_kop"),
    [
        ("2013-02-01", "2023-05", half(PM_6_18_2023)),  # aged 10 in 2023 -> 1 416.50
        ("2019-02-01", "2023-05", half(PM_UNDER_6_2023)),  # aged 4 in 2023 -> 1 136.00
        ("2014-02-01", "2024-05", half(PM_6_18_2024)),  # aged 10 in 2024 -> 1 598.00
        ("2020-02-01", "2024-05", half(PM_UNDER_6_2024)),  # aged 4 in 2024 -> 1 281.50
    ],
)
def test_a_child_of_a_fallen_serviceman_gets_half_the_subsistence_minimum_of_the_age_category(
    engine, born, period, expected_kop
):
    decision = engine.decide(
        application(
            "zhytomyr.children-of-fallen", child_of_fallen(born), submitted_on=f"{period}-10", period=period
        )
    )
    assert decision.eligible and decision.amount_kop == expected_kop


def test_the_stated_2023_and_2024_amounts_are_1_416_50_1_136_00_1_598_00_and_1_281_50():
    assert [half(PM_6_18_2023), half(PM_UNDER_6_2023), half(PM_6_18_2024), half(PM_UNDER_6_2024)] == [
        1_416_50,
        1_136_00,
        1_598_00,
        1_281_50,
    ]


def test_a_child_turning_6_mid_month_switches_to_the_6_18_rate_from_the_next_month(engine):
    born = "2017-06-20"
    june = engine.decide(
        application(
            "zhytomyr.children-of-fallen", child_of_fallen(born), submitted_on="2023-06-25", period="2023-06"
        )
    )
    july = engine.decide(
        application(
            "zhytomyr.children-of-fallen", child_of_fallen(born), submitted_on="2023-07-03", period="2023-07"
        )
    )
    assert june.amount_kop == 1_136_00 and july.amount_kop == 1_416_50


def test_a_child_who_is_18_on_the_first_day_of_the_month_is_refused(engine):
    last_month = engine.decide(
        application(
            "zhytomyr.children-of-fallen",
            child_of_fallen("2005-05-15"),
            submitted_on="2023-05-02",
            period="2023-05",
        )
    )
    after = engine.decide(
        application(
            "zhytomyr.children-of-fallen",
            child_of_fallen("2005-05-15"),
            submitted_on="2023-06-02",
            period="2023-06",
        )
    )
    assert last_month.eligible and last_month.amount_kop == 1_416_50
    assert not after.eligible and refused_by(after) == ["under_18_on_first_day_of_month"]


def test_a_child_whose_parent_did_not_fall_is_refused(engine):
    facts = {**child_of_fallen("2013-02-01"), "parent_fallen_serviceman": False}
    decision = engine.decide(
        application("zhytomyr.children-of-fallen", facts, submitted_on="2023-05-10", period="2023-05")
    )
    assert refused_by(decision) == ["parent_fallen"]


# --- T11, T22: 100 000 UAH to families of fallen Defenders (1.1.2, 000:L22, 003:L146) ---------


def fallen_family(deceased: str = "deceased-1", in_zone: bool = True):
    return {
        "resident_of_community": True,
        "deceased_id": deceased,
        "applicant_is_family_member": True,
        "deceased_was_defender_or_serviceman": True,
        "died_of_injury_on_duty": True,
        "injury_in_ato_jfo_zone_direct_participation": in_zone,
    }


def test_the_family_of_a_fallen_defender_gets_100_000_uah_once(engine):
    decision = engine.decide(
        application("zhytomyr.fallen-defenders-families", fallen_family(), submitted_on="2023-03-01")
    )
    assert decision.eligible and decision.amount_kop == 100_000_00


def test_a_second_family_member_applying_for_the_same_fallen_defender_is_refused(engine):
    engine.decide(
        application(
            "zhytomyr.fallen-defenders-families", fallen_family(), submitted_on="2023-03-01", person=1
        )
    )
    sibling = engine.decide(
        application(
            "zhytomyr.fallen-defenders-families", fallen_family(), submitted_on="2023-03-20", person=2
        )
    )
    other_deceased = engine.decide(
        application(
            "zhytomyr.fallen-defenders-families",
            fallen_family("deceased-2"),
            submitted_on="2023-03-21",
            person=3,
        )
    )
    assert not sibling.eligible and refused_by(sibling) == ["frequency_limit"]
    assert other_deceased.eligible and other_deceased.amount_kop == 100_000_00


def test_under_the_2023_text_a_wound_received_outside_the_ato_zone_is_refused(engine):
    decision = engine.decide(
        application(
            "zhytomyr.fallen-defenders-families", fallen_family(in_zone=False), submitted_on="2023-09-01"
        )
    )
    assert decision.rules.effective_from.isoformat() == "2023-01-01"
    assert not decision.eligible and refused_by(decision) == ["injury_in_ato_jfo_zone"]


def test_under_the_2024_text_with_zokrema_a_wound_received_outside_the_ato_zone_is_paid(engine):
    decision = engine.decide(
        application(
            "zhytomyr.fallen-defenders-families", fallen_family(in_zone=False), submitted_on="2024-01-15"
        )
    )
    assert decision.rules.effective_from.isoformat() == "2024-01-01"
    assert decision.eligible and decision.amount_kop == 100_000_00


def test_a_death_not_caused_by_a_service_injury_is_refused_under_both_texts(engine):
    facts = {**fallen_family(), "died_of_injury_on_duty": False}
    for on in ("2023-05-01", "2024-05-01"):
        decision = engine.decide(application("zhytomyr.fallen-defenders-families", facts, submitted_on=on))
        assert refused_by(decision) == ["died_of_injury_on_duty"]


# --- T12: large families (1.1.5, 000:L26) --------------------------------------------------


def family(*births: int):
    return {"resident_of_community": True, "children": [{"born_on": _iso(b)} for b in births]}


def _iso(yyyymmdd: int) -> str:
    return f"{yyyymmdd // 10000:04d}-{yyyymmdd // 100 % 100:02d}-{yyyymmdd % 100:02d}"


def test_a_family_of_7_children_with_5_minors_gets_5_000_uah(engine):
    facts = family(20000101, 20030505, 20070707, 20090909, 20111111, 20130303, 20150615)
    decision = engine.decide(
        application("zhytomyr.large-families", facts, submitted_on="2023-06-01", household_id="hh-1")
    )
    assert decision.eligible and decision.amount_kop == 5 * 1_000_00


def test_a_family_of_5_children_is_refused(engine):
    facts = family(20100101, 20110101, 20120101, 20130101, 20140101)
    decision = engine.decide(
        application("zhytomyr.large-families", facts, submitted_on="2023-06-01", household_id="hh-2")
    )
    assert not decision.eligible and refused_by(decision) == ["six_or_more_children"]


def test_a_family_of_6_adult_children_is_refused_because_the_aid_is_for_minor_children(engine):
    facts = family(19900101, 19910101, 19920101, 19930101, 19940101, 20000101)
    decision = engine.decide(
        application("zhytomyr.large-families", facts, submitted_on="2023-06-01", household_id="hh-3")
    )
    assert not decision.eligible and decision.amount_kop == 0
    assert refused_by(decision) == ["has_minor_child"]


def test_a_child_turning_18_on_the_application_date_is_no_longer_paid_for(engine):
    facts = family(20050601, 20100101, 20110101, 20120101, 20130101, 20140101)
    decision = engine.decide(
        application("zhytomyr.large-families", facts, submitted_on="2023-06-01", household_id="hh-4")
    )
    assert decision.amount_kop == 5 * 1_000_00


def test_a_large_family_is_paid_once_a_calendar_year(engine):
    facts = family(20100101, 20110101, 20120101, 20130101, 20140101, 20150101)
    engine.decide(
        application(
            "zhytomyr.large-families", facts, submitted_on="2023-03-01", household_id="hh-5", person=1
        )
    )
    again = engine.decide(
        application(
            "zhytomyr.large-families", facts, submitted_on="2023-09-01", household_id="hh-5", person=2
        )
    )
    assert refused_by(again) == ["frequency_limit"]


# --- T13: visual disability groups 1-2 (1.1.7, 000:L28) ----------------------------------------


def visual(group: str, by_vision: bool = True):
    return {"resident_of_community": True, "disability_group": group, "disability_by_vision": by_vision}


@pytest.mark.parametrize("group", ["1", "2"])
def test_a_person_with_visual_disability_of_group_1_or_2_gets_4_500_uah(engine, group):
    decision = engine.decide(
        application("zhytomyr.visual-disability-utilities", visual(group), submitted_on="2023-08-01")
    )
    assert decision.eligible and decision.amount_kop == 4_500_00


def test_visual_disability_group_3_is_refused(engine):
    decision = engine.decide(
        application("zhytomyr.visual-disability-utilities", visual("3"), submitted_on="2023-08-01")
    )
    assert refused_by(decision) == ["group_1_or_2"]


def test_a_non_visual_group_1_disability_is_refused(engine):
    decision = engine.decide(
        application(
            "zhytomyr.visual-disability-utilities", visual("1", by_vision=False), submitted_on="2023-08-01"
        )
    )
    assert refused_by(decision) == ["by_vision"]


def test_the_h2_2023_remainder_pays_exactly_87_applicants_and_the_88th_is_refused_by_budget(engine, catalog):
    decision = engine.decide(
        application("zhytomyr.visual-disability-utilities", visual("1"), submitted_on="2023-08-01")
    )
    remainder_kop = 1_431_000_00 - 1_039_500_00  # annual 1 431,0 kUAH - financed 1 039,5 kUAH
    assert remainder_kop == 391_500_00
    assert 87 * decision.amount_kop == remainder_kop < 88 * decision.amount_kop
    budget = catalog.get("zhytomyr.visual-disability-utilities").spec.budget
    assert budget.policy == "first_come" and budget.when_short == "refuse"


# --- T14: honoured donors (1.1.4, 000:L24) ---------------------------------------------------


def test_an_honoured_donor_gets_500_uah_a_month(engine):
    facts = {"resident_of_community": True, "honoured_donor_title": True}
    decision = engine.decide(
        application("zhytomyr.honoured-donors", facts, submitted_on="2023-07-03", period="2023-07")
    )
    assert decision.eligible and decision.amount_kop == 500_00
    # 3 donors x 6 months x 500 = 9 000 financed in H1 2023 (000:L24)
    assert 3 * 6 * decision.amount_kop == 9_000_00


def test_a_person_without_the_honoured_donor_title_is_refused(engine):
    facts = {"resident_of_community": True, "honoured_donor_title": False}
    decision = engine.decide(application("zhytomyr.honoured-donors", facts, submitted_on="2023-07-03"))
    assert refused_by(decision) == ["honoured_donor"]


@pytest.mark.parametrize(
    ("program_id", "parameter"),
    [
        ("zhytomyr.honoured-donors", "honoured_donor_monthly_payment"),
        ("zhytomyr.large-families", "large_family_payment_per_minor_child"),
        ("zhytomyr.visual-disability-utilities", "visual_disability_utilities_payment"),
    ],
)
def test_every_inferred_amount_is_marked_inferred_with_its_derivation_for_operators_and_a_clean_reference(
    catalog, program_id, parameter
):
    values = catalog.get(program_id).local_parameters[parameter].values
    assert values and all(v.inferred and v.pending_confirmation for v in values)
    assert all("INFERRED" in v.source and "000:L" in v.source for v in values)
    assert all(internal_markers(v.reference) == [] and "захід 1.1." in v.reference for v in values)


@pytest.mark.parametrize(
    ("program_id", "facts"),
    [
        ("zhytomyr.honoured-donors", {"resident_of_community": True, "honoured_donor_title": True}),
        ("zhytomyr.visual-disability-utilities", None),
    ],
)
def test_a_decision_paid_with_an_inferred_amount_waits_for_an_operator_to_confirm_it(engine, catalog, program_id, facts):
    if facts is None:  # the example application of this program
        lines = (Path(__file__).resolve().parents[2] / "examples" / "applications.jsonl").read_text().splitlines()
        apps = [ApplicationSubmitted.model_validate_json(line) for line in lines if program_id in line]
        decisions = [engine.decide(a) for a in apps]
        decision = next(d for d in decisions if d.eligible)
    else:
        decision = engine.decide(application(program_id, facts, submitted_on="2023-07-03"))
    assert decision.eligible and decision.operator.pending_confirmation
    assert "INFERRED" not in decision.explanation_uk
    assert any("INFERRED" in s.source for s in decision.operator.sources)


# --- T15: Honorary Citizens (3.1.1, 000:L38) --------------------------------------------------


def honorary(category: str, born: str, deceased: bool = True, amount: int = 5_000_00):
    return {
        "beneficiary_id": f"b-{born}",
        "beneficiary_category": category,
        "honorary_citizen_status_confirmed": True,
        "honorary_citizen_deceased": deceased,
        "beneficiary_birth_date": born,
        "approved_amount": amount,
    }


def test_a_17_year_old_child_of_a_deceased_honorary_citizen_is_paid_the_approved_amount(engine):
    facts = honorary("child_of_deceased_honorary_citizen", "2006-01-10")
    decision = engine.decide(application("zhytomyr.honorary-citizens", facts, submitted_on="2023-10-01"))
    assert decision.eligible and decision.amount_kop == 5_000_00


def test_the_same_child_on_the_18th_birthday_is_refused(engine):
    facts = honorary("child_of_deceased_honorary_citizen", "2005-10-01")
    decision = engine.decide(application("zhytomyr.honorary-citizens", facts, submitted_on="2023-10-01"))
    assert refused_by(decision) == ["child_is_minor"]


def test_a_living_honorary_citizens_child_is_refused_but_the_honorary_citizen_is_paid(engine):
    child = engine.decide(
        application(
            "zhytomyr.honorary-citizens",
            honorary("child_of_deceased_honorary_citizen", "2010-01-01", deceased=False),
            submitted_on="2023-10-01",
        )
    )
    citizen = engine.decide(
        application(
            "zhytomyr.honorary-citizens",
            honorary("honorary_citizen", "1940-01-01", deceased=False),
            submitted_on="2023-10-01",
            person=2,
        )
    )
    assert refused_by(child) == ["parent_deceased"]
    assert citizen.eligible and citizen.amount_kop == 5_000_00


def test_no_honorary_payment_is_made_without_an_approved_amount(engine):
    facts = honorary("honorary_citizen", "1940-01-01", amount=0)
    decision = engine.decide(application("zhytomyr.honorary-citizens", facts, submitted_on="2023-10-01"))
    assert refused_by(decision) == ["amount_approved"]


# --- T16: Chornobyl travel once a year (5.1.2, 000:L58) ---------------------------------------

CHORNOBYL = {
    "resident_of_community": True,
    "chornobyl_affected_status": True,
    "travel_documents_provided": True,
    "documented_travel_cost": 1_853_57,
}


def test_a_chornobyl_affected_citizen_is_reimbursed_the_documented_travel_cost(engine):
    decision = engine.decide(application("zhytomyr.chornobyl-travel", CHORNOBYL, submitted_on="2023-04-10"))
    assert decision.eligible and decision.amount_kop == 1_853_57


def test_a_second_chornobyl_travel_claim_in_the_same_calendar_year_is_refused_and_next_year_is_paid(engine):
    engine.decide(application("zhytomyr.chornobyl-travel", CHORNOBYL, submitted_on="2023-04-10"))
    second = engine.decide(application("zhytomyr.chornobyl-travel", CHORNOBYL, submitted_on="2023-11-10"))
    next_year = engine.decide(application("zhytomyr.chornobyl-travel", CHORNOBYL, submitted_on="2024-01-10"))
    assert not second.eligible and refused_by(second) == ["frequency_limit"]
    assert next_year.eligible


# --- common ----------------------------------------------------------------------------------


def test_every_zhytomyr_program_cites_decision_35_the_measure_code_and_a_seed_line(catalog):
    programs = [p for p in catalog.programs.values() if p.spec.city == "zhytomyr"]
    assert len(programs) >= 9
    for program in programs:
        basis = program.spec.legal_basis
        assert "24.12.2020 № 35" in basis.act_uk and "захід" in basis.clause_uk
        assert basis.seed.startswith("000:L")
        for version in program.versions:
            assert all(c.refusal_uk and c.clause_uk for c in version.conditions)


def test_an_application_before_the_inferred_amounts_exist_has_no_rules_in_force(engine):
    facts = {"resident_of_community": True, "honoured_donor_title": True}
    with pytest.raises(ApplicationError) as failure:
        engine.decide(application("zhytomyr.honoured-donors", facts, submitted_on="2022-12-01"))
    assert failure.value.reason_code == "no_rules_in_force"


def test_every_synthetic_zhytomyr_example_is_decided_and_about_a_fifth_are_refused(catalog):
    lines = (Path(__file__).resolve().parents[2] / "examples" / "zhytomyr.jsonl").read_text().splitlines()
    engine = Engine(catalog)
    decisions = [engine.decide(ApplicationSubmitted.model_validate_json(line)) for line in lines]
    assert len(decisions) >= 70
    assert {d.program_id for d in decisions} == {p for p in catalog.programs if p.startswith("zhytomyr.")}
    assert all(d.submitted_on.year == 2023 for d in (d.application for d in decisions))
    refused = sum(not d.eligible for d in decisions)
    assert 0.15 <= refused / len(decisions) <= 0.25


# --- issue 14: fixes -------------------------------------------------------------------------

# The Programme's title as printed in its report (000:L7); the residence condition rests on it.
PROGRAMME_TITLE_000_L7 = "Комплексної Програми соціального захисту населення Житомирської міської територіальної громади на 2021-2025 роки"
# Other words residence conditions quote, as printed: 000:L22 (measure 1.1.2) and 003:L146 (measure 1.1).
SEED_000_003_WORDS = ("громадян Житомирської міської територіальної громади", "громадян")


def test_a_child_of_a_fallen_serviceman_is_paid_in_full_within_the_funds_never_cut_pro_rata(engine, catalog):
    budget = catalog.get("zhytomyr.children-of-fallen").spec.budget
    assert budget.policy == "first_come" and budget.when_short == "defer"
    decision = engine.decide(
        application(
            "zhytomyr.children-of-fallen",
            child_of_fallen("2013-02-01"),
            submitted_on="2023-05-10",
            period="2023-05",
        )
    )
    assert decision.budget_policy == "first_come" and decision.amount_kop == half(PM_6_18_2023)


def test_every_zhytomyr_residence_condition_cites_words_that_are_in_the_programme_not_a_missing_section(
    catalog,
):
    checked = 0
    for program in (p for p in catalog.programs.values() if p.spec.city == "zhytomyr"):
        for version in program.versions:
            for condition in version.conditions:
                if condition.id != "resident":
                    continue
                checked += 1
                assert "Мета Програми" not in condition.clause_uk, program.id
                quotes = re.findall(r"«([^»]+)»", condition.clause_uk)
                assert quotes, (program.id, condition.clause_uk)
                assert all(q in PROGRAMME_TITLE_000_L7 or q in SEED_000_003_WORDS for q in quotes), (
                    program.id,
                    quotes,
                )
    assert checked >= 9


# --- issue 14: measures encoded from the seeds ------------------------------------------------

HAEMODIALYSIS = {
    "resident_of_community": True,
    "kidney_failure_on_haemodialysis": True,
    "significant_activity_limitations": True,
    "confirmed_by_health_department": True,
    "dialysis_in_zhytomyr": True,
    "documented_transport_costs": 5_450_00,
}


def test_in_march_2023_a_haemodialysis_patient_is_compensated_the_documented_5_450_uah_of_transport(engine):
    decision = engine.decide(
        application(
            "zhytomyr.haemodialysis-transport", HAEMODIALYSIS, submitted_on="2023-04-03", period="2023-03"
        )
    )
    assert decision.eligible and decision.amount_kop == 5_450_00
    assert decision.budget_policy == "first_come"


def test_a_haemodialysis_patient_the_health_department_has_not_confirmed_is_refused(engine):
    facts = {**HAEMODIALYSIS, "confirmed_by_health_department": False}
    decision = engine.decide(
        application("zhytomyr.haemodialysis-transport", facts, submitted_on="2023-04-03", period="2023-03")
    )
    assert not decision.eligible and refused_by(decision) == ["health_department_information"]


def test_a_second_transport_compensation_for_the_same_month_is_refused_and_the_next_month_is_paid(engine):
    march = application(
        "zhytomyr.haemodialysis-transport", HAEMODIALYSIS, submitted_on="2023-04-03", period="2023-03"
    )
    assert engine.decide(march).eligible
    again = march.model_copy(update={"application_id": "hd-again", "event_id": "ev-hd-again"})
    assert refused_by(engine.decide(again)) == ["frequency_limit"]
    april = application(
        "zhytomyr.haemodialysis-transport", HAEMODIALYSIS, submitted_on="2023-05-03", period="2023-04"
    )
    assert engine.decide(april).eligible


def burial(role: str = "will_executor", deceased: str = "dec-1", amount: int = 2_500_00):
    return {
        "deceased_id": deceased,
        "deceased_registered_in_community": True,
        "applicant_role": role,
        "deceased_in_programme_category": True,
        "assigned_amount": amount,
    }


@pytest.mark.parametrize("role", ["will_executor", "undertook_burial"])
def test_the_executor_of_the_will_or_the_person_who_undertook_the_burial_gets_the_assigned_burial_help(
    engine, role
):
    decision = engine.decide(application("zhytomyr.burial-executor", burial(role), submitted_on="2023-05-15"))
    assert decision.eligible and decision.amount_kop == 2_500_00


def test_a_relative_who_neither_executes_the_will_nor_undertook_the_burial_is_refused(engine):
    decision = engine.decide(
        application("zhytomyr.burial-executor", burial("other"), submitted_on="2023-05-15")
    )
    assert not decision.eligible and refused_by(decision) == ["executor_or_undertaker"]


def test_burial_help_for_the_same_deceased_is_paid_once_even_when_another_person_applies(engine):
    assert engine.decide(
        application("zhytomyr.burial-executor", burial(), submitted_on="2023-05-15")
    ).eligible
    second = engine.decide(
        application(
            "zhytomyr.burial-executor", burial("undertook_burial"), submitted_on="2023-05-20", person=2
        )
    )
    assert refused_by(second) == ["frequency_limit"]


def test_no_burial_help_is_paid_without_an_amount_set_by_the_assignment_decision(engine):
    decision = engine.decide(
        application("zhytomyr.burial-executor", burial(amount=0), submitted_on="2023-05-15")
    )
    assert refused_by(decision) == ["amount_assigned"] and decision.amount_kop == 0


FUEL = {"resident_of_community": True, "special_labour_merits": True, "documented_fuel_costs": 2_711_11}


def test_a_hero_of_ukraine_is_compensated_2_711_11_uah_of_documented_fuel_costs_for_may_2023(engine):
    decision = engine.decide(
        application(
            "zhytomyr.fuel-compensation-labour-merits", FUEL, submitted_on="2023-06-02", period="2023-05"
        )
    )
    assert decision.eligible and decision.amount_kop == 2_711_11


def test_a_person_without_special_labour_merits_is_refused_fuel_compensation(engine):
    facts = {**FUEL, "special_labour_merits": False}
    decision = engine.decide(
        application(
            "zhytomyr.fuel-compensation-labour-merits", facts, submitted_on="2023-06-02", period="2023-05"
        )
    )
    assert refused_by(decision) == ["special_labour_merits"]


SANATORIUM = {
    "resident_of_community": True,
    "family_member_of_fallen_ato_participant": True,
    "treatment_id": "voucher-17",
    "treatment_completed": True,
    "documented_treatment_cost": 18_400_00,
}


def test_a_widow_of_a_fallen_ato_participant_is_compensated_the_18_400_uah_cost_of_her_sanatorium_treatment(
    engine,
):
    decision = engine.decide(
        application("zhytomyr.fallen-ato-families-sanatorium", SANATORIUM, submitted_on="2023-08-21")
    )
    assert decision.eligible and decision.amount_kop == 18_400_00


def test_the_same_course_of_sanatorium_treatment_is_not_compensated_twice(engine):
    engine.decide(
        application("zhytomyr.fallen-ato-families-sanatorium", SANATORIUM, submitted_on="2023-08-21")
    )
    again = engine.decide(
        application(
            "zhytomyr.fallen-ato-families-sanatorium", SANATORIUM, submitted_on="2023-09-01", person=2
        )
    )
    assert refused_by(again) == ["frequency_limit"]


def test_sanatorium_treatment_of_a_person_who_is_not_a_family_member_of_the_fallen_is_refused(engine):
    facts = {**SANATORIUM, "family_member_of_fallen_ato_participant": False}
    assert refusal_of(
        engine, "zhytomyr.fallen-ato-families-sanatorium", facts, submitted_on="2023-08-21"
    ) == ["family_of_fallen"]


TREATMENT = {
    "resident_of_community": True,
    "category": "ato_jfo_participant",
    "treatment_id": "discharge-5",
    "oblast_cofinancing_confirmed": True,
    "documented_treatment_costs": 12_345_67,
}


def test_an_ato_participant_is_reimbursed_half_of_12_345_67_uah_of_treatment_as_6_172_84_uah(engine):
    decision = engine.decide(
        application("zhytomyr.ato-treatment-cofinancing", TREATMENT, submitted_on="2023-03-01")
    )
    assert (12_345_67 * 50 + 50) // 100 == 6_172_84  # 6 172,835 rounded half up
    assert decision.eligible and decision.amount_kop == 6_172_84


def test_without_the_oblast_co_financing_the_city_half_of_the_treatment_costs_is_not_paid(engine):
    facts = {**TREATMENT, "oblast_cofinancing_confirmed": False}
    assert refusal_of(engine, "zhytomyr.ato-treatment-cofinancing", facts, submitted_on="2023-03-01") == [
        "cofinanced"
    ]


def test_a_family_member_of_a_fallen_participant_is_covered_and_another_person_is_refused(engine):
    family = engine.decide(
        application(
            "zhytomyr.ato-treatment-cofinancing",
            {**TREATMENT, "category": "family_member_of_fallen_ato_jfo_participant", "treatment_id": "d-6"},
            submitted_on="2023-03-01",
        )
    )
    other = engine.decide(
        application(
            "zhytomyr.ato-treatment-cofinancing",
            {**TREATMENT, "category": "other", "treatment_id": "d-7"},
            submitted_on="2023-03-01",
            person=3,
        )
    )
    assert family.eligible and refused_by(other) == ["category"]
