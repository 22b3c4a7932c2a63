"""`dopomoga replay TABLE.csv`: the seeds' tables replayed through the rules and the ledger.

For each row of a seed table (measure, recipients, amount financed) this generates that many
synthetic applicants for the mapped program, decides them with ``dopomoga.rules.engine.Engine``,
runs them through a temporary ledger with the seed's allocation, and compares what the ledger
financed with what the seed says. Supported layouts (``../shared/spec/``):

- ``000-zhytomyr-measures.csv``: Zhytomyr, H1 2023, one row per measure (000 L19-99);
- ``002-figures.csv``: Kamianske, Q2 2021, one figure per row, grouped by benefit;
- ``004-budget.csv``: Zaporizhzhia, plans and forecasts per task (no amounts financed).

A row is *reproducible* when its program is encoded, its amount follows from the rules (not an
input of each claim), and the seed states both the recipients and the amount financed. Every
other row is reported with the reason it cannot be compared, never hidden. The allocation is the
seed's annual volume; the seed has no monthly plan («помісячний розпис»), so the replay plans the
amount the seed says was financed over the period's months and the rest over the other months
(a reading, printed with the result). Applicants and times are derived from counters: the same
table gives a byte-identical ledger.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from dopomoga.budget.commands import allocation_set, confirmations_of_inferred, period_closed
from dopomoga.budget.ledger import BudgetLedger
from dopomoga.money import largest_remainder
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from schemas.events import Applicant, ApplicationSubmitted, Payment

IBAN = "UA213223130000026007233566001"  # checksum-valid synthetic IBAN (no real account)
UTC = dt.UTC
MATCH, MISMATCH, NOT_REPRODUCIBLE, NO_PROGRAM = "match", "MISMATCH", "not reproducible", "no program"


@dataclass
class SeedRow:
    source: str  # "000 L28"
    measure: str
    label: str
    year: int
    first: int  # the period's months
    last: int
    programs: list[str] = field(default_factory=list)
    recipients: int | None = None
    financed_kop: int | None = None
    annual_kop: int | None = None
    reason: str = ""  # set when the row cannot be reproduced whatever the rules say


@dataclass
class ReplayResult:
    row: SeedRow
    replay_kop: int | None
    status: str
    reason: str


def kop(thousands: str) -> int | None:
    text = (thousands or "").strip().replace(" ", "").replace(",", ".")
    return None if not text else int(Decimal(text) * 100_000)


# -- synthetic applicants ---------------------------------------------------------------------------

Facts = Callable[[int, dt.date], tuple[dict[str, Any], dict[str, Any]]]
RES_K = {"resident_of_city": True}


@dataclass(frozen=True)
class Recipe:
    facts: Facts  # (n, submitted_on) -> facts, options (birth_date)
    monthly: bool = False  # one claim per recipient and month of the period


RECIPES: dict[str, Recipe] = {
    "zhytomyr.visual-disability-utilities": Recipe(lambda n, on: (
        {"resident_of_community": True, "disability_group": "12"[n % 2], "disability_by_vision": True}, {})),
    "zhytomyr.centenarians": Recipe(lambda n, on: (
        {"resident_of_community": True}, {"birth_date": dt.date(on.year - 101, 1 + n % 12, 1 + n % 28)})),
    "zhytomyr.honoured-donors": Recipe(lambda n, on: (
        {"resident_of_community": True, "honoured_donor_title": True}, {}), monthly=True),
    "kamianske.fallen-child-birthday": Recipe(lambda n, on: (
        {**RES_K, "child_id": f"ch-{n}", "child_birth_date": dt.date(on.year - 8, 1 + n % 12, 1).isoformat(),
         "parent_fallen_serviceman": True}, {})),
    "kamianske.ato-land-documents": Recipe(lambda n, on: (
        {**RES_K, "ato_participant": True, "land_documents_reviewed": True}, {})),
    "kamianske.ato-demobilisation": Recipe(lambda n, on: (
        {**RES_K, "service_status": "demobilised_ato_participant", "wounded": False, "requested_amount": 0,
         "commission_decision": True}, {})),
    "kamianske.burial": Recipe(lambda n, on: (
        {**RES_K, "deceased_id": f"dec-{n}", "applicant_role": "undertook_burial",
         "deceased_in_programme_category": True}, {})),
}
#: Encoded programs whose amount depends on facts the seed does not give.
DEPENDS = {
    "zhytomyr.large-families": "amount depends on each family's minor children (not in the seed)",
    "zhytomyr.children-of-fallen": "amount depends on each child's age and the months paid (not in the seed)",
    "zhytomyr.triplets": "amount depends on the children and the months paid (not in the seed)",
    "kamianske.fallen-ato-family-monthly": "monthly: the months paid per person in the quarter are not in the seed",
    "kamianske.fallen-police-family-monthly": "monthly: the months paid per person in the quarter are not in the seed",
    "kamianske.disabled-children-oncology-monthly": "monthly: families and months are not in the seed (only the total)",
    "kamianske.rehabilitated-monthly": "monthly: payments in the quarter are not in the seed",
    "kamianske.veteran-mobile-compensation": "the seed gives recipients and the annual plan, not the amount paid",
    "kamianske.centenarian-stipend": "the seed gives recipients, not the amount paid",
}


def rnokpp(seed: str) -> str:
    from stdnum.ua import rntrc

    digits = str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:9].rjust(9, "1")
    return digits + rntrc.calc_check_digit(digits)


def applicant(tag: str, program_id: str, n: int, on: dt.date, period: str | None, catalog: Catalog,
              recipe: Recipe) -> ApplicationSubmitted:
    facts, options = recipe.facts(n, on)
    app_id = f"replay-{tag}-{n:04d}" + (f"-{period}" if period and recipe.monthly else "")
    channel = catalog.get(program_id).spec.payment_channels[0]
    return ApplicationSubmitted(
        event_id=f"ev-{app_id}", occurred_at=dt.datetime.combine(on, dt.time(9), tzinfo=UTC),
        application_id=app_id, program_id=program_id, registry="seed-replay", submitted_on=on, period=period,
        applicant=Applicant(id_kind="rnokpp", id=rnokpp(f"{tag}-{n}"), name="Синтетична Особа",
                            birth_date=options.get("birth_date")),
        payment=Payment(channel=channel, iban=IBAN if channel in ("bank", "treasury") else None),
        facts=facts,
    )


# -- the seed tables ---------------------------------------------------------------------------------

def read_000(path: Path, catalog: Catalog, ledger: BudgetLedger) -> list[SeedRow]:
    found = ledger.lines.cities.get("zhytomyr")
    lines = {line.code: line for line in found.lines} if found is not None else {}
    rows = []
    for r in csv.DictReader(path.open(encoding="utf-8")):
        row = SeedRow(f"000 L{r['line']}", r["code"], r["measure_uk"][:60], 2023, 1, 6,
                      recipients=int(r["recipients"]) if r["recipients"] else None,
                      financed_kop=kop(r["financed_H1_kUAH"]), annual_kop=kop(r["annual_kUAH"]))
        line = lines.get(r["code"])
        if r["row_type"] != "measure":
            row.reason = f"sub-row of measure {r['code']} ({r['row_type']}), not a measure of its own"
        elif line is None or not line.programs():
            row.reason = f"no encoded program pays this measure ({r['payment_class'] or 'class not given'})"
        else:
            row.programs = line.programs()
            if line.allocated == "line" and any(m.program is None for m in line.measures):
                row.reason = (f"line {line.code} also funds a measure no rule decides; the seed does not "
                              f"separate the recipients ({line.reference})")
        rows.append(row)
    return rows


BENEFITS_002 = {  # benefit -> program, recipients measure, amount measure (prefixes of the 'measure' column)
    "fallen_servicemen_child_birthday_assist": ("kamianske.fallen-child-birthday", "children paid", "amount paid"),
    "ato_land_documents_assist": ("kamianske.ato-land-documents", "persons paid", "amount paid"),
    "ato_demobilisation_assist": ("kamianske.ato-demobilisation", "persons granted", "amount granted"),
    "burial_assistance": ("kamianske.burial", "persons assigned", "amount"),
    "fallen_servicemen_family_monthly_assist": ("kamianske.fallen-ato-family-monthly", "recipients", "amount paid"),
    "fallen_police_family_monthly_assist": ("kamianske.fallen-police-family-monthly", "family members paid", "amount paid"),
    "disabled_children_oncology_monthly_assist": ("kamianske.disabled-children-oncology-monthly", None, "total paid"),
    "disabled_children_oneoff_assist": ("kamianske.disabled-children-one-off", "families", "total paid"),
    "ato_current_repair_assist": ("kamianske.ato-current-repair", "persons paid", "amount paid"),
    "war_disabled_capital_repair": ("kamianske.war-disabled-capital-repair", "persons accrued", None),
    "veteran_mobile_compensation": ("kamianske.veteran-mobile-compensation", "recipients", None),
    "centenarian_stipend": ("kamianske.centenarian-stipend", "recipients", None),
    "rehabilitated_persons_monthly_assist": ("kamianske.rehabilitated-monthly", None, None),
    "city_material_assistance": ("kamianske.material-assistance", "citizens granted", "total granted"),
}


def read_002(path: Path) -> list[SeedRow]:
    groups: dict[str, list[dict[str, str]]] = {}
    for r in csv.DictReader(path.open(encoding="utf-8")):
        groups.setdefault(r["benefit"], []).append(r)
    rows = []
    for benefit, figures in groups.items():
        lines = sorted({int(f["line"]) for f in figures})
        row = SeedRow(f"002 L{lines[0]}" + (f"-{lines[-1]}" if len(lines) > 1 else ""), benefit,
                      figures[0]["measure"][:60], 2021, 4, 6)
        spec = BENEFITS_002.get(benefit)
        if spec is not None:
            program, who, amount = spec
            row.programs = [program]
            quarter = [f for f in figures if f["period"] == "2021-Q2"]
            if who is not None:
                counts = [f for f in quarter if f["measure"].startswith(who) or (who == "families" and f["unit"] == "families")]
                row.recipients = sum(int(Decimal(f["value"])) for f in counts) if counts else None
            if amount is not None:
                for f in quarter:
                    if f["measure"].startswith(amount) and f["unit"] in ("kUAH", "UAH"):
                        value = Decimal(f["value"]) * (100_000 if f["unit"] == "kUAH" else 100)
                        row.financed_kop = int(value)
                        break
        rows.append(row)
    return rows


def read_004(path: Path, catalog: Catalog) -> list[SeedRow]:
    import re

    by_task: dict[str, list[str]] = {}
    for program in catalog.programs.values():
        if program.spec.city == "zaporizhzhia":
            found = re.search(r"Завдання (\d+)", program.spec.legal_basis.clause_uk)
            if found:
                by_task.setdefault(found.group(1), []).append(program.id)
    rows: dict[tuple[str, str], SeedRow] = {}
    for r in csv.DictReader(path.open(encoding="utf-8")):
        key = (r["table"], r["task_no"])
        if key not in rows:
            label = r["task_name_uk"] or r["measure_uk"] or r["metric"]
            rows[key] = SeedRow(f"004 L{r['line']}", f"{r['table']} / task {r['task_no'] or '—'}", label[:60], 2021, 1, 12,
                                programs=sorted(by_task.get(r["task_no"], [])))
            rows[key].reason = ("the table gives plans and forecasts, not amounts financed with their recipients"
                                if r["table"].startswith(("change", "annex1", "explanatory")) else
                                "not a table of measures (sources of funding / performance indicators)")
    return list(rows.values())


# -- the replay ---------------------------------------------------------------------------------------

def _plan(year: int, annual: int, financed: int, first: int, last: int) -> dict[str, int]:
    """The financed amount over the period's months, the rest over the other months (a reading)."""
    inside = list(range(first, last + 1))
    outside = [m for m in range(1, 13) if m not in inside] or inside
    plan = dict.fromkeys(range(1, 13), 0)
    for months, amount in ((inside, min(financed, annual)), (outside, annual - min(financed, annual))):
        for m, part in zip(months, largest_remainder(amount, [1] * len(months), [f"{m:02d}" for m in months]),
                           strict=True):
            plan[m] += part
    return {f"{year:04d}-{m:02d}": v for m, v in plan.items()}


