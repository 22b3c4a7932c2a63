"""Zaporizhzhia programs (seed 004; spec 004-zaporizhzhia-program.md §2, §6, 004-rates.csv).

Expected amounts are worked out here from the figures printed in the seed and the spec's
arithmetic (integer kopiyky, halves rounded up), never copied from the engine's output.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from dopomoga.errors import ApplicationError
from dopomoga.rules.engine import Engine
from dopomoga.rules.history import Grant
from schemas.events import ApplicationSubmitted
from tests.factories import application, rnokpp

UKRAINIAN = re.compile(r"[А-ЩЬЮЯҐЄІЇа-щьюяґєії]")
MIN_WAGE_1_JAN_2021 = 6000_00  # domain-facts.md §1: МЗП on 2021-01-01 (6 500 only from 2021-12-01)


def kop(uah: int, kopecks: int = 0) -> int:
    return uah * 100 + kopecks


def half_up(numerator: int, denominator: int) -> int:
    """numerator/denominator to the nearest integer, halves up (positive values)."""
    return (2 * numerator + denominator) // (2 * denominator)


def refused_by(decision) -> list[str]:
    failed = [c for c in decision.conditions if not c.passed]
    for condition in failed:
        assert condition.refusal_uk and UKRAINIAN.search(condition.refusal_uk), condition.id
    return [c.id for c in failed]


def assert_refused(decision, *condition_ids: str) -> None:
    assert not decision.eligible
    assert decision.amount_kop == 0
    assert sorted(refused_by(decision)) == sorted(condition_ids)
    assert decision.explanation_uk.startswith("Відмовлено")


def excluded_items(decision) -> list[int]:
    return [
        int(step.step.split(":")[1])
        for step in decision.trace
        if step.step.endswith(":include") and step.result is not True
    ]


# --- Annex 4: capital-repair aid (spec §6.1) ------------------------------------------------

A4 = "zaporizhzhia.capital-repair"
HOUSE_MAX, FLAT_MAX = kop(60_000), kop(40_000)  # 004:L731


def repair(**changes):
    facts = {
        "beneficiary_category": "war_disabled_or_equated",
        "ownership": "owner",
        "dwelling_type": "flat",
        "dwelling_is_permanent_residence": True,
        "total_area_m2_x100": 45_00,
        "resident_since_year": 1987,
        "last_free_repair_or_aid_year": 2008,
        "commission_found_need": True,
        # The commission's cost of the works above every maximum, so the maximum by area decides unless a test says
        # otherwise; the department commission's protocol granting the aid (Annex 4, p. 12).
        "assessed_repair_cost": kop(150_000),
        "grant_protocol_no": "12",
        "grant_protocol_date": "2021-09-01",
    }
    facts.update(changes)
    return facts


def decide_repair(engine, facts, *, person=1, household="hh-a4-1", on="2021-09-06", district="Хортицький"):
    return engine.decide(
        application(A4, facts, submitted_on=on, person=person, household_id=household, district=district)
    )


def test_a_war_disabled_owner_of_a_45_square_metre_flat_gets_the_40_000_uah_maximum(engine):
    decision = decide_repair(engine, repair())
    assert decision.eligible and decision.amount_kop == FLAT_MAX
    assert decision.budget_policy == "district_split"
    assert decision.budget_key == "zaporizhzhia.capital-repair:2021-09:Хортицький"


def test_a_14_square_metre_flat_gets_26_666_67_uah(engine):
    decision = decide_repair(engine, repair(total_area_m2_x100=14_00))
    assert half_up(FLAT_MAX * 14, 21) == kop(26_666, 67)
    assert decision.amount_kop == kop(26_666, 67)


def test_the_14_square_metre_flat_s_decision_shows_40_000_uah_times_14_over_21_square_metres(engine):
    decision = decide_repair(engine, repair(total_area_m2_x100=14_00))
    text = decision.explanation_uk
    assert ("максимальний розмір 40\xa0000,00\xa0грн × 14,00 м² ∕ 21 м² = 26\xa0666,67\xa0грн "
            "(загальна площа 14,00 м², враховується не більше 21 м²)") in text
    assert "але не більше максимального розміру = 26\xa0666,67\xa0грн)" in text
    values = {s.step: s.result for s in decision.trace if s.step.startswith("value:")}  # the operator's trace
    assert values == {"value:maximum_for_21_m2": FLAT_MAX, "value:counted_area_m2_x100": 14_00,
                      "value:maximum": kop(26_666, 67)}


def test_an_80_square_metre_house_s_decision_counts_21_square_metres_and_says_so(engine):
    decision = decide_repair(engine, repair(dwelling_type="house", total_area_m2_x100=80_00))
    assert ("60\xa0000,00\xa0грн × 21,00 м² ∕ 21 м² = 60\xa0000,00\xa0грн (загальна площа 80,00 м², "
            "враховується не більше 21 м²)") in decision.explanation_uk


def test_a_10_5_square_metre_house_gets_30_000_uah(engine):
    decision = decide_repair(engine, repair(dwelling_type="house", total_area_m2_x100=10_50))
    assert decision.amount_kop == HOUSE_MAX * 1050 // 2100 == kop(30_000)


def test_a_20_square_metre_house_gets_57_142_86_uah(engine):
    decision = decide_repair(engine, repair(dwelling_type="house", total_area_m2_x100=20_00))
    assert half_up(HOUSE_MAX * 20, 21) == kop(57_142, 86)
    assert decision.amount_kop == kop(57_142, 86)


def test_a_house_of_exactly_21_square_metres_gets_the_full_60_000_uah(engine):
    decision = decide_repair(engine, repair(dwelling_type="house", total_area_m2_x100=21_00))
    assert decision.amount_kop == HOUSE_MAX


def test_an_80_square_metre_flat_is_capped_at_40_000_uah(engine):
    decision = decide_repair(engine, repair(total_area_m2_x100=80_00))
    assert decision.amount_kop == FLAT_MAX



def test_a_repair_costing_less_than_the_maximum_is_paid_its_cost_because_the_annex_sets_a_maximum(engine):
    # «Максимальний розмір матеріальної допомоги» (Annex 4, p. 13): 32 500 for a 45 m² flat, not 40 000.
    decision = decide_repair(engine, repair(assessed_repair_cost=kop(32_500)))
    assert decision.eligible and decision.amount_kop == kop(32_500)
    assert "вартість ремонту 32\xa0500,00\xa0грн, але не більше максимального розміру" in decision.explanation_uk
    assert "протокол № 12 від 01.09.2021" in decision.explanation_uk


def test_a_small_flat_is_paid_the_smaller_of_its_cost_and_its_maximum_by_area(engine):
    cheap = decide_repair(engine, repair(total_area_m2_x100=14_00, assessed_repair_cost=kop(20_000)), person=5,
                          household="hh-a4-5")
    dear = decide_repair(engine, repair(total_area_m2_x100=14_00, assessed_repair_cost=kop(30_000)), person=6,
                         household="hh-a4-6")
    assert cheap.amount_kop == kop(20_000) and dear.amount_kop == kop(26_666, 67)


def test_without_the_department_commission_s_protocol_granting_the_aid_it_is_refused(engine):
    assert_refused(decide_repair(engine, repair(grant_protocol_no="")), "grant_decided")
    assert_refused(decide_repair(engine, repair(assessed_repair_cost=0), person=7, household="hh-a4-7"),
                   "repair_cost_assessed")

def test_a_free_repair_nine_years_ago_is_refused(engine):
    assert_refused(decide_repair(engine, repair(last_free_repair_or_aid_year=2012)), "ten_years_since_last_free_repair")


def test_a_free_repair_exactly_ten_years_ago_by_the_year_on_the_form_is_eligible(engine):
    decision = decide_repair(engine, repair(last_free_repair_or_aid_year=2011))
    assert decision.eligible and decision.amount_kop == FLAT_MAX


def test_a_dwelling_never_repaired_for_free_is_eligible(engine):
    facts = repair()
    del facts["last_free_repair_or_aid_year"]
    assert decide_repair(engine, facts).eligible


def test_two_entitled_members_of_one_household_get_one_aid_not_two(engine):
    first = decide_repair(engine, repair(), person=1, household="hh-a4-shared")
    second = decide_repair(engine, repair(ownership="co_owner"), person=2, household="hh-a4-shared", on="2021-09-07")
    assert first.eligible and first.amount_kop == FLAT_MAX
    assert_refused(second, "frequency_limit")
    assert first.amount_kop + second.amount_kop == FLAT_MAX  # 40 000, not 80 000


def test_a_resident_of_less_than_ten_years_needs_the_previous_home_confirmation(engine):
    without = decide_repair(engine, repair(resident_since_year=2015), person=3, household="hh-a4-3")
    assert_refused(without, "previous_residence_confirmed")
    with_it = decide_repair(
        engine, repair(resident_since_year=2015, previous_residence_confirmation=True), person=4, household="hh-a4-4"
    )
    assert with_it.eligible and with_it.amount_kop == FLAT_MAX


def test_a_tenant_is_refused(engine):
    assert_refused(decide_repair(engine, repair(ownership="not_owner")), "owner_or_co_owner")


def test_a_flat_that_is_not_the_place_of_permanent_residence_is_refused(engine):
    assert_refused(decide_repair(engine, repair(dwelling_is_permanent_residence=False)), "permanent_residence")


def test_a_labour_veteran_without_another_status_is_refused(engine):
    assert_refused(decide_repair(engine, repair(beneficiary_category="none")), "eligible_category")


def test_no_need_found_by_the_district_commission_is_refused(engine):
    assert_refused(decide_repair(engine, repair(commission_found_need=False)), "commission_found_need")


def test_a_second_application_by_the_same_person_within_ten_years_is_refused(engine):
    first = decide_repair(engine, repair(), on="2021-02-01")
    second = decide_repair(engine, repair(last_free_repair_or_aid_year=2008), on="2021-11-15")
    assert first.eligible
    assert_refused(second, "frequency_limit", "once_in_10_years")


def test_aid_received_six_years_ago_declared_on_the_form_is_refused(engine):
    assert_refused(decide_repair(engine, repair(last_free_repair_or_aid_year=2015)), "ten_years_since_last_free_repair")


def test_every_capital_repair_condition_is_refused_in_ukrainian_with_its_clause(engine):
    decision = decide_repair(
        engine,
        repair(
            beneficiary_category="none",
            ownership="not_owner",
            dwelling_is_permanent_residence=False,
            last_free_repair_or_aid_year=2019,
            resident_since_year=2019,
            commission_found_need=False,
            total_area_m2_x100=0,
        ),
    )
    assert len(refused_by(decision)) == 7  # all but the 10-year history
    assert all("Додаток 4" in c.clause for c in decision.conditions)


# --- Annex 5: bus carriers (spec §6.2) ------------------------------------------------------

A5 = "zaporizhzhia.bus-carrier-compensation"


def bus(**changes):
    row = {
        "route": "12",
        "vehicle_make": "Богдан А092",
        "plate": "AP0001AA",
        "vehicle_class": "I",
        "contract_class": "I",
        "trips": 620,
        "seats": 42,
        "fare": kop(8),
        "route_length_m": 14_250,
    }
    row.update(changes)
    # The carrier's own K (graph 8, × 10000) and P (graph 9) as printed: the computed ones unless a test says otherwise.
    row.setdefault("printed_k_x10000", half_up(row["route_length_m"] * 10000, 14_250))
    row.setdefault("printed_p", half_up(row["trips"] * row["seats"] * 5 * row["fare"] * row["route_length_m"], 100 * 14_250))
    return row


def carrier_claim(rows, *, person="carrier-1", period="2021-03", **changes):
    facts = {
        "route_service_contract": True,
        "compensation_contract": True,
        "municipal_enterprise": False,
        "verified_by_transport_department": True,
        "routes": rows,
    }
    facts.update(changes)
    submitted = f"{period[:4]}-{int(period[5:]) + 1:02d}-04" if period[5:] != "12" else f"{int(period[:4]) + 1}-01-04"
    return application(A5, facts, submitted_on=submitted, period=period, person=person, id_kind="edrpou", channel="treasury")


def p_kop(trips: int, seats: int, fare_kop: int, length_m: int) -> int:
    """P = Kp × M × 5 % × T × L'/14.25 km, one half-up rounding to the kopiyka (spec A5-01..03)."""
    return half_up(trips * seats * 5 * fare_kop * length_m, 100 * 14_250)


