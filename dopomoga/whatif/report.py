"""A what-if's comparison, baseline against scenario: pure functions from two sides to rows.

Money stays integer kopiyky until written; every ordering has a key tie-break, so the same
inputs give the same report byte for byte. Writers: CSV (UTF-8, amounts as exact decimal
hryvnias) and XLSX (openpyxl; amounts as exact decimals with a money format).
"""

from __future__ import annotations

import csv
import dataclasses
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from dopomoga.budget.tx import PAID_STATUSES
from dopomoga.money import kop_to_decimal_str
from dopomoga.whatif.run import Claim, Side


@dataclasses.dataclass(frozen=True)
class MonthRow:
    program_id: str
    district: str
    period: str
    need_baseline_kop: int
    need_scenario_kop: int
    allocation_baseline_kop: int
    allocation_scenario_kop: int
    paid_baseline_kop: int
    paid_scenario_kop: int
    paid_change_kop: int
    coefficient_baseline: str
    coefficient_scenario: str


@dataclasses.dataclass(frozen=True)
class ProgramRow:
    program_id: str
    recipients_baseline: int
    recipients_scenario: int
    gained: int
    lost: int
    entitled_baseline_kop: int
    entitled_scenario_kop: int
    payable_baseline_kop: int
    payable_scenario_kop: int
    payable_change_kop: int
    coefficient_changes: int  # applications whose settlement coefficient differs


@dataclasses.dataclass(frozen=True)
class PersonRow:
    payee: str  # masked
    program_id: str
    period: str
    status_baseline: str
    status_scenario: str
    payout_baseline_kop: int
    payout_scenario_kop: int
    change_kop: int


@dataclasses.dataclass(frozen=True)
class Comparison:
    scenario: str
    months: list[MonthRow]
    programs: list[ProgramRow]
    people: list[PersonRow]
    totals: ProgramRow  # program_id "(усі)"
    decided_baseline: int
    decided_scenario: int
    rejected_baseline: int
    rejected_scenario: int


_MISSING = Claim("", "", False, 0, "", 0, "", "")


def payable(claim: Claim) -> int:
    return claim.payout_kop if claim.status in PAID_STATUSES else 0


