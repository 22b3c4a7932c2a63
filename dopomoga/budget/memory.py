"""An in-memory budget for what-if: the ledger's budget rules, with no SQL, events or stored revisions.

``MemoryBudget`` applies allocations, takes claims (``dopomoga.rules.lean.Lean``) and closes
months exactly as ``BudgetLedger`` does, because it runs the ledger's own policy
(``dopomoga.budget.policy.BudgetPolicy``: first come within the year-to-date plan with deferrals
to the planned month, strict FIFO, pro rata by largest remainder at the close, priorities, pooled
budget lines, late claims, payables carried past December, claims held for confirmation) on a
transaction that lives in memory (``MemoryTx``, the same interface as ``dopomoga.budget.tx.Tx``).
What it leaves out is what a what-if throws away: ``PayoutDecided`` events and their sentences,
the stored inputs and revisions, the entitlement bytes. A claim's state is a ``ClaimRow``; the
month totals are the ledger's ``Year`` rows, kept up to date by the same ``account`` calls.

``tests/whatif/test_memory_budget.py`` runs the SQL ledger and this budget side by side (the
example applications, generated applications and allocations) and checks the same outcome
(status, payout, coefficient, reason) for every claim and the same need-report rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from fractions import Fraction
from operator import attrgetter
from typing import Any

from dopomoga.budget.allocation import available_in
from dopomoga.budget.commands import period_closed
from dopomoga.budget.lines import BudgetLines
from dopomoga.budget.policy import (
    PRO_RATA_POLICIES,
    QUEUE_POLICIES,
    BudgetPolicy,
    pro_rata_outcomes,
    queued_action,
    short_reason,
)
from dopomoga.budget.reports import NeedRow, month_coefficient
from dopomoga.budget.tx import OPEN_STATUSES, ClaimRow, MonthWalk, Sums, Year
from dopomoga.errors import LedgerError
from dopomoga.money import fraction_str
from dopomoga.rules.lean import Lean
from dopomoga.rules.programs import BudgetSpec, Catalog
from schemas.events import AllocationSet, ParameterConfirmed

_Key = tuple[str, str, int]  # holder, district, year
_POLICIES = frozenset(PRO_RATA_POLICIES + QUEUE_POLICIES)
# LeanPolicy.submit_lean builds a ClaimRow positionally: its fields must stay in this order.
assert tuple(f.name for f in fields(ClaimRow))[:22] == (
    "application_id", "entitlement_decision_id", "program_id", "district", "year", "origin_period", "budget_period",
    "policy", "priority_class", "arrival_seq", "eligible", "claimed_kop", "payout_kop", "status", "final",
    "reason_code", "coefficient", "revision", "context", "entitlement", "carried_from", "holder",
), "ClaimRow's fields changed: update LeanPolicy.submit_lean"
_ARRIVAL = attrgetter("arrival_seq")
_CARRIED = attrgetter("carried_from")
_ONE = Fraction(1)
_ZERO = Fraction(0)


@dataclass(frozen=True, slots=True)
class ClosedMonth:
    pool_kop: int
    claimed_kop: int
    paid_kop: int
    coefficient: str


class MemoryTx(MonthWalk):
    """``dopomoga.budget.tx.Tx``'s interface over plain dicts: one transaction that never ends."""

    def __init__(self) -> None:
        self.seq = 0
        self.occurred_at: Any = None
        self.claims: dict[str, ClaimRow] = {}
        self.years: dict[_Key, Year] = {}
        self.plans: dict[_Key, tuple[int, ...]] = {}
        self.closed: dict[tuple[str, str], set[str]] = {}
        self.closes: dict[tuple[str, str, str], ClosedMonth] = {}
        self.confirmations: dict[tuple[str, int], set[str]] = {}
        self.awaiting: dict[str, tuple[str, ...]] = {}  # held claim -> the parameters it awaits
        self.open: dict[tuple[str, str, str], dict[str, ClaimRow]] = {}  # (holder, district, month) -> claims
        self.deferred: dict[_Key, dict[str, ClaimRow]] = {}  # deferred claims of a budget key's year
        #: budget key -> the reason every deferred claim of it not carried from an earlier year has
        #: (payables: "payable"); no entry when not known (LeanPolicy.release may then stop early)
        self.deferred_reason: dict[_Key, str] = {}

    def start(self, occurred_at: Any) -> None:
        self.seq += 1
        self.occurred_at = occurred_at

    # -- plan and running totals ---------------------------------------------------------------
    def plan(self, program_id: str, district: str, year: int) -> tuple[int, ...] | None:
        return self.plans.get((program_id, district, year))

    def year(self, program_id: str, district: str, year: int) -> Year:
        key = (program_id, district, year)
        totals = self.years.get(key)
        if totals is None:
            totals = self.years[key] = Year(rows=[[0, 0, 0, 0, 0] for _ in range(12)], stored={}, touched=set())
        return totals

    def spent(self, program_id: str, district: str, year: int) -> list[int]:
        return self.year(program_id, district, year).spent()

    def account(self, claim: ClaimRow, sign: int) -> None:
        """``Tx.account`` (the month's row: ``Year.count``), and the indexes of open and deferred claims
        kept with it."""
        status = claim.status
        holder, district, year = claim.holder, claim.district, claim.year
        if status in OPEN_STATUSES:
            _index(self.open, (holder, district, claim.budget_period), claim, sign)
            if status == "deferred":
                _index(self.deferred, (holder, district, year), claim, sign)
        self.year(holder, district, year).count(claim, sign)

    def pay_deferred(self, claim: ClaimRow, reason: str) -> None:
        """``LeanPolicy.pay`` of a deferred claim (``emit``: out of the indexes, its month's row counted
        again as paid in full), in one step."""
        holder, district, year, app_id = claim.holder, claim.district, claim.year, claim.application_id
        self.open[(holder, district, claim.budget_period)].pop(app_id, None)  # as account(claim, -1)
        self.deferred[(holder, district, year)].pop(app_id, None)
        totals = self.years[(holder, district, year)]
        # totals.count(claim, -1), then again as paid in full: the month's row has one claim less
        # deferred and the amount more paid (its count and need stay: eligible either way)
        month = int(claim.budget_period[5:7])
        totals.touched.add(month)
        row = totals.rows[month - 1]
        row[4] -= 1
        row[3] += claim.claimed_kop
        claim.status = "paid"
        claim.payout_kop = claim.claimed_kop
        claim.revision += 1
        claim.final = True
        claim.coefficient = "1"
        claim.reason_code = reason

    # -- claims ------------------------------------------------------------------------------------
    def add_claim(self, claim: ClaimRow, context: Any = None) -> None:
        self.claims[claim.application_id] = claim

    def deferred_claims(self, holder: str, district: str, year: int) -> list[ClaimRow]:
        queue = self.deferred.get((holder, district, year))
        if not queue:
            return []
        claims = sorted(queue.values(), key=_ARRIVAL)  # FIFO; payables of earlier years first (stable sort)
        if any(map(_CARRIED, claims)):
            claims.sort(key=lambda c: c.carried_from == 0)
        return claims

    def open_claims(self, holder: str, district: str, period: str) -> list[ClaimRow]:
        return list(self.open.get((holder, district, period), {}).values())

    def sync(self) -> None:
        """Nothing to write: queries read the live claims."""

    # -- confirmations -----------------------------------------------------------------------------
    def confirmed(self, program_id: str, year: int) -> set[str]:
        return self.confirmations.setdefault((program_id, year), set())

    def record_confirmation(self, command: Any) -> bool:
        found = self.confirmed(command.program_id, command.year)
        if command.parameter in found:
            return False
        found.add(command.parameter)
        return True

    def held_claims(self, program_id: str, year: int) -> list[tuple[ClaimRow, list[str]]]:
        held = [(c, list(self.awaiting.get(c.application_id, ()))) for c in self.claims.values()
                if c.program_id == program_id and c.year == year and c.status == "held"]
        return sorted(held, key=lambda pair: pair[0].arrival_seq)

    # -- periods -----------------------------------------------------------------------------------
    def closed_periods(self, program_id: str, district: str) -> set[str]:
        return self.closed.setdefault((program_id, district), set())

    def is_closed(self, program_id: str, district: str, period: str) -> bool:
        closed = self.closed.get((program_id, district))
        return closed is not None and period in closed

    def record_close(self, program_id: str, district: str, period: str, event_id: str, *,
                     pool: int, claimed: int, paid: int, coefficient: str) -> None:
        self.closes[(program_id, district, period)] = ClosedMonth(pool, claimed, paid, coefficient)
        self.closed_periods(program_id, district).add(period)

    # -- allocations -------------------------------------------------------------------------------
    def write_allocation(self, command: AllocationSet, plan: tuple[int, ...], holder: str, line: str | None) -> None:
        self.plans[(holder, command.district or "", command.year)] = plan

    def districts(self, program_id: str, year: int) -> list[str]:
        found = {d for (p, d, y) in self.plans if p == program_id and y == year}
        found |= {d for (p, d, y), totals in self.years.items() if p == program_id and y == year and totals.touched}
        return sorted(found | {""})