def test_620_trips_of_a_42_seat_bus_at_8_uah_on_an_average_route_give_10_416_uah(engine):
    decision = engine.decide(carrier_claim([bus()]))
    assert 620 * 42 * 5 * 8 // 100 == 10_416  # K = 1
    assert decision.eligible and decision.amount_kop == kop(10_416)
    assert decision.budget_policy == "pro_rata_at_close"
    assert decision.application.applicant.id_kind == "edrpou"


def test_a_9_5_km_route_gives_6_944_uah_with_k_unrounded(engine):
    decision = engine.decide(carrier_claim([bus(route_length_m=9_500)]))
    assert p_kop(620, 42, kop(8), 9_500) == kop(6_944)
    assert decision.amount_kop == kop(6_944)  # not 6 978,72 (K rounded to 0.67)


def test_a_20_km_route_gives_14_618_95_uah(engine):
    decision = engine.decide(carrier_claim([bus(route_length_m=20_000)]))
    assert p_kop(620, 42, kop(8), 20_000) == kop(14_618, 95)
    assert decision.amount_kop == kop(14_618, 95)


@pytest.mark.parametrize("bus_class", ["III", "B"])
def test_a_bus_of_a_class_other_than_a_i_ii_is_excluded_from_the_claim(engine, bus_class):
    rows = [bus(), bus(plate="AP0002AA", vehicle_class=bus_class, contract_class=bus_class)]
    decision = engine.decide(carrier_claim(rows))
    assert decision.eligible and decision.amount_kop == kop(10_416)
    assert excluded_items(decision) == [2]


