"""The durable budget ledger: keeps every month's payouts within its allocation.

``BudgetLedger`` consumes ``EntitlementCalculated`` (claims) and the commands
``AllocationSet`` / ``PeriodClosed``, and emits ``PayoutDecided``. It is a two-phase
ledger (reserve → settle, like TigerBeetle's pending/post transfers): pro-rata claims are
reserved as they arrive (``pending``) and settled when their month closes; first-come
claims are paid at once when the year-to-date money covers them, otherwise deferred
(FIFO) or refused.

Durability and idempotency:

- every mutation is one database transaction, keyed by the input's deterministic id
  (entitlement ``decision_id``, command ``event_id``);
- the decisions an input produced are stored byte for byte; replaying the input
  returns exactly those bytes and changes nothing (at-least-once consumers re-emit them);
- ``occurred_at`` of each decision is the triggering input's, never the clock;
- every mutation takes the next ``budget_inputs.seq``; concurrent writers collide on
  that unique number and the loser retries, so mutations are serialised on PostgreSQL
  as on SQLite without dialect-specific locking.

The schema is created by alembic (``dopomoga/budget/migrations``), run on construction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, NamedTuple, overload

import pydantic_core
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from dopomoga.budget import schema as t
from dopomoga.budget.allocation import available_in, monthly_plan, next_period, split_period
from dopomoga.budget.rationing import Claim, priority_then_pro_rata, pro_rata
from dopomoga.money import format_uah, fraction_str, round_half_up
from dopomoga.rules.engine import decision_id, period_uk
from dopomoga.rules.expressions import date_to_int
from dopomoga.rules.programs import BudgetSpec, Catalog, ProgramError
from schemas.events import (
    AllocationSet,
    Applicant,
    EntitlementCalculated,
    Payment,
    PayoutDecided,
    PeriodClosed,
    RulesRef,
)

DEFAULT_URL = "sqlite:///var/budget.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PRO_RATA_POLICIES = ("pro_rata_at_close", "priority_then_pro_rata")
QUEUE_POLICIES = ("first_come", "district_split")
OPEN_STATUSES = ("pending", "deferred")
PAID_STATUSES = ("paid", "prorated")
_RETRIES = 8
_CHUNK = 500  # ids per IN (...) query


class Published(NamedTuple):
    """A decision and the JSON the ledger stored for it (what the budget service publishes)."""

    decision: PayoutDecided
    body: str


def _shaped(results: list[list[Published]], encoded: bool) -> Any:
    """Each input's decisions: as stored (``Published``) or just the models."""
    return results if encoded else [[p.decision for p in decided] for decided in results]