class LeanPolicy(BudgetPolicy):
    """The ledger's budget policy, deciding without writing events or their sentences."""

    def __init__(self, catalog: Catalog, lines: BudgetLines | None = None):
        super().__init__(catalog, lines)
        self._holders: dict[str, str] = {}  # program -> budget key (the lines do not change during a run)
        self._no_refuse: dict[str, bool] = {}  # budget key -> no program of it refuses when short

    def emit(self, tx: Any, claim: ClaimRow, *, status: str, final: bool, payout: int,
             coefficient: Fraction | None, reason: str, explanation: str) -> None:
        same = claim.status == status and claim.payout_kop == payout  # e.g. a deferred claim deferred again
        if not same:
            tx.account(claim, -1)
        claim.revision += 1
        claim.status = status
        claim.final = final
        claim.payout_kop = payout
        if coefficient is not None:
            claim.coefficient = "1" if coefficient == 1 else "0" if coefficient == 0 else fraction_str(coefficient)
        claim.reason_code = reason
        if not same:  # it counts in its month's totals and indexes exactly as before: nothing to take back or add
            tx.account(claim, 1)
        if status == "deferred":
            _deferred_with(tx, claim, reason)

    def refuse(self, tx: Any, claim: ClaimRow, reason: str, available: int | None = None,
               explanation: str | None = None) -> None:
        self.emit(tx, claim, status="refused", final=True, payout=0, coefficient=_ZERO, reason=reason, explanation="")

    def defer(self, tx: Any, claim: ClaimRow, reason: str, available: int, planned: int | None = None) -> None:
        self.emit(tx, claim, status="deferred", final=False, payout=0, coefficient=_ZERO, reason=reason,
                  explanation="")

    def pay(self, tx: Any, claim: ClaimRow) -> None:
        self.emit(tx, claim, status="paid", final=True, payout=claim.claimed_kop, coefficient=_ONE,
                  reason="payable_paid" if claim.carried_from else "within_allocation", explanation="")

    def settle_queued(self, tx: Any, claim: ClaimRow, spec: BudgetSpec, plan: tuple[int, ...] | None,
                      spent: list[int], *, blocked: bool, ahead: int = 0, announce: bool = True) -> bool:
        """``BudgetPolicy.settle_queued`` without what only its sentences read (the month's money, the planned month)."""
        action = queued_action(claim.claimed_kop, int(claim.budget_period[5:7]), plan, spent, spec,
                               blocked=blocked, ahead=ahead)
        if action == "pay":
            spent[int(claim.budget_period[5:7]) - 1] += claim.claimed_kop
            self.pay(tx, claim)
            return False
        reason = short_reason(plan)
        if action == "refuse":
            self.refuse(tx, claim, reason)
            return False
        if claim.carried_from:
            reason = "payable"
        if announce or claim.status != "deferred" or claim.reason_code != reason:
            self.defer(tx, claim, reason, 0)
        return True

    def release(self, tx: Any, holder: str, district: str, year: int, moved: Iterable[str] = ()) -> None:
        """``BudgetPolicy.release``, with the queue behind the first claim that stays deferred walked cheaply.

        Behind a deferred claim nothing can be paid (strict FIFO): ``settle_queued`` defers each
        claim again, and for a claim already deferred with the same reason whose program does not
        refuse when short that changes nothing but its revision (and, in the ledger, writes a
        decision if the close moved it). Such claims only add their amount to ``ahead``; the others
        go through ``settle_queued`` as in the ledger. (What-if submits every claim before the first
        close, so most of a year's first-come claims wait here, and every close walks them.)
        """
        queue = tx.deferred_claims(holder, district, year)
        if not queue:
            return
        moved_ids = set(moved)
        plan = tx.plan(holder, district, year)
        spent = tx.spent(holder, district, year)
        short = short_reason(plan)
        key = (holder, district, year)
        # Behind the first claim that stays deferred nothing changes when no program of the key refuses
        # when short (no claim's `ahead` matters) and every queued claim already has the reason it would
        # get again: stop there (what is left would only count a revision of the claims the close moved).
        settled = tx.deferred_reason.get(key) == short and self._never_refuses(holder)
        specs: dict[str, BudgetSpec | None] = {}
        blocked = False
        complete = True
        ahead = 0
        last: tuple[int, bool] | None = None  # (month, carry_over) ``free`` was computed for
        free = 0
        for claim in queue:
            if blocked and settled:
                break
            program_id = claim.program_id
            if program_id in specs:
                spec = specs[program_id]
            else:
                try:
                    spec = specs[program_id] = self.budget_spec(program_id)
                except LedgerError:
                    spec = specs[program_id] = None
            if spec is None:
                complete = False
                continue
            if blocked and spec.when_short != "refuse" and claim.status == "deferred" \
                    and claim.reason_code == ("payable" if claim.carried_from else short):
                if claim.application_id in moved_ids:
                    claim.revision += 1  # the ledger announces it again (same status, payout, reason)
                ahead += claim.claimed_kop
                continue
            if not blocked and short == "budget_exhausted" and claim.status == "deferred":
                month = int(claim.budget_period[5:7])
                if (month, spec.carry_over) != last:
                    last = (month, spec.carry_over)
                    free = available_in(month, plan, spent, spec.carry_over)  # type: ignore[arg-type]
                if claim.claimed_kop <= free:
                    # settle_queued's "pay" (queued_action: not blocked, money planned, it fits), inline.
                    # Paying x in a month lowers what that month may still spend by exactly x (each
                    # year-to-date difference from it on falls by x, none below 0 as x fitted).
                    spent[month - 1] += claim.claimed_kop
                    free -= claim.claimed_kop
                    tx.pay_deferred(claim, "payable_paid" if claim.carried_from else "within_allocation")
                    continue
            last = None  # settle_queued may change what is spent
            now_blocked = self.settle_queued(tx, claim, spec, plan, spent, blocked=blocked, ahead=ahead,
                                             announce=claim.application_id in moved_ids)
            if now_blocked:
                ahead += claim.claimed_kop
            blocked = now_blocked or blocked
        else:
            if complete:  # every queued claim walked: each has the reason it got now
                tx.deferred_reason[key] = short

    def _never_refuses(self, holder: str) -> bool:
        """No program of the budget key refuses when short (``when_short: refuse``)."""
        found = self._no_refuse.get(holder)
        if found is None:
            found = True
            for program_id in self.lines.members(holder):
                try:
                    found = found and self.budget_spec(program_id).when_short != "refuse"
                except LedgerError:
                    continue
            self._no_refuse[holder] = found
        return found

    def _settle_pro_rata(self, tx: Any, pending: Any, pool: int, plan: tuple[int, ...] | None) -> tuple[int, str]:
        result, outcomes = pro_rata_outcomes(pending, pool, plan)
        for claim, status, award, share, reason in outcomes:
            self.emit(tx, claim, status=status, final=True, payout=award, coefficient=share, reason=reason,
                      explanation="")
        return result.paid, fraction_str(result.coefficient)

    def submit_lean(self, tx: MemoryTx, lean: Lean) -> None:
        """``BudgetPolicy.submit`` of a lean decision (the same steps, no entitlement event)."""
        app_id, program_id, period, eligible, amount, district, policy, priority, _, payee = lean
        if eligible and policy not in _POLICIES:
            raise LedgerError("unknown_policy", f"unknown budget policy {policy!r}")
        spec = self.budget_spec(program_id) if eligible else None
        holder = self._holders.get(program_id)
        if holder is None:
            holder = self._holders[program_id] = self.holder(program_id)
        claim = ClaimRow(  # positional, in the field order (a million of them)
            app_id, "", program_id, district, int(period[:4]), period, period, policy,
            priority if policy == "priority_then_pro_rata" else 0, tx.seq, eligible, amount, 0, "new", False, "",
            "0", 0, payee, "", 0, holder,
        )
        tx.claims[app_id] = claim
        if not eligible:
            _settle_new(tx, claim, "refused", True, 0, "0", "ineligible")
            return
        assert spec is not None
        if lean.amount_kop == 0:
            _settle_new(tx, claim, "paid", True, 0, "1", "zero_amount")
            return
        if lean.pending:
            awaiting = sorted(set(lean.pending) - tx.confirmed(claim.program_id, claim.year))
            if awaiting:
                tx.awaiting[claim.application_id] = lean.pending
                _settle_new(tx, claim, "held", False, 0, "0", "awaiting_confirmation")
                return
        if not tx.is_closed(claim.holder, claim.district, period):  # the common case: admit's steps, inline
            if policy in PRO_RATA_POLICIES:
                _settle_new(tx, claim, "pending", False, 0, "0", "reserved_until_close")
                return
            totals = tx.year(claim.holder, claim.district, claim.year)
            waiting = bool(tx.deferred.get((claim.holder, claim.district, claim.year)))  # == totals.waiting()
            if not waiting or spec.when_short != "refuse":  # else the claims ahead count: admit sums them
                plan = tx.plan(claim.holder, claim.district, claim.year)
                action = queued_action(claim.claimed_kop, int(period[5:7]), plan, totals.spent(), spec,
                                       blocked=waiting)
                if action == "pay":
                    _settle_new(tx, claim, "paid", True, claim.claimed_kop, "1", "within_allocation")
                    return
                short = short_reason(plan)
                if action == "refuse":
                    _settle_new(tx, claim, "refused", True, 0, "0", short)
                else:
                    _settle_new(tx, claim, "deferred", False, 0, "0", short)
                return
        self.admit(tx, claim, spec)


