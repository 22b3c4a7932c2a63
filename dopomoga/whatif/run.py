"""Run a what-if: the baseline and a scenario, each through the decisions and a budget ledger of its own.

Nothing here touches production state: each side decides with ``dopomoga.rules.batch`` (every
core, the traced path's exact decisions) into a decisions file in a temporary directory, and feeds
them to its own ``BudgetLedger`` (a SQLite file in that directory): the allocation commands, every
claim in input order, then every month of each budget year closed in calendar order, as an
operator would (the demo does the same), so every claim ends with a final decision.

Only what a scenario can change is computed twice. The programs it touches (rules, parameters,
budget block, allocations), the programs whose grant history reads theirs (a frequency limit over
several programs), and the programs those read, are decided and budgeted again; every other
program's decisions and payouts are the baseline's own (they would be byte-identical: same rules,
same applications, same allocation, and budgets are per program). ``full=True`` recomputes
everything (the test that checks the shortcut uses it). When budget lines shared by several
programs land in ``dopomoga.budget``, the programs of a changed line join the recomputed set.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import multiprocessing
import pickle
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select

from dopomoga.budget import schema as t
from dopomoga.budget.commands import period_closed
from dopomoga.budget.ledger import BudgetLedger, NeedRow
from dopomoga.rules.batch import decide_batch
from dopomoga.rules.programs import Catalog
from dopomoga.whatif.scenario import Scenario
from schemas.events import AllocationSet, EntitlementCalculated

Progress = Callable[[str, int], None]  # (stage: baseline | scenario | budget, how many more done)
WHATIF_CLOSER = "dopomoga-whatif"


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """One application's outcome on one side (money in kopiyky)."""

    program_id: str
    period: str  # the month claimed
    eligible: bool
    entitled_kop: int
    status: str  # the ledger's final status ('' if the application never reached it)
    payout_kop: int
    coefficient: str
    payee: str  # masked id of the payee


@dataclasses.dataclass
class Side:
    label: str
    claims: dict[str, Claim]  # application id -> outcome
    months: list[NeedRow]
    errors: int
    decided: int


def load_allocations(path: Path | None) -> list[AllocationSet]:
    """Allocation commands from a JSON file (``{"allocations": [...]}`` as examples/allocations.json)."""
    if path is None:
        return []
    data = orjson.loads(path.read_bytes())
    items = data["allocations"] if isinstance(data, dict) else data
    return [AllocationSet.model_validate(item) for item in items]


def mask(identifier: str) -> str:
    """'1234567890' -> '12******90': enough to tell people apart in a report, not to find them."""
    if len(identifier) <= 4:
        return "*" * len(identifier)
    return identifier[:2] + "*" * (len(identifier) - 4) + identifier[-2:]


def recomputed_programs(scenario: Scenario, base: Catalog) -> frozenset[str]:
    """The programs whose decisions or payouts the scenario may change, and those their history reads."""
    touched = set(scenario.changed_programs) | {a.program for a in scenario.spec.allocations}
    reads: dict[str, set[str]] = {}
    for program in base.programs.values():
        spec = program.spec
        limits = [*spec.history.values(), *([spec.frequency.limit] if spec.frequency.limit else [])]
        reads[program.id] = {p for h in limits for p in (h.programs or [program.id])}
    changed = True
    while changed:  # whoever counts grants of an affected program is affected
        grown = {p for p, read in reads.items() if read & touched}
        changed = not grown <= touched
        touched |= grown
    needed = set(touched)
    frontier = list(touched)
    while frontier:  # ... and needs the grants of every program it counts
        for other in reads.get(frontier.pop(), ()):
            if other not in needed:
                needed.add(other)
                frontier.append(other)
    return frozenset(needed)


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as source:
        for line in source:
            yield line.rstrip("\n")


def decide_side(catalog: Catalog, applications: Path, out: Path, *, keep: Callable[[int], bool] | None = None,
                workers: int | None = None, progress: Progress | None = None, label: str = "decide") -> tuple[dict[int, str], int, int]:
    """Decide the applications (those ``keep(line_no)`` accepts) into ``out`` (decision JSON lines).

    Returns the program of each decided line, how many were decided and how many were rejected.
    """
    programs: dict[int, str] = {}
    decided = errors = 0
    numbered = ((n, line) for n, line in enumerate(_lines(applications), start=1))
    wanted = (line if keep is None or keep(n) else "" for n, line in numbered)  # blank lines are skipped
    with out.open("wb") as sink:
        for number, decision, _error in decide_batch(catalog, wanted, workers=workers):
            if decision is not None:
                sink.write(decision.json + b"\n")
                programs[number] = decision.program_id
                decided += 1
            else:
                errors += 1
                programs[number] = ""
            if progress is not None and (decided + errors) % 2000 == 0:
                progress(label, 2000)
    if progress is not None:
        progress(label, (decided + errors) % 2000)
    return programs, decided, errors


