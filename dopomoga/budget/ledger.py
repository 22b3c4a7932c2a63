"""The durable budget ledger: keeps every month's payouts within its allocation.

``BudgetLedger`` consumes ``EntitlementCalculated`` (claims) and the commands
``AllocationSet`` / ``PeriodClosed``, and emits ``PayoutDecided``. It is a two-phase
ledger (reserve → settle, like TigerBeetle's pending/post transfers): pro-rata claims are
reserved as they arrive (``pending``) and settled when their month closes; first-come
claims are paid at once when the year-to-date money covers them, otherwise deferred
(FIFO) or refused.

This module is the façade; each concern has its own home:

- ``dopomoga.budget.policy``: what a claim, an allocation and a close do to a budget (the part
  a department reviews);
- ``dopomoga.budget.store`` / ``dopomoga.budget.tx``: SQL, transactions, idempotency (each
  input applied once, its decisions stored byte for byte; replays return those bytes);
- ``dopomoga.budget.reports``: a month's status and the need report;
- ``dopomoga.explain_uk``: the sentences of every decision.

``occurred_at`` of each decision is the triggering input's, never the clock. The schema is
created by alembic (``dopomoga/budget/migrations``), run on construction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, overload

from sqlalchemy import select

from dopomoga.budget import schema as t
from dopomoga.budget.execution import ExecutionReport, execution_report, report_period
from dopomoga.budget.funding import FundingRequests
from dopomoga.budget.lines import BudgetLines
from dopomoga.budget.policy import PRO_RATA_POLICIES, QUEUE_POLICIES, BudgetPolicy
from dopomoga.budget.reports import AmendmentRow, BudgetStatus, NeedRow, PayableRow, Reports
from dopomoga.budget.store import DEFAULT_URL, Input, Published, Store
from dopomoga.budget.tx import OPEN_STATUSES, PAID_STATUSES, Tx
from dopomoga.errors import LedgerError
from dopomoga.rules.programs import Catalog
from schemas.events import (
    TRUSTED,
    AllocationSet,
    EntitlementCalculated,
    EntitlementClaim,
    ParameterConfirmed,
    PayoutDecided,
    PeriodClosed,
)

BudgetCommand = AllocationSet | PeriodClosed | ParameterConfirmed

__all__ = [
    "DEFAULT_URL",
    "OPEN_STATUSES",
    "PAID_STATUSES",
    "PRO_RATA_POLICIES",
    "QUEUE_POLICIES",
    "BudgetLedger",
    "BudgetStatus",
    "LedgerError",
    "NeedRow",
    "PayableRow",
    "Published",
]


class _Received:
    """A claim decoded slim (``EntitlementClaim``) with its bytes, as the store sees it: what the
    locks read (program, period, kind) from the slim model, and the full application - decoded
    from the same bytes, only when asked - for a replayed id's content check
    (``store.check_same_content``), so a conflict is found exactly as with the full model."""

    __slots__ = ("body", "claim", "period", "program_id")
    event_type = "EntitlementCalculated"

    def __init__(self, claim: EntitlementClaim, body: bytes | str):
        self.claim = claim
        self.body = body
        self.program_id = claim.program_id
        self.period = claim.period

    @property
    def application(self) -> Any:
        return EntitlementCalculated.model_validate_json(self.body, context=TRUSTED).application


def _shaped(results: list[list[Published]], encoded: bool) -> Any:
    """Each input's decisions: as stored (``Published``) or just the models."""
    return results if encoded else [[p.decision for p in decided] for decided in results]