def _settle_new(tx: MemoryTx, claim: ClaimRow, status: str, final: bool, payout: int, coefficient: str,
                reason: str) -> None:
    """``LeanPolicy.emit`` of a claim's first decision (a new claim counts nowhere yet: nothing to take back)."""
    claim.revision = 1
    claim.status = status
    claim.final = final
    claim.payout_kop = payout
    claim.coefficient = coefficient
    claim.reason_code = reason
    tx.account(claim, 1)
    if status == "deferred":
        _deferred_with(tx, claim, reason)


def _deferred_with(tx: MemoryTx, claim: ClaimRow, reason: str) -> None:
    """A claim was deferred with ``reason``: forget its budget key's common reason if it differs."""
    if claim.carried_from:
        if reason == "payable":
            return
    else:
        key = (claim.holder, claim.district, claim.year)
        if tx.deferred_reason.get(key) == reason:
            return
    tx.deferred_reason.pop((claim.holder, claim.district, claim.year), None)


class MemoryBudget:
    """Budgets of a catalog's programs, in memory: allocations, claims and closes in the ledger's order."""

    def __init__(self, catalog: Catalog, lines: BudgetLines | None = None):
        self.catalog = catalog
        self.lines = lines if lines is not None else BudgetLines.load(catalog.root)
        self.policy = LeanPolicy(catalog, self.lines)
        self.tx = MemoryTx()
        self._inputs: set[str] = set()  # allocation and confirmation event ids applied (a replay does nothing)
        self.budgets: set[tuple[str, str | None, int]] = set()  # (program, district, year) of every claim

    def apply(self, command: AllocationSet | ParameterConfirmed) -> None:
        """An allocation (or a confirmation), as ``BudgetLedger.apply``."""
        if command.event_id in self._inputs:
            return
        self._inputs.add(command.event_id)
        self.tx.start(command.occurred_at)
        if isinstance(command, AllocationSet):
            self.policy.allocate(self.tx, command)
        else:
            self.policy.confirm(self.tx, command)

    def submit(self, lean: Lean) -> None:
        """A claim, as ``BudgetLedger.submit`` of its entitlement (a repeated application is a replay)."""
        tx = self.tx
        if lean.application_id in tx.claims:
            return
        tx.seq += 1  # tx.start(None)
        tx.occurred_at = None
        self.policy.submit_lean(tx, lean)
        self.budgets.add((lean.program_id, lean.district or None, int(lean.period[:4])))

    def close(self, program_id: str, period: str, district: str | None, closed_by: str = "dopomoga-whatif") -> None:
        """A month's close (``PeriodClosed``), as ``BudgetLedger.apply`` of it."""
        year, month = int(period[:4]), int(period[5:7])
        command = period_closed(program_id, period, district, closed_by=closed_by,
                                occurred_at=dt.datetime(year, month, 28, 23, 59, tzinfo=dt.UTC))
        if command.event_id in self._inputs:
            return
        self._inputs.add(command.event_id)
        self.tx.start(command.occurred_at)
        self.policy.close(self.tx, command)

    def close_year(self, closed_by: str = "dopomoga-whatif") -> None:
        """Every month of each budget year with claims closed in calendar order (what a what-if does)."""
        for program_id, district, year in sorted(self.budgets, key=lambda b: (b[0], b[1] or "", b[2])):
            for month in range(1, 13):
                self.close(program_id, f"{year}-{month:02d}", district, closed_by)

    def claims(self) -> Iterator[ClaimRow]:
        return iter(self.tx.claims.values())

    def need_report(self, year: int, program_id: str | None = None) -> list[NeedRow]:
        """``BudgetLedger.need_report``, from memory."""
        tx = self.tx
        if program_id is not None:
            program_id = self.policy.holder(program_id)
        stored = [*tx.plans, *(key for key, totals in tx.years.items() if totals.touched)]  # the SQL tables' rows
        keys = {(p, d) for (p, d, y) in stored if y == year and (program_id is None or p == program_id)}
        rows: list[NeedRow] = []
        for prog, dist in sorted(keys):
            plan = tx.plans.get((prog, dist, year))
            totals = tx.years.get((prog, dist, year)) or Year([[0] * 5 for _ in range(12)], {}, set())
            spent = totals.spent()
            carry = self.policy.carry_over(prog)
            for month in range(1, 13):
                period = f"{year:04d}-{month:02d}"
                sums: Sums = totals.sums(month)
                allocation = plan[month - 1] if plan else 0
                available = available_in(month, plan, spent, carry) if plan else 0
                closed = tx.closes.get((prog, dist, period))
                rows.append(NeedRow(
                    program_id=prog, district=dist or None, period=period, claims=sums.count, need_kop=sums.need,
                    allocation_kop=allocation, paid_kop=sums.paid, reserved_kop=sums.reserved,
                    shortfall_kop=max(0, sums.need - allocation),
                    unpaid_kop=max(0, sums.need - sums.paid - sums.reserved),
                    coefficient=month_coefficient(closed, sums, available), closed=closed is not None,
                ))
        return rows

    def years(self) -> list[int]:
        return sorted({year for _, _, year in self.budgets})


def feed(budget: MemoryBudget, allocations: Iterable[AllocationSet], claims: Iterable[Lean]) -> MemoryBudget:
    """Allocations (those of the catalog's programs, as the what-if's ledgers), claims in order, every close."""
    for allocation in allocations:
        if allocation.program_id in budget.catalog.programs:
            budget.apply(allocation)
    for lean in claims:
        budget.submit(lean)
    budget.close_year()
    return budget


def _index(table: dict[Any, dict[str, ClaimRow]], key: Any, claim: ClaimRow, sign: int) -> None:
    """Add (``sign`` = 1) or take out (-1) a claim in one bucket of an index."""
    if sign > 0:
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = {}
        bucket[claim.application_id] = claim
    else:
        table[key].pop(claim.application_id, None)
