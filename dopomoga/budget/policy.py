"""Budget policy: what a claim, an allocation and a month's close do to a budget.

(Longer than the house's ~450 lines on purpose: this is the one file a department reviews, and
splitting claims, allocations, closes, year end and confirmations apart would scatter its rules.)

This is the part of the ledger a department reviews. It works on one ledger transaction
(``dopomoga.budget.tx.Tx``) and emits ``PayoutDecided`` decisions; storage, idempotency and
retries are ``dopomoga.budget.store``'s, the sentences are ``dopomoga.explain_uk``'s.

- **A claim** (``EntitlementCalculated``): an ineligible one is refused with the rules' own
  reason; a zero amount is paid as zero. A claim for a closed month goes to the next open month
  of the year (or is refused where the program does not take late claims). Then by the program's
  ``budget.policy``:
  - ``pro_rata_at_close`` / ``priority_then_pro_rata``: reserved (``pending``) until the month
    closes, then settled proportionally («пропорційно наданим розрахункам ... в межах помісячних
    асигнувань»), by priority class first where the program says so;
  - ``first_come`` / ``district_split``: paid in full at once when the year-to-date money covers it
    and no earlier claim waits; otherwise deferred (strict FIFO) or refused (``when_short``).
- **An allocation** (``AllocationSet``) replaces the year's plan (its amendment is kept in the
  history) and retries the deferred claims in arrival order.
- **A close** (``PeriodClosed``) settles the month's reserved claims against what the month may
  spend (unspent money carries forward within the year where the program says so) and moves
  deferred claims to the next open month, or refuses them after December.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

import pydantic_core

from dopomoga import explain_uk as uk
from dopomoga.budget.allocation import available_in, monthly_plan, planned_month, year_room
from dopomoga.budget.lines import BudgetLines
from dopomoga.budget.rationing import Claim, Rationed, priority_then_pro_rata, pro_rata
from dopomoga.budget.tx import ClaimRow, Tx, district_of
from dopomoga.errors import ApplicationError, LedgerError
from dopomoga.ids import decision_id
from dopomoga.money import fraction_str
from dopomoga.periods import split_period
from dopomoga.rules.history import InMemoryHistory
from dopomoga.rules.programs import BudgetSpec, Catalog, ProgramError
from dopomoga.rules.scope import ScopeBuilder
from schemas.events import (
    AllocationSet,
    EntitlementCalculated,
    EntitlementClaim,
    FundSource,
    ParameterConfirmed,
    PayoutDecided,
    PeriodClosed,
)

PRO_RATA_POLICIES = ("pro_rata_at_close", "priority_then_pro_rata")
QUEUE_POLICIES = ("first_come", "district_split")


class BudgetPolicy:
    """The budget rules of every program in a catalog, applied to ledger transactions."""

    def __init__(self, catalog: Catalog, lines: BudgetLines | None = None):
        self.catalog = catalog
        self.lines = lines if lines is not None else BudgetLines()
        self._sources: dict[tuple[str, int], tuple[str | None, tuple[FundSource, ...] | None]] = {}
        self._specs: dict[str, BudgetSpec] = {}  # program_id -> budget block (the catalog is fixed)
        # The rules' own scope builder, for budget.priority; history counts come from the claim.
        self._scopes = ScopeBuilder(catalog, InMemoryHistory())

    # -- program settings ----------------------------------------------------------------------
    def budget_spec(self, program_id: str) -> BudgetSpec:
        spec = self._specs.get(program_id)
        if spec is None:
            try:
                spec = self._specs[program_id] = self.catalog.get(program_id).spec.budget
            except ProgramError as exc:
                raise LedgerError("unknown_program", str(exc)) from None
        return spec

    def carry_over(self, key: str) -> bool:
        """The carry-over setting of a budget key: the program's, or for a pooled line all its programs'.

        Reports on a program no longer in the catalog assume the default (carry over)."""
        return all(self._carry_over(p) for p in self.lines.members(self.holder(key)))

    def _carry_over(self, program_id: str) -> bool:
        try:
            return self.budget_spec(program_id).carry_over
        except LedgerError:
            return True

    def sources(self, program_id: str, payout: int) -> tuple[str | None, list[FundSource] | None]:
        """A decision's budget line and its payout split by fund source (cached: amounts repeat)."""
        found = self._sources.get((program_id, payout))
        if found is None:
            line = self.lines.line_of(program_id)
            split = self.lines.split(program_id, payout) if line is not None and payout else None
            parts = None if split is None else tuple(
                FundSource.model_construct(source=s, amount_kop=a) for s, a in split  # computed here: valid
            )
            found = (None if line is None else line.code, parts)
            if len(self._sources) < 65536:
                self._sources[(program_id, payout)] = found
        line_code, parts = found
        return line_code, None if parts is None else list(parts)

    def holder(self, program_id: str) -> str:
        """The budget key of a program (itself, or its budget line when the line is allocated whole)."""
        return self.lines.holder(program_id)

    def clause(self, program_id: str) -> str:
        try:
            return self.budget_spec(program_id).clause_uk
        except LedgerError:
            return uk.NO_BUDGET_CLAUSE_UK

    def priority(self, entitlement: EntitlementCalculated) -> int:
        """Priority class of a claim: the program's ``budget.priority`` CEL, lower first.

        Evaluated on the same scope as the program's conditions and amount
        (``dopomoga.rules.scope``), under the rule version the claim was decided with, with the
        history counts the decision shows (a program's priority may read only those; the loader
        checks). A priority that cannot be evaluated is an error, never a silent last place.
        """
        try:
            program = self.catalog.get(entitlement.program_id)
        except ProgramError:
            return 0
        if program.priority is None:
            return 0
        counts: dict[str, int] = {}
        for shown in (*(c.inputs for c in entitlement.conditions), *(s.inputs for s in entitlement.trace)):
            for name, value in shown.items():
                if name in program.spec.history and type(value) is int:
                    counts[name] = value
        try:
            context = self._scopes.context(entitlement.application, entitlement.rules.effective_from, counts)
        except (ApplicationError, TypeError, RuntimeError, ValueError, KeyError) as exc:
            raise LedgerError("priority_failed", f"program {program.id}: budget.priority: {exc}") from None
        return program.priority_class(context.scope)

    # -- decisions -------------------------------------------------------------------------------
    def emit(self, tx: Tx, claim: ClaimRow, *, status: str, final: bool, payout: int,
             coefficient: Fraction | None, reason: str, explanation: str) -> None:
        tx.account(claim, -1)
        claim.revision += 1
        claim.status = status
        claim.final = final
        claim.payout_kop = payout
        claim.coefficient = fraction_str(coefficient) if coefficient is not None else claim.coefficient
        claim.reason_code = reason
        claim.dirty = True
        tx.account(claim, 1)
        payee, payment, rules = tx.context_of(claim)
        ident = decision_id("payout", claim.application_id)
        event_id = decision_id("payout", f"{claim.application_id}#{claim.revision}")
        line, sources = self.sources(claim.program_id, payout)
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
            rules=rules,
            payee=payee,
            payment=payment,
            line=line,
            sources=sources,
        )
        tx.revisions[event_id] = claim.revision
        tx.emitted.append(decision)

    def refuse(self, tx: Tx, claim: ClaimRow, reason: str, available: int | None = None,
               explanation: str | None = None) -> None:
        """A final refusal; ``explanation`` replaces the budget sentence (e.g. the rules' own refusal)."""
        if explanation is None:
            explanation = uk.budget_refusal(
                reason, claimed_kop=claim.claimed_kop, year=claim.year, period=claim.budget_period,
                available_kop=available or 0, clause=self.clause(claim.program_id),
            )
        self.emit(tx, claim, status="refused", final=True, payout=0, coefficient=Fraction(0),
                  reason=reason, explanation=explanation)

    def defer(self, tx: Tx, claim: ClaimRow, reason: str, available: int, planned: int | None = None) -> None:
        self.emit(
            tx, claim, status="deferred", final=False, payout=0, coefficient=Fraction(0), reason=reason,
            explanation=uk.budget_deferral(
                reason, claimed_kop=claim.claimed_kop, year=claim.year, period=claim.budget_period,
                available_kop=available, clause=self.clause(claim.program_id),
                planned_period=None if planned is None else f"{claim.year:04d}-{planned:02d}",
                carried_from=claim.carried_from,
            ),
        )

    def pay(self, tx: Tx, claim: ClaimRow) -> None:
        self.emit(
            tx, claim, status="paid", final=True, payout=claim.claimed_kop, coefficient=Fraction(1),
            reason="payable_paid" if claim.carried_from else "within_allocation",
            explanation=uk.budget_paid(amount_kop=claim.claimed_kop, period=claim.budget_period,
                                       clause=self.clause(claim.program_id), carried_from=claim.carried_from),
        )

    # -- a claim ---------------------------------------------------------------------------------
    def submit(self, tx: Tx, ent: EntitlementCalculated | EntitlementClaim, body: str | None = None) -> None:
        """Take a claim. ``body``: the event's JSON as received (stored as it is); required with the
        slim ``EntitlementClaim``, which must be the full event where ``budget.priority`` ranks it."""
        policy = ent.budget_policy
        if ent.eligible and policy not in PRO_RATA_POLICIES + QUEUE_POLICIES:
            raise LedgerError("unknown_policy", f"unknown budget policy {policy!r}")
        spec = self.budget_spec(ent.program_id) if ent.eligible else None
        year = split_period(ent.period)[0]
        application = ent.application
        claim = ClaimRow(
            application_id=ent.application_id,
            entitlement_decision_id=ent.decision_id,
            program_id=ent.program_id,
            district=district_of(ent.budget_key),
            year=year,
            origin_period=ent.period,
            budget_period=ent.period,
            policy=policy,
            priority_class=self.priority(ent) if ent.eligible and policy == "priority_then_pro_rata" else 0,  # type: ignore[arg-type]
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
            entitlement=body if body is not None else _full_json(ent),
            holder=self.holder(ent.program_id),
            new=True,
        )
        tx.add_claim(claim, (application.applicant, application.payment, ent.rules))
        if not ent.eligible:
            self.refuse(tx, claim, "ineligible", explanation=ent.explanation_uk)
            return
        assert spec is not None
        if ent.amount_kop == 0:
            self.emit(tx, claim, status="paid", final=True, payout=0, coefficient=Fraction(1),
                      reason="zero_amount", explanation=uk.budget_zero(period=ent.period, clause=spec.clause_uk))
            return
        # A value the act does not state, not yet confirmed by an operator: held, never paid.
        awaiting = sorted(set(ent.operator.pending_confirmation) - tx.confirmed(claim.program_id, claim.year))
        if awaiting:
            self.emit(tx, claim, status="held", final=False, payout=0, coefficient=Fraction(0),
                      reason="awaiting_confirmation",
                      explanation=uk.budget_held(claimed_kop=claim.claimed_kop, period=claim.budget_period,
                                                 clause=spec.clause_uk))
            return
        self.admit(tx, claim, spec)

    def admit(self, tx: Tx, claim: ClaimRow, spec: BudgetSpec) -> None:
        """An eligible, payable claim: reserved, paid, deferred or refused by the program's budget rule."""
        policy = claim.policy
        # Late claims: their month is closed.
        if tx.is_closed(claim.holder, claim.district, claim.budget_period):
            if spec.late_claims == "refuse":
                self.refuse(tx, claim, "period_closed")
                return
            target = tx.next_open(claim.holder, claim.district, claim.budget_period)
            if target is None:
                if policy in PRO_RATA_POLICIES or spec.when_short == "refuse" or not self.carry(tx, claim):
                    self.refuse(tx, claim, "budget_year_ended")
                else:
                    self.release(tx, claim.holder, claim.district, claim.year)
                return
            claim.budget_period = target
        if policy in PRO_RATA_POLICIES:
            self.emit(
                tx, claim, status="pending", final=False, payout=0, coefficient=Fraction(0),
                reason="reserved_until_close",
                explanation=uk.budget_reserved(claimed_kop=claim.claimed_kop, period=claim.budget_period,
                                               clause=spec.clause_uk),
            )
            return
        # first_come / district_split: strict FIFO; a claim never overtakes deferred ones.
        totals = tx.year(claim.holder, claim.district, claim.year)
        plan = tx.plan(claim.holder, claim.district, claim.year)
        waiting = totals.waiting()
        ahead = sum(c.claimed_kop for c in tx.deferred_claims(claim.holder, claim.district, claim.year)) \
            if waiting and spec.when_short == "refuse" else 0
        self.settle_queued(tx, claim, spec, plan, totals.spent(), blocked=waiting, ahead=ahead)

    def settle_queued(self, tx: Tx, claim: ClaimRow, spec: BudgetSpec, plan: tuple[int, ...] | None,
                      spent: list[int], *, blocked: bool, ahead: int = 0, announce: bool = True) -> bool:
        """Pay ``claim`` in full if it fits (and nothing is ahead of it); else defer or refuse.

        Spending-plan semantics (issue 13): a claim that does not fit this month's year-to-date
        plan is deferred to the month when money is planned. A program that refuses when short
        (``when_short: refuse``) refuses only when the YEAR's allocation has no room for it
        (annual − paid − ``ahead``, the claims queued before it): its text («після вичерпання
        обсягу») speaks of the year's money, not of a month's share of it.

        Returns True when the claim now blocks the queue (deferred). ``announce`` = emit a
        decision even if a deferred claim stays deferred with the same reason and month.
        """
        month = split_period(claim.budget_period)[1]
        no_money = plan is None or sum(plan) == 0
        action = queued_action(claim.claimed_kop, month, plan, spent, spec, blocked=blocked, ahead=ahead)
        if action == "pay":
            spent[month - 1] += claim.claimed_kop
            self.pay(tx, claim)
            return False
        reason = short_reason(plan)
        if action == "refuse":
            self.refuse(tx, claim, reason, year_room(plan, spent))
            return False
        if claim.carried_from:
            reason = "payable"  # owed since an earlier year; its sentence says so
        if announce or claim.status != "deferred" or claim.reason_code != reason:
            available = 0 if plan is None else available_in(month, plan, spent, spec.carry_over)
            planned = None
            if plan is not None and not no_money:
                planned = planned_month(month, plan, spent, claim.claimed_kop + ahead, spec.carry_over)
            self.defer(tx, claim, reason, available, planned)
        return True

    def release(self, tx: Tx, holder: str, district: str, year: int, moved: Iterable[str] = ()) -> None:
        """Retry the deferred claims of a budget key, payables of earlier years first, then FIFO."""
        moved_ids = set(moved)
        queue = tx.deferred_claims(holder, district, year)
        if not queue:
            return
        plan = tx.plan(holder, district, year)
        spent = tx.spent(holder, district, year)
        blocked = False
        ahead = 0
        for claim in queue:
            try:
                spec = self.budget_spec(claim.program_id)
            except LedgerError:
                continue
            now_blocked = self.settle_queued(
                tx, claim, spec, plan, spent, blocked=blocked, ahead=ahead,
                announce=claim.application_id in moved_ids,
            )
            if now_blocked:
                ahead += claim.claimed_kop
            blocked = now_blocked or blocked

    def carry(self, tx: Tx, claim: ClaimRow) -> bool:
        """Carry an owed claim into the next budget year as a payable (False: that year is closed)."""
        target = tx.first_open(claim.holder, claim.district, claim.year + 1)
        if target is None:
            return False
        tx.account(claim, -1)
        claim.carried_from = claim.carried_from or claim.year
        claim.year += 1
        claim.budget_period = target
        claim.dirty = True
        tx.account(claim, 1)
        self.emit(
            tx, claim, status="deferred", final=False, payout=0, coefficient=Fraction(0), reason="payable",
            explanation=uk.budget_payable(claimed_kop=claim.claimed_kop, year=claim.carried_from,
                                          period=target, clause=self.clause(claim.program_id)),
        )
        return True

    # -- a confirmation ---------------------------------------------------------------------------
    def confirm(self, tx: Tx, command: ParameterConfirmed) -> None:
        """Record the confirmed value and admit the year's claims that awaited only confirmed values."""
        spec = self.budget_spec(command.program_id)
        if not tx.record_confirmation(command):
            return  # confirmed before (by another event): nothing to do
        confirmed = tx.confirmed(command.program_id, command.year)
        for claim, awaiting in tx.held_claims(command.program_id, command.year):
            if set(awaiting) <= confirmed:
                self.admit(tx, claim, spec)

    # -- an allocation ---------------------------------------------------------------------------
    def allocate(self, tx: Tx, command: AllocationSet) -> None:
        """Set a budget key's plan: a program's, or a pooled line's (by its holder id or any of its programs)."""
        plan = monthly_plan(command.year, command.annual_kop, command.plan.kind, command.plan.months)
        holder = self.holder(command.program_id)
        line = self.lines.line_of(command.program_id) or self.lines.line_by_holder(holder)
        tx.write_allocation(command, plan, holder, None if line is None else line.code)
        self.release(tx, holder, command.district or "", command.year)

    # -- a month's close -------------------------------------------------------------------------
    def close(self, tx: Tx, command: PeriodClosed) -> None:
        """Close a month of a budget key (a program's, or its pooled line's: the whole line closes)."""
        year = split_period(command.period)[0]
        holder = self.holder(command.program_id)
        try:
            spec: BudgetSpec | None = self.budget_spec(command.program_id)
        except LedgerError:
            spec = None
        if command.district is not None:
            districts = [command.district]
        elif spec is not None and spec.by_district:
            districts = tx.districts(holder, year)
        else:
            districts = [""]
        for district in districts:
            self._close_one(tx, command, holder, district, year)

    def _close_one(self, tx: Tx, command: PeriodClosed, program_id: str, district: str, year: int) -> None:
        period = command.period  # program_id: the budget key (the program, or its pooled line)
        if tx.is_closed(program_id, district, period):
            return  # closed before (by another event): nothing to do
        month = split_period(period)[1]
        in_period = tx.open_claims(program_id, district, period)
        plan = tx.plan(program_id, district, year)
        spent = tx.spent(program_id, district, year)
        pool = available_in(month, plan, spent, self.carry_over(program_id)) if plan else 0
        pending = sorted((c for c in in_period if c.status == "pending"), key=lambda c: c.application_id)
        deferred = sorted((c for c in in_period if c.status == "deferred"), key=lambda c: c.arrival_seq)
        claimed = sum(c.claimed_kop for c in pending)
        paid = 0
        coefficient = ""
        if pending:
            paid, coefficient = self._settle_pro_rata(tx, pending, pool, plan)
        tx.record_close(program_id, district, period, command.event_id,
                        pool=pool, claimed=claimed, paid=paid, coefficient=coefficient)
        if deferred:
            target = tx.next_open(program_id, district, period)
            carried = False
            for claim in deferred:
                if target is None:
                    # 31 December: what is still owed becomes a payable of the next year
                    # («кредиторська заборгованість», 002 L984, L1237–1238), paid first when that
                    # year's money arrives; a program that refuses when its year's money is gone
                    # refuses with its own reason (its clause is cited).
                    if self.budget_spec(claim.program_id).when_short == "refuse":
                        self.refuse(tx, claim, "budget_exhausted", 0)
                    elif self.carry(tx, claim):
                        carried = True
                    else:
                        self.refuse(tx, claim, "budget_year_ended")
                else:
                    tx.account(claim, -1)
                    claim.budget_period = target
                    claim.dirty = True
                    tx.account(claim, 1)
            if target is not None:
                self.release(tx, program_id, district, year, moved=[c.application_id for c in deferred])
            elif carried:
                self.release(tx, program_id, district, year + 1)

    def _settle_pro_rata(self, tx: Tx, pending: Sequence[ClaimRow], pool: int,
                         plan: tuple[int, ...] | None) -> tuple[int, str]:
        clause = self.clause(pending[0].program_id)
        result, outcomes = pro_rata_outcomes(pending, pool, plan)
        for claim, status, award, share, reason in outcomes:
            by_priority = claim.policy == "priority_then_pro_rata"
            if status == "paid":
                self.emit(
                    tx, claim, status="paid", final=True, payout=award, coefficient=share,
                    reason=reason,
                    explanation=uk.budget_paid_in_full_at_close(
                        award_kop=award, period=claim.budget_period, claimed_total_kop=result.claimed,
                        pool_kop=pool, by_priority=by_priority, clause=clause,
                    ),
                )
            elif status == "refused":
                self.refuse(tx, claim, reason, pool)
            else:
                self.emit(
                    tx, claim, status="prorated", final=True, payout=award, coefficient=share, reason=reason,
                    explanation=uk.budget_prorated(
                        period=claim.budget_period, claims=len(outcomes), claimed_total_kop=result.claimed,
                        pool_kop=pool, share=share, award_kop=award, claimed_kop=claim.claimed_kop,
                        priority_class=claim.priority_class if by_priority else None, clause=clause,
                    ),
                )
        return result.paid, fraction_str(result.coefficient)


