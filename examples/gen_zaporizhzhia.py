"""Generate synthetic applications for the Zaporizhzhia programs (seed 004, budget year 2021).

    .venv/bin/python examples/gen_zaporizhzhia.py

Writes ``examples/zaporizhzhia.jsonl``: one ``ApplicationSubmitted`` JSON per line, four
per program (three for the marathon grants, one of each kind), every date in 2021.
Deterministic (fixed seed, no clock). Every second bus row prints its class in Cyrillic, as
the carriers' form does. People are synthetic: names are drawn from common Ukrainian names that do not occur in the seeds,
РНОКПП and ЄДРПОУ codes are checksum-valid but derived from a counter
(``tests.factories.rnokpp`` / ``edrpou``). Every fifth application is built to be refused
by one named rule (about 20 %).
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from schemas.events import Applicant, ApplicationSubmitted, Payment  # noqa: E402
from tests.factories import TEST_IBAN, edrpou, rnokpp  # noqa: E402

YEAR = 2021
PER_PROGRAM = 4
REFUSE_EVERY = 5
DISTRICTS = [
    "Вознесенівський", "Дніпровський", "Заводський", "Комунарський", "Олександрівський", "Хортицький", "Шевченківський",
]
SURNAMES = "Ткаченко Мельник Шевчук Коваль Олійник Лисенко Гончаренко Руденко Савченко Петренко Левченко Марченко Кушнір Дорошенко Яковенко Гнатюк Поліщук Остапенко Демченко".split()
GIVEN = "Оксана Ірина Тарас Богдан Мирослава Степан Галина Назар Ярина Остап Соломія Василь Ганна Андрій Олена Дмитро Наталія".split()
CARRIERS = ["ТОВ «Степовий маршрут»", "ТОВ «Дніпро-Автолайн»", "ПП «Хортиця-Транс»", "ТОВ «Південь-Бус»"]
RIVER_CARRIER = "ТОВ «Річкові перевезення Дніпра»"
ACCOMMODATION = "Комунальне підприємство — заклад тимчасового проживання"
RITUAL = "Спеціалізоване комунальне підприємство ритуальних послуг"

Facts = dict[str, Any]
# builder(rng, refuse, on) -> (facts, options); options: period, org, name, channel, household, birth_date
Builder = Callable[[random.Random, bool, dt.date], tuple[Facts, dict[str, Any]]]


def day_in(rng: random.Random, first_month: int = 1, last_month: int = 12, last_day: int = 28) -> dt.date:
    return dt.date(YEAR, rng.randint(first_month, last_month), rng.randint(1, last_day))


def years_before(on: dt.date, low: int, high: int, rng: random.Random) -> dt.date:
    return dt.date(on.year - rng.randint(low, high), rng.randint(1, 12), rng.randint(1, 28))


def previous_month(on: dt.date) -> tuple[str, dt.date, dt.date]:
    last = on.replace(day=1) - dt.timedelta(days=1)
    return f"{last.year}-{last.month:02d}", last.replace(day=1), last


def ident(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{rng.randrange(10**6):06d}"


RES = {"registered_in_zaporizhzhia": True}


# --- Annexes 4-8 ------------------------------------------------------------------------------


def capital_repair(rng, refuse, on):
    facts = {
        "beneficiary_category": rng.choice(
            ["war_disabled_or_equated", "war_veterans_law", "special_merits", "former_minor_prisoner_disabled",
             "spouse_of_deceased_nazi_victim"]
        ),
        "ownership": rng.choice(["owner", "owner", "co_owner"]),
        "dwelling_type": rng.choice(["house", "flat", "flat"]),
        "dwelling_is_permanent_residence": True,
        "total_area_m2_x100": rng.choice([14_00, 18_50, 20_00, rng.randint(21_00, 78_00)]),
        "resident_since_year": rng.randint(1965, 2005),
        "last_free_repair_or_aid_year": rng.randint(1990, 2010),
        "commission_found_need": True,
    }
    # Issue 14: the cost of the works (the aid is at most that cost, Annex 4 p. 13 «Максимальний розмір») and the
    # department commission's protocol (p. 12), derived from the date so that the draws above stay as they were.
    facts["assessed_repair_cost"] = 18_000_00 + on.day * 2_750_00 + on.month * 1_000_00
    facts["grant_protocol_no"] = f"{on.month}/{on.day}"
    facts["grant_protocol_date"] = (on - dt.timedelta(days=3)).isoformat()
    if refuse:
        facts.update(rng.choice([{"beneficiary_category": "none"}, {"ownership": "not_owner"},
                                 {"last_free_repair_or_aid_year": 2015}, {"commission_found_need": False}]))
    return facts, {"household": True}


def bus_row(rng: random.Random, route: str) -> Facts:
    bus_class = rng.choice(["A", "I", "I", "II"])
    row = {
        "route": route,
        "vehicle_make": rng.choice(["Богдан А092", "Еталон А081", "Атаман А092", "ЗАЗ А10"]),
        "plate": f"AP{rng.randint(1000, 9999)}{rng.choice(['AA', 'BA', 'CE'])}",
        "vehicle_class": bus_class,
        "contract_class": bus_class,
        "trips": rng.randint(300, 900),
        "seats": rng.choice([22, 36, 42, 45]),
        "fare": 8_00,
        "route_length_m": rng.randint(8_000, 24_000),
    }
    return printed(row)


def half_up(n: int, d: int) -> int:
    return (2 * n + d) // (2 * d)


def printed(row: Facts) -> Facts:
    """The carrier's own K (graph 8, to 4 decimals) and P (graph 9): computed, except that every row with a
    number of trips divisible by 11 prints K rounded to 2 decimals and the P of that K (flagged, 004 L980-982)."""
    k = half_up(row["route_length_m"] * 10000, 14_250)
    p = half_up(row["trips"] * row["seats"] * 500 * row["fare"] * row["route_length_m"], 10000 * 14_250)
    if row["trips"] % 11 == 0:
        k = half_up(k, 100) * 100
        p = half_up(row["trips"] * row["seats"] * 500 * row["fare"] * k, 10000 * 10000)
    return {**row, "printed_k_x10000": k, "printed_p": p}


def bus_carrier(rng, refuse, on):
    routes = [str(rng.randint(1, 99)) for _ in range(rng.randint(1, 3))]
    rows = [bus_row(rng, route) for route in routes for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.3:  # a class-III bus: its row is excluded, the claim stands
        rows.append({**bus_row(rng, routes[0]), "vehicle_class": "III", "contract_class": "III"})
    cyrillic = {"A": "А", "I": "І", "II": "ІІ"}  # as Annex 5 (004:L950) and the carriers' form print them
    for row in rows[1::2]:
        if row["vehicle_class"] in cyrillic:
            row["vehicle_class"] = row["contract_class"] = cyrillic[row["vehicle_class"]]
    facts = {
        "route_service_contract": True,
        "compensation_contract": True,
        "municipal_enterprise": False,
        "verified_by_transport_department": True,
        "routes": rows,
    }
    if refuse:
        facts.update(rng.choice([{"municipal_enterprise": True}, {"compensation_contract": False}]))
    period, _, _ = previous_month(on)
    return facts, {"period": period, "org": True, "name": rng.choice(CARRIERS)}


def idp_accommodation(rng, refuse, on):
    period, first, last = previous_month(on)
    rows = []
    for n in range(rng.randint(2, 6)):
        start = first + dt.timedelta(days=rng.choice([0, 0, 0, rng.randint(1, 20)]))
        daily = rng.choice([35_00, 38_50, 42_00])
        rows.append({
            "idp_id": ident(rng, f"vpo{n}"),
            "stay_from": start.isoformat(),
            "stay_to": last.isoformat(),
            "daily_cost": daily,
            "daily_utilities": rng.choice([0, 0, 8_00]),
            "idp_status": True,
            "registered_komunarskyi": rng.random() > 0.1,
            "lives_in_transit_town": True,
            "commission_granted": True,
        })
    rows[0]["registered_komunarskyi"] = True
    facts = {"contract_with_uszn": True, "reconciliation_act": not refuse, "register": rows}
    return facts, {"period": period, "org": True, "name": ACCOMMODATION, "org_key": "accommodation"}


def orphan_ownership(rng, refuse, on):
    contract = on + dt.timedelta(days=rng.randint(5, 20))
    return {
        "orphan_status": "none" if refuse else rng.choice(["orphan", "deprived_of_parental_care", "person_from_among_them"]),
        "applied_where_on_housing_list": True,
        "notary_confirmed_costs": rng.randint(9_000_00, 16_000_00),
        "sale_contract_date": contract.isoformat(),
        "written_consent_date": (contract - dt.timedelta(days=rng.randint(2, 9))).isoformat(),
    }, {"channel": "my_transfer", "birth_date": years_before(on, 16, 23, rng)}


def river_carrier(rng, refuse, on):
    period, first, last = previous_month(on)
    rows = []
    for _ in range(rng.randint(3, 8)):
        day = first + dt.timedelta(days=rng.randint(0, (last - first).days))
        for direction in ("outbound", "return"):
            rows.append({"trip_date": day.isoformat(), "direction": direction,
                         "passengers": rng.randint(40, 220), "ticket_price": 20_00})
    facts = {
        "compensation_contract": True,
        "documents_complete": not refuse,
        "contract_price": 1_500_000_00,
        "paid_under_contract_before": rng.choice([0, 250_000_00, 1_490_000_00]),
        "trips": rows,
    }
    return facts, {"period": period, "org": True, "name": RIVER_CARRIER, "org_key": "river-carrier"}


# --- Tasks 2 and 14 -------------------------------------------------------------------------


def honorary_citizen(rng, refuse, on):
    return {"honorary_citizen_title": not refuse}, {"period": f"{on.year}-{on.month:02d}",
                                                    "birth_date": years_before(on, 60, 90, rng)}


def orphan_cofinancing(rng, refuse, on):
    return {
        "from_among_orphans": True,
        "local_commission_decision": True,
        "regional_commission_decision": not refuse,
        "housing_cost_limit": rng.choice([632_261_00, 654_348_00]),
    }, {"birth_date": years_before(on, 36, 44, rng), "channel": "bank"}


# --- Task 1 ---------------------------------------------------------------------------------


def child_oncology(rng, refuse, on):
    return {
        **RES,
        "child_id": ident(rng, "child"),
        "child_birth_date": years_before(on, 2, 16, rng).isoformat(),
        "child_has_disability": True,
        "child_has_oncology": not refuse,
    }, {}


def large_family(rng, refuse, on):
    return {**RES, "children_raised": 4 if refuse else rng.randint(5, 8)}, {"household": True}


def wwii(rng, refuse, on):
    return {**RES, "wwii_status": "none" if refuse else rng.choice(["combat_participant", "war_disabled"])}, {
        "birth_date": years_before(on, 94, 99, rng)}


def liberator(rng, refuse, on):
    return {"registered_in_zaporizhzhia": not refuse, "liberator_of_zaporizhzhia": True}, {
        "birth_date": years_before(on, 95, 99, rng)}


def fallen_servicemen(rng, refuse, on):
    return {**RES, "parent_or_family_member": True, "serviceman_killed_died_or_missing": not refuse}, {}


def afghanistan_family(rng, refuse, on):
    return {**RES, "family_member_of_serviceman_killed_abroad": not refuse}, {}


def afghanistan_childhood(rng, refuse, on):
    return {**RES, "disabled_from_childhood": not refuse, "parent_killed_abroad": True}, {}


def afghanistan_war_disabled(rng, refuse, on):
    return {**RES, "combat_participant_abroad": True, "war_disabled": not refuse}, {
        "birth_date": years_before(on, 52, 62, rng)}


def burial_options(rng) -> dict[str, Any]:
    return {"org": True, "name": RITUAL, "org_key": "ritual-service"}


def afghanistan_burial(rng, refuse, on):
    return {
        **RES,
        "deceased_id": ident(rng, "death"),
        "deceased_parent_of_serviceman_killed_abroad": not refuse,
        "season": "winter" if on.month in (11, 12, 1, 2, 3) else "summer",
        "burial_costs": rng.randint(6_500_00, 11_000_00),
    }, burial_options(rng)


def ato_one_off(rng, refuse, on):
    return {
        **RES,
        "direct_ato_jfo_participant": True,
        "ato_jfo_status": rng.choice(["combat_participant", "combat_participant", "war_disabled"]),
        "received_in_2015_2020": refuse,
    }, {"birth_date": years_before(on, 22, 55, rng)}


def ato_war_disabled(rng, refuse, on):
    return {**RES, "ato_jfo_participant": True, "war_disabled": not refuse}, {"birth_date": years_before(on, 22, 55, rng)}


def ato_burial(rng, refuse, on):
    outside = rng.random() < 0.3
    facts = {
        **RES,
        "deceased_id": ident(rng, "death"),
        "killed_in_ato_jfo": not refuse,
        "season": "winter" if on.month in (11, 12, 1, 2, 3) else "summer",
        "burial_costs": rng.randint(14_000_00, 26_000_00),
        "buried_outside_city": outside,
    }
    if outside:
        facts["transport_costs"] = rng.randint(1_500_00, 4_500_00)
    return facts, burial_options(rng)


def ato_family_adult(rng, refuse, on):
    status = rng.choice(["ato_jfo_fallen_family_member", "ato_jfo_fallen_family_member", "hero_of_ukraine_family_member"])
    return {**RES, "family_status": "none" if refuse else status}, {"birth_date": years_before(on, 19, 70, rng)}


def ato_family_minor(rng, refuse, on):
    child_birth = years_before(on, 19, 19, rng) if refuse else years_before(on, 3, 16, rng)
    return {
        **RES,
        "child_id": ident(rng, "child"),
        "child_birth_date": child_birth.isoformat(),
        "child_has_fallen_family_status": True,
    }, {}


# --- issue 14: hot meals (Task 1), marathon grants (Task 3), rail and passes (Task 4) ---------

HOT_MEALS_ORGANISERS = ["БО «Теплий дім»", "ГО «Милосердя Запоріжжя»", "БФ «Добра кухня»", "ГО «Хліб і сіль»"]
RAIL_CARRIER = "Регіональна філія залізниці (приміські перевезення)"
ZET = "Запорізьке міське комунальне підприємство міського транспорту «Запоріжелектротранс»"
MARATHON_GRANTS = [
    ("memory_marathon_city_veterans_organisation", "Запорізька міська організація ветеранів України"),
    ("memory_marathon_war_invalids_organisation", "Запорізька міська організація інвалідів війни та Збройних Сил"),
    ("armed_forces_day_marathon", "ГО «Ветеранське братство Запоріжжя»"),
]


def hot_meals(rng, refuse, on):
    period, _, _ = previous_month(on)
    facts = {
        "organiser_engaged_by_district_uszn": not refuse,
        "autumn_winter_period": True,
        "for_target_groups": True,
        "portions_served": rng.randint(400, 2_500),
        "portion_cost": rng.choice([21_50, 23_00, 24_80, 25_00, 27_00]),  # 27 UAH is paid at the 25 UAH cap
    }
    return facts, {"period": period, "org": True, "name": rng.choice(HOT_MEALS_ORGANISERS)}


def marathon_grant(rng, refuse, on, index=0):
    grant, name = MARATHON_GRANTS[index % len(MARATHON_GRANTS)]
    facts = {
        "grant": grant,
        "applicant_is_named_recipient": not refuse,
        "veterans_association": True,
        "marathon_held": True,
    }
    return facts, {"org": True, "name": name}


def suburban_rail(rng, refuse, on):
    period, _, _ = previous_month(on)
    rows = [
        {"category": category, "social_ground": not refuse, "trips": rng.randint(1_000, 6_000), "fare": fare}
        for category, fare in (("пенсіонери за віком", 12_00), ("особи з інвалідністю", 12_00), ("багатодітні сім'ї", 9_50))
    ]
    rows.append({"category": "учасники бойових дій", "social_ground": False, "trips": rng.randint(200, 900), "fare": 12_00})
    return {"suburban_rail_carrier": True, "trips": rows}, {
        "period": period, "org": True, "name": RAIL_CARRIER, "org_key": "rail-carrier"}


def zet_passes(rng, refuse, on):
    period, _, _ = previous_month(on)
    passes = [
        {
            "family_id": f"bf-{n:03d}",
            "parent_id": f"bp-{n:03d}",
            "large_family_certificate": True,
            "registered_in_zaporizhzhia": rng.random() > 0.1,  # a parent registered elsewhere: excluded
            "pass_price": 430_00,
        }
        for n in range(rng.randint(3, 8))
    ]
    if refuse:  # both parents of one family: the register is returned
        passes.append({**passes[0], "parent_id": passes[0]["parent_id"] + "-2"})
    return {"applicant_is_zaporizhelektrotrans": True, "passes": passes}, {
        "period": period, "org": True, "name": ZET, "org_key": "zaporizhelektrotrans"}


TELECOM = ["ПАТ «Укртелеком»", "ТОВ «Запоріжтелеком»"]
GROUNDS = [
    ("ст. 12 Закону України «Про статус ветеранів війни, гарантії їх соціального захисту»", 5000),
    ("ст. 14 Закону України «Про статус ветеранів війни, гарантії їх соціального захисту»", 5000),
    ("ст. 20 Закону України «Про статус і соціальний захист громадян, які постраждали внаслідок Чорнобильської катастрофи»", 5000),
]


def telecom(rng, refuse, on):
    period, _, _ = previous_month(on)
    rows = []
    for _ in range(rng.randint(3, 6)):
        ground, rate = rng.choice(GROUNDS)
        rows.append({"account": f"061{rng.randint(1000000, 9999999)}", "beneficiary_id": rnokpp(f"zt-{rng.randint(1, 10**9)}"),
                     "law_ground": ground, "rate_bp": rate, "billed_kop": rng.choice([96_00, 120_00, 150_00]),
                     "registered_in_zaporizhzhia": rng.random() > 0.1})  # registered elsewhere: excluded
    total = sum(half_up(r["billed_kop"] * r["rate_bp"], 10000) for r in rows if r["registered_in_zaporizhzhia"])
    facts = {"register": [] if refuse else rows, "printed_total_kop": 0 if refuse else total}
    return facts, {"period": period, "org": True, "name": rng.choice(TELECOM)}


PROGRAMS: dict[str, tuple[Builder, tuple[int, int]]] = {
    # program id: (builder, months in which it is submitted)
    "zaporizhzhia.capital-repair": (capital_repair, (2, 11)),
    "zaporizhzhia.bus-carrier-compensation": (bus_carrier, (2, 12)),
    "zaporizhzhia.idp-temporary-accommodation": (idp_accommodation, (2, 12)),
    "zaporizhzhia.orphan-ownership-registration": (orphan_ownership, (3, 11)),
    "zaporizhzhia.river-carrier-compensation": (river_carrier, (6, 10)),  # navigation season
    "zaporizhzhia.honorary-citizens-reward": (honorary_citizen, (1, 12)),
    "zaporizhzhia.orphan-housing-cofinancing": (orphan_cofinancing, (7, 12)),  # ПКМУ №615 of 26.05.2021
    "zaporizhzhia.disabled-children-oncology": (child_oncology, (1, 12)),
    "zaporizhzhia.large-families-five-children": (large_family, (1, 12)),
    "zaporizhzhia.wwii-veterans": (wwii, (3, 4)),  # paid before Victory Day
    "zaporizhzhia.liberators": (liberator, (9, 10)),
    "zaporizhzhia.fallen-servicemen-families": (fallen_servicemen, (1, 12)),
    "zaporizhzhia.afghanistan-fallen-families": (afghanistan_family, (1, 12)),
    "zaporizhzhia.afghanistan-disabled-from-childhood": (afghanistan_childhood, (1, 12)),
    "zaporizhzhia.afghanistan-war-disabled": (afghanistan_war_disabled, (1, 12)),
    "zaporizhzhia.afghanistan-parents-burial": (afghanistan_burial, (1, 12)),
    "zaporizhzhia.ato-participants-one-off": (ato_one_off, (1, 12)),
    "zaporizhzhia.ato-war-disabled": (ato_war_disabled, (1, 12)),
    "zaporizhzhia.ato-burial": (ato_burial, (1, 12)),
    "zaporizhzhia.ato-fallen-family-adults": (ato_family_adult, (1, 12)),
    "zaporizhzhia.ato-fallen-family-minors": (ato_family_minor, (1, 12)),
    # added for issue 14 (after the others, so their examples stay as they were)
    "zaporizhzhia.hot-meals": (hot_meals, (11, 12)),  # autumn-winter months
    "zaporizhzhia.veterans-ngo-marathon-grants": (marathon_grant, (5, 12)),
    "zaporizhzhia.suburban-rail-compensation": (suburban_rail, (2, 12)),
    "zaporizhzhia.large-family-transport-passes": (zet_passes, (2, 12)),
    # privileges paid to the provider (after the others, so their examples stay as they were)
    "zaporizhzhia.communication-privileges": (telecom, (2, 12)),
}
# Programs with fewer examples than PER_PROGRAM: one grant of each kind a year.
COUNT = {"zaporizhzhia.veterans-ngo-marathon-grants": len(MARATHON_GRANTS)}


# Programs whose every application comes from the same organisation (one claim per month).
ONE_CLAIMANT = {
    "zaporizhzhia.idp-temporary-accommodation",
    "zaporizhzhia.river-carrier-compensation",
    "zaporizhzhia.suburban-rail-compensation",
    "zaporizhzhia.large-family-transport-passes",
}


def generate() -> list[ApplicationSubmitted]:
    rng = random.Random(f"dopomoga-zp-{YEAR}")
    out: list[ApplicationSubmitted] = []
    counter = 0
    for program_id, (builder, months) in PROGRAMS.items():
        for index in range(COUNT.get(program_id, PER_PROGRAM)):
            counter += 1
            on = day_in(rng, *months)
            if program_id in ONE_CLAIMANT:  # one claim a month by the same organisation: consecutive months
                on = on.replace(month=months[0] + index, day=rng.randint(1, 5))
            extra = {"index": index} if program_id in COUNT else {}  # one example per grant kind
            facts, options = builder(rng, counter % REFUSE_EVERY == 0, on, **extra)
            org = options.get("org", False)
            subject = f"zp-{counter}"
            if org:
                id_kind, identifier = "edrpou", edrpou(options.get("org_key", subject))
                name, birth, channel = options["name"], None, "treasury"
            else:
                id_kind, identifier = "rnokpp", rnokpp(subject)
                name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}"
                birth = options.get("birth_date") or years_before(on, 25, 80, rng)
                channel = options.get("channel", rng.choice(["bank", "bank", "post"]))
            application_id = f"zp-{YEAR}-{counter:04d}"
            out.append(
                ApplicationSubmitted(
                    event_id=f"ev-{application_id}",
                    occurred_at=dt.datetime.combine(on, dt.time(9, rng.randint(0, 59)), tzinfo=dt.UTC),
                    application_id=application_id,
                    program_id=program_id,
                    registry="zp-uszn",
                    submitted_on=on,
                    period=options.get("period"),
                    applicant=Applicant(
                        id_kind=id_kind,
                        id=identifier,
                        name=name,
                        birth_date=birth,
                        household_id=f"zp-hh-{counter}" if options.get("household") else None,
                        district="Комунарський" if program_id.endswith("idp-temporary-accommodation") else rng.choice(DISTRICTS),
                    ),
                    payment=Payment(channel=channel, iban=TEST_IBAN if channel in ("bank", "treasury") else None),
                    facts=facts,
                )
            )
    return out


def main() -> None:
    applications = generate()
    (HERE / "zaporizhzhia.jsonl").write_text("".join(a.model_dump_json() + "\n" for a in applications), encoding="utf-8")


if __name__ == "__main__":
    main()