def replay_row(row: SeedRow, tag: str, ledger: BudgetLedger, engine: Engine, catalog: Catalog) -> ReplayResult:
    program = row.programs[0]
    recipe = RECIPES[program]
    annual = row.annual_kop if row.annual_kop is not None else 10 * (row.financed_kop or 0)
    ledger.apply(allocation_set(
        program_id=program, year=row.year, annual_kop=annual, amendment_id="seed-replay",
        plan={"kind": "explicit", "months": _plan(row.year, annual, row.financed_kop or 0, row.first, row.last)},
        legal_reference=f"seed {row.source}", reason_uk="обсяг за таблицею seed", document=row.source,
        occurred_at=dt.datetime(row.year, 1, 1, 8, tzinfo=UTC),
    ))
    # The seed's own financing figures are what the inferred amounts were worked out from: the replay
    # takes that report as the confirming document (a department confirms with its decision).
    for confirmation in confirmations_of_inferred(
        catalog.get(program), row.year, document=f"seed {row.source}", confirmed_by="seed-replay",
        occurred_at=dt.datetime(row.year, 1, 1, 8, tzinfo=UTC),
    ):
        ledger.apply(confirmation)
    months = list(range(row.first, row.last + 1))
    refused = []
    for index, month in enumerate(months):
        claims = []
        people = range(row.recipients or 0) if recipe.monthly else [
            n for n in range(row.recipients or 0) if n * len(months) // (row.recipients or 1) == index]
        for n in people:
            on = dt.date(row.year, month, 1 + n % 27)
            decided = engine.decide(applicant(tag, program, n, on, f"{row.year:04d}-{month:02d}", catalog, recipe))
            if not decided.eligible:
                refused.append(decided.explanation_uk)
            claims.append(decided)
        ledger.submit_many(claims)
        ledger.apply(period_closed(program, f"{row.year:04d}-{month:02d}", closed_by="seed-replay"))
    periods = {f"{row.year:04d}-{m:02d}" for m in months}
    paid = sum(d.payout_kop for d in ledger.final_payouts(program) if d.period in periods)
    if refused:
        return ReplayResult(row, paid, MISMATCH, f"the rules refused {len(refused)} synthetic applicants: {refused[0]}")
    note = "" if row.annual_kop is not None else "; allocation not in the seed (ample allocation used)"
    if paid == row.financed_kop:
        return ReplayResult(row, paid, MATCH, f"{row.recipients} applicants decided and paid{note}")
    return ReplayResult(row, paid, MISMATCH, f"replay financed {paid} kop, the seed {row.financed_kop}{note}")


def classify(row: SeedRow, catalog: Catalog) -> ReplayResult | None:
    """The result of a row that is not replayed (None: replay it)."""
    programs = [p for p in row.programs if p in catalog.programs]
    if not programs:
        return ReplayResult(row, None, NO_PROGRAM, row.reason or "no encoded program pays this measure")
    if row.reason:
        return ReplayResult(row, None, NOT_REPRODUCIBLE, row.reason)
    if row.financed_kop == 0 and not row.recipients:
        return ReplayResult(row, 0, MATCH, "nothing financed and no recipients: nothing to decide")
    program = programs[0]
    if program not in RECIPES:
        if program in DEPENDS:
            return ReplayResult(row, None, NOT_REPRODUCIBLE, DEPENDS[program])
        inputs = catalog.get(program).spec.inputs
        rows = [name for name, spec in inputs.items() if spec.type == "items"]
        if rows:  # a provider's register, a carrier's routes: the seed has totals, not rows
            return ReplayResult(row, None, NOT_REPRODUCIBLE,
                                f"amount depends on the rows of each claim ({', '.join(rows)}), not in the seed")
        money = [name for name, spec in inputs.items() if spec.type == "money"]
        if money:
            return ReplayResult(row, None, NOT_REPRODUCIBLE, f"amount is an input of each claim ({', '.join(money)})")
        return ReplayResult(row, None, NOT_REPRODUCIBLE, "no synthetic-applicant recipe for this program")
    if row.recipients is None or row.financed_kop is None:
        return ReplayResult(row, None, NOT_REPRODUCIBLE, "the seed does not state both recipients and amount financed")
    return None


def allocate_lines(rows: list[SeedRow], ledger: BudgetLedger, city: str = "zhytomyr") -> None:
    """The seed's annual volume for every budget line the replay did not allocate (lines allocated
    whole, lines no encoded program pays, programs not replayed), so the execution report shows
    every line's volume as the seed does."""
    from sqlalchemy import func, select

    from dopomoga.budget import schema as t

    found = ledger.lines.cities.get(city)
    annual = {r.measure: r.annual_kop for r in rows if not r.reason.startswith("sub-row")}
    for line in found.lines if found is not None else []:
        keys = line.keys(city)
        if len(keys) != 1 or annual.get(line.code) is None:
            continue
        with ledger.engine.connect() as conn:
            have = conn.execute(select(func.count()).where(
                t.allocations.c.program_id == keys[0], t.allocations.c.year == 2023)).scalar()
        if not have:
            ledger.apply(allocation_set(
                program_id=keys[0], year=2023, annual_kop=annual[line.code], plan={"kind": "even"},
                amendment_id="seed-volume", legal_reference=f"seed {line.reference}", line=line.code,
                reason_uk="річний обсяг за таблицею seed (колонка 7)", document=line.reference,
                occurred_at=dt.datetime(2023, 1, 1, 8, tzinfo=UTC)))


def replay(table: Path, ledger: BudgetLedger, year: int | None = None) -> list[ReplayResult]:
    """Replay every row of a seed table into ``ledger``; one result per row, in the table's order."""
    catalog = ledger.catalog
    name = table.name
    if name.startswith("000"):
        rows = read_000(table, catalog, ledger)
    elif name.startswith("002"):
        rows = read_002(table)
    elif name.startswith("004"):
        rows = read_004(table, catalog)
    else:
        raise ValueError(f"{table}: not a supported seed table (000-zhytomyr-measures.csv, 002-figures.csv, 004-budget.csv)")
    engine = Engine(catalog)
    results = []
    for number, row in enumerate(rows):
        if year is not None and row.year != year:
            continue
        result = classify(row, catalog)
        if result is None:
            result = replay_row(row, f"{name[:3]}-{number:03d}", ledger, engine, catalog)
        results.append(result)
    if name.startswith("000"):
        allocate_lines(rows, ledger)
    return results


def _uah(kop: int | None) -> str:
    if kop is None:
        return "—"
    return f"{kop // 100:,}".replace(",", " ") + f",{kop % 100:02d}"


def print_results(results: list[ReplayResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Seed table replay (UAH)")
    for column in ("row", "measure", "program", "recipients", "financed (seed)", "financed (replay)", "result"):
        table.add_column(column, justify="right" if column.startswith(("recipients", "financed")) else "left")
    for r in results:
        table.add_row(r.row.source, r.row.measure, ", ".join(r.row.programs) or "—",
                      "—" if r.row.recipients is None else str(r.row.recipients),
                      _uah(r.row.financed_kop), _uah(r.replay_kop), f"{r.status}: {r.reason}")
    Console(width=220).print(table)


def replay_table(table: Path, *, year: int | None = None, db: str = "sqlite://", out: Path | None = None,
                 as_json: bool = False) -> int:
    """The ``dopomoga replay`` command: print every row's result; 1 if a reproducible row does not match."""
    import json

    ledger = BudgetLedger(db)
    results = replay(table, ledger, year)
    if as_json:
        for r in results:
            print(json.dumps({"source": r.row.source, "measure": r.row.measure, "programs": r.row.programs,
                              "recipients": r.row.recipients, "financed_seed_kop": r.row.financed_kop,
                              "financed_replay_kop": r.replay_kop, "status": r.status, "reason": r.reason},
                             ensure_ascii=False))
    else:
        print_results(results)
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        print(", ".join(f"{n} {status}" for status, n in counts.items()))
    if out is not None:
        from dopomoga.budget import documents as d

        if not table.name.startswith("000"):
            raise ValueError("--out: the execution report is produced for the 000 table (Zhytomyr, H1 2023)")
        report = ledger.execution_report("zhytomyr", "2023-H1")
        d.write(out, d.execution_title(report), d.EXECUTION_COLUMNS, d.execution_rows(report))
        print(f"{out}: execution report, {report.period.label_uk}")
    return 1 if any(r.status == MISMATCH for r in results) else 0