def compare(baseline: Side, scenario: Side, top: int = 20) -> Comparison:
    months: dict[tuple[str, str, str], dict[str, Any]] = {}
    for label, side in (("baseline", baseline), ("scenario", scenario)):
        for row in side.months:
            key = (row.program_id, row.district or "", row.period)
            entry = months.setdefault(key, {})
            entry[label] = row
    month_rows = []
    for (program_id, district, period), entry in sorted(months.items()):
        b, s = entry.get("baseline"), entry.get("scenario")
        month_rows.append(MonthRow(
            program_id, district, period,
            b.need_kop if b else 0, s.need_kop if s else 0,
            b.allocation_kop if b else 0, s.allocation_kop if s else 0,
            b.paid_kop if b else 0, s.paid_kop if s else 0,
            (s.paid_kop if s else 0) - (b.paid_kop if b else 0),
            b.coefficient if b else "", s.coefficient if s else "",
        ))

    sums: dict[str, list[int]] = defaultdict(lambda: [0] * 9)
    shared: dict[str, list[int]] = defaultdict(lambda: [0] * 3)  # per program: recipients, entitled, payable
    changed: list[tuple[str, PersonRow]] = []
    base_claims, scen_claims = baseline.claims, scenario.claims

    def differ(app_id: str, b: Claim, s: Claim) -> None:
        row = sums[b.program_id or s.program_id]
        pb = payable(b)
        ps = payable(s)
        row[0] += pb > 0
        row[1] += ps > 0
        row[2] += pb == 0 and ps > 0
        row[3] += pb > 0 and ps == 0
        row[4] += b.entitled_kop if b.eligible else 0
        row[5] += s.entitled_kop if s.eligible else 0
        row[6] += pb
        row[7] += ps
        row[8] += b.coefficient != s.coefficient
        if pb != ps:
            changed.append((app_id, PersonRow(s.payee or b.payee, b.program_id or s.program_id,
                                              s.period or b.period, b.status or "—", s.status or "—", pb, ps,
                                              ps - pb)))

    # Every application of either side, in any order: the sums do not depend on it, and the people are
    # sorted below with the application id as the last key. A claim the scenario shares with the
    # baseline (a program not recomputed: the very same outcome) counts the same on both sides and
    # changes nothing: it is summed once, into ``shared``, and added to both sides' columns below.
    for app_id, b in base_claims.items():
        s = scen_claims.get(app_id, _MISSING)
        if s is b:
            row = shared[b.program_id]
            pb = b.payout_kop if b.status in PAID_STATUSES else 0
            row[0] += pb > 0
            row[1] += b.entitled_kop if b.eligible else 0
            row[2] += pb
        else:
            differ(app_id, b, s)
    for app_id, s in scen_claims.items():
        if app_id not in base_claims:
            differ(app_id, _MISSING, s)
    for program_id, (recipients, entitled, paid) in shared.items():
        row = sums[program_id]
        row[0] += recipients
        row[1] += recipients
        row[4] += entitled
        row[5] += entitled
        row[6] += paid
        row[7] += paid
    changed.sort(key=lambda c: (-abs(c[1].change_kop), c[1].program_id, c[1].period, c[1].payee, c[0]))
    people = [person for _, person in changed]

    def program_row(program_id: str, v: list[int]) -> ProgramRow:
        return ProgramRow(program_id, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[7] - v[6], v[8])

    programs = [program_row(p, v) for p, v in sorted(sums.items())]
    total = [sum(v[i] for v in sums.values()) for i in range(9)]
    return Comparison(scenario.label, month_rows, programs, people[:top], program_row("(усі)", total),
                      baseline.decided, scenario.decided, baseline.errors, scenario.errors)


def _cells(row: Any, money: Any) -> list[Any]:
    out = []
    for field in dataclasses.fields(row):
        value = getattr(row, field.name)
        out.append(money(value) if field.name.endswith("_kop") else value)
    return out


def _header(kind: type) -> list[str]:
    return [f.name[:-4] + "_uah" if f.name.endswith("_kop") else f.name for f in dataclasses.fields(kind)]


def sheets(comparison: Comparison) -> list[tuple[str, type, list[Any]]]:
    return [
        ("programs", ProgramRow, [*comparison.programs, comparison.totals]),
        ("months", MonthRow, comparison.months),
        ("people", PersonRow, comparison.people),
    ]


def write_csv(comparison: Comparison, directory: Path) -> list[Path]:
    """One CSV per table (programs.csv, months.csv, people.csv); amounts in exact hryvnias."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, kind, rows in sheets(comparison):
        path = directory / f"{name}.csv"
        with path.open("w", encoding="utf-8", newline="") as sink:
            writer = csv.writer(sink, lineterminator="\n")
            writer.writerow(_header(kind))
            for row in rows:
                writer.writerow(_cells(row, kop_to_decimal_str))
        written.append(path)
    return written


def write_xlsx(comparison: Comparison, path: Path) -> Path:
    """One workbook, a sheet per table; amounts as exact decimals (``#,##0.00``)."""
    from openpyxl import Workbook  # only the report needs it

    book = Workbook()
    book.remove(book.active)
    for name, kind, rows in sheets(comparison):
        sheet = book.create_sheet(name)
        sheet.append(_header(kind))
        money_columns = [i + 1 for i, f in enumerate(dataclasses.fields(kind)) if f.name.endswith("_kop")]
        for row in rows:
            sheet.append(_cells(row, lambda kop: Decimal(kop) / 100))
        for column in money_columns:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
                cell.number_format = "#,##0.00"
        sheet.freeze_panes = "A2"
    path.parent.mkdir(parents=True, exist_ok=True)
    book.properties.creator = "dopomoga whatif"
    book.save(path)
    return path
