"""`dopomoga up --demo`: replay the examples through the running services and summarise."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dopomoga.budget.commands import allocation_set, confirmations_of_inferred, period_closed
from dopomoga.money import format_uah
from schemas.events import AllocationSet
from services.devstack.registry import Registry, application_key, read_jsonl
from services.devstack.watch import Watcher

DEMO_CLOSER = "dopomoga-demo"  # who closes months in the demo's (and the emulator's) PeriodClosed


def load_allocation_file(path: Path) -> list[AllocationSet]:
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [AllocationSet.model_validate(item) for item in data["allocations"]]


DEFAULT_ANNUAL_KOP = 120_000_000  # 1 200 000 UAH: a demo figure, not from any source


def default_allocations(
    lines: list[bytes], allocations: list[AllocationSet], known: set[str] | None = None
) -> list[AllocationSet]:
    """A demo allocation for every (program, year) in the examples that the file does not cover
    (only programs in ``known``, when given: an application naming an unknown program is meant to
    be dead-lettered, not to get a budget)."""
    have = {(a.program_id, a.year) for a in allocations}
    wanted: set[tuple[str, int]] = set()
    for line in lines:
        try:
            data = json.loads(line)
            year = int(str(data.get("period") or data["submitted_on"])[:4])
            wanted.add((str(data["program_id"]), year))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    extra = []
    for program_id, year in sorted(wanted - have):
        if known is not None and program_id not in known:
            continue
        try:
            extra.append(allocation_set(
                program_id=program_id, year=year, annual_kop=DEFAULT_ANNUAL_KOP, plan={"kind": "even"},
                amendment_id=f"demo-{program_id}-{year}", legal_reference="demo default allocation (not from a source)",
            ))
        except ValueError:
            continue
    return extra


def annual_allocation(allocations: list[AllocationSet], program_id: str, year: int, district: str | None) -> int | None:
    chosen = None
    for allocation in allocations:  # the last amendment wins
        if allocation.program_id == program_id and allocation.year == year and allocation.district == district:
            chosen = allocation
    return None if chosen is None else chosen.annual_kop


def monthly_allocation(allocations: list[AllocationSet], program_id: str, period: str, district: str | None) -> int | None:
    from dopomoga.budget.allocation import monthly_plan

    year, month = int(period[:4]), int(period[5:])
    chosen = None
    for allocation in allocations:  # the last amendment wins
        if allocation.program_id == program_id and allocation.year == year and allocation.district == district:
            chosen = allocation
    if chosen is None:
        return None
    plan = monthly_plan(chosen.year, chosen.annual_kop, chosen.plan.kind, chosen.plan.months)
    return plan[month - 1]


def run_demo(bootstrap: str, files: list[Path], allocations_path: Path, timeout_s: float, console: Console) -> bool:
    lines = [line for path in files for line in read_jsonl(path)]
    ids = {key.decode() for key in map(application_key, lines) if key}
    allocations = load_allocation_file(allocations_path)
    console.print(
        f"demo: {len(lines)} lines from {', '.join(str(f) for f in files) or '(no example files)'}, "
        f"{len(allocations)} allocations from {allocations_path}"
    )
    from dopomoga.rules.programs import Catalog

    catalog = Catalog.load()
    allocations += default_allocations(lines, allocations, set(catalog.programs))
    started = time.monotonic()
    with Registry(bootstrap) as registry, Watcher(bootstrap) as watcher:
        for allocation in allocations:
            registry.command(allocation)
        registry.publish_raw(lines)
        # 1. every application reaches the budget service (a first decision) or dead-letter
        watcher.wait(lambda o: all(o.seen(i) for i in ids), timeout_s / 2)
        # 1b. amounts the acts do not state are held until confirmed: the demo confirms them, as the
        #     department would with its decision (the document named is a demo placeholder)
        confirmations = [
            command
            for program_id, year in sorted({(a.program_id, a.year) for a in allocations if a.program_id in catalog.programs})
            for command in confirmations_of_inferred(
                catalog.get(program_id), year, document="демонстраційне підтвердження (не з джерела)",
                confirmed_by=DEMO_CLOSER, occurred_at=dt.datetime(year, 1, 2, 9, tzinfo=dt.UTC),
            )
        ]
        for command in confirmations:
            registry.command(command)
        if confirmations:
            console.print(f"confirmed {len(confirmations)} inferred amounts (held claims are released)")
        # 2. close months in calendar order, as an operator would, until every decision is final:
        #    for each funded budget year with provisional decisions, every month from January up to
        #    the latest month that has one (closing a month carries its deferred claims to the next).
        #    A claim still owed on 31 December is a payable of the next year; where that year has no
        #    allocation nothing can pay it, so it is owed, not waited for (and its year never closed).
        funded = {(a.program_id, str(a.year), a.district) for a in allocations}
        closed: set[tuple[str, str, str | None]] = set()
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            watcher.poll()
            outcomes = watcher.outcomes
            latest: dict[tuple[str, str, str | None], str] = {}
            for i in ids:
                if outcomes.settled(i) or _owed(outcomes, i, funded):
                    continue
                for d in outcomes.decisions.get(i, []):
                    year_key = (d.program_id, d.period[:4], d.district)
                    latest[year_key] = max(latest.get(year_key, d.period), d.period)
            for (program_id, year, district), last in sorted(latest.items(), key=str):
                if (program_id, year, district) not in funded:
                    continue
                for month in range(1, int(last[5:]) + 1):
                    budget = (program_id, f"{year}-{month:02d}", district)
                    if budget not in closed:
                        registry.command(period_closed(*budget, closed_by=DEMO_CLOSER))
                        closed.add(budget)
            if all(outcomes.settled(i) or _owed(outcomes, i, funded) for i in ids):
                break
        outcomes = watcher.outcomes
    elapsed = time.monotonic() - started
    owed = sorted(i for i in ids if not outcomes.settled(i) and _owed(outcomes, i, funded))
    missing = sorted(i for i in ids if not outcomes.settled(i) and i not in owed)
    _summary(console, outcomes, ids, allocations, closed, elapsed)
    if owed:
        console.print(f"{len(owed)} claims owed as payables of a year with no allocation yet (paid when it has one)")
    if missing:
        console.print(f"[red]{len(missing)} applications have no final decision after {timeout_s:.0f} s[/red]")
    return not missing


def _owed(outcomes, application_id: str, funded: set[tuple[str, str, str | None]]) -> bool:
    """Is the latest decision a deferral into a budget year that has no allocation (a payable nothing can pay yet)?"""
    decisions = outcomes.decisions.get(application_id)
    if not decisions:
        return False
    latest = decisions[-1]
    return latest.status == "deferred" and not latest.final and (
        (latest.program_id, latest.period[:4], latest.district) not in funded)


def _uah(kop: int) -> str:
    return format_uah(kop).removesuffix("\u00a0грн")


def _summary(console, outcomes, ids, allocations, closed, elapsed) -> None:
    by_status: Counter[tuple[str, str]] = Counter()
    paid: dict[tuple[str, str, str | None], int] = defaultdict(int)
    claimed: dict[tuple[str, str, str | None], int] = defaultdict(int)
    for application_id in ids:
        final = outcomes.final(application_id)
        if final is None:
            continue
        by_status[(final.program_id, final.status)] += 1
        budget = (final.program_id, final.period, final.district)
        paid[budget] += final.payout_kop
        claimed[budget] += final.claimed_kop
    table = Table(title=f"Final decisions ({sum(by_status.values())} of {len(ids)} applications, {elapsed:.1f} s)")
    for column in ("program", "status", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for (program, status), count in sorted(by_status.items()):
        table.add_row(program, status, str(count))
    console.print(table)
    money = Table(title="Money: paid vs annual allocation (the cumulative monthly limit lets a month use earlier months' rest)")
    for column in ("program", "year", "claimed, грн", "paid, грн", "allocation, грн", "paid/alloc."):
        money.add_column(column, justify="left" if column in ("program", "year") else "right", no_wrap=True)
    yearly_paid: dict[tuple[str, int, str | None], int] = defaultdict(int)
    yearly_claimed: dict[tuple[str, int, str | None], int] = defaultdict(int)
    for (program, period, district), amount in paid.items():
        yearly_paid[(program, int(period[:4]), district)] += amount
        yearly_claimed[(program, int(period[:4]), district)] += claimed[(program, period, district)]
    for key in sorted(yearly_paid, key=str):
        program, year, district = key
        annual = annual_allocation(allocations, program, year, district)
        share = f"{yearly_paid[key] / annual:.1%}" if annual else "-"
        money.add_row(
            program + (f" ({district})" if district else ""), str(year), _uah(yearly_claimed[key]),
            _uah(yearly_paid[key]), _uah(annual) if annual is not None else "none", share,
        )
    console.print(money)
    reasons = Counter(r.reason_code for r in outcomes.rejected)
    if reasons:
        console.print("dead-letter: " + ", ".join(f"{code} × {n}" for code, n in sorted(reasons.items())))
