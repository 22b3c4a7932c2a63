"""Budget read models: a month's status and the need report («заявка на фінансування»).

Pure reads of the ledger's tables (``dopomoga.budget.schema``); the coefficient of a month is
the settlement coefficient of a closed pro-rata month, else the provisional
``min(1, available/reserved)`` while claims are reserved, else ``paid/need``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, select

from dopomoga.budget import schema as t
from dopomoga.budget.allocation import available_in
from dopomoga.budget.tx import Sums, closed_row, load_plan, load_year
from dopomoga.money import fraction_str
from dopomoga.periods import split_period


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One month of one program (and district). Money in kopiyky; coefficient exact.

    - ``allocation_kop``: that month's allocation under the plan in force;
    - ``available_kop``: what may still be spent in that month, year to date;
    - ``reserved_kop``: pending (reserved, not yet settled) claims charged to the month;
    - ``paid_kop``: paid and prorated payouts charged to the month;
    - ``need_kop``: Σ eligible claims charged to the month (declared need);
    - ``coefficient``: the settlement coefficient of a closed pro-rata month; otherwise
      the provisional ``min(1, available/reserved)`` while claims are reserved, else ``paid/need``.
    """

    program_id: str
    period: str
    district: str | None
    allocation_kop: int
    available_kop: int
    reserved_kop: int
    paid_kop: int
    need_kop: int
    coefficient: str
    closed: bool


@dataclass(frozen=True, slots=True)
class NeedRow:
    """A line of the «заявка на фінансування»: need vs allocation vs paid for one month."""

    program_id: str
    district: str | None
    period: str
    claims: int
    need_kop: int
    allocation_kop: int
    paid_kop: int
    reserved_kop: int
    shortfall_kop: int  # max(0, need - allocation): what the month's plan does not cover
    unpaid_kop: int  # max(0, need - paid - reserved): need not met (cut, deferred, refused)
    coefficient: str
    closed: bool


@dataclass(frozen=True, slots=True)
class PayableRow:
    """A claim carried into ``year`` as a payable («кредиторська заборгованість»): owed or since paid."""

    program_id: str
    district: str | None
    application_id: str
    owed_since: int  # the budget year it was owed in
    period: str  # the month of ``year`` it is charged to
    claimed_kop: int
    paid_kop: int
    status: str  # deferred (still owed) or paid
    reason_code: str


@dataclass(frozen=True, slots=True)
class AmendmentRow:
    """One version of a budget key's year: the plan set or amended, why, by which document, when."""

    key: str  # the program, or the budget line's holder id
    line: str | None
    district: str | None
    year: int
    version: int
    annual_kop: int
    change_kop: int  # against the previous version (the first: its whole amount)
    plan_kind: str
    amendment_id: str
    legal_reference: str
    reason: str | None
    document: str | None
    amended_on: str | None
    occurred_at: str


def month_coefficient(closed: Any, sums: Sums, available: int) -> str:
    if closed is not None and closed.coefficient:
        return closed.coefficient
    if sums.reserved:
        return fraction_str(min(Fraction(1), Fraction(available, sums.reserved)))
    if sums.need:
        return fraction_str(Fraction(sums.paid, sums.need))
    return "1"