def test_a_class_a_bus_on_a_route_contracted_for_class_i_is_excluded(engine):
    rows = [bus(), bus(plate="AP0003AA", vehicle_class="A", contract_class="I")]
    decision = engine.decide(carrier_claim(rows))
    assert decision.amount_kop == kop(10_416) and excluded_items(decision) == [2]


def test_a_claim_with_no_class_a_i_ii_bus_is_refused(engine):
    decision = engine.decide(carrier_claim([bus(vehicle_class="III", contract_class="III")]))
    assert_refused(decision, "has_eligible_bus")


def test_a_municipal_enterprise_gets_no_compensation(engine):
    assert_refused(engine.decide(carrier_claim([bus()], municipal_enterprise=True)), "not_municipal_enterprise")


def test_a_carrier_without_a_compensation_contract_with_the_district_is_not_paid(engine):
    assert_refused(engine.decide(carrier_claim([bus()], compensation_contract=False)), "compensation_contract")


def test_a_carrier_claim_is_the_sum_of_its_route_and_vehicle_rows(engine):
    rows = [
        bus(route="12", vehicle_make="Богдан А092", seats=42),
        bus(route="12", vehicle_make="Еталон А081", plate="AP0004AA", seats=38, trips=410),
        bus(route="40", vehicle_make="Атаман А092", plate="AP0005AA", vehicle_class="II", contract_class="II",
            trips=300, seats=45, route_length_m=18_300),
    ]
    expected = p_kop(620, 42, kop(8), 14_250) + p_kop(410, 38, kop(8), 14_250) + p_kop(300, 45, kop(8), 18_300)
    assert engine.decide(carrier_claim(rows)).amount_kop == expected


def test_a_second_claim_by_the_same_carrier_for_the_same_month_is_refused(engine):
    assert engine.decide(carrier_claim([bus()])).eligible
    again = carrier_claim([bus()])
    again = again.model_copy(update={"application_id": "a5-second", "event_id": "ev-a5-second"})
    assert_refused(engine.decide(again), "frequency_limit")
    assert engine.decide(carrier_claim([bus()], period="2021-04")).eligible



def test_a_carrier_whose_printed_k_and_p_match_the_computed_ones_is_paid_without_a_flag(engine):
    decision = engine.decide(carrier_claim([bus(route_length_m=9_500)]))
    assert decision.eligible and decision.operator.flags == []


def test_a_k_printed_to_two_decimals_is_flagged_for_the_transport_department_and_the_payment_uses_the_exact_k(engine):
    # L' = 9,5 km: K = 0,6667 (to 4 decimals); the carrier printed 0,67 and the P of that K (6 978,72 UAH).
    row = bus(route_length_m=9_500, printed_k_x10000=6_700, printed_p=kop(6_978, 72))
    decision = engine.decide(carrier_claim([row]))
    assert decision.eligible and decision.amount_kop == kop(6_944)  # never the printed P
    assert [(f.id, f.item) for f in decision.operator.flags] == [("printed_k_matches", 1), ("printed_p_matches", 1)]
    assert all("перевірити" in f.flag_uk for f in decision.operator.flags)
    assert "перевірити" not in decision.explanation_uk


