"""One ledger transaction: the data access the budget policy needs, cached, written back at the end.

(About 480 lines, over the house's ~450: the cached reads and the write-back of one transaction
belong together; split, the caches' invariants would span files.)

``Tx`` is what ``dopomoga.budget.policy`` works on: the claims it touches, the budget key's
monthly plan and running totals, the closed months, and the allocation history. Only this
transaction writes them, so its caches stay exact until it commits (``dopomoga.budget.store``
runs it and stores what it emitted).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from dopomoga.budget import schema as t
from dopomoga.periods import next_period
from schemas.events import AllocationSet, Applicant, Payment, PayoutDecided, RulesRef

PAID_STATUSES = ("paid", "prorated")
OPEN_STATUSES = ("pending", "deferred")

@dataclass(slots=True)
class ClaimRow:
    application_id: str
    entitlement_decision_id: str
    program_id: str
    district: str
    year: int
    origin_period: str
    budget_period: str
    policy: str
    priority_class: int
    arrival_seq: int
    eligible: bool
    claimed_kop: int
    payout_kop: int
    status: str
    final: bool
    reason_code: str
    coefficient: str
    revision: int
    context: str
    entitlement: str = ""  # only set on new claims (never loaded back: it can be large)
    carried_from: int = 0  # the year it was owed in, once carried into the next as a payable
    holder: str = ""  # the budget key it is charged to: the program, or its pooled budget line
    new: bool = False
    dirty: bool = False

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CLAIM_COLUMNS}

    def changes(self) -> dict[str, Any]:
        return {"b_application_id": self.application_id, **{name: getattr(self, name) for name in _MUTABLE}}


_CLAIM_COLUMNS = tuple(c.name for c in t.claims.columns)

# Hot-path statements, built once (SQLAlchemy then reuses their compiled form).
_B = bindparam
_Q_PLAN = select(t.allocation_months.c.month, t.allocation_months.c.allocation_kop).where(
    t.allocation_months.c.program_id == _B("program_id"),
    t.allocation_months.c.district == _B("district"),
    t.allocation_months.c.year == _B("year"),
)
_TOTALS = ("claims", "need_kop", "reserved_kop", "paid_kop", "deferred")
_Q_TOTALS = select(t.totals.c.month, *(t.totals.c[name] for name in _TOTALS)).where(
    t.totals.c.program_id == _B("program_id"),
    t.totals.c.district == _B("district"),
    t.totals.c.year == _B("year"),
)
_Q_CLOSED = select(t.periods.c.period).where(
    t.periods.c.program_id == _B("program_id"),
    t.periods.c.district == _B("district"),
)
_U_TOTALS = (
    update(t.totals)
    .where(
        t.totals.c.program_id == _B("b_program_id"),
        t.totals.c.district == _B("b_district"),
        t.totals.c.year == _B("b_year"),
        t.totals.c.month == _B("b_month"),
    )
    .values(**{name: t.totals.c[name] + _B(f"d_{name}") for name in _TOTALS})
)
_LOADED = [c for c in t.claims.columns if c.name != "entitlement"]
_MUTABLE = ("year", "budget_period", "carried_from", "payout_kop", "status", "final", "reason_code", "coefficient", "revision")
_UPDATE_CLAIM = (
    update(t.claims)
    .where(t.claims.c.application_id == bindparam("b_application_id"))
    .values(**{name: bindparam(name) for name in _MUTABLE})
)



def bulk_insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``: on PostgreSQL with one ``COPY``
    (psycopg's ``write_row``: no statement per row; issue 15 measured executemany at about a third
    of the budget's CPU per claim, client and server), elsewhere with an executemany ``INSERT``.

    Errors are SQLAlchemy's, as for ``conn.execute`` (a unique violation is an ``IntegrityError``,
    a deadlock an ``OperationalError``), so the store's retries see them alike."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    import psycopg  # only here: the dialect is PostgreSQL

    names = list(rows[0])
    columns = ", ".join(f'"{name}"' for name in names)
    statement = f'COPY "{table.name}" ({columns}) FROM STDIN'
    raw = conn.connection.driver_connection
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row([row[name] for name in names])
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def district_of(budget_key: str) -> str:
    parts = budget_key.split(":")
    return parts[2] if len(parts) > 2 else ""


_Key = tuple[str, str, int]  # program_id, district, year


@dataclass(slots=True)
class Year:
    """The running totals of one budget key, month by month, as this transaction sees them."""

    rows: list[list[int]]  # month - 1 -> [claims, need, reserved, paid, deferred]
    stored: dict[int, tuple[int, ...]]  # month -> the row as it is in budget_totals
    touched: set[int]  # months to write back (a new row is written even if all zero)

    def spent(self) -> list[int]:
        return [row[3] for row in self.rows]

    def waiting(self) -> bool:
        """Is any claim of the key deferred (strict FIFO: nothing may overtake it)?"""
        return any(row[4] for row in self.rows)

    def sums(self, month: int) -> Sums:
        claims, need, reserved, paid, _ = self.rows[month - 1]
        return Sums(count=claims, need=need, paid=paid, reserved=reserved)

    def count(self, claim: ClaimRow, sign: int) -> None:
        """Add (``sign`` = 1) or take back (-1) what ``claim`` counts in its month's row."""
        month = int(claim.budget_period[5:7])
        self.touched.add(month)
        if not claim.eligible or claim.status == "new":
            return
        row = self.rows[month - 1]
        row[0] += sign
        row[1] += sign * claim.claimed_kop
        status = claim.status
        if status == "pending":
            row[2] += sign * claim.claimed_kop
        elif status in PAID_STATUSES:
            row[3] += sign * claim.payout_kop
        elif status == "deferred":
            row[4] += sign