class BudgetLedger:
    """Budget limits and their durable ledger (see the module docstring and docs/budget.md)."""

    def __init__(self, url: str = DEFAULT_URL, catalog: Catalog | None = None, lines: BudgetLines | None = None):
        self.url = url
        self.catalog = catalog if catalog is not None else Catalog.load()
        # the cities' budget lines (programs/<city>/budget-lines.yaml beside the catalog's programs)
        self.lines = lines if lines is not None else BudgetLines.load(self.catalog.root)
        # locks per budget key (the program, or its pooled line's holder) and year: dopomoga.budget.store
        self.store = Store(url, scope=self.lines.holder)
        self.engine = self.store.engine
        self.policy = BudgetPolicy(self.catalog, self.lines)
        self.reports = Reports(self.engine, self.policy.carry_over, self.policy.holder)
        self.funding = FundingRequests(self.engine, self.lines, self.policy.holder)  # «заявка на фінансування»
        self.upgrade()

    # -- schema ------------------------------------------------------------------------------
    def upgrade(self, revision: str = "head") -> None:
        """Run the alembic migrations (``upgrade head`` by default)."""
        self.store.upgrade(revision)

    def downgrade(self, revision: str) -> None:
        """Run the alembic migrations down to ``revision`` (``base`` drops the ledger)."""
        self.store.downgrade(revision)

    def close(self) -> None:
        self.store.close()

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
        return _shaped(self.store.run([self._claim_input(entitlement)]), encoded)[0]

    @overload
    def submit_many(
        self, entitlements: Sequence[EntitlementCalculated | EntitlementClaim], bodies: Sequence[bytes] | None = None,
        *, encoded: Literal[False] = False,
    ) -> list[list[PayoutDecided]]: ...
    @overload
    def submit_many(
        self, entitlements: Sequence[EntitlementCalculated | EntitlementClaim], bodies: Sequence[bytes] | None = None,
        *, encoded: Literal[True],
    ) -> list[list[Published]]: ...
    def submit_many(
        self, entitlements: Sequence[EntitlementCalculated | EntitlementClaim], bodies: Sequence[bytes] | None = None,
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
        passes the bytes it decoded). With ``bodies`` an entitlement may be the slim
        ``EntitlementClaim`` decoded from them (what the budget service decodes): the decisions
        are the same; the full event is decoded from its bytes where more is read (a claim ranked
        by ``budget.priority``; a replayed id, to compare its content). ``encoded`` as in ``submit``.
        """
        if not entitlements:
            return []
        if bodies is None:
            if any(isinstance(e, EntitlementClaim) for e in entitlements):
                raise ValueError("a slim EntitlementClaim needs its event's bytes (bodies)")
            return _shaped(self.store.run([self._claim_input(e) for e in entitlements]), encoded)
        if len(bodies) != len(entitlements):
            raise ValueError("one body per entitlement")
        inputs = [self._claim_input(e, b.decode()) for e, b in zip(entitlements, bodies, strict=True)]
        return _shaped(self.store.run(inputs), encoded)

    def _claim_input(self, entitlement: EntitlementCalculated | EntitlementClaim, body: str | None = None) -> Input:
        checked: Any = entitlement  # a replayed id must carry the same content (store.check_same_content)
        if isinstance(entitlement, EntitlementClaim):
            assert body is not None
            checked = _Received(entitlement, body)
            if entitlement.eligible and entitlement.budget_policy == "priority_then_pro_rata":
                # budget.priority reads the application's facts and the decision's trace: the full event
                entitlement = EntitlementCalculated.model_validate_json(body, context=TRUSTED)
        claim = entitlement
        return (
            claim.decision_id,
            "EntitlementCalculated",
            claim.occurred_at,
            lambda tx: self.policy.submit(tx, claim, body),
            checked,
        )

    @overload
    def apply(self, command: BudgetCommand, *, encoded: Literal[False] = False) -> list[PayoutDecided]: ...
    @overload
    def apply(self, command: BudgetCommand, *, encoded: Literal[True]) -> list[Published]: ...
    def apply(self, command: BudgetCommand, *, encoded: bool = False) -> list[PayoutDecided] | list[Published]:
        """Apply an ``AllocationSet``, ``PeriodClosed`` or ``ParameterConfirmed``. Replays return the same decisions.

        ``encoded`` as in ``submit``."""
        if isinstance(command, AllocationSet):
            work: Callable[[Tx], None] = lambda tx: self.policy.allocate(tx, command)  # noqa: E731
        elif isinstance(command, PeriodClosed):
            work = lambda tx: self.policy.close(tx, command)  # noqa: E731
        elif isinstance(command, ParameterConfirmed):
            work = lambda tx: self.policy.confirm(tx, command)  # noqa: E731
        else:  # pragma: no cover - type guard
            raise LedgerError("unknown_command", f"not a budget command: {type(command).__name__}")
        return _shaped(self.store.run([(command.event_id, command.event_type, command.occurred_at, work, command)]),
                       encoded)[0]

    # -- public API: queries -----------------------------------------------------------------
    def payout(self, application_id: str) -> PayoutDecided | None:
        """The latest decision on an application."""
        with self.store.engine.connect() as conn:
            body = conn.execute(
                select(t.decisions.c.body)
                .where(t.decisions.c.application_id == application_id)
                .order_by(t.decisions.c.revision.desc())
                .limit(1)
            ).scalar()
        return None if body is None else PayoutDecided.model_validate_json(body)

    def entitlement(self, application_id: str) -> EntitlementCalculated | None:
        """The full entitlement (trace and explanation included) a claim was made with."""
        with self.store.engine.connect() as conn:
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
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                query.order_by(t.decisions.c.application_id, t.decisions.c.revision)
            ).scalars()
            return [PayoutDecided.model_validate_json(body) for body in rows]

    def status(self, program_id: str, period: str, district: str | None = None) -> BudgetStatus:
        """One month of one program (and district): allocation, available, reserved, paid, need."""
        return self.reports.status(program_id, period, district)

    def need_report(self, year: int, program_id: str | None = None) -> list[NeedRow]:
        """Per program (and district) and month: need, allocation, paid, shortfall, coefficient."""
        return self.reports.need_report(year, program_id)

    def payables(self, year: int, program_id: str | None = None) -> list[PayableRow]:
        """Claims carried into ``year`` as payables («кредиторська заборгованість»), owed or since paid."""
        return self.reports.payables(year, program_id)

    def execution_report(self, city: str, period: str) -> ExecutionReport:
        """The programme execution report of ``city`` for ``period`` (2023, 2023-H1, 2023-Q2, 2023-04)."""
        found = self.catalog.cities.get(city)
        programme = found.programme_uk if found is not None else ""
        return execution_report(self.engine, self.lines, city, report_period(period), programme)

    def amendments(self, year: int, program_id: str | None = None) -> list[AmendmentRow]:
        """Every allocation and amendment of ``year``: version, amount, change, reason, document, date."""
        return self.reports.amendments(year, program_id)