def test_only_the_row_whose_printed_sum_differs_is_flagged(engine):
    rows = [bus(), bus(plate="AP0009AA", printed_p=kop(10_500))]
    decision = engine.decide(carrier_claim(rows))
    assert decision.amount_kop == 2 * kop(10_416)
    assert [(f.id, f.item) for f in decision.operator.flags] == [("printed_p_matches", 2)]


def test_a_communication_privilege_is_paid_to_the_provider_at_the_statutory_rate_row_by_row(engine):
    veteran = {"account": "0611234567", "beneficiary_id": rnokpp("v1"),
               "law_ground": "ст. 12 Закону України «Про статус ветеранів війни, гарантії їх соціального захисту»",
               "rate_bp": 5000, "billed_kop": kop(150), "registered_in_zaporizhzhia": True}
    rows = [veteran, {**veteran, "account": "0617654321", "registered_in_zaporizhzhia": False},
            {**veteran, "account": "0610000000", "law_ground": ""}]
    claim = application("zaporizhzhia.communication-privileges", {"register": rows, "printed_total_kop": kop(75)},
                        submitted_on="2021-06-04", period="2021-05", id_kind="edrpou", channel="treasury",
                        name="ПАТ «Укртелеком»")
    decision = engine.decide(claim)
    assert decision.eligible and decision.amount_kop == kop(75)
    steps = {s.step: s.result for s in decision.trace}
    assert steps["item:2:resident"] == "False — пільговик не зареєстрований у місті Запоріжжі"
    assert str(steps["item:3:statutory_ground"]).startswith("False — у рядку не зазначено закону")
    assert decision.operator.flags == []
    assert "Завдання 5" in decision.explanation_uk


def test_a_communication_privilege_register_after_the_programme_term_is_refused_with_the_term_as_the_reason(engine):
    claim = application("zaporizhzhia.communication-privileges", {"register": [], "printed_total_kop": 0},
                        submitted_on="2022-01-10", period="2022-01", id_kind="edrpou", channel="treasury")
    decision = engine.decide(claim)
    assert not decision.eligible and [c.id for c in decision.conditions] == ["programme_term"]
    assert "31.12.2021" in decision.explanation_uk

# --- Annex 6: IDP accommodation (spec §6.4) -------------------------------------------------

A6 = "zaporizhzhia.idp-temporary-accommodation"


def stay(idp: str, start: str, end: str, daily: int = kop(35), utilities: int = 0, **changes):
    row = {
        "idp_id": idp,
        "stay_from": start,
        "stay_to": end,
        "daily_cost": daily,
        "daily_utilities": utilities,
        "idp_status": True,
        "registered_komunarskyi": True,
        "lives_in_transit_town": True,
        "commission_granted": True,
    }
    row.update(changes)
    return row


def idp_register(rows, period="2021-03"):
    facts = {"contract_with_uszn": True, "reconciliation_act": True, "register": rows}
    return application(
        A6, facts, submitted_on="2021-04-06", period=period, person="nashe-misto", id_kind="edrpou", channel="treasury"
    )


def test_31_days_in_the_steshenka_transit_town_at_35_uah_a_day_give_1_085_uah(engine):
    decision = engine.decide(idp_register([stay("idp-1", "2021-03-01", "2021-03-31")]))
    assert decision.eligible and decision.amount_kop == 31 * kop(35) == kop(1_085)


def test_a_register_of_72_person_days_at_35_uah_gives_2_520_uah(engine):
    rows = [
        stay("idp-1", "2021-03-01", "2021-03-31"),
        stay("idp-2", "2021-03-01", "2021-03-31"),
        stay("idp-3", "2021-03-22", "2021-03-31"),
    ]
    decision = engine.decide(idp_register(rows))
    assert 31 + 31 + 10 == 72
    assert decision.amount_kop == 72 * kop(35) == kop(2_520)


def test_utilities_included_in_the_daily_cost_are_excluded(engine):
    decision = engine.decide(idp_register([stay("idp-1", "2021-03-01", "2021-03-31", daily=kop(43), utilities=kop(8))]))
    assert decision.amount_kop == 31 * (kop(43) - kop(8)) == kop(1_085)


def test_an_idp_registered_with_another_district_or_living_outside_the_transit_town_is_not_covered(engine):
    rows = [
        stay("idp-1", "2021-03-01", "2021-03-31"),
        stay("idp-2", "2021-03-01", "2021-03-31", registered_komunarskyi=False),
        stay("idp-3", "2021-03-01", "2021-03-31", lives_in_transit_town=False),
    ]
    decision = engine.decide(idp_register(rows))
    assert decision.amount_kop == kop(1_085) and excluded_items(decision) == [2, 3]
    only_shevchenkivskyi = engine.decide(
        idp_register([stay("idp-4", "2021-05-01", "2021-05-31", registered_komunarskyi=False)], period="2021-05")
    )
    assert_refused(only_shevchenkivskyi, "has_covered_person")


def test_a_register_with_a_stay_outside_the_month_is_returned(engine):
    decision = engine.decide(idp_register([stay("idp-1", "2021-02-20", "2021-03-31")]))
    assert_refused(decision, "stays_within_month")


# --- Annex 7: orphans' ownership registration (spec §6.5) -----------------------------------

A7 = "zaporizhzhia.orphan-ownership-registration"
ORPHAN = {
    "orphan_status": "orphan",
    "applied_where_on_housing_list": True,
    "notary_confirmed_costs": kop(14_186),
    "sale_contract_date": "2021-11-18",
    "written_consent_date": "2021-11-10",
}