def run_ledger(catalog: Catalog, decisions: Path, allocations: list[AllocationSet], db: Path,
               counter: Any = None, batch: int = 500) -> tuple[dict[str, Claim], list[NeedRow]]:
    """Feed decisions to a fresh ledger, close every month of each budget year, read the outcomes."""
    gc.freeze()
    ledger = BudgetLedger(f"sqlite:///{db}", catalog)
    try:
        for allocation in allocations:
            if allocation.program_id in catalog.programs:
                ledger.apply(allocation)
        budgets: set[tuple[str, str | None, int]] = set()
        chunk: list[bytes] = []

        def flush() -> None:
            models = [EntitlementCalculated.model_validate_json(body) for body in chunk]
            for model in models:
                district = model.budget_key.split(":")[2] if model.budget_key.count(":") >= 2 else None
                budgets.add((model.program_id, district, int(model.period[:4])))
            ledger.submit_many(models, chunk)
            if counter is not None:
                with counter.get_lock():
                    counter.value += len(chunk)
            chunk.clear()

        with decisions.open("rb") as source:
            for line in source:
                chunk.append(line.rstrip(b"\n"))
                if len(chunk) >= batch:
                    flush()
        if chunk:
            flush()
        for program_id, district, year in sorted(budgets, key=lambda b: (b[0], b[1] or "", b[2])):
            for month in range(1, 13):
                period = f"{year}-{month:02d}"
                when = dt.datetime(year, month, 28, 23, 59, tzinfo=dt.UTC)
                ledger.apply(period_closed(program_id, period, district, closed_by=WHATIF_CLOSER, occurred_at=when))
        claims: dict[str, Claim] = {}
        with ledger.store.engine.connect() as conn:
            rows = conn.execute(select(
                t.claims.c.application_id, t.claims.c.program_id, t.claims.c.origin_period, t.claims.c.eligible,
                t.claims.c.claimed_kop, t.claims.c.status, t.claims.c.payout_kop, t.claims.c.coefficient,
                t.claims.c.context,
            ))
            for app_id, program_id, period, eligible, claimed, status, payout, coefficient, context in rows:
                payee = orjson.loads(context)["payee"]["id"]
                claims[app_id] = Claim(program_id, period, bool(eligible), claimed, status, payout, coefficient,
                                       mask(payee))
        years = sorted({year for _, _, year in budgets})
        months = [row for year in years for row in ledger.need_report(year)]
        return claims, months
    finally:
        ledger.close()


_LEDGER_JOB: tuple[Any, ...] | None = None


def _ledger_child(out: str) -> None:
    assert _LEDGER_JOB is not None
    result = run_ledger(*_LEDGER_JOB)
    Path(out).write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def run_whatif(base: Catalog, scenario: Scenario, applications: Path, allocations: list[AllocationSet], *,
               full: bool = False, workers: int | None = None, workdir: Path | None = None,
               progress: Progress | None = None) -> tuple[Side, Side, frozenset[str]]:
    """Baseline and scenario, decided and budgeted; returns both sides and the recomputed programs."""
    global _LEDGER_JOB
    recomputed = frozenset(base.programs) if full else recomputed_programs(scenario, base)
    with tempfile.TemporaryDirectory(prefix="dopomoga-whatif-", dir=workdir) as tmp:
        root = Path(tmp)
        base_programs, base_decided, base_errors = decide_side(
            base, applications, root / "baseline.jsonl", workers=workers, progress=progress, label="baseline")
        keep = (lambda n: base_programs.get(n, "") in recomputed or base_programs.get(n) == "")  # noqa: E731
        _, scen_decided, scen_errors = decide_side(
            scenario.catalog(), applications, root / "scenario.jsonl", keep=keep, workers=workers, progress=progress,
            label="scenario")
        # lines of programs not recomputed keep their baseline decisions
        scen_decided += sum(1 for p in base_programs.values() if p and p not in recomputed)
        scenario_allocations = scenario.allocations(allocations)
        context = multiprocessing.get_context("fork")
        results: dict[str, Any] = {}
        counters = {}
        children = []
        jobs = [("baseline", base, allocations), ("scenario", scenario.catalog(), scenario_allocations)]
        for label, catalog, commands in jobs:
            counters[label] = context.Value("q", 0)
            _LEDGER_JOB = (catalog, root / f"{label}.jsonl", commands, root / f"{label}.sqlite", counters[label])
            child = context.Process(target=_ledger_child, args=(str(root / f"{label}.pickle"),))
            child.start()
            children.append((label, child))
        _LEDGER_JOB = None
        done = 0
        while any(child.is_alive() for _, child in children):
            for _, child in children:
                child.join(0.2)
            now = sum(c.value for c in counters.values())
            if progress is not None and now > done:
                progress("budget", now - done)
            done = now
        for label, child in children:
            if child.exitcode != 0:
                raise RuntimeError(f"the {label} ledger failed (exit code {child.exitcode})")
            results[label] = pickle.loads((root / f"{label}.pickle").read_bytes())
    base_claims, base_months = results["baseline"]
    scen_claims, scen_months = results["scenario"]
    # Programs not recomputed: the scenario's outcomes are the baseline's (same rules, money, claims).
    merged = {k: v for k, v in base_claims.items() if v.program_id not in recomputed}
    merged.update(scen_claims)
    months = [r for r in base_months if r.program_id not in recomputed] + [
        r for r in scen_months if r.program_id in recomputed]
    baseline = Side("baseline", base_claims, base_months, base_errors, base_decided)
    scenario_side = Side(scenario.id, merged, months, scen_errors, scen_decided)
    return baseline, scenario_side, recomputed
