"""Generate ``examples/allocations.json``: an appropriation for every program and year the examples use.

    .venv/bin/python examples/gen_allocations.py

Figures come from the seeds where the seeds give them per measure:
- Zaporizhzhia 2021, Annex 1 (``004-budget.csv``): bus 3 306,253 тис. грн (L560), river 0 (L563 — so
  nothing is payable in 2021, test A8-03), IDP 967,000 (L579), orphans' registration 14,186 (L591),
  Honorary Citizens 1 807,152 (L554), Task 14 458,044 (L595), suburban rail 1 189,000 (L564),
  «Запоріжелектротранс» passes 2 739,377 (L565), the two marathon grants 120,000 + 100,000 (L557-558). Capital repair is part of Task 5
  (3 293,488, L567) and is split among districts in proportion to their declared need (BR-06, L739),
  the need being the examples' claims per district. Task 1 is not split by measure in the seed
  (27 507,989, L551): each Task-1 program gets a labelled demo share.
- Zhytomyr, annual volumes («з урахуванням змін») per measure from ``000-zhytomyr-measures.csv``.
- Kamianske: the mobile compensation's 16,8 тис. грн (002:L201); the rest are labelled demo figures.
Every allocation says in ``legal_reference`` where its figure comes from.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from dopomoga.budget.rationing import district_split
from dopomoga.money import uah_to_kop
from dopomoga.rules.programs import Catalog
from schemas.events import AllocationSet, ApplicationSubmitted, MonthlyPlan

HERE = Path(__file__).resolve().parent
SPEC = HERE.parent.parent / "shared" / "spec"

ZAPORIZHZHIA_2021 = {  # program -> (kUAH, source)
    "zaporizhzhia.bus-carrier-compensation": ("3306.253", "Додаток 1, рядок L560 (2021)"),
    "zaporizhzhia.river-carrier-compensation": ("0.000", "Додаток 1, рядок L563 (2021): призначень немає"),
    "zaporizhzhia.idp-temporary-accommodation": ("967.000", "Додаток 1, рядок L579 (2021)"),
    "zaporizhzhia.orphan-ownership-registration": ("14.186", "Додаток 1, рядок L591 (2021)"),
    "zaporizhzhia.honorary-citizens-reward": ("1807.152", "Додаток 1, рядок L554 (2021)"),
    "zaporizhzhia.orphan-housing-cofinancing": ("458.044", "Додаток 1, рядок L595 (2021)"),
    "zaporizhzhia.suburban-rail-compensation": ("1189.000", "Додаток 1, рядок L564 (2021)"),
    "zaporizhzhia.large-family-transport-passes": ("2739.377", "Додаток 1, рядок L565 (2021)"),
    "zaporizhzhia.veterans-ngo-marathon-grants": ("220.000", "Додаток 1, рядки L557-558 (2021): 120,000 + 100,000"),
}
CAPITAL_REPAIR = "zaporizhzhia.capital-repair"
CAPITAL_REPAIR_DEMO_KUAH = "1000.000"  # demo part of Task 5 (3 293,488 тис. грн, L567)
TASK1_DEMO_KUAH = "500.000"
ZHYTOMYR_MEASURES = {
    "zhytomyr.centenarians": "1.1.12",
    "zhytomyr.fallen-defenders-families": "1.1.2",
    "zhytomyr.triplets": "1.1.6",
    "zhytomyr.children-of-fallen": "13.2.2",
    "zhytomyr.honoured-donors": "1.1.4",
    "zhytomyr.large-families": "1.1.5",
    "zhytomyr.visual-disability-utilities": "1.1.7",
    "zhytomyr.honorary-citizens": "3.1.1",
    "zhytomyr.chornobyl-travel": "5.1.2",
    "zhytomyr.haemodialysis-transport": "1.1.9",
    "zhytomyr.burial-executor": "1.1.11",
    "zhytomyr.fuel-compensation-labour-merits": "3.1.3",
    "zhytomyr.fallen-ato-families-sanatorium": "13.7.2",
    "zhytomyr.ato-treatment-cofinancing": "13.14.1",
    "zhytomyr.visual-disability-housing-privilege": "3.1.2",
    "zhytomyr.honoured-donors-housing-privilege": "3.1.4",
    "zhytomyr.postal-delivery-costs": "1.1.14",
    "zhytomyr.burial-assistance": "1.1.10",
}
KAMIANSKE_KNOWN = {"kamianske.veteran-mobile-compensation": ("16.8", "002:L201-202, річні призначення 2021")}
KAMIANSKE_DEMO_KUAH = "1200.000"


def kuah_to_kop(text: str) -> int:
    """'3306.253' тис. грн -> kopiyky, exactly (the seeds print thousands with three decimals)."""
    return uah_to_kop(str(Decimal(text) * 1000))


def zhytomyr_annual() -> dict[str, str]:
    with (SPEC / "000-zhytomyr-measures.csv").open(encoding="utf-8") as source:
        return {row["code"]: row["annual_kUAH"] for row in csv.DictReader(source) if row["row_type"] == "measure"}


def allocation(program: str, year: int, kop: int, reference: str, district: str | None = None) -> dict:
    # Ids are ASCII: a district (Cyrillic) is represented by a short digest of its name.
    suffix = f"-d{hashlib.sha1(district.encode()).hexdigest()[:8]}" if district else ""
    event = AllocationSet(
        event_id=f"alloc-{program}-{year}{suffix}",
        occurred_at=dt.datetime(year, 1, 2, 9, tzinfo=dt.UTC),
        program_id=program,
        district=district,
        year=year,
        annual_kop=kop,
        plan=MonthlyPlan(kind="even"),
        amendment_id=f"{program}-{year}{suffix}-initial",
        legal_reference=reference,
    )
    data = event.model_dump(mode="json")
    for key in ("line", "document", "reason_uk", "amended_on"):  # amendment fields: left out when unset
        if data.get(key) is None:
            data.pop(key, None)
    return data


def main() -> None:
    known = set(Catalog.load().programs)
    years: dict[str, set[int]] = defaultdict(set)
    need_by_district: dict[str, int] = defaultdict(int)
    for line in (HERE / "applications.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            application = ApplicationSubmitted.model_validate_json(line)
        except ValueError:
            continue  # the invalid examples
        if application.program_id not in known:
            continue  # the example with an unknown program
        years[application.program_id].add(int(application.effective_period[:4]))
        if application.program_id == CAPITAL_REPAIR and application.applicant.district:
            need_by_district[application.applicant.district] += 40_000_00  # declared need: one flat maximum each
    zhytomyr = zhytomyr_annual()
    result = []
    for program in sorted(years):
        for year in sorted(years[program]):
            city = program.split(".")[0]
            if program in ZAPORIZHZHIA_2021 and year == 2021:
                kuah, source = ZAPORIZHZHIA_2021[program]
                result.append(allocation(program, year, kuah_to_kop(kuah), f"Програма м. Запоріжжя 2019-2021, {source}"))
            elif program == CAPITAL_REPAIR:
                districts = sorted(need_by_district)
                shares = district_split(kuah_to_kop(CAPITAL_REPAIR_DEMO_KUAH), dict(need_by_district), cap_at_need=True)
                for district in districts:
                    result.append(allocation(
                        program, year, shares.shares[district],
                        "демонстраційна частка завдання 5 (3 293,488 тис. грн, L567), розподілена між районами "
                        "пропорційно до заявленої потреби (Додаток 4, L739)", district,
                    ))
            elif city == "zaporizhzhia":
                result.append(allocation(program, year, kuah_to_kop(TASK1_DEMO_KUAH),
                                         "демонстраційна частка завдання 1 (27 507,989 тис. грн на 2021 р., L551; "
                                         "за заходами в Програмі не розподілено)"))
            elif program in ZHYTOMYR_MEASURES and ZHYTOMYR_MEASURES[program] in zhytomyr:
                code = ZHYTOMYR_MEASURES[program]
                result.append(allocation(program, year, kuah_to_kop(zhytomyr[code]),
                                         f"річний обсяг заходу {code} з урахуванням змін (звіт за I півріччя 2023 р.)"))
            elif program in KAMIANSKE_KNOWN:
                kuah, source = KAMIANSKE_KNOWN[program]
                result.append(allocation(program, year, kuah_to_kop(kuah), source))
            else:
                result.append(allocation(program, year, kuah_to_kop(KAMIANSKE_DEMO_KUAH),
                                         "демонстраційний обсяг (1 200 000 грн на рік), не з джерела"))
    note = "Generated by examples/gen_allocations.py; each allocation's legal_reference says where its figure comes from."
    (HERE / "allocations.json").write_text(
        json.dumps({"note": note, "allocations": result}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(result)} allocations for {len(years)} programs")


if __name__ == "__main__":
    main()