class Reports:
    """Read models over a ledger's database; ``carry_over(program_id)`` is the program's setting."""

    def __init__(self, engine: Engine, carry_over: Callable[[str], bool], holder: Callable[[str], str] = str):
        self.engine = engine
        self._carry_over = carry_over
        self._holder = holder  # program -> its budget key (itself, or its pooled budget line)

    def status(self, program_id: str, period: str, district: str | None = None) -> BudgetStatus:
        year, month = split_period(period)
        dist = district or ""
        program_id = self._holder(program_id)
        with self.engine.connect() as conn:
            plan = load_plan(conn, program_id, dist, year)
            totals = load_year(conn, program_id, dist, year)
            closed = closed_row(conn, program_id, dist, period)
        sums = totals.sums(month)
        available = available_in(month, plan, totals.spent(), self._carry_over(program_id)) if plan else 0
        coefficient = month_coefficient(closed, sums, available)
        return BudgetStatus(
            program_id=program_id,
            period=period,
            district=district,
            allocation_kop=plan[month - 1] if plan else 0,
            available_kop=available,
            reserved_kop=sums.reserved,
            paid_kop=sums.paid,
            need_kop=sums.need,
            coefficient=coefficient,
            closed=closed is not None,
        )

    def need_report(self, year: int, program_id: str | None = None) -> list[NeedRow]:
        """Per budget key (and district) and month: need, allocation, paid, shortfall, coefficient.

        A program on a budget line allocated as a whole is reported as its line (holder id)."""
        if program_id is not None:
            program_id = self._holder(program_id)
        with self.engine.connect() as conn:
            keys: set[tuple[str, str]] = set()
            q1 = select(t.allocations.c.program_id, t.allocations.c.district).where(
                t.allocations.c.year == year
            )
            q2 = select(t.totals.c.program_id, t.totals.c.district).where(t.totals.c.year == year).distinct()
            if program_id is not None:
                q1 = q1.where(t.allocations.c.program_id == program_id)
                q2 = q2.where(t.totals.c.program_id == program_id)
            keys |= {(r[0], r[1]) for r in conn.execute(q1)}
            keys |= {(r[0], r[1]) for r in conn.execute(q2)}
            rows: list[NeedRow] = []
            for prog, dist in sorted(keys):
                plan = load_plan(conn, prog, dist, year)
                totals = load_year(conn, prog, dist, year)
                spent = totals.spent()
                closed_rows = {
                    r.period: r
                    for r in conn.execute(
                        select(t.periods).where(
                            t.periods.c.program_id == prog,
                            t.periods.c.district == dist,
                            t.periods.c.period.like(f"{year:04d}-%"),
                        )
                    )
                }
                for month in range(1, 13):
                    period = f"{year:04d}-{month:02d}"
                    sums = totals.sums(month)
                    allocation = plan[month - 1] if plan else 0
                    available = available_in(month, plan, spent, self._carry_over(prog)) if plan else 0
                    rows.append(
                        NeedRow(
                            program_id=prog,
                            district=dist or None,
                            period=period,
                            claims=sums.count,
                            need_kop=sums.need,
                            allocation_kop=allocation,
                            paid_kop=sums.paid,
                            reserved_kop=sums.reserved,
                            shortfall_kop=max(0, sums.need - allocation),
                            unpaid_kop=max(0, sums.need - sums.paid - sums.reserved),
                            coefficient=month_coefficient(closed_rows.get(period), sums, available),
                            closed=period in closed_rows,
                        )
                    )
        return rows

    def payables(self, year: int, program_id: str | None = None) -> list[PayableRow]:
        """Claims carried into ``year`` from earlier years (still owed first), by program and arrival."""
        query = select(
            t.claims.c.program_id, t.claims.c.district, t.claims.c.application_id, t.claims.c.carried_from,
            t.claims.c.budget_period, t.claims.c.claimed_kop, t.claims.c.payout_kop, t.claims.c.status,
            t.claims.c.reason_code,
        ).where(t.claims.c.year == year, t.claims.c.carried_from > 0)
        if program_id is not None:
            query = query.where(t.claims.c.program_id == program_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.claims.c.program_id, t.claims.c.district, t.claims.c.arrival_seq))
            return [
                PayableRow(
                    program_id=r.program_id, district=r.district or None, application_id=r.application_id,
                    owed_since=r.carried_from, period=r.budget_period, claimed_kop=r.claimed_kop,
                    paid_kop=r.payout_kop, status=r.status, reason_code=r.reason_code,
                )
                for r in rows
            ]

    def amendments(self, year: int, program_id: str | None = None) -> list[AmendmentRow]:
        """Every allocation and amendment of ``year`` in version order (the history is never rewritten)."""
        h = t.allocation_history
        query = select(h).where(h.c.year == year)
        if program_id is not None:
            query = query.where(h.c.program_id == self._holder(program_id))
        rows: list[AmendmentRow] = []
        previous: dict[tuple[str, str], int] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(query.order_by(h.c.program_id, h.c.district, h.c.version)).mappings():
                key = (r["program_id"], r["district"])
                rows.append(AmendmentRow(
                    key=r["program_id"], line=r["line"], district=r["district"] or None, year=r["year"],
                    version=r["version"], annual_kop=r["annual_kop"],
                    change_kop=r["annual_kop"] - previous.get(key, 0), plan_kind=r["plan_kind"],
                    amendment_id=r["amendment_id"], legal_reference=r["legal_reference"], reason=r["reason"],
                    document=r["document"], amended_on=r["amended_on"], occurred_at=r["occurred_at"],
                ))
                previous[key] = r["annual_kop"]
        return rows
