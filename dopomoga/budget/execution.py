"""The department's documents as data: the programme execution report and the payables list.

The execution report has the columns of the seeds' tables (000 L19: «Виконання заходів
Програми»; 004 Annexes 1-3): per budget line (measure) the programme's planned volume, the annual
volume with amendments, what was financed in the period, the percent executed and the recipients,
with totals per task and for the programme, and the money paid per fund source. It reads the
ledger's tables and the city's budget lines (``dopomoga.budget.lines``); it never writes.

Periods: ``2023`` (year), ``2023-H1`` / ``2023-H2`` (half-year), ``2023-Q1`` … ``2023-Q4``,
or a month ``2023-04``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from dopomoga import explain_uk as uk
from dopomoga.budget import schema as t
from dopomoga.budget.lines import BudgetLine, BudgetLines
from dopomoga.budget.tx import PAID_STATUSES
from dopomoga.errors import LedgerError

SOURCES = ("state", "oblast", "city", "other")


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    year: int
    first: int  # first month (1-12)
    last: int  # last month
    code: str  # as given: 2023-H1

    @property
    def label_uk(self) -> str:
        return uk.report_period_uk(self.code)


def report_period(text: str) -> ReportPeriod:
    """``2023``, ``2023-H1``, ``2023-Q3`` or ``2023-04`` as a range of months of one year."""
    m = re.fullmatch(r"(\d{4})(?:-(H[12]|Q[1-4]|0[1-9]|1[0-2]))?", text.strip().upper())
    if m is None:
        raise LedgerError("bad_period", f"not a report period: {text!r} (2023, 2023-H1, 2023-Q2, 2023-04)")
    year, part = int(m.group(1)), m.group(2)
    if part is None:
        first, last = 1, 12
    elif part[0] == "H":
        first = 1 if part == "H1" else 7
        last = first + 5
    elif part[0] == "Q":
        first = 3 * int(part[1]) - 2
        last = first + 2
    else:
        first = last = int(part)
    return ReportPeriod(year, first, last, f"{year}" + (f"-{part}" if part else ""))


@dataclass(slots=True)
class Sums:
    planned_kop: int = 0
    annual_kop: int = 0
    financed_kop: int = 0
    payments: int = 0
    sources: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))

    def add(self, other: Sums) -> None:
        self.planned_kop += other.planned_kop
        self.annual_kop += other.annual_kop
        self.financed_kop += other.financed_kop
        self.payments += other.payments
        for name, amount in other.sources.items():
            self.sources[name] += amount

    @property
    def percent_uk(self) -> str:
        return uk.percent_executed_uk(self.financed_kop, self.annual_kop)


@dataclass(slots=True)
class ExecutionRow:
    line: BudgetLine
    sums: Sums
    recipients: int
    amendments: int  # how many times the year's volume was amended
    owed_kop: int  # still deferred (owed) at the end of the period

    @property
    def info_uk(self) -> str:
        return uk.execution_info_uk(self.recipients, self.sums.payments, self.owed_kop, self.amendments)


@dataclass(slots=True)
class TaskTotal:
    task: str
    task_uk: str
    sums: Sums


@dataclass(slots=True)
class ExecutionReport:
    city: str
    programme_uk: str
    period: ReportPeriod
    rows: list[ExecutionRow]
    tasks: list[TaskTotal]
    total: Sums


def execution_report(engine: Engine, lines: BudgetLines, city: str, period: ReportPeriod,
                     programme_uk: str = "") -> ExecutionReport:
    """Every budget line of ``city`` for ``period``: planned, annual with amendments, financed, recipients."""
    city_lines = lines.cities.get(city)
    if city_lines is None:
        raise LedgerError("no_budget_lines", f"no programs/{city}/budget-lines.yaml")
    rows: list[ExecutionRow] = []
    tasks: dict[str, TaskTotal] = {}
    total = Sums()
    months = [f"{period.year:04d}-{m:02d}" for m in range(period.first, period.last + 1)]
    with engine.connect() as conn:
        for line in city_lines.lines:
            keys = line.keys(city)
            sums = Sums(planned_kop=line.planned_kop.get(period.year, 0))
            versions = 0
            for key in keys:
                found = conn.execute(
                    select(func.sum(t.allocations.c.annual_kop), func.max(t.allocations.c.version)).where(
                        t.allocations.c.program_id == key, t.allocations.c.year == period.year
                    )
                ).first()
                sums.annual_kop += int(found[0] or 0)
                versions = max(versions, int(found[1] or 0))
                sums.financed_kop += int(conn.execute(
                    select(func.coalesce(func.sum(t.totals.c.paid_kop), 0)).where(
                        t.totals.c.program_id == key, t.totals.c.year == period.year,
                        t.totals.c.month.between(period.first, period.last),
                    )
                ).scalar())
            payees: set[str] = set()
            owed = 0
            programs = line.programs()
            if programs:
                for program_id, payout, status, context in conn.execute(
                    select(t.claims.c.program_id, t.claims.c.payout_kop, t.claims.c.status, t.claims.c.context).where(
                        t.claims.c.program_id.in_(programs), t.claims.c.budget_period.in_(months),
                        t.claims.c.status.in_((*PAID_STATUSES, "deferred")),
                    )
                ):
                    if status == "deferred":
                        continue
                    if payout:
                        payee = json.loads(context)["payee"]
                        payees.add(f"{payee['id_kind']}:{payee['id']}")
                        sums.payments += 1
                        for source, amount in lines.split(program_id, payout) or [("city", payout)]:
                            sums.sources[source] += amount
                owed = int(conn.execute(
                    select(func.coalesce(func.sum(t.claims.c.claimed_kop), 0)).where(
                        t.claims.c.program_id.in_(programs), t.claims.c.status == "deferred",
                        t.claims.c.budget_period <= months[-1], t.claims.c.year == period.year,
                    )
                ).scalar())
            row = ExecutionRow(line, sums, len(payees), max(0, versions - 1), owed)
            rows.append(row)
            task = line.task or line.code
            total_row = tasks.setdefault(task, TaskTotal(task, line.task_uk or "", Sums()))
            total_row.sums.add(sums)
            total.add(sums)
    return ExecutionReport(city, programme_uk, period, rows, list(tasks.values()), total)