def test_notary_confirmed_costs_of_14_186_uah_are_paid_in_full_by_my_transfer(engine):
    decision = engine.decide(application(A7, ORPHAN, submitted_on="2021-11-08", channel="my_transfer"))
    assert decision.eligible and decision.amount_kop == kop(14_186)
    assert "MY TRANSFER" in decision.explanation_uk


def test_a_passport_with_the_religious_refusal_mark_is_accepted_instead_of_the_tax_number(engine):
    unmarked = engine.decide(application(A7, ORPHAN, submitted_on="2021-11-05", channel="my_transfer", id_kind="passport"))
    assert_refused(unmarked, "taxpayer_number_or_passport")
    facts = {**ORPHAN, "religious_refusal_passport_mark": True}
    decision = engine.decide(application(A7, facts, submitted_on="2021-11-08", channel="my_transfer", id_kind="passport"))
    assert decision.eligible and decision.amount_kop == kop(14_186)


def test_an_orphan_who_already_received_the_aid_is_refused(engine):
    assert engine.decide(application(A7, ORPHAN, submitted_on="2021-03-01", channel="my_transfer")).eligible
    again = engine.decide(application(A7, ORPHAN, submitted_on="2021-11-08", channel="my_transfer"))
    assert_refused(again, "frequency_limit")


def test_the_orphans_aid_is_not_paid_to_a_bank_account(engine):
    with pytest.raises(ApplicationError) as failure:
        engine.decide(application(A7, ORPHAN, submitted_on="2021-11-08", channel="bank"))
    assert failure.value.reason_code == "bad_payment_channel"


# --- Annex 8: river carrier (spec §6.3) -----------------------------------------------------

A8 = "zaporizhzhia.river-carrier-compensation"


def river_claim(rows, *, price=kop(500_000), paid_before=0, period="2021-06"):
    facts = {
        "compensation_contract": True,
        "documents_complete": True,
        "contract_price": price,
        "paid_under_contract_before": paid_before,
        "trips": rows,
    }
    return application(
        A8, facts, submitted_on="2021-07-02", period=period, person="river-1", id_kind="edrpou", channel="treasury"
    )


def trip(day: str, direction: str, passengers: int, price: int = kop(20)):
    return {"trip_date": day, "direction": direction, "passengers": passengers, "ticket_price": price}


def test_150_return_passengers_at_20_uah_give_3_000_uah(engine):
    decision = engine.decide(river_claim([trip("2021-06-12", "return", 150)]))
    assert decision.eligible and decision.amount_kop == 150 * kop(20) == kop(3_000)


def test_claims_beyond_the_contract_price_are_paid_only_up_to_it(engine):
    # Contract 500 000; accepted earlier 300 000; this month's statements 220 000 (Σ 520 000).
    rows = [trip("2021-06-05", "outbound", 5_500), trip("2021-06-05", "return", 5_500)]
    decision = engine.decide(river_claim(rows, paid_before=kop(300_000)))
    assert 11_000 * kop(20) == kop(220_000)
    assert decision.amount_kop == kop(500_000) - kop(300_000)  # 20 000 unpaid
    july = [trip("2021-07-03", "outbound", 120), trip("2021-07-03", "return", 110)]
    exhausted = engine.decide(river_claim(july, paid_before=kop(500_000), period="2021-07"))
    assert_refused(exhausted, "contract_price_not_exhausted")


def test_the_river_budget_rule_is_within_allocations_without_proration(catalog):
    # A8-03 (2021 allocation 0.000 kUAH) is decided by the budget ledger's allocation, not a rule.
    spec = catalog.get(A8).spec
    assert spec.budget.policy == "first_come" and "L1260" in spec.budget.source
    assert "Додаток 8" in spec.budget.clause_uk and "L1260" not in spec.budget.clause_uk


# --- Task 1 (spec §6.7) --------------------------------------------------------------------


def t1(engine, program: str, facts: dict, **options):
    options.setdefault("submitted_on", "2021-04-15")
    return engine.decide(application(f"zaporizhzhia.{program}", facts, **options))


def test_a_child_with_disability_who_has_cancer_gets_10_000_uah(engine):
    facts = {
        "registered_in_zaporizhzhia": True,
        "child_id": "child-1",
        "child_birth_date": "2012-05-01",
        "child_has_disability": True,
        "child_has_oncology": True,
    }
    decision = t1(engine, "disabled-children-oncology", facts)
    assert decision.eligible and decision.amount_kop == kop(10_000)


def test_a_family_raising_5_children_gets_2_500_uah_and_a_family_of_4_is_not_eligible(engine):
    five = t1(engine, "large-families-five-children", {"registered_in_zaporizhzhia": True, "children_raised": 5},
              household_id="hh-5")
    four = t1(engine, "large-families-five-children", {"registered_in_zaporizhzhia": True, "children_raised": 4},
              household_id="hh-4", person=2)
    assert five.eligible and five.amount_kop == kop(2_500)
    assert_refused(four, "five_or_more_children")


ATO = {"registered_in_zaporizhzhia": True, "direct_ato_jfo_participant": True, "ato_jfo_status": "combat_participant"}


def test_an_ato_combat_participant_who_got_the_3_000_uah_aid_in_2018_is_excluded(engine):
    engine.history.record(
        Grant(
            keys=(f"rnokpp:{rnokpp(7)}",),
            program_id="zaporizhzhia.ato-participants-one-off",
            application_id="legacy-2018-0007",
            on=dt.date(2018, 5, 14),
            period="2018-05",
        )
    )
    assert_refused(t1(engine, "ato-participants-one-off", ATO, person=7), "not_received_in_2015_2020")