def _full_json(ent: EntitlementCalculated | EntitlementClaim) -> str:
    if not isinstance(ent, EntitlementCalculated):
        raise TypeError("a slim EntitlementClaim is stored by its event's bytes: pass them as body")
    return ent.model_dump_json()


def short_reason(plan: tuple[int, ...] | None) -> str:
    """Why a claim the money does not cover is deferred or refused: no money planned for the year at all
    (``no_appropriation``), or the planned money is spent (``budget_exhausted``)."""
    return "no_appropriation" if plan is None or sum(plan) == 0 else "budget_exhausted"


def queued_action(claimed: int, month: int, plan: tuple[int, ...] | None, spent: Sequence[int], spec: BudgetSpec,
                  *, blocked: bool, ahead: int = 0) -> str:
    """What a first-come claim gets now (pure): ``pay`` (it fits the year-to-date plan and nothing
    waits ahead of it), ``refuse`` (``when_short: refuse`` and the year has no room for it after
    the claims queued before it, ``ahead``) or ``defer``. Used by ``BudgetPolicy.settle_queued``
    and the what-if's in-memory budget (``dopomoga.budget.memory``) alike."""
    no_money = plan is None or sum(plan) == 0
    if not blocked and not no_money and claimed <= available_in(month, plan, spent, spec.carry_over):  # type: ignore[arg-type]
        return "pay"
    if spec.when_short == "refuse" and (no_money or year_room(plan, spent) - ahead < claimed):
        return "refuse"
    return "defer"