class MonthWalk:
    """The open months of a budget, from ``is_closed``: shared by the SQL ``Tx`` and the what-if's
    in-memory transaction (``dopomoga.budget.memory.MemoryTx``)."""

    def is_closed(self, program_id: str, district: str, period: str) -> bool:
        raise NotImplementedError

    def next_open(self, program_id: str, district: str, period: str) -> str | None:
        """The next month of the budget year that is not closed (``None`` after December)."""
        candidate = next_period(period)
        while candidate is not None and self.is_closed(program_id, district, candidate):
            candidate = next_period(candidate)
        return candidate

    def first_open(self, program_id: str, district: str, year: int) -> str | None:
        """The first month of ``year`` that is not closed (where a payable of the year before goes)."""
        january = f"{year:04d}-01"
        return january if not self.is_closed(program_id, district, january) else self.next_open(
            program_id, district, january
        )


class Tx(MonthWalk):
    """One database transaction: one input (or a batch of them, in order) and what they emit.

    Besides the claims touched, it caches what the inputs of the transaction read over and
    over (the plan, the running totals and the closed months of a budget key); only this
    transaction writes them, so the caches stay exact until it commits.
    """

    def __init__(self, conn: Connection, seq: int):
        self.conn = conn
        self.occurred_at: Any = None
        self.seq = seq
        self.emitted: list[PayoutDecided] = []
        self.revisions: dict[str, int] = {}  # event_id -> revision of the claim
        self.contexts: dict[str, tuple[Applicant, Payment, RulesRef]] = {}  # validated, for new claims
        self.claims: dict[str, ClaimRow] = {}
        self.years: dict[_Key, Year] = {}
        self.plans: dict[_Key, tuple[int, ...] | None] = {}
        self.closed: dict[tuple[str, str], set[str]] = {}
        self.confirmations: dict[_Key, set[str]] = {}

    def start(self, occurred_at: Any) -> None:
        """The next input of the transaction (it takes ``self.seq``)."""
        self.occurred_at = occurred_at
        self.emitted = []
        self.revisions = {}

    # -- the budget key's plan and running totals -------------------------------------------------
    def plan(self, program_id: str, district: str, year: int) -> tuple[int, ...] | None:
        key = (program_id, district, year)
        if key not in self.plans:
            self.plans[key] = load_plan(self.conn, program_id, district, year)
        return self.plans[key]

    def year(self, program_id: str, district: str, year: int) -> Year:
        key = (program_id, district, year)
        totals = self.years.get(key)
        if totals is None:
            totals = self.years[key] = load_year(self.conn, program_id, district, year)
        return totals

    def spent(self, program_id: str, district: str, year: int) -> list[int]:
        """Paid per month (a copy: callers count their own payments into it as they go)."""
        return self.year(program_id, district, year).spent()

    def account(self, claim: ClaimRow, sign: int) -> None:
        """Add (``sign`` = 1) or take back (-1) what ``claim`` counts in its month's totals."""
        self.year(claim.holder, claim.district, claim.year).count(claim, sign)

    def flush_totals(self) -> None:
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for (program_id, district, year), totals in self.years.items():
            for month in sorted(totals.touched):
                row = tuple(totals.rows[month - 1])
                before = totals.stored.get(month)
                if before is None:
                    inserts.append(
                        {"program_id": program_id, "district": district, "year": year, "month": month}
                        | dict(zip(_TOTALS, row, strict=True))
                    )
                elif row != before:
                    updates.append(
                        {"b_program_id": program_id, "b_district": district, "b_year": year, "b_month": month}
                        | {
                            f"d_{name}": new - old
                            for name, new, old in zip(_TOTALS, row, before, strict=True)
                        }
                    )
                totals.stored[month] = row
            totals.touched.clear()
        bulk_insert(self.conn, t.totals, inserts)
        if updates:
            self.conn.execute(_U_TOTALS, updates)

    # -- claims -------------------------------------------------------------------------------------
    def add_claim(self, claim: ClaimRow, context: tuple[Applicant, Payment, RulesRef]) -> None:
        self.claims[claim.application_id] = claim
        self.contexts[claim.application_id] = context

    def select_claims(self, *conditions: Any) -> list[ClaimRow]:
        """Claims matching ``conditions`` (merged with those already touched in this transaction)."""
        rows = self.conn.execute(select(*_LOADED).where(and_(*conditions))).mappings()
        result: list[ClaimRow] = []
        for row in rows:
            claim = self.claims.get(row["application_id"])
            if claim is None:
                claim = ClaimRow(**dict(row))
                self.claims[claim.application_id] = claim
            result.append(claim)
        return result

    def deferred_claims(self, holder: str, district: str, year: int) -> list[ClaimRow]:
        """The deferred claims of a budget key, in arrival order (written first, so queries see them)."""
        self.sync()
        queue = self.select_claims(
            t.claims.c.holder == holder,
            t.claims.c.district == district,
            t.claims.c.year == year,
            t.claims.c.status == "deferred",
        )
        # payables of earlier years first («кредиторська заборгованість»), then arrival order
        return sorted(
            (c for c in queue if c.status == "deferred" and c.year == year),
            key=lambda c: (c.carried_from == 0, c.arrival_seq),
        )

    def open_claims(self, holder: str, district: str, period: str) -> list[ClaimRow]:
        """Pending and deferred claims charged to a month of a budget key."""
        self.sync()
        return self.select_claims(
            t.claims.c.holder == holder,
            t.claims.c.district == district,
            t.claims.c.budget_period == period,
            t.claims.c.status.in_(OPEN_STATUSES),
        )

    def context_of(self, claim: ClaimRow) -> tuple[Applicant, Payment, RulesRef]:
        """The payee, payment and rules of a claim (validated once)."""
        parsed = self.contexts.get(claim.application_id)
        if parsed is None:
            context = json.loads(claim.context)
            parsed = (
                Applicant.model_validate(context["payee"]),
                Payment.model_validate(context["payment"]),
                RulesRef.model_validate(context["rules"]),
            )
        return parsed

    def flush_claims(self) -> None:
        bulk_insert(self.conn, t.claims, [c.values() for c in self.claims.values() if c.new])
        changed = [c.changes() for c in self.claims.values() if c.dirty and not c.new]
        if changed:
            self.conn.execute(_UPDATE_CLAIM, changed)

    def sync(self) -> None:
        """Write the claims changed so far in this transaction, so queries see them."""
        self.flush_claims()
        for claim in self.claims.values():
            claim.new = False
            claim.dirty = False

    # -- confirmations of parameter values (ParameterConfirmed) -----------------------------------
    def confirmed(self, program_id: str, year: int) -> set[str]:
        """The parameters an operator confirmed for a program's budget year (read once per transaction)."""
        key = (program_id, "", year)
        found = self.confirmations.get(key)
        if found is None:
            rows = self.conn.execute(
                select(t.confirmations.c.parameter).where(
                    t.confirmations.c.program_id == program_id, t.confirmations.c.year == year
                )
            )
            found = self.confirmations[key] = {r[0] for r in rows}
        return found

    def record_confirmation(self, command: Any) -> bool:
        """Store a confirmation; False if that parameter was already confirmed for the year."""
        if command.parameter in self.confirmed(command.program_id, command.year):
            return False
        self.conn.execute(insert(t.confirmations).values(
            program_id=command.program_id, year=command.year, parameter=command.parameter,
            document=command.document, confirmed_by=command.confirmed_by, event_id=command.event_id,
            occurred_at=command.occurred_at.isoformat(),
        ))
        self.confirmed(command.program_id, command.year).add(command.parameter)
        return True

    def held_claims(self, program_id: str, year: int) -> list[tuple[ClaimRow, list[str]]]:
        """Claims of a program's year held for confirmation, in arrival order, with what each awaits."""
        self.sync()
        rows = self.conn.execute(
            select(t.claims.c.application_id, t.claims.c.entitlement).where(
                t.claims.c.program_id == program_id, t.claims.c.year == year, t.claims.c.status == "held"
            )
        ).all()
        pending = {
            application_id: json.loads(body).get("operator", {}).get("pending_confirmation", [])
            for application_id, body in rows
        }
        claims = self.select_claims(t.claims.c.application_id.in_(list(pending)))
        return sorted(((c, pending[c.application_id]) for c in claims if c.status == "held"),
                      key=lambda pair: pair[0].arrival_seq)

    # -- periods ------------------------------------------------------------------------------------
    def closed_periods(self, program_id: str, district: str) -> set[str]:
        """The closed months of a program (and district), read once per transaction."""
        closed = self.closed.get((program_id, district))
        if closed is None:
            rows = self.conn.execute(_Q_CLOSED, {"program_id": program_id, "district": district})
            closed = self.closed[(program_id, district)] = {r[0] for r in rows}
        return closed

    def is_closed(self, program_id: str, district: str, period: str) -> bool:
        return period in self.closed_periods(program_id, district)

    def record_close(self, program_id: str, district: str, period: str, event_id: str, *,
                     pool: int, claimed: int, paid: int, coefficient: str) -> None:
        self.conn.execute(
            insert(t.periods).values(
                program_id=program_id,
                district=district,
                period=period,
                closed_event_id=event_id,
                pool_kop=pool,
                claimed_kop=claimed,
                paid_kop=paid,
                unspent_kop=pool - paid,
                coefficient=coefficient,
            )
        )
        self.closed_periods(program_id, district).add(period)

    # -- allocations --------------------------------------------------------------------------------
    def write_allocation(self, command: AllocationSet, plan: tuple[int, ...], holder: str, line: str | None) -> None:
        """Replace the budget key's allocation and plan; append the amendment to its history."""
        district = command.district or ""
        key = {"program_id": holder, "district": district, "year": command.year}
        conn = self.conn
        version = (
            conn.execute(
                select(func.max(t.allocation_history.c.version)).where(
                    *(getattr(t.allocation_history.c, k) == v for k, v in key.items())
                )
            ).scalar()
            or 0
        ) + 1
        conn.execute(delete(t.allocations).where(*(getattr(t.allocations.c, k) == v for k, v in key.items())))
        conn.execute(
            delete(t.allocation_months).where(
                *(getattr(t.allocation_months.c, k) == v for k, v in key.items())
            )
        )
        conn.execute(
            insert(t.allocations).values(
                **key,
                version=version,
                annual_kop=command.annual_kop,
                plan_kind=command.plan.kind,
                amendment_id=command.amendment_id,
                event_id=command.event_id,
            )
        )
        conn.execute(
            insert(t.allocation_months),
            [{**key, "month": m, "allocation_kop": amount} for m, amount in enumerate(plan, start=1)],
        )
        conn.execute(
            insert(t.allocation_history).values(
                event_id=command.event_id,
                **key,
                version=version,
                annual_kop=command.annual_kop,
                plan_kind=command.plan.kind,
                plan=json.dumps(list(plan)),
                amendment_id=command.amendment_id,
                legal_reference=command.legal_reference,
                occurred_at=command.occurred_at.isoformat(),
                line=command.line or line,
                reason=command.reason_uk,
                document=command.document,
                amended_on=None if command.amended_on is None else command.amended_on.isoformat(),
            )
        )
        self.plans[(holder, district, command.year)] = plan

    def districts(self, program_id: str, year: int) -> list[str]:
        """Every district of a program's year that has an allocation or claims ("" included)."""
        conn = self.conn
        found = {
            r[0]
            for r in conn.execute(
                select(t.allocations.c.district).where(
                    t.allocations.c.program_id == program_id, t.allocations.c.year == year
                )
            )
        }
        found |= {
            r[0]
            for r in conn.execute(
                select(t.totals.c.district)
                .where(t.totals.c.program_id == program_id, t.totals.c.year == year)
                .distinct()
            )
        }
        found |= {
            d for (p, d, y), totals in self.years.items() if p == program_id and y == year and totals.touched
        }
        return sorted(found | {""})



def load_plan(conn: Connection, program_id: str, district: str, year: int) -> tuple[int, ...] | None:
    rows = conn.execute(_Q_PLAN, {"program_id": program_id, "district": district, "year": year}).all()
    if not rows:
        return None
    plan = [0] * 12
    for month, amount in rows:
        plan[month - 1] = amount
    return tuple(plan)


def load_year(conn: Connection, program_id: str, district: str, year: int) -> Year:
    totals = Year(rows=[[0, 0, 0, 0, 0] for _ in range(12)], stored={}, touched=set())
    for month, *values in conn.execute(
        _Q_TOTALS, {"program_id": program_id, "district": district, "year": year}
    ):
        totals.rows[month - 1] = [int(v) for v in values]
        totals.stored[month] = tuple(int(v) for v in values)
    return totals


def closed_row(conn: Connection, program_id: str, district: str, period: str) -> Any:
    return conn.execute(
        select(t.periods).where(
            t.periods.c.program_id == program_id,
            t.periods.c.district == district,
            t.periods.c.period == period,
        )
    ).first()


@dataclass(slots=True)
class Sums:
    count: int = 0
    need: int = 0
    paid: int = 0
    reserved: int = 0