def test_an_ato_combat_participant_who_declares_the_aid_received_in_2016_is_excluded(engine):
    decision = t1(engine, "ato-participants-one-off", {**ATO, "received_in_2015_2020": True})
    assert_refused(decision, "not_received_in_2015_2020")


def test_an_ato_combat_participant_who_never_got_it_gets_3_000_uah(engine):
    decision = t1(engine, "ato-participants-one-off", ATO)
    assert decision.eligible and decision.amount_kop == kop(3_000)


def test_an_ato_war_disabled_person_gets_both_the_3_000_and_the_1_000_uah_aids(engine):
    one_off = t1(engine, "ato-participants-one-off", {**ATO, "ato_jfo_status": "war_disabled"})
    disabled = t1(engine, "ato-war-disabled",
                  {"registered_in_zaporizhzhia": True, "ato_jfo_participant": True, "war_disabled": True})
    assert one_off.amount_kop + disabled.amount_kop == kop(4_000)


def ato_burial(season: str, costs: int, **changes):
    facts = {
        "registered_in_zaporizhzhia": True,
        "deceased_id": "death-record-1",
        "killed_in_ato_jfo": True,
        "season": season,
        "burial_costs": costs,
        "buried_outside_city": False,
    }
    facts.update(changes)
    return facts


def burial_claim(engine, program: str, facts: dict, on: str = "2021-02-10"):
    return t1(engine, program, facts, submitted_on=on, person="ritual-service", id_kind="edrpou", channel="treasury")


def test_an_ato_burial_in_winter_costing_21_000_uah_is_reimbursed_up_to_20_503_40_uah(engine):
    decision = burial_claim(engine, "ato-burial", ato_burial("winter", kop(21_000)))
    assert decision.eligible and decision.amount_kop == kop(20_503, 40)


def test_an_ato_burial_in_summer_costing_15_000_uah_is_reimbursed_in_full(engine):
    decision = burial_claim(engine, "ato-burial", ato_burial("summer", kop(15_000)))
    assert decision.amount_kop == kop(15_000)


def test_an_ato_burial_outside_the_city_adds_the_transport_services_to_the_cap(engine):
    facts = ato_burial("summer", kop(25_000), buried_outside_city=True, transport_costs=kop(3_200))
    decision = burial_claim(engine, "ato-burial", facts)
    assert decision.amount_kop == kop(19_786, 10) + kop(3_200)


def test_a_second_burial_claim_for_the_same_fallen_defender_is_refused(engine):
    assert burial_claim(engine, "ato-burial", ato_burial("summer", kop(15_000))).eligible
    again = burial_claim(engine, "ato-burial", ato_burial("summer", kop(4_000)), on="2021-03-01")
    assert_refused(again, "frequency_limit")


FAMILY_ADULT = {"registered_in_zaporizhzhia": True, "family_status": "ato_jfo_fallen_family_member"}


def test_a_family_member_of_a_fallen_ato_defender_aged_exactly_18_gets_8_000_uah(engine):
    decision = t1(engine, "ato-fallen-family-adults", FAMILY_ADULT, birth_date="2003-04-15")
    assert decision.eligible and decision.amount_kop == kop(8_000)
    minor = t1(engine, "ato-fallen-family-adults", FAMILY_ADULT, birth_date="2003-04-16", person=2)
    assert_refused(minor, "aged_18_or_more")


def test_a_17_year_old_with_family_member_status_gets_12_000_uah(engine):
    facts = {
        "registered_in_zaporizhzhia": True,
        "child_id": "child-17",
        "child_birth_date": "2003-09-01",
        "child_has_fallen_family_status": True,
    }
    decision = t1(engine, "ato-fallen-family-minors", facts)
    assert decision.eligible and decision.amount_kop == kop(12_000)
    adult = t1(engine, "ato-fallen-family-minors", {**facts, "child_id": "child-18", "child_birth_date": "2003-04-15"})
    assert_refused(adult, "minor")


def test_the_burial_of_a_parent_of_a_serviceman_killed_in_afghanistan_in_summer_is_capped_at_7_907_50_uah(engine):
    facts = {
        "registered_in_zaporizhzhia": True,
        "deceased_id": "death-record-2",
        "deceased_parent_of_serviceman_killed_abroad": True,
        "season": "summer",
        "burial_costs": kop(9_000),
    }
    decision = burial_claim(engine, "afghanistan-parents-burial", facts)
    assert decision.eligible and decision.amount_kop == kop(7_907, 50)
    winter = burial_claim(engine, "afghanistan-parents-burial", {**facts, "deceased_id": "d-3", "season": "winter"})
    assert winter.amount_kop == kop(8_700, 80)


def test_a_wwii_combat_participant_gets_1_000_uah_in_2021(engine):
    decision = t1(engine, "wwii-veterans", {"registered_in_zaporizhzhia": True, "wwii_status": "combat_participant"},
                  submitted_on="2021-04-20")
    assert decision.eligible and decision.amount_kop == kop(1_000)
    again = t1(engine, "wwii-veterans", {"registered_in_zaporizhzhia": True, "wwii_status": "combat_participant"},
               submitted_on="2021-04-28")
    assert_refused(again, "frequency_limit")


def test_an_applicant_registered_outside_zaporizhzhia_is_not_eligible(engine):
    decision = t1(engine, "liberators", {"registered_in_zaporizhzhia": False, "liberator_of_zaporizhzhia": True})
    assert_refused(decision, "resident")


