"""The department's documents as files: XLSX (openpyxl) and CSV, in Ukrainian.

- the programme execution report, with the columns of the seed's table (000 L19; 004 Annexes
  1-3 have the same money columns): one row per budget line, a total per task and for the
  programme, and the money paid per fund source;
- the monthly funding requests («заявка на фінансування») with their states;
- the payables («кредиторська заборгованість») carried into a year.

Money columns of the execution report are in thousands of hryvnias, as in the seeds, written as
exact decimals (kopiyky / 100 000: never rounded, never a float); the other documents are in
hryvnias with kopiyky. CSV files are UTF-8 with a BOM, ``;``-separated, decimal comma (what a
Ukrainian spreadsheet opens as numbers).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from dopomoga import explain_uk as uk
from dopomoga.budget.execution import SOURCES, ExecutionReport
from dopomoga.budget.funding import FundingRequest
from dopomoga.budget.lines import SOURCES_UK
from dopomoga.budget.reports import AmendmentRow, PayableRow

#: The seed's column headers (000 L19), then the fund sources.
EXECUTION_COLUMNS = (
    "№ з/п",
    "Пріоритетні завдання",
    "Зміст заходів",
    "Термін виконання",
    "Виконавці",
    "Орієнтовний обсяг фінансування відповідно до програми, тис.грн.",
    "Річний обсяг фінансування (з урахуванням змін), тис.грн.",
    "Фактично профінансовано у звітному періоді, тис.грн.",
    "Відсоток виконання заходу, %",
    "Інформація про виконання або причини невиконання заходу",
    *(f"у т.ч. {SOURCES_UK[s]}, тис.грн." for s in SOURCES),
)
FUNDING_COLUMNS = ("Бюджетний рядок", "Захід (ключ бюджету)", "Місяць", "Стан", "Заявлено, грн",
                   "Погоджено, грн", "Надійшло, грн", "Дата заявки", "Дата погодження", "Дата надходження",
                   "Документ")
AMENDMENT_COLUMNS = ("Бюджетний рядок", "Ключ бюджету (захід або рядок)", "Район", "Рік", "Редакція",
                     "Річний обсяг, грн", "Зміна, грн", "Розпис", "Підстава", "Причина змін", "Документ",
                     "Дата документа", "Зміна внесена")
PAYABLE_COLUMNS = ("Програма", "Район", "Заявка", "Заборгованість з року", "Місяць обліку", "Сума, грн",
                   "Сплачено, грн", "Стан")


def thousands(kop: int) -> Decimal:
    """Kopiyky as thousands of hryvnias, exactly (1 039 500,00 грн -> 1039.5)."""
    return (Decimal(kop) / Decimal(100_000)).normalize() if kop else Decimal(0)


def hryvnias(kop: int | None) -> Decimal | None:
    return None if kop is None else Decimal(kop) / Decimal(100)


def execution_rows(report: ExecutionReport) -> list[list[Any]]:
    """The table's rows: lines of each task, then the task's total; the programme total last."""
    rows: list[list[Any]] = []
    for task in report.tasks:
        for row in (r for r in report.rows if (r.line.task or r.line.code) == task.task):
            s = row.sums
            rows.append([
                row.line.code, task.task_uk, row.line.name_uk, row.line.term or "", row.line.executors_uk or "",
                thousands(s.planned_kop), thousands(s.annual_kop), thousands(s.financed_kop), s.percent_uk,
                row.info_uk, *(thousands(s.sources[name]) for name in SOURCES),
            ])
        s = task.sums
        rows.append([f"Разом за завданням {task.task}", task.task_uk, "", "", "", thousands(s.planned_kop),
                     thousands(s.annual_kop), thousands(s.financed_kop), s.percent_uk, "",
                     *(thousands(s.sources[name]) for name in SOURCES)])
    s = report.total
    rows.append(["Усього за Програмою", "", "", "", "", thousands(s.planned_kop), thousands(s.annual_kop),
                 thousands(s.financed_kop), s.percent_uk, "", *(thousands(s.sources[name]) for name in SOURCES)])
    return rows


def execution_title(report: ExecutionReport) -> str:
    return uk.execution_title_uk(report.programme_uk, report.period.label_uk)


def funding_rows(requests: Sequence[FundingRequest]) -> list[list[Any]]:
    return [[r.line, r.key, r.period, uk.FUNDING_STATES_UK[r.state], hryvnias(r.requested_kop),
             hryvnias(r.approved_kop), hryvnias(r.received_kop), r.requested_on, r.approved_on or "",
             r.received_on or "", r.document or ""] for r in requests]


def amendment_rows(amendments: Sequence[AmendmentRow]) -> list[list[Any]]:
    return [[a.line or "", a.key, a.district or "", a.year, a.version, hryvnias(a.annual_kop), hryvnias(a.change_kop),
             uk.PLAN_KINDS_UK.get(a.plan_kind, a.plan_kind), a.legal_reference, a.reason or "", a.document or "",
             a.amended_on or "", a.occurred_at[:10]] for a in amendments]


def payable_rows(payables: Sequence[PayableRow]) -> list[list[Any]]:
    return [[p.program_id, p.district or "", p.application_id, p.owed_since, p.period, hryvnias(p.claimed_kop),
             hryvnias(p.paid_kop), "сплачено" if p.status == "paid" else "не сплачено"] for p in payables]


def write_xlsx(path: Path, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
               money_from: int = 5, thousands_format: bool = True) -> Path:
    from openpyxl import Workbook  # imported here: only the documents need it
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    sheet = book.active
    sheet.title = "Звіт"
    sheet.append([title])
    sheet["A1"].font = Font(bold=True)
    sheet.append(list(columns))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    number_format = "#,##0.0##" if thousands_format else "#,##0.00"
    for row in rows:
        sheet.append(list(row))
        last = sheet.max_row
        if str(row[0]).startswith(("Разом", "Усього")):
            for cell in sheet[last]:
                cell.font = Font(bold=True)
        for cell in sheet[last]:
            if isinstance(cell.value, Decimal):
                cell.number_format = number_format
    for index, width in enumerate((10, 28, 60, 10, 28), start=1):
        sheet.column_dimensions[sheet.cell(row=2, column=index).column_letter].width = width
    sheet.freeze_panes = "A3"
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f").replace(".", ",")
    return str(value)


def write_csv(path: Path, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow([title])
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_value(v) for v in row])
    return path


def write(path: Path, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
          thousands_format: bool = True) -> Path:
    """XLSX or CSV by the file's extension."""
    if path.suffix.lower() == ".csv":
        return write_csv(path, title, columns, rows)
    if path.suffix.lower() != ".xlsx":
        raise ValueError(f"{path}: write .xlsx or .csv")
    return write_xlsx(path, title, columns, rows, thousands_format=thousands_format)