def pro_rata_outcomes(pending: Sequence[ClaimRow], pool: int, plan: tuple[int, ...] | None
                      ) -> tuple[Rationed, list[tuple[ClaimRow, str, int, Fraction, str]]]:
    """How a month's close settles its reserved claims (pure: no sentence, no storage).

    Each claim's (claim, status, payout, coefficient, reason): paid in full, refused (nothing
    left, or no allocation at all), or prorated by its share (its priority class's, where the
    program ranks claims by priority). Used by ``BudgetPolicy`` and the what-if's in-memory
    budget (``dopomoga.budget.memory``) alike."""
    claims = [Claim(c.application_id, c.claimed_kop, c.priority_class) for c in pending]
    if any(c.policy == "priority_then_pro_rata" for c in pending):
        result = priority_then_pro_rata(pool, claims)
        shares = [result.class_coefficients.get(c.priority, Fraction(0)) for c in claims]
    else:
        result = pro_rata(pool, claims)
        shares = [result.coefficient] * len(claims)
    short = short_reason(plan)
    outcomes: list[tuple[ClaimRow, str, int, Fraction, str]] = []
    for claim, award, share in zip(pending, result.awards, shares, strict=True):
        if award == claim.claimed_kop:
            outcomes.append((claim, "paid", award, Fraction(1), "within_allocation"))
        elif award == 0:
            outcomes.append((claim, "refused", 0, Fraction(0), short))
        else:
            outcomes.append((claim, "prorated", award, share, "prorated"))
    return result, outcomes