@pytest.mark.parametrize(
    ("program", "facts", "uah"),
    [
        ("liberators", {"liberator_of_zaporizhzhia": True}, 3_600),
        ("fallen-servicemen-families", {"parent_or_family_member": True, "serviceman_killed_died_or_missing": True}, 8_000),
        ("afghanistan-fallen-families", {"family_member_of_serviceman_killed_abroad": True}, 8_000),
        ("afghanistan-disabled-from-childhood", {"disabled_from_childhood": True, "parent_killed_abroad": True}, 12_000),
        ("afghanistan-war-disabled", {"combat_participant_abroad": True, "war_disabled": True}, 1_000),
        ("ato-war-disabled", {"ato_jfo_participant": True, "war_disabled": True}, 1_000),
    ],
)
def test_each_stated_task_1_amount_is_paid_to_an_eligible_resident(engine, program, facts, uah):
    decision = t1(engine, program, {"registered_in_zaporizhzhia": True, **facts})
    assert decision.eligible and decision.amount_kop == kop(uah)


# --- Task 2 and Task 14 (spec §6.8, §6.6) ---------------------------------------------------


def test_an_honorary_citizen_gets_6_000_uah_for_december_2021_not_6_500(engine):
    decision = engine.decide(
        application(
            "zaporizhzhia.honorary-citizens-reward",
            {"honorary_citizen_title": True},
            submitted_on="2021-12-02",
            period="2021-12",
        )
    )
    assert decision.eligible and decision.amount_kop == MIN_WAGE_1_JAN_2021
    assert [p.effective_from for p in decision.parameters] == [dt.date(2021, 1, 1)]


def test_a_person_without_the_honorary_title_gets_no_reward(engine):
    decision = engine.decide(
        application("zaporizhzhia.honorary-citizens-reward", {"honorary_citizen_title": False}, submitted_on="2021-06-02")
    )
    assert_refused(decision, "honorary_citizen")


@pytest.mark.parametrize(("limit_uah", "local_uah", "state_uah"), [(654_348, 458_044, 196_304), (632_261, 442_583, 189_678)])
def test_the_city_pays_70_percent_of_the_housing_cost_limit_rounded_to_whole_hryvnias(engine, limit_uah, local_uah, state_uah):
    assert half_up(limit_uah * 70, 100) == local_uah and limit_uah - local_uah == state_uah  # 004:L41-49
    facts = {
        "from_among_orphans": True,
        "local_commission_decision": True,
        "regional_commission_decision": True,
        "housing_cost_limit": kop(limit_uah),
    }
    decision = engine.decide(application("zaporizhzhia.orphan-housing-cofinancing", facts, submitted_on="2021-11-10"))
    assert decision.eligible and decision.amount_kop == kop(local_uah)


# --- the catalogue -------------------------------------------------------------------------


def cites_the_programme(clause: str) -> bool:
    """A clause names the Programme's task or annex; seed line pointers (004:L…) and spec ids (BR-…)
    are kept out of it (they live in the sibling ``source`` and the decision's operator section)."""
    return ("Завдання" in clause or "Додат" in clause) and "004:L" not in clause and "BR-" not in clause


def test_every_zaporizhzhia_program_cites_its_clauses_and_refuses_in_ukrainian(catalog):
    programs = [p for p in catalog.programs.values() if p.spec.city == "zaporizhzhia"]
    assert len(programs) >= 25
    for program in programs:
        spec = program.spec
        assert spec.legal_basis.seed.startswith("004:L"), spec.id
        assert cites_the_programme(spec.budget.clause_uk), spec.id
        assert spec.readings_uk, spec.id
        for version in spec.rules:
            for condition in version.conditions:
                assert cites_the_programme(condition.clause_uk) and UKRAINIAN.search(condition.refusal_uk), (
                    spec.id,
                    condition.id,
                )
            assert cites_the_programme(version.amount.clause_uk), spec.id
        for name, parameter in program.local_parameters.items():
            assert all(v.reference for v in parameter.values), (spec.id, name)


def test_every_synthetic_zaporizhzhia_example_is_decided_and_about_a_fifth_are_refused(catalog):
    lines = (Path(__file__).resolve().parents[2] / "examples" / "zaporizhzhia.jsonl").read_text().splitlines()
    engine = Engine(catalog)
    decisions = [engine.decide(ApplicationSubmitted.model_validate_json(line)) for line in lines]
    assert len(decisions) >= 80
    assert {d.program_id for d in decisions} == {p for p in catalog.programs if p.startswith("zaporizhzhia.")}
    assert all(d.application.submitted_on.year == 2021 for d in decisions)
    refused = [d for d in decisions if not d.eligible]
    assert 0.15 <= len(refused) / len(decisions) <= 0.25
    assert all(len(refused_by(d)) == 1 for d in refused)  # each built to fail one named rule
    assert all(d.amount_kop > 0 for d in decisions if d.eligible)


# --- issue 14: bus classes printed in Cyrillic (004:L950) ------------------------------------


@pytest.mark.parametrize(("cyrillic", "latin"), [("А", "A"), ("І", "I"), ("ІІ", "II")])
def test_a_bus_whose_class_is_printed_in_cyrillic_is_paid_like_the_same_class_in_latin(engine, cyrillic, latin):
    assert cyrillic != latin  # «А», «І» are Cyrillic letters, as the Annex and the carriers' form print them
    printed = engine.decide(carrier_claim([bus(vehicle_class=cyrillic, contract_class=cyrillic)], person=f"c-{latin}"))
    mixed = engine.decide(
        carrier_claim([bus(vehicle_class=cyrillic, contract_class=latin)], person=f"m-{latin}", period="2021-04")
    )
    assert printed.eligible and printed.amount_kop == kop(10_416) and excluded_items(printed) == []
    assert mixed.eligible and mixed.amount_kop == kop(10_416)


