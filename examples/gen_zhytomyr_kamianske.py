"""Generate synthetic applications for the Zhytomyr and Kamianske programs.

    .venv/bin/python examples/gen_zhytomyr_kamianske.py

Writes ``examples/zhytomyr.jsonl`` (dates in 2023) and ``examples/kamianske.jsonl``
(dates in 2021): one ``ApplicationSubmitted`` JSON per line. Deterministic (fixed seed,
no clock). People are synthetic: names are drawn from common Ukrainian names that do
not occur in the seeds, identifiers are checksum-valid but derived from a counter.
About one application in five is built to be refused, each by one named condition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.events import Applicant, ApplicationSubmitted, Payment
from tests.factories import edrpou

HERE = Path(__file__).resolve().parent
IBAN = "UA213223130000026007233566001"  # checksum-valid synthetic UA IBAN (bank code 322313)
SURNAMES = "Ткаченко Мельник Шевчук Коваль Олійник Лисенко Гончаренко Руденко Савченко Петренко Левченко Марченко Кушнір Дорошенко Яковенко Гнатюк Поліщук Остапенко Демченко".split()
GIVEN = "Оксана Ірина Тарас Богдан Мирослава Степан Галина Назар Ярина Остап Соломія Василь Ганна Андрій Олена Дмитро Наталія".split()
REFUSE_EVERY = 5  # every fifth application overall is built to be refused (20 %)

Facts = dict[str, Any]
# builder(rng, refuse) -> (facts, options); options may set period, birth_date, household, channel
Builder = Callable[[random.Random, bool], tuple[Facts, dict[str, Any]]]


def rnokpp(seed: str) -> str:
    digits = str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:9].rjust(9, "1")
    weights = (-1, 5, 7, 9, 4, 6, 10, 5, 7)
    check = (sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11) % 10
    return digits + str(check)


def iso(day: dt.date) -> str:
    return day.isoformat()


def day_in(rng: random.Random, year: int, first_month: int = 1, last_month: int = 12) -> dt.date:
    month = rng.randint(first_month, last_month)
    return dt.date(year, month, rng.randint(1, 28))


def born(rng: random.Random, on: dt.date, min_age: int, max_age: int) -> dt.date:
    age = rng.randint(min_age, max_age)
    return dt.date(on.year - age, rng.randint(1, 12), rng.randint(1, 28))


def ident(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{rng.randrange(10**6):06d}"


# --- Zhytomyr (2023) ------------------------------------------------------------------------


def z_centenarians(rng, refuse, on):
    birth = on.replace(year=on.year - 99) if refuse else born(rng, on, 101, 103)
    return {"resident_of_community": True}, {"birth_date": birth}


def z_fallen(rng, refuse, on):
    facts = {
        "resident_of_community": True,
        "deceased_id": ident(rng, "dec"),
        "applicant_is_family_member": True,
        "deceased_was_defender_or_serviceman": True,
        "died_of_injury_on_duty": True,
        "injury_in_ato_jfo_zone_direct_participation": not refuse,  # 2023 text: outside the zone -> refused
    }
    return facts, {}


def z_triplets(rng, refuse, on):
    count = 2 if refuse else rng.choice([3, 3, 3, 4])
    births = on.replace(day=1) - dt.timedelta(days=rng.randint(60, 900))
    return {
        "resident_of_community": True,
        "birth_record_id": ident(rng, "ar"),
        "children_born_at_one_birth": count,
        "children_birth_date": iso(births),
        "children_in_family": count,
    }, {"period": f"{on.year}-{on.month:02d}"}


def z_children_of_fallen(rng, refuse, on):
    child = born(rng, on, 19 if refuse else 1, 19 if refuse else 16)
    return {
        "resident_of_community": True,
        "child_id": ident(rng, "ch"),
        "child_birth_date": iso(child),
        "parent_fallen_serviceman": True,
        "applicant_is_legal_representative": True,
    }, {"period": f"{on.year}-{on.month:02d}"}


def z_donors(rng, refuse, on):
    return {"resident_of_community": True, "honoured_donor_title": not refuse}, {
        "period": f"{on.year}-{on.month:02d}"
    }


def z_large(rng, refuse, on):
    size = rng.randint(3, 5) if refuse else rng.randint(6, 9)
    children = [{"born_on": born(rng, on, 0, 24).isoformat()} for _ in range(size)]
    return {"resident_of_community": True, "children": children}, {"household": True}


def z_visual(rng, refuse, on):
    return {
        "resident_of_community": True,
        "disability_group": "3" if refuse else rng.choice(["1", "2"]),
        "disability_by_vision": True,
    }, {}


def z_honorary(rng, refuse, on):
    category = rng.choice(["honorary_citizen", "child_of_deceased_honorary_citizen"])
    if category == "honorary_citizen":
        birth = born(rng, on, 60, 90)
    else:
        birth = on.replace(year=on.year - 18) if refuse else born(rng, on, 5, 16)  # refused: 18 that day
    facts = {
        "beneficiary_id": ident(rng, "hc"),
        "beneficiary_category": category,
        "honorary_citizen_status_confirmed": True,
        "honorary_citizen_deceased": category != "honorary_citizen",
        "beneficiary_birth_date": iso(birth),
        "approved_amount": 0
        if refuse and category == "honorary_citizen"
        else rng.choice([3_000_00, 5_000_00]),
    }
    return facts, {}


def z_chornobyl(rng, refuse, on):
    return {
        "resident_of_community": True,
        "chornobyl_affected_status": not refuse,
        "travel_documents_provided": True,
        "documented_travel_cost": rng.randint(600_00, 3_200_00),
    }, {}


def z_haemodialysis(rng, refuse, on):
    return {
        "resident_of_community": True,
        "kidney_failure_on_haemodialysis": True,
        "significant_activity_limitations": True,
        "confirmed_by_health_department": not refuse,
        "dialysis_in_zhytomyr": True,
        "documented_transport_costs": rng.randint(3_800_00, 7_200_00),
    }, {"period": f"{on.year}-{on.month:02d}"}


def z_burial_executor(rng, refuse, on):
    return {
        "deceased_id": ident(rng, "dec"),
        "deceased_registered_in_community": True,
        "applicant_role": "other" if refuse else rng.choice(["will_executor", "undertook_burial"]),
        "deceased_in_programme_category": True,
        "assigned_amount": rng.choice([1_500_00, 2_000_00, 2_500_00, 3_000_00]),
    }, {}


def z_fuel(rng, refuse, on):
    return {
        "resident_of_community": True,
        "special_labour_merits": not refuse,
        "documented_fuel_costs": rng.randint(2_200_00, 3_100_00),
    }, {"period": f"{on.year}-{on.month:02d}"}


def z_sanatorium(rng, refuse, on):
    return {
        "resident_of_community": True,
        "family_member_of_fallen_ato_participant": not refuse,
        "treatment_id": ident(rng, "voucher"),
        "treatment_completed": True,
        "documented_treatment_cost": rng.randint(12_000_00, 26_000_00),
    }, {}


def z_treatment(rng, refuse, on):
    return {
        "resident_of_community": True,
        "category": rng.choice(["ato_jfo_participant", "family_member_of_fallen_ato_jfo_participant"]),
        "treatment_id": ident(rng, "discharge"),
        "oblast_cofinancing_confirmed": not refuse,
        "documented_treatment_costs": rng.randint(4_000_00, 30_000_00),
    }, {}


# --- privileges paid to the provider (issue 14, item 1): a provider's monthly register ----------

PROVIDERS = ["КП «Житлосервіс»", "ОСББ «Затишок»", "КП «Водоканал»", "ТОВ «Теплоенерго»", "КП «Управляюча компанія»"]
TELECOM = ["АТ «Укртелеком»", "ТОВ «Міськтелеком»"]


def previous_period(on: dt.date) -> str:
    first = on.replace(day=1) - dt.timedelta(days=1)
    return f"{first.year}-{first.month:02d}"


def privilege_row(rng, category: str, service: str, resident_field: str) -> Facts:
    household = rng.randint(1, 5)
    norm = rng.randint(600_00, 2_400_00)
    billed = norm + rng.choice([0, 0, -rng.randint(50_00, 400_00), rng.randint(50_00, 600_00)])  # over the norm: flagged
    return {
        "account": f"{rng.randint(100000, 999999)}",
        "beneficiary_id": rnokpp(f"pb-{rng.randint(1, 10**9)}"),
        "category": category,
        "service": service,
        "billed_kop": billed,
        "norm_kop": norm,
        "members_covered": rng.randint(1, household),
        "household_size": household,
        resident_field: True,
    }


def privilege_share(row: Facts, rates: dict[str, int], members: int | None = None) -> int:
    n = (min(row["billed_kop"], row["norm_kop"]) * (members or row["members_covered"]) * rates[row["service"]])
    d = row["household_size"] * 10000
    return (2 * n + d) // (2 * d)  # half up


def privilege_register(rng, refuse, on, *, category, rates, resident_field, other_category, members_one=False):
    rows = []
    for _ in range(rng.randint(2, 4)):
        row = privilege_row(rng, category, rng.choice(["housing", "utilities"]), resident_field)
        rows.append(row)
    rows.append({**privilege_row(rng, other_category, "utilities", resident_field)})  # another category: excluded
    total = sum(privilege_share(r, rates, 1 if members_one else None) for r in rows if r["category"] == category)
    printed = total if rng.random() < 0.7 else total + rng.randint(1_00, 90_00)  # a provider's sum off: flagged
    facts = {"register": [] if refuse else rows, "printed_total_kop": 0 if refuse else printed}
    return facts, {"period": previous_period(on), "org": True, "name": rng.choice(PROVIDERS)}


def telecom_register(rng, refuse, on, resident_field):
    grounds = [("ст. 12 Закону України «Про статус ветеранів війни, гарантії їх соціального захисту»", 5000),
               ("ст. 15 Закону України «Про статус ветеранів війни, гарантії їх соціального захисту»", 5000),
               ("ст. 20 Закону України «Про статус і соціальний захист громадян, які постраждали внаслідок Чорнобильської катастрофи»", 5000)]
    rows = []
    for _ in range(rng.randint(3, 6)):
        ground, rate = rng.choice(grounds)
        rows.append({"account": f"0412{rng.randint(100000, 999999)}", "beneficiary_id": rnokpp(f"tb-{rng.randint(1, 10**9)}"),
                     "law_ground": ground, "rate_bp": rate, "billed_kop": rng.choice([120_00, 150_00, 180_00]),
                     resident_field: rng.random() > 0.1})
    total = sum((2 * r["billed_kop"] * r["rate_bp"] + 10000) // 20000 for r in rows if r[resident_field])
    facts = {"register": [] if refuse else rows, "printed_total_kop": 0 if refuse else total}
    return facts, {"period": previous_period(on), "org": True, "name": rng.choice(TELECOM)}


def z_housing_exemption(rng, refuse, on):
    return privilege_register(rng, refuse, on, category="family_of_fallen_defender",
                              rates={"housing": 5000, "utilities": 5000}, resident_field="resident_of_community",
                              other_category="ato_jfo_participant")


def z_communication(rng, refuse, on):
    return telecom_register(rng, refuse, on, "resident_of_community")


def k_ato_housing(rng, refuse, on):
    return privilege_register(rng, refuse, on, category="ato_serviceman", rates={"housing": 10000, "utilities": 5000},
                              resident_field="resident_of_city", other_category="veteran")


def k_volunteer_housing(rng, refuse, on):
    return privilege_register(rng, refuse, on, category="volunteer_fighter", rates={"housing": 5000, "utilities": 5000},
                              resident_field="resident_of_city", other_category="ato_serviceman", members_one=True)


def k_fallen_family_housing(rng, refuse, on):
    return privilege_register(rng, refuse, on, category="family_of_fallen_serviceman",
                              rates={"housing": 5000, "utilities": 5000}, resident_field="resident_of_city",
                              other_category="veteran")


# --- issue 14, helper A: rates the seeds do not give (inferred parameters), the postal channel cost -----

POSTAL_OPERATORS = ["АТ «Укрпошта»"]
TASK_1_1 = ["zhytomyr.centenarians", "zhytomyr.honoured-donors", "zhytomyr.large-families", "zhytomyr.triplets",
            "zhytomyr.visual-disability-utilities", "zhytomyr.burial-executor", "zhytomyr.burial-assistance"]


def z_visual_privilege(rng, refuse, on):
    return privilege_register(rng, refuse, on, category="visual_disability_1_2",
                              rates={"housing": 5000, "utilities": 5000}, resident_field="resident_of_community",
                              other_category="honoured_donor")


def z_donor_privilege(rng, refuse, on):
    return privilege_register(rng, refuse, on, category="honoured_donor",
                              rates={"housing": 5000, "utilities": 5000}, resident_field="resident_of_community",
                              other_category="visual_disability_1_2", members_one=True)


def postal_fee(row: Facts) -> int:
    rate = 265 if row["rural"] else 130  # from 01.04.2021 (inferred, awaiting confirmation)
    return (2 * row["delivered_kop"] * rate + 10000) // 20000  # half up, per row


def z_postal(rng, refuse, on):
    rows = []
    for program in rng.sample(TASK_1_1, rng.randint(2, 4)):
        payments = rng.randint(1, 6)
        rows.append({"program": program, "payments": payments,
                     "delivered_kop": payments * rng.choice([500_00, 1_000_00, 2_272_00, 4_500_00, 10_000_00]),
                     "rural": rng.random() < 0.2})
    rows.append({"program": "zhytomyr.children-of-fallen", "payments": 1, "delivered_kop": 1_136_00, "rural": False})
    total = sum(postal_fee(r) for r in rows if r["program"] in TASK_1_1)
    facts = {"register": [] if refuse else rows, "printed_total_kop": 0 if refuse else total}
    return facts, {"period": previous_period(on), "org": True, "name": rng.choice(POSTAL_OPERATORS)}


def z_burial_assistance(rng, refuse, on):
    return {
        "deceased_id": ident(rng, "dcs"),
        "deceased_registered_in_community": True,
        "applicant_buried": not refuse,
        "deceased_in_programme_category": True,
        "assigned_amount": rng.choice([10_000_00, 12_500_00, 15_000_00, 20_000_00]),
    }, {}


def k_local_privilege(rng, refuse, on, category, family):
    """A Kamianske register of the 2018-2022 programme: housing, utilities and a phone-line rental row."""
    rates = {"housing": 5000, "utilities": 5000}
    facts, options = privilege_register(rng, refuse, on, category=category, rates=rates,
                                        resident_field="resident_of_city", other_category="veteran",
                                        members_one=not family)
    if not refuse:
        rental = rng.choice([120_00, 150_00, 180_00])
        facts["register"].append({"account": f"0569{rng.randint(100000, 999999)}",
                                  "beneficiary_id": rnokpp(f"pb-{rng.randint(1, 10**9)}"), "category": category,
                                  "service": "phone_rental", "billed_kop": rental, "norm_kop": rental,
                                  "members_covered": 1, "household_size": 1, "resident_of_city": True})
        facts["printed_total_kop"] += rental // 2
    return facts, options


def k_afghan_privilege(rng, refuse, on):
    return k_local_privilege(rng, refuse, on, "family_of_fallen_afghan_veteran", family=True)


def k_tram_privilege(rng, refuse, on):
    return k_local_privilege(rng, refuse, on, "tram_accident_victim", family=False)


def k_visual_privilege(rng, refuse, on):
    return k_local_privilege(rng, refuse, on, "visual_disability_1_2", family=False)


def k_honorary_privilege(rng, refuse, on):
    return k_local_privilege(rng, refuse, on, "honorary_citizen", family=False)


ZHYTOMYR: dict[str, Builder] = {
    "zhytomyr.centenarians": z_centenarians,
    "zhytomyr.fallen-defenders-families": z_fallen,
    "zhytomyr.triplets": z_triplets,
    "zhytomyr.children-of-fallen": z_children_of_fallen,
    "zhytomyr.honoured-donors": z_donors,
    "zhytomyr.large-families": z_large,
    "zhytomyr.visual-disability-utilities": z_visual,
    "zhytomyr.honorary-citizens": z_honorary,
    "zhytomyr.chornobyl-travel": z_chornobyl,
    # added for issue 14 (after the others, so their examples stay as they were)
    "zhytomyr.haemodialysis-transport": z_haemodialysis,
    "zhytomyr.burial-executor": z_burial_executor,
    "zhytomyr.fuel-compensation-labour-merits": z_fuel,
    "zhytomyr.fallen-ato-families-sanatorium": z_sanatorium,
    "zhytomyr.ato-treatment-cofinancing": z_treatment,
    # privileges paid to the provider (after the others, so their examples stay as they were)
    "zhytomyr.fallen-defenders-families-housing-exemption": z_housing_exemption,
    "zhytomyr.communication-privileges": z_communication,
    # rates the seeds do not give, the postal channel cost, burial 1.1.10 (after the others, so theirs stay)
    "zhytomyr.visual-disability-housing-privilege": z_visual_privilege,
    "zhytomyr.honoured-donors-housing-privilege": z_donor_privilege,
    "zhytomyr.postal-delivery-costs": z_postal,
    "zhytomyr.burial-assistance": z_burial_assistance,
}
ZHYTOMYR_DISTRICTS = ["Богунський", "Корольовський"]

# --- Kamianske (2021) -----------------------------------------------------------------------

RES = {"resident_of_city": True}


def monthly(on):
    return {"period": f"{on.year}-{on.month:02d}"}


def k_fallen_monthly(rng, refuse, on):
    return {**RES, "family_member_of_fallen_ato_serviceman": not refuse}, monthly(on)


def k_police(rng, refuse, on):
    return {**RES, "family_member_of_fallen_police_officer": not refuse}, monthly(on)


def k_rehabilitated(rng, refuse, on):
    return {**RES, "rehabilitated_under_articles_1_2": not refuse}, monthly(on)


def k_burial(rng, refuse, on):
    role = "other" if refuse else rng.choice(["will_executor", "undertook_burial"])
    return {
        **RES,
        "deceased_id": ident(rng, "dec"),
        "applicant_role": role,
        "deceased_in_programme_category": True,
    }, {}


def k_land(rng, refuse, on):
    return {**RES, "ato_participant": True, "land_documents_reviewed": not refuse}, {}


def k_birthday(rng, refuse, on):
    child = on.replace(year=on.year - 18) if refuse else born(rng, on, 1, 16)
    return {
        **RES,
        "child_id": ident(rng, "ch"),
        "child_birth_date": iso(child),
        "parent_fallen_serviceman": True,
    }, {}


def k_demobilisation(rng, refuse, on):
    wounded = rng.random() < 0.3
    return {
        **RES,
        "service_status": "other"
        if refuse
        else rng.choice(["demobilised_ato_participant", "seconded_to_ato_zone"]),
        "wounded": wounded,
        "requested_amount": rng.choice([6_000_00, 7_500_00, 8_000_00]) if wounded else 0,
        "commission_decision": True,
    }, {}


def k_ato_defender_day(rng, refuse, on):
    return {**RES, "ato_participant": not refuse}, {}


def k_fallen_defender_day(rng, refuse, on):
    return {**RES, "deceased_id": ident(rng, "dec"), "family_member_of_fallen_serviceman": not refuse}, {}


def k_oncology(rng, refuse, on):
    return {**RES, "raises_disabled_child_with_oncology": not refuse}, {**monthly(on), "household": True}


def k_mobile(rng, refuse, on):
    return {**RES, "war_veteran": True, "uses_mobile_service": not refuse}, monthly(on)


def k_centenarian(rng, refuse, on):
    birth = on.replace(year=on.year - 99) if refuse else born(rng, on, 101, 104)
    return {**RES, "stipend_amount": 1_500_00}, {**monthly(on), "birth_date": birth}


def k_disabled_children(rng, refuse, on):
    subgroup_a = False if refuse else rng.random() < 0.8
    count = 1 if refuse or subgroup_a else 2
    return {
        **RES,
        "child_without_walking_function_subgroup_a": subgroup_a,
        "disabled_children_count": count,
        "included_in_mayor_order": True,
        "approved_amount": rng.choice([2_000_00, 2_500_00, 3_000_00]),
    }, {"channel": "post", "household": True}


def k_chornobyl(rng, refuse, on):
    return {
        **RES,
        "liquidator_category": rng.choice(["3", "none"]) if refuse else rng.choice(["1", "2"]),
        "intercity_round_trip_documented": True,
        "documented_travel_cost": rng.randint(400_00, 2_400_00),
    }, {}


def k_current_repair(rng, refuse, on):
    return {
        **RES,
        "ato_combat_participant": True,
        "on_repair_register": True,
        "survey_act_id": ident(rng, "act"),
        "estimate_amount": rng.randint(18_000_00, 52_000_00),
        "commission_decision": not refuse,
    }, {}


def k_family_repair(rng, refuse, on):
    return {
        **RES,
        "family_member_of_fallen_serviceman": True,
        "on_repair_register": not refuse,
        "estimate_amount": rng.randint(20_000_00, 45_000_00),
    }, {"household": True}


def k_capital_repair(rng, refuse, on):
    return {
        **RES,
        "war_disability": True,
        "on_capital_repair_register": True,
        "own_dwelling": not refuse,
        "repair_estimate_id": ident(rng, "est"),
        "determined_repair_cost": rng.randint(60_000_00, 140_000_00),
    }, {}


def k_material(rng, refuse, on):
    protocol = on - dt.timedelta(days=rng.randint(1, 20))
    return {
        **RES,
        "commission_decision_id": "" if refuse else f"{rng.randint(1, 30)}/{rng.randint(1, 120)}",
        "commission_protocol_date": iso(protocol),
        "decided_amount": rng.choice([500_00, 1_000_00, 1_500_00, 2_000_00, 4_250_00]),
    }, {}


KAMIANSKE: dict[str, Builder] = {
    "kamianske.fallen-ato-family-monthly": k_fallen_monthly,
    "kamianske.fallen-police-family-monthly": k_police,
    "kamianske.rehabilitated-monthly": k_rehabilitated,
    "kamianske.burial": k_burial,
    "kamianske.ato-land-documents": k_land,
    "kamianske.fallen-child-birthday": k_birthday,
    "kamianske.ato-demobilisation": k_demobilisation,
    "kamianske.ato-defender-day": k_ato_defender_day,
    "kamianske.fallen-family-defender-day": k_fallen_defender_day,
    "kamianske.disabled-children-oncology-monthly": k_oncology,
    "kamianske.veteran-mobile-compensation": k_mobile,
    "kamianske.centenarian-stipend": k_centenarian,
    "kamianske.disabled-children-one-off": k_disabled_children,
    "kamianske.chornobyl-travel": k_chornobyl,
    # added for issue 14 (after the others, so their examples stay as they were)
    "kamianske.ato-current-repair": k_current_repair,
    "kamianske.fallen-family-current-repair": k_family_repair,
    "kamianske.war-disabled-capital-repair": k_capital_repair,
    "kamianske.material-assistance": k_material,
    # privileges paid to the provider (after the others, so their examples stay as they were)
    "kamianske.ato-servicemen-housing-privilege": k_ato_housing,
    "kamianske.volunteer-fighters-housing-privilege": k_volunteer_housing,
    "kamianske.fallen-family-housing-privilege": k_fallen_family_housing,
    # the remaining categories of 002 L916-917, rates inferred (after the others, so theirs stay)
    "kamianske.afghan-families-housing-privilege": k_afghan_privilege,
    "kamianske.tram-accident-victims-housing-privilege": k_tram_privilege,
    "kamianske.visual-disability-housing-privilege": k_visual_privilege,
    "kamianske.honorary-citizens-housing-privilege": k_honorary_privilege,
}
KAMIANSKE_DISTRICTS = ["Дніпровський", "Заводський", "Південний"]
# Rules of the Kamianske programs are known from the Q2 2021 report: dates from May 2021.
KAMIANSKE_MONTHS = (5, 12)


def generate(
    programs: dict[str, Builder],
    prefix: str,
    year: int,
    months: tuple[int, int],
    districts: list[str],
    per_program: int,
) -> list[ApplicationSubmitted]:
    rng = random.Random(f"dopomoga-{prefix}-{year}")
    out: list[ApplicationSubmitted] = []
    counter = 0
    for program_id, builder in programs.items():
        for _ in range(per_program):
            counter += 1
            on = day_in(rng, year, *months)
            facts, options = builder(rng, counter % REFUSE_EVERY == 0, on)
            person = f"{prefix}-{counter}"
            application_id = f"{prefix}-{year}-{counter:04d}"
            if options.get("org"):  # a provider's register: the organisation applies and is paid by treasury
                channel, applicant_birth, id_kind, identifier = "treasury", None, "edrpou", edrpou(person)
                occurred = dt.datetime.combine(on, dt.time(9, rng.randint(0, 59)), tzinfo=dt.UTC)
                name = options["name"]
            else:  # the same draws, in the same order, as before providers were added
                channel = options.get("channel", rng.choice(["bank", "bank", "post"]))
                applicant_birth = options.get("birth_date") or born(rng, on, 25, 80)
                id_kind, identifier = "rnokpp", rnokpp(person)
                occurred = dt.datetime.combine(on, dt.time(9, rng.randint(0, 59)), tzinfo=dt.UTC)
                name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
            out.append(
                ApplicationSubmitted(
                    event_id=f"ev-{application_id}",
                    occurred_at=occurred,
                    application_id=application_id,
                    program_id=program_id,
                    registry=f"{prefix}-cnap",
                    submitted_on=on,
                    period=options.get("period"),
                    applicant=Applicant(
                        id_kind=id_kind,
                        id=identifier,
                        name=name,
                        birth_date=applicant_birth,
                        household_id=f"{prefix}-hh-{counter}" if options.get("household") else None,
                        district=rng.choice(districts),
                    ),
                    payment=Payment(channel=channel, iban=IBAN if channel in ("bank", "treasury") else None),
                    facts=facts,
                )
            )
    return out


def write(path: Path, applications: list[ApplicationSubmitted]) -> None:
    path.write_text("".join(a.model_dump_json() + "\n" for a in applications), encoding="utf-8")


def main() -> None:
    write(HERE / "zhytomyr.jsonl", generate(ZHYTOMYR, "zt", 2023, (1, 12), ZHYTOMYR_DISTRICTS, per_program=9))
    write(
        HERE / "kamianske.jsonl",
        generate(KAMIANSKE, "km", 2021, KAMIANSKE_MONTHS, KAMIANSKE_DISTRICTS, per_program=6),
    )


if __name__ == "__main__":
    main()