class LedgerError(ValueError):
    """An input the ledger cannot take (unknown program, unknown policy)."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(message)
        self.reason_code = reason_code


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


@dataclass(slots=True)
class _ClaimRow:
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
    new: bool = False
    dirty: bool = False

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CLAIM_COLUMNS}

    def changes(self) -> dict[str, Any]:
        return {"b_application_id": self.application_id, **{name: getattr(self, name) for name in _MUTABLE}}


_CLAIM_COLUMNS = tuple(c.name for c in t.claims.columns)

# Hot-path statements, built once (SQLAlchemy then reuses their compiled form).
_B = bindparam
_Q_KNOWN = select(t.inputs.c.input_id, t.inputs.c.outputs).where(
    t.inputs.c.input_id.in_(_B("ids", expanding=True))
)
_Q_BODIES = (
    select(t.decisions.c.input_id, t.decisions.c.body)
    .where(t.decisions.c.input_id.in_(_B("ids", expanding=True)))
    .order_by(t.decisions.c.input_id, t.decisions.c.position)
)
_Q_MAX_SEQ = select(func.max(t.inputs.c.seq))
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
_I_TOTALS = insert(t.totals)
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
_I_INPUT = insert(t.inputs)
_I_DECISIONS = insert(t.decisions)
_I_CLAIMS = insert(t.claims)
_LOADED = [c for c in t.claims.columns if c.name != "entitlement"]
_MUTABLE = ("budget_period", "payout_kop", "status", "final", "reason_code", "coefficient", "revision")
_UPDATE_CLAIM = (
    update(t.claims)
    .where(t.claims.c.application_id == bindparam("b_application_id"))
    .values(**{name: bindparam(name) for name in _MUTABLE})
)


def _district_of(entitlement: EntitlementCalculated) -> str:
    parts = entitlement.budget_key.split(":")
    return parts[2] if len(parts) > 2 else ""


def _pct(value: Fraction) -> str:
    """'66,67 %' from an exact fraction (integers only)."""
    hundredths = round_half_up(value.numerator * 10000, value.denominator)
    return f"{hundredths // 100},{hundredths % 100:02d} %"


_Key = tuple[str, str, int]  # program_id, district, year
_Input = tuple[str, str, Any, Callable[["_Tx"], None]]  # input id, kind, occurred_at, work


@dataclass(slots=True)
class _Year:
    """The running totals of one budget key, month by month, as this transaction sees them."""

    rows: list[list[int]]  # month - 1 -> [claims, need, reserved, paid, deferred]
    stored: dict[int, tuple[int, ...]]  # month -> the row as it is in budget_totals
    touched: set[int]  # months to write back (a new row is written even if all zero)

    def spent(self) -> list[int]:
        return [row[3] for row in self.rows]

    def waiting(self) -> bool:
        """Is any claim of the key deferred (strict FIFO: nothing may overtake it)?"""
        return any(row[4] for row in self.rows)

    def sums(self, month: int) -> _Sums:
        claims, need, reserved, paid, _ = self.rows[month - 1]
        return _Sums(count=claims, need=need, paid=paid, reserved=reserved)


class _Conflict(Exception):
    """Two inputs of one batch claim the same application: take them one by one instead."""


class _Tx:
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
        self.claims: dict[str, _ClaimRow] = {}
        self.years: dict[_Key, _Year] = {}
        self.plans: dict[_Key, tuple[int, ...] | None] = {}
        self.closed: dict[tuple[str, str], set[str]] = {}

    def start(self, occurred_at: Any) -> None:
        """The next input of the transaction (it takes ``self.seq``)."""
        self.occurred_at = occurred_at
        self.emitted = []
        self.revisions = {}


class BudgetLedger:
    """Budget limits and their durable ledger (see the module docstring and docs/budget.md)."""

    def __init__(self, url: str = DEFAULT_URL, catalog: Catalog | None = None):
        self.url = url
        self.catalog = catalog if catalog is not None else Catalog.load()
        self._specs: dict[str, BudgetSpec] = {}  # program_id -> budget block (the catalog is fixed)
        self.engine = _make_engine(url)
        self.upgrade()

    # -- schema ------------------------------------------------------------------------------
    def upgrade(self, revision: str = "head") -> None:
        """Run the alembic migrations (``upgrade head`` by default)."""
        self._migrate(alembic_command.upgrade, revision)

    def downgrade(self, revision: str) -> None:
        """Run the alembic migrations down to ``revision`` (``base`` drops the ledger)."""
        self._migrate(alembic_command.downgrade, revision)

    def _migrate(self, action: Callable[[AlembicConfig, str], None], revision: str) -> None:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            config.attributes["connection"] = conn
            action(config, revision)

    def close(self) -> None:
        self.engine.dispose()

    # -- public API: mutations ---------------------------------------------------------------
    @overload
    def submit(self, entitlement: EntitlementCalculated, *, encoded: Literal[False] = False) -> list[PayoutDecided]: ...
    @overload
    def submit(self, entitlement: EntitlementCalculated, *, encoded: Literal[True]) -> list[Published]: ...
    def submit(self, entitlement: EntitlementCalculated, *, encoded: bool = False) -> list[PayoutDecided] | list[Published]:
        """Take a claim. Returns the decisions it caused (replays return the same ones).

        ``encoded=True`` returns each decision with the JSON the ledger stored for it
        (``Published``), which a publisher sends as it is instead of writing it again.
        """
        return _shaped(self._run([self._claim_input(entitlement)]), encoded)[0]

    @overload
    def submit_many(
        self, entitlements: Sequence[EntitlementCalculated], bodies: Sequence[bytes] | None = None,
        *, encoded: Literal[False] = False,
    ) -> list[list[PayoutDecided]]: ...
    @overload
    def submit_many(
        self, entitlements: Sequence[EntitlementCalculated], bodies: Sequence[bytes] | None = None,
        *, encoded: Literal[True],
    ) -> list[list[Published]]: ...
    def submit_many(
        self, entitlements: Sequence[EntitlementCalculated], bodies: Sequence[bytes] | None = None,
        *, encoded: bool = False,
    ) -> list[list[PayoutDecided]] | list[list[Published]]:
        """Take claims in order, in ONE transaction: what ``submit`` one by one would give.

        Each entitlement still takes its own ``seq`` and is stored as its own input, so the
        ledger ends up byte for byte as after ``submit`` one by one; a replayed entitlement
        (before or within the batch) returns its stored decisions. If one raises
        ``LedgerError`` the whole batch is rolled back and the error propagates: the caller
        retries the batch one by one to find it.

        ``bodies`` (optional) are the entitlements' events as received, which the ledger then
        stores as they are instead of writing each model's JSON again (the budget service
        passes the bytes it decoded). ``encoded`` as in ``submit``.
        """
        if not entitlements:
            return []
        if bodies is None:
            return _shaped(self._run([self._claim_input(e) for e in entitlements]), encoded)
        if len(bodies) != len(entitlements):
            raise ValueError("one body per entitlement")
        inputs = [self._claim_input(e, b.decode()) for e, b in zip(entitlements, bodies, strict=True)]
        return _shaped(self._run(inputs), encoded)

    def _claim_input(self, entitlement: EntitlementCalculated, body: str | None = None) -> _Input:
        return (
            entitlement.decision_id,
            "EntitlementCalculated",
            entitlement.occurred_at,
            lambda tx: self._submit(tx, entitlement, body),
        )

    @overload
    def apply(self, command: AllocationSet | PeriodClosed, *, encoded: Literal[False] = False) -> list[PayoutDecided]: ...
    @overload
    def apply(self, command: AllocationSet | PeriodClosed, *, encoded: Literal[True]) -> list[Published]: ...
    def apply(self, command: AllocationSet | PeriodClosed, *, encoded: bool = False) -> list[PayoutDecided] | list[Published]:
        """Apply an ``AllocationSet`` or ``PeriodClosed``. Replays return the same decisions.

        ``encoded`` as in ``submit``."""
        if isinstance(command, AllocationSet):
            work: Callable[[_Tx], None] = lambda tx: self._allocate(tx, command)  # noqa: E731
        elif isinstance(command, PeriodClosed):
            work = lambda tx: self._close(tx, command)  # noqa: E731
        else:  # pragma: no cover - type guard
            raise LedgerError("unknown_command", f"not a budget command: {type(command).__name__}")
        return _shaped(self._run([(command.event_id, command.event_type, command.occurred_at, work)]), encoded)[0]

    # -- public API: queries -----------------------------------------------------------------
    def payout(self, application_id: str) -> PayoutDecided | None:
        """The latest decision on an application."""
        with self.engine.connect() as conn:
            body = conn.execute(
                select(t.decisions.c.body)
                .where(t.decisions.c.application_id == application_id)
                .order_by(t.decisions.c.revision.desc())
                .limit(1)
            ).scalar()
        return None if body is None else PayoutDecided.model_validate_json(body)

    def entitlement(self, application_id: str) -> EntitlementCalculated | None:
        """The full entitlement (trace and explanation included) a claim was made with."""
        with self.engine.connect() as conn:
            body = conn.execute(
                select(t.claims.c.entitlement).where(t.claims.c.application_id == application_id)
            ).scalar()
        return None if body is None else EntitlementCalculated.model_validate_json(body)

    def final_payouts(self, program_id: str | None = None, period: str | None = None) -> list[PayoutDecided]:
        """Every final decision (what treasury exporters pay), ordered by application id."""
        query = select(t.decisions.c.body).where(t.decisions.c.final.is_(True))
        if program_id is not None:
            query = query.where(t.decisions.c.program_id == program_id)
        if period is not None:
            query = query.where(t.decisions.c.period == period)
        with self.engine.connect() as conn:
            rows = conn.execute(
                query.order_by(t.decisions.c.application_id, t.decisions.c.revision)
            ).scalars()
            return [PayoutDecided.model_validate_json(body) for body in rows]

    def status(self, program_id: str, period: str, district: str | None = None) -> BudgetStatus:
        year, month = split_period(period)
        dist = district or ""
        with self.engine.connect() as conn:
            plan = self._load_plan(conn, program_id, dist, year)
            totals = self._load_year(conn, program_id, dist, year)
            closed = self._closed_row(conn, program_id, dist, period)
        sums = totals.sums(month)
        available = available_in(month, plan, totals.spent(), self._carry_over(program_id)) if plan else 0
        coefficient = self._coefficient(closed, sums, available)
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
        """Per program (and district) and month: need, allocation, paid, shortfall, coefficient."""
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
                plan = self._load_plan(conn, prog, dist, year)
                totals = self._load_year(conn, prog, dist, year)
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
                            coefficient=self._coefficient(closed_rows.get(period), sums, available),
                            closed=period in closed_rows,
                        )
                    )
        return rows

    # -- transaction frame -------------------------------------------------------------------
    def _run(self, inputs: Sequence[_Input]) -> list[list[Published]]:
        """Process ``inputs`` in order in one transaction; each one's decisions, in order."""
        last: Exception | None = None
        for _ in range(_RETRIES):
            try:
                return self._transaction(inputs)
            except IntegrityError as exc:  # a concurrent writer took the seq, or the same input
                last = exc
                continue
            except _Conflict:
                break
        if len(inputs) > 1:  # one by one, exactly as separate calls would go (errors included)
            return [self._run([item])[0] for item in inputs]
        raise RuntimeError(f"budget ledger: could not commit input after {_RETRIES} attempts") from last

    def _transaction(self, inputs: Sequence[_Input]) -> list[list[Published]]:
        with self.engine.begin() as conn:
            stored = self._stored(conn, [item[0] for item in inputs])
            if all(item[0] in stored for item in inputs):
                return [self._replay(stored[item[0]]) for item in inputs]
            tx = _Tx(conn, (conn.execute(_Q_MAX_SEQ).scalar() or 0) + 1)
            input_rows: list[dict[str, Any]] = []
            decision_rows: list[dict[str, Any]] = []
            results: list[list[Published]] = []
            for input_id, kind, occurred_at, work in inputs:
                bodies = stored.get(input_id)
                if bodies is not None:
                    results.append(self._replay(bodies))
                    continue
                tx.start(occurred_at)
                work(tx)
                published = []
                for position, decision in enumerate(tx.emitted):
                    body = decision.model_dump_json()
                    published.append(Published(decision, body))
                    decision_rows.append(
                        {
                            "event_id": decision.event_id,
                            "input_id": input_id,
                            "position": position,
                            "application_id": decision.application_id,
                            "revision": tx.revisions[decision.event_id],
                            "program_id": decision.program_id,
                            "period": decision.period,
                            "final": decision.final,
                            "body": body,
                        }
                    )
                input_rows.append(
                    {
                        "input_id": input_id,
                        "seq": tx.seq,
                        "kind": kind,
                        "occurred_at": occurred_at.isoformat(),
                        "outputs": len(tx.emitted),
                    }
                )
                stored[input_id] = [p.body for p in published]  # a second copy later in the batch is a replay
                results.append(published)
                tx.seq += 1
            self._flush_claims(tx)
            self._flush_totals(tx)
            conn.execute(_I_INPUT, input_rows)
            if decision_rows:
                conn.execute(_I_DECISIONS, decision_rows)
            return results

    @staticmethod
    def _replay(bodies: list[str]) -> list[Published]:
        return [Published(PayoutDecided.model_validate_json(body), body) for body in bodies]

    @staticmethod
    def _stored(conn: Connection, input_ids: Sequence[str]) -> dict[str, list[str]]:
        """The decision bodies of the inputs already taken (input id -> bodies, in order)."""
        stored: dict[str, list[str]] = {}
        unique = list(dict.fromkeys(input_ids))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            with_outputs = []
            for input_id, outputs in conn.execute(_Q_KNOWN, {"ids": chunk}):
                stored[input_id] = []
                if outputs:
                    with_outputs.append(input_id)
            if with_outputs:
                for input_id, body in conn.execute(_Q_BODIES, {"ids": with_outputs}):
                    stored[input_id].append(body)
        return stored

    # -- program settings ----------------------------------------------------------------------
    def _budget_spec(self, program_id: str) -> BudgetSpec:
        spec = self._specs.get(program_id)
        if spec is None:
            try:
                spec = self._specs[program_id] = self.catalog.get(program_id).spec.budget
            except ProgramError as exc:
                raise LedgerError("unknown_program", str(exc)) from None
        return spec

    def _carry_over(self, program_id: str) -> bool:
        """The program's carry-over setting; reports on a program no longer in the catalog assume the default."""
        try:
            return self._budget_spec(program_id).carry_over
        except LedgerError:
            return True

    def _priority(self, entitlement: EntitlementCalculated) -> int:
        """Priority class of a claim: the program's ``budget.priority`` CEL on the application.

        The scope is the application's facts (dates as YYYYMMDD integers) plus the engine's
        standard inputs. A claim whose class cannot be evaluated goes last (class 2**31-1).
        """
        try:
            program = self.catalog.get(entitlement.program_id)
        except ProgramError:
            return 0
        if program.priority is None:
            return 0
        application = entitlement.application
        scope: dict[str, Any] = {}
        for name, value in application.facts.items():
            spec = program.spec.inputs.get(name)
            if spec is not None and spec.type == "date" and isinstance(value, str):
                try:
                    value = date_to_int(dt.date.fromisoformat(value))
                except ValueError:
                    pass
            scope[name] = value
        year, month = split_period(entitlement.period)
        applicant = application.applicant
        scope.update(
            submitted_on=date_to_int(application.submitted_on),
            period=year * 100 + month,
            birth_date=date_to_int(applicant.birth_date) if applicant.birth_date else 0,
            applicant_kind=applicant.id_kind,
            district=applicant.district or "",
            payment_channel=application.payment.channel,
        )
        for parameter in entitlement.parameters:
            scope.setdefault(parameter.name, parameter.value)
        try:
            value = program.priority.run(scope)
        except (TypeError, RuntimeError, ValueError, KeyError):
            return 2**31 - 1
        return value if type(value) is int else 2**31 - 1

    # -- reading state ---------------------------------------------------------------------------
    @staticmethod
    def _load_plan(conn: Connection, program_id: str, district: str, year: int) -> tuple[int, ...] | None:
        rows = conn.execute(_Q_PLAN, {"program_id": program_id, "district": district, "year": year}).all()
        if not rows:
            return None
        plan = [0] * 12
        for month, amount in rows:
            plan[month - 1] = amount
        return tuple(plan)

    @staticmethod
    def _load_year(conn: Connection, program_id: str, district: str, year: int) -> _Year:
        totals = _Year(rows=[[0, 0, 0, 0, 0] for _ in range(12)], stored={}, touched=set())
        for month, *values in conn.execute(
            _Q_TOTALS, {"program_id": program_id, "district": district, "year": year}
        ):
            totals.rows[month - 1] = [int(v) for v in values]
            totals.stored[month] = tuple(int(v) for v in values)
        return totals

    def _plan(self, tx: _Tx, program_id: str, district: str, year: int) -> tuple[int, ...] | None:
        key = (program_id, district, year)
        if key not in tx.plans:
            tx.plans[key] = self._load_plan(tx.conn, program_id, district, year)
        return tx.plans[key]

    def _year(self, tx: _Tx, program_id: str, district: str, year: int) -> _Year:
        key = (program_id, district, year)
        totals = tx.years.get(key)
        if totals is None:
            totals = tx.years[key] = self._load_year(tx.conn, program_id, district, year)
        return totals

    def _spent(self, tx: _Tx, program_id: str, district: str, year: int) -> list[int]:
        """Paid per month (a copy: callers count their own payments into it as they go)."""
        return self._year(tx, program_id, district, year).spent()

    def _account(self, tx: _Tx, claim: _ClaimRow, sign: int) -> None:
        """Add (``sign`` = 1) or take back (-1) what ``claim`` counts in its month's totals."""
        month = int(claim.budget_period[5:7])
        totals = self._year(tx, claim.program_id, claim.district, claim.year)
        totals.touched.add(month)
        if not claim.eligible or claim.status == "new":
            return
        row = totals.rows[month - 1]
        row[0] += sign
        row[1] += sign * claim.claimed_kop
        status = claim.status
        if status == "pending":
            row[2] += sign * claim.claimed_kop
        elif status in PAID_STATUSES:
            row[3] += sign * claim.payout_kop
        elif status == "deferred":
            row[4] += sign

    def _flush_totals(self, tx: _Tx) -> None:
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for (program_id, district, year), totals in tx.years.items():
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
        if inserts:
            tx.conn.execute(_I_TOTALS, inserts)
        if updates:
            tx.conn.execute(_U_TOTALS, updates)

    @staticmethod
    def _closed_row(conn: Connection, program_id: str, district: str, period: str) -> Any:
        return conn.execute(
            select(t.periods).where(
                t.periods.c.program_id == program_id,
                t.periods.c.district == district,
                t.periods.c.period == period,
            )
        ).first()

    @staticmethod
    def _coefficient(closed: Any, sums: _Sums, available: int) -> str:
        if closed is not None and closed.coefficient:
            return closed.coefficient
        if sums.reserved:
            return fraction_str(min(Fraction(1), Fraction(available, sums.reserved)))
        if sums.need:
            return fraction_str(Fraction(sums.paid, sums.need))
        return "1"

    def _claims(self, tx: _Tx, *conditions: Any) -> list[_ClaimRow]:
        """Claims matching ``conditions`` (merged with those already touched in ``tx``)."""
        rows = tx.conn.execute(select(*_LOADED).where(and_(*conditions))).mappings()
        result: list[_ClaimRow] = []
        for row in rows:
            claim = tx.claims.get(row["application_id"])
            if claim is None:
                claim = _ClaimRow(**dict(row))
                tx.claims[claim.application_id] = claim
            result.append(claim)
        return result

    def _flush_claims(self, tx: _Tx) -> None:
        new = [c.values() for c in tx.claims.values() if c.new]
        if new:
            tx.conn.execute(_I_CLAIMS, new)
        changed = [c.changes() for c in tx.claims.values() if c.dirty and not c.new]
        if changed:
            tx.conn.execute(_UPDATE_CLAIM, changed)

    # -- decisions -------------------------------------------------------------------------------
    def _emit(
        self,
        tx: _Tx,
        claim: _ClaimRow,
        *,
        status: str,
        final: bool,
        payout: int,
        coefficient: Fraction | None,
        reason: str,
        explanation: str,
    ) -> None:
        self._account(tx, claim, -1)
        claim.revision += 1
        claim.status = status
        claim.final = final
        claim.payout_kop = payout
        claim.coefficient = fraction_str(coefficient) if coefficient is not None else claim.coefficient
        claim.reason_code = reason
        claim.dirty = True
        self._account(tx, claim, 1)
        parsed = tx.contexts.get(claim.application_id)
        if parsed is None:
            context = json.loads(claim.context)
            parsed = (
                Applicant.model_validate(context["payee"]),
                Payment.model_validate(context["payment"]),
                RulesRef.model_validate(context["rules"]),
            )
        ident = decision_id("payout", claim.application_id)
        event_id = decision_id("payout", f"{claim.application_id}#{claim.revision}")
        decision = PayoutDecided(
            event_id=event_id,
            occurred_at=tx.occurred_at,
            decision_id=ident,
            application_id=claim.application_id,
            program_id=claim.program_id,
            period=claim.budget_period,
            district=claim.district or None,
            status=status,  # type: ignore[arg-type]
            final=final,
            claimed_kop=claim.claimed_kop,
            payout_kop=payout,
            coefficient=claim.coefficient,
            policy=claim.policy,
            reason_code=reason,
            explanation_uk=explanation,
            entitlement_decision_id=claim.entitlement_decision_id,
            rules=parsed[2],
            payee=parsed[0],
            payment=parsed[1],
        )
        tx.revisions[event_id] = claim.revision
        tx.emitted.append(decision)

    def _clause(self, program_id: str) -> str:
        try:
            return self._budget_spec(program_id).clause_uk
        except LedgerError:
            return "бюджетні призначення програми"

    def _refuse(
        self, tx: _Tx, claim: _ClaimRow, reason: str, available: int | None = None, explanation: str | None = None
    ) -> None:
        """A final refusal; ``explanation`` replaces the budget sentence (e.g. the rules' own refusal)."""
        if explanation is not None:
            self._emit(tx, claim, status="refused", final=True, payout=0, coefficient=Fraction(0),
                       reason=reason, explanation=explanation)
            return
        clause = self._clause(claim.program_id)
        when = period_uk(claim.budget_period)
        texts = {
            "no_appropriation": f"Відмовлено у виплаті {format_uah(claim.claimed_kop)}: на {claim.year} рік "
            f"бюджетні призначення на цю програму відсутні (річний обсяг 0). Підстава: {clause}.",
            "budget_exhausted": f"Відмовлено у виплаті {format_uah(claim.claimed_kop)} за {when}: кошти в межах "
            f"асигнувань вичерпано (доступно {format_uah(available or 0)} з урахуванням невикористаних "
            f"асигнувань з початку року). Підстава: {clause}.",
            "budget_year_ended": f"Відмовлено у виплаті {format_uah(claim.claimed_kop)}: бюджетний рік {claim.year} "
            f"закрито, а коштів для цієї заявки не вистачило; невикористані асигнування на наступний рік "
            f"не переходять. Підстава: {clause}.",
            "period_closed": f"Відмовлено у виплаті {format_uah(claim.claimed_kop)}: розрахунковий період "
            f"{when} уже закрито, а програма не приймає запізнілих заявок. Підстава: {clause}.",
        }
        self._emit(
            tx,
            claim,
            status="refused",
            final=True,
            payout=0,
            coefficient=Fraction(0),
            reason=reason,
            explanation=texts[reason],
        )

    def _defer(self, tx: _Tx, claim: _ClaimRow, reason: str, available: int) -> None:
        clause = self._clause(claim.program_id)
        when = period_uk(claim.budget_period)
        if reason == "no_appropriation":
            why = f"на {claim.year} рік бюджетні призначення на цю програму ще не встановлено (або вони нульові)"
        else:
            why = (
                f"доступно {format_uah(available)} з урахуванням невикористаних асигнувань з початку року, "
                f"а потрібно {format_uah(claim.claimed_kop)}"
            )
        self._emit(
            tx,
            claim,
            status="deferred",
            final=False,
            payout=0,
            coefficient=Fraction(0),
            reason=reason,
            explanation=f"Виплату {format_uah(claim.claimed_kop)} за {when} відкладено: {why}. Заявка стоїть у "
            f"черзі за часом надходження й буде оплачена повністю, щойно дозволять асигнування "
            f"(у межах {claim.year} року). Підстава: {clause}.",
        )

    def _pay(self, tx: _Tx, claim: _ClaimRow) -> None:
        clause = self._clause(claim.program_id)
        self._emit(
            tx,
            claim,
            status="paid",
            final=True,
            payout=claim.claimed_kop,
            coefficient=Fraction(1),
            reason="within_allocation",
            explanation=f"Виплату {format_uah(claim.claimed_kop)} за {period_uk(claim.budget_period)} "
            f"проведено в повному обсязі в межах асигнувань. Підстава: {clause}.",
        )

    # -- submit ----------------------------------------------------------------------------------
    def _submit(self, tx: _Tx, ent: EntitlementCalculated, body: str | None = None) -> None:
        policy = ent.budget_policy
        if ent.eligible and policy not in PRO_RATA_POLICIES + QUEUE_POLICIES:
            raise LedgerError("unknown_policy", f"unknown budget policy {policy!r}")
        spec = self._budget_spec(ent.program_id) if ent.eligible else None
        year = split_period(ent.period)[0]
        application = ent.application
        claim = _ClaimRow(
            application_id=ent.application_id,
            entitlement_decision_id=ent.decision_id,
            program_id=ent.program_id,
            district=_district_of(ent),
            year=year,
            origin_period=ent.period,
            budget_period=ent.period,
            policy=policy,
            priority_class=self._priority(ent) if ent.eligible and policy == "priority_then_pro_rata" else 0,
            arrival_seq=tx.seq,
            eligible=ent.eligible,
            claimed_kop=ent.amount_kop,
            payout_kop=0,
            status="new",
            final=False,
            reason_code="",
            coefficient="0",
            revision=0,
            # the payee, payment and rules each written by their model's serializer (field order)
            context=pydantic_core.to_json(
                {"payee": application.applicant, "payment": application.payment, "rules": ent.rules}
            ).decode(),
            entitlement=body if body is not None else ent.model_dump_json(),
            new=True,
        )
        tx.claims[claim.application_id] = claim
        tx.contexts[claim.application_id] = (application.applicant, application.payment, ent.rules)
        if not ent.eligible:
            self._refuse(tx, claim, "ineligible", explanation=ent.explanation_uk)
            return
        assert spec is not None
        if ent.amount_kop == 0:
            self._emit(
                tx,
                claim,
                status="paid",
                final=True,
                payout=0,
                coefficient=Fraction(1),
                reason="zero_amount",
                explanation=f"Розмір виплати за {period_uk(ent.period)} становить {format_uah(0)}; "
                f"асигнування не використовуються. Підстава: {spec.clause_uk}.",
            )
            return
        # Late claims: their month is closed.
        if self._is_closed(tx, claim.program_id, claim.district, claim.budget_period):
            if spec.late_claims == "refuse":
                self._refuse(tx, claim, "period_closed")
                return
            target = self._next_open(tx, claim.program_id, claim.district, claim.budget_period)
            if target is None:
                self._refuse(tx, claim, "budget_year_ended")
                return
            claim.budget_period = target
        if policy in PRO_RATA_POLICIES:
            self._emit(
                tx,
                claim,
                status="pending",
                final=False,
                payout=0,
                coefficient=Fraction(0),
                reason="reserved_until_close",
                explanation=f"Заявку на {format_uah(claim.claimed_kop)} за {period_uk(claim.budget_period)} "
                f"зарезервовано. Остаточну суму буде визначено після закриття періоду: якщо заявки "
                f"перевищать асигнування, фінансування проводиться пропорційно до заявлених сум усіх "
                f"заявників у межах помісячних асигнувань. Підстава: {spec.clause_uk}.",
            )
            return
        # first_come / district_split: strict FIFO; a claim never overtakes deferred ones.
        totals = self._year(tx, claim.program_id, claim.district, claim.year)
        plan = self._plan(tx, claim.program_id, claim.district, claim.year)
        self._settle_queued(tx, claim, spec, plan, totals.spent(), blocked=totals.waiting())

    def _settle_queued(
        self,
        tx: _Tx,
        claim: _ClaimRow,
        spec: BudgetSpec,
        plan: tuple[int, ...] | None,
        spent: list[int],
        *,
        blocked: bool,
        announce: bool = True,
    ) -> bool:
        """Pay ``claim`` in full if it fits (and nothing is ahead of it); else defer or refuse.

        Returns True when the claim now blocks the queue (deferred). ``announce`` = emit a
        decision even if a deferred claim stays deferred with the same reason and month.
        """
        month = split_period(claim.budget_period)[1]
        no_money = plan is None or sum(plan) == 0
        available = 0 if plan is None else available_in(month, plan, spent, spec.carry_over)
        if not blocked and not no_money and claim.claimed_kop <= available:
            spent[month - 1] += claim.claimed_kop
            self._pay(tx, claim)
            return False
        reason = "no_appropriation" if no_money else "budget_exhausted"
        if spec.when_short == "refuse":
            self._refuse(tx, claim, reason, available)
            return False
        if announce or claim.status != "deferred" or claim.reason_code != reason:
            self._defer(tx, claim, reason, available)
        return True

    def _release(self, tx: _Tx, program_id: str, district: str, year: int, moved: Iterable[str] = ()) -> None:
        """Retry deferred claims FIFO (after money was raised or a month moved on)."""
        try:
            spec = self._budget_spec(program_id)
        except LedgerError:
            return
        moved_ids = set(moved)
        self._sync(tx)
        queue = self._claims(
            tx,
            t.claims.c.program_id == program_id,
            t.claims.c.district == district,
            t.claims.c.year == year,
            t.claims.c.status == "deferred",
        )
        queue = sorted((c for c in queue if c.status == "deferred"), key=lambda c: c.arrival_seq)
        if not queue:
            return
        plan = self._plan(tx, program_id, district, year)
        spent = self._spent(tx, program_id, district, year)
        blocked = False
        for claim in queue:
            blocked = (
                self._settle_queued(
                    tx, claim, spec, plan, spent, blocked=blocked, announce=claim.application_id in moved_ids
                )
                or blocked
            )

    def _sync(self, tx: _Tx) -> None:
        """Write the claims changed so far in this transaction, so queries see them."""
        self._flush_claims(tx)
        for claim in tx.claims.values():
            claim.new = False
            claim.dirty = False

    # -- periods ---------------------------------------------------------------------------------
    @staticmethod
    def _closed(tx: _Tx, program_id: str, district: str) -> set[str]:
        """The closed months of a program (and district), read once per transaction."""
        closed = tx.closed.get((program_id, district))
        if closed is None:
            rows = tx.conn.execute(_Q_CLOSED, {"program_id": program_id, "district": district})
            closed = tx.closed[(program_id, district)] = {r[0] for r in rows}
        return closed

    def _is_closed(self, tx: _Tx, program_id: str, district: str, period: str) -> bool:
        return period in self._closed(tx, program_id, district)

    def _next_open(self, tx: _Tx, program_id: str, district: str, period: str) -> str | None:
        candidate = next_period(period)
        while candidate is not None and self._is_closed(tx, program_id, district, candidate):
            candidate = next_period(candidate)
        return candidate

    # -- commands --------------------------------------------------------------------------------
    def _allocate(self, tx: _Tx, command: AllocationSet) -> None:
        district = command.district or ""
        plan = monthly_plan(command.year, command.annual_kop, command.plan.kind, command.plan.months)
        key = {"program_id": command.program_id, "district": district, "year": command.year}
        conn = tx.conn
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
            )
        )
        tx.plans[(command.program_id, district, command.year)] = plan
        self._release(tx, command.program_id, district, command.year)

    def _districts(self, tx: _Tx, program_id: str, year: int) -> list[str]:
        conn = tx.conn
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
            d for (p, d, y), totals in tx.years.items() if p == program_id and y == year and totals.touched
        }
        return sorted(found | {""})

    def _close(self, tx: _Tx, command: PeriodClosed) -> None:
        year = split_period(command.period)[0]
        try:
            spec: BudgetSpec | None = self._budget_spec(command.program_id)
        except LedgerError:
            spec = None
        if command.district is not None:
            districts = [command.district]
        elif spec is not None and spec.by_district:
            districts = self._districts(tx, command.program_id, year)
        else:
            districts = [""]
        for district in districts:
            self._close_one(tx, command, district, year)

    def _close_one(self, tx: _Tx, command: PeriodClosed, district: str, year: int) -> None:
        program_id, period = command.program_id, command.period
        conn = tx.conn
        if self._is_closed(tx, program_id, district, period):
            return  # closed before (by another event): nothing to do
        month = split_period(period)[1]
        self._sync(tx)
        plan = self._plan(tx, program_id, district, year)
        spent = self._spent(tx, program_id, district, year)
        pool = available_in(month, plan, spent, self._budget_spec(program_id).carry_over) if plan else 0
        in_period = self._claims(
            tx,
            t.claims.c.program_id == program_id,
            t.claims.c.district == district,
            t.claims.c.budget_period == period,
            t.claims.c.status.in_(OPEN_STATUSES),
        )
        pending = sorted((c for c in in_period if c.status == "pending"), key=lambda c: c.application_id)
        deferred = sorted((c for c in in_period if c.status == "deferred"), key=lambda c: c.arrival_seq)
        claimed = sum(c.claimed_kop for c in pending)
        paid = 0
        coefficient = ""
        if pending:
            paid, coefficient = self._settle_pro_rata(tx, pending, pool, plan)
        conn.execute(
            insert(t.periods).values(
                program_id=program_id,
                district=district,
                period=period,
                closed_event_id=command.event_id,
                pool_kop=pool,
                claimed_kop=claimed,
                paid_kop=paid,
                unspent_kop=pool - paid,
                coefficient=coefficient,
            )
        )
        self._closed(tx, program_id, district).add(period)
        if deferred:
            target = self._next_open(tx, program_id, district, period)
            for claim in deferred:
                if target is None:
                    self._refuse(tx, claim, "budget_year_ended")
                else:
                    self._account(tx, claim, -1)
                    claim.budget_period = target
                    claim.dirty = True
                    self._account(tx, claim, 1)
            if target is not None:
                self._release(tx, program_id, district, year, moved=[c.application_id for c in deferred])

    def _settle_pro_rata(
        self, tx: _Tx, pending: Sequence[_ClaimRow], pool: int, plan: tuple[int, ...] | None
    ) -> tuple[int, str]:
        program_id = pending[0].program_id
        clause = self._clause(program_id)
        claims = [Claim(c.application_id, c.claimed_kop, c.priority_class) for c in pending]
        if any(c.policy == "priority_then_pro_rata" for c in pending):
            result = priority_then_pro_rata(pool, claims)
            shares = [result.class_coefficients.get(c.priority, Fraction(0)) for c in claims]
        else:
            result = pro_rata(pool, claims)
            shares = [result.coefficient] * len(claims)
        no_money = plan is None or sum(plan) == 0
        n = len(claims)
        for claim, award, share in zip(pending, result.awards, shares, strict=True):
            when = period_uk(claim.budget_period)
            if award == claim.claimed_kop:
                self._emit(
                    tx,
                    claim,
                    status="paid",
                    final=True,
                    payout=award,
                    coefficient=Fraction(1),
                    reason="within_allocation",
                    explanation=f"Виплату {format_uah(award)} за {when} проведено в повному обсязі: "
                    f"заявки ({format_uah(result.claimed)}) не перевищили доступних асигнувань "
                    f"({format_uah(pool)})"
                    + (" для черговості цієї заявки" if claim.policy == "priority_then_pro_rata" else "")
                    + f". Підстава: {clause}.",
                )
            elif award == 0:
                self._refuse(tx, claim, "no_appropriation" if no_money else "budget_exhausted", pool)
            else:
                exact = Fraction(award, claim.claimed_kop)
                self._emit(
                    tx,
                    claim,
                    status="prorated",
                    final=True,
                    payout=award,
                    coefficient=share,
                    reason="prorated",
                    explanation=f"Заявки за {when} ({n} на {format_uah(result.claimed)}) перевищили доступні "
                    f"асигнування ({format_uah(pool)}), тому фінансування проведено пропорційно: "
                    f"коефіцієнт {fraction_str(share)} (≈ {_pct(share)}). До виплати {format_uah(award)} "
                    f"із заявлених {format_uah(claim.claimed_kop)}"
                    + f" (фактично {_pct(exact)} після округлення до копійки методом найбільших залишків)"
                    + (
                        f"; черговість (клас {claim.priority_class}) — пропорційно в межах класу"
                        if claim.policy == "priority_then_pro_rata"
                        else ""
                    )
                    + f". Підстава: {clause}.",
                )
        return result.paid, fraction_str(result.coefficient)


@dataclass(slots=True)
class _Sums:
    count: int = 0
    need: int = 0
    paid: int = 0
    reserved: int = 0


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:") or ":memory:" in url
        if not memory:
            path = url.split("sqlite:///", 1)[-1]
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if memory:
            options["poolclass"] = StaticPool
        engine = create_engine(url, **options)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, start transactions (SQLAlchemy's pysqlite
            # recipe), and start them IMMEDIATE so concurrent writers queue on the lock.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=MEMORY" if memory else "PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)