def test_a_cyrillic_class_i_bus_on_a_route_contracted_for_class_ii_is_still_excluded(engine):
    rows = [bus(), bus(plate="AP0006AA", vehicle_class="І", contract_class="ІІ")]
    decision = engine.decide(carrier_claim(rows, person="c-mismatch"))
    assert decision.amount_kop == kop(10_416) and excluded_items(decision) == [2]


# --- issue 14: Task 1 hot meals, Task 3 grants, Task 4 rail and «Запоріжелектротранс» ---------

MEALS = {
    "organiser_engaged_by_district_uszn": True,
    "autumn_winter_period": True,
    "for_target_groups": True,
    "portions_served": 1_200,
    "portion_cost": kop(23, 50),
}


def meals(facts, person="meals-1", period="2021-11"):
    return application(
        "zaporizhzhia.hot-meals", facts, submitted_on="2021-12-03", period=period, person=person,
        id_kind="edrpou", channel="treasury",
    )


def test_in_november_2021_1_200_portions_at_23_50_uah_are_paid_28_200_uah(engine):
    decision = engine.decide(meals(MEALS))
    assert 1_200 * 23.5 == 28_200
    assert decision.eligible and decision.amount_kop == kop(28_200)


def test_portions_costing_27_uah_are_paid_at_the_25_uah_cap(engine):
    decision = engine.decide(meals({**MEALS, "portion_cost": kop(27)}, person="meals-2"))
    assert decision.eligible and decision.amount_kop == 1_200 * kop(25)


def test_hot_meals_outside_the_autumn_winter_period_are_refused(engine):
    assert_refused(engine.decide(meals({**MEALS, "autumn_winter_period": False}, person="meals-3")), "autumn_winter")


def grant(kind: str, person: str, **changes):
    facts = {"grant": kind, "applicant_is_named_recipient": True, "veterans_association": True, "marathon_held": True}
    facts.update(changes)
    return application(
        "zaporizhzhia.veterans-ngo-marathon-grants", facts, submitted_on="2021-09-20", person=person,
        id_kind="edrpou", channel="treasury",
    )


def test_the_memory_marathon_pays_100_000_uah_to_the_city_veterans_and_20_000_uah_to_the_war_invalids(engine):
    veterans = engine.decide(grant("memory_marathon_city_veterans_organisation", "ngo-1"))
    invalids = engine.decide(grant("memory_marathon_war_invalids_organisation", "ngo-2"))
    assert veterans.amount_kop + invalids.amount_kop == kop(120_000)  # «у розмірі 120,000тис.грн.»
    assert veterans.amount_kop == kop(100_000) and invalids.amount_kop == kop(20_000)


def test_the_armed_forces_day_marathon_grant_of_100_000_uah_is_paid_once_a_year(engine):
    first = engine.decide(grant("armed_forces_day_marathon", "ngo-3"))
    second = engine.decide(grant("armed_forces_day_marathon", "ngo-4"))
    assert first.eligible and first.amount_kop == kop(100_000)
    assert_refused(second, "frequency_limit")


def test_an_organisation_the_programme_does_not_name_gets_no_marathon_grant(engine):
    decision = engine.decide(grant("memory_marathon_city_veterans_organisation", "ngo-5", applicant_is_named_recipient=False))
    assert_refused(decision, "named_recipient")


def rail_row(category="пенсіонери за віком", social=True, trips=5_000, fare=kop(12)):
    return {"category": category, "social_ground": social, "trips": trips, "fare": fare}


def rail(rows, person="rail-1"):
    return application(
        "zaporizhzhia.suburban-rail-compensation", {"suburban_rail_carrier": True, "trips": rows},
        submitted_on="2021-07-05", period="2021-06", person=person, id_kind="edrpou", channel="treasury",
    )


def test_5_000_social_ground_trips_at_12_uah_give_60_000_uah_and_other_categories_are_excluded(engine):
    rows = [rail_row(), rail_row(category="учасники бойових дій", social=False, trips=800)]
    decision = engine.decide(rail(rows))
    assert decision.eligible and decision.amount_kop == 5_000 * kop(12) == kop(60_000)
    assert excluded_items(decision) == [2]


def test_a_rail_claim_without_trips_of_persons_entitled_on_social_grounds_is_refused(engine):
    assert_refused(engine.decide(rail([rail_row(social=False)], person="rail-2")), "social_ground_trips")


def zet_pass(family: str, parent: str, registered=True, certificate=True, price=kop(300)):
    return {
        "family_id": family,
        "parent_id": parent,
        "large_family_certificate": certificate,
        "registered_in_zaporizhzhia": registered,
        "pass_price": price,
    }


def zet(passes, person="zet-1"):
    return application(
        "zaporizhzhia.large-family-transport-passes", {"applicant_is_zaporizhelektrotrans": True, "passes": passes},
        submitted_on="2021-05-05", period="2021-04", person=person, id_kind="edrpou", channel="treasury",
    )


def test_passes_of_three_large_family_parents_at_300_uah_give_900_uah_and_one_registered_elsewhere_is_excluded(engine):
    passes = [zet_pass("f1", "p1"), zet_pass("f2", "p2"), zet_pass("f3", "p3"), zet_pass("f4", "p4", registered=False)]
    decision = engine.decide(zet(passes))
    assert decision.eligible and decision.amount_kop == 3 * kop(300)
    assert excluded_items(decision) == [4]


def test_a_register_with_passes_for_both_parents_of_one_family_is_returned(engine):
    passes = [zet_pass("f1", "p1"), zet_pass("f1", "p1-spouse")]
    assert_refused(engine.decide(zet(passes, person="zet-2")), "one_parent_per_family")
