"""Run a what-if: the baseline and a scenario, each through the decisions and a budget ledger of its own.

Nothing here touches production state: each side decides with ``dopomoga.rules.batch`` (every
core, the traced path's exact decisions) into one decisions file per program in a temporary
directory, and feeds them to ledgers of its own (``BudgetLedger`` on SQLite files in that
directory): the allocation commands, every claim in input order, then every month of each budget
year closed in calendar order, as an operator would (the demo does the same). Budgets are per
program (and district), so each side's programs are split over as many ledgers as there are
workers, balanced by claims, and the ledgers of both sides run in one process pool. A claim still
deferred after December stays ``deferred`` (the ledger carries it into the next year's January).

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
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import orjson
from sqlalchemy import event, select

from dopomoga.budget import schema as t
from dopomoga.budget.commands import period_closed
from dopomoga.budget.ledger import BudgetLedger, NeedRow
from dopomoga.budget.lines import BudgetLines
from dopomoga.budget.memory import MemoryBudget
from dopomoga.rules.batch import decide_batch, default_workers
from dopomoga.rules.lean import lean_batch, text_lines
from dopomoga.rules.programs import Catalog
from dopomoga.whatif.scenario import Scenario
from schemas.events import AllocationSet, EntitlementCalculated

Progress = Callable[[str, int], None]  # (stage: baseline | scenario | budget, how many more done)
WHATIF_CLOSER = "dopomoga-whatif"


class Claim(NamedTuple):
    """One application's outcome on one side (money in kopiyky). A tuple: a million are built per side."""

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


def recomputed_programs(scenario: Scenario, base: Catalog, lines: BudgetLines | None = None) -> frozenset[str]:
    """The programs whose decisions or payouts the scenario may change, and those their history reads.

    A program on a budget line allocated whole shares its money with the line's other programs,
    so a change to one of them (or to the line's allocation) touches them all.
    """
    lines = lines if lines is not None else BudgetLines.load(base.root)
    touched = set(scenario.changed_programs) | {a.program for a in scenario.spec.allocations}
    touched = {m for p in touched for m in lines.members(lines.holder(p))} & set(base.programs)
    reads: dict[str, set[str]] = {}
    for program in base.programs.values():
        spec = program.spec
        limits = [*spec.history.values(), *([spec.frequency.limit] if spec.frequency.limit else [])]
        reads[program.id] = {p for h in limits for p in (h.programs or [program.id])}
    changed = True
    while changed:  # whoever counts grants of an affected program (or shares its line) is affected
        grown = {p for p, read in reads.items() if read & touched}
        grown |= {m for p in grown for m in lines.members(lines.holder(p))} & set(base.programs)
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


def decide_side(catalog: Catalog, applications: Path, folder: Path, *, keep: Callable[[int], bool] | None = None,
                workers: int | None = None, progress: Progress | None = None,
                label: str = "decide") -> tuple[dict[int, str], Counter[str], int]:
    """Decide the applications (those ``keep(line_no)`` accepts) into ``folder/<program>.jsonl``.

    Returns the program of each decided line ('' for a rejected line), the decisions per program
    and how many lines were rejected.
    """
    folder.mkdir(parents=True, exist_ok=True)
    programs: dict[int, str] = {}
    counts: Counter[str] = Counter()
    errors = 0
    numbered = ((n, line) for n, line in enumerate(text_lines(applications), start=1))
    wanted = (line if keep is None or keep(n) else "" for n, line in numbered)  # blank lines are skipped
    sinks: dict[str, BinaryIO] = {}
    try:
        for number, decision, _error in decide_batch(catalog, wanted, workers=workers):
            if decision is not None:
                sink = sinks.get(decision.program_id)
                if sink is None:
                    sink = sinks[decision.program_id] = (folder / f"{decision.program_id}.jsonl").open("wb")
                sink.write(decision.json + b"\n")
                programs[number] = decision.program_id
                counts[decision.program_id] += 1
            else:
                errors += 1
                programs[number] = ""
            if progress is not None and len(programs) % 2000 == 0:
                progress(label, 2000)
    finally:
        for sink in sinks.values():
            sink.close()
    if progress is not None:
        progress(label, len(programs) % 2000)
    return programs, counts, errors


def shards(counts: Mapping[str, int], k: int) -> list[list[str]]:
    """Programs in ``k`` groups of about equal claims (largest first into the lightest group)."""
    bins: list[tuple[int, list[str]]] = [(0, []) for _ in range(max(k, 1))]
    for program, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        index = min(range(len(bins)), key=lambda i: (bins[i][0], i))
        bins[index] = (bins[index][0] + count, [*bins[index][1], program])
    return [sorted(group) for _, group in bins if group]


def run_ledger(catalog: Catalog, decisions: list[Path], allocations: list[AllocationSet], db: Path,
               counter: Any = None, batch: int = 2000) -> tuple[dict[str, Claim], list[NeedRow]]:
    """Feed decisions to a fresh ledger, close every month of each budget year, read the outcomes.

    Budgets are per program (and district), so programs may be split over several ledgers; within
    a program the claims keep their input order.
    """
    gc.freeze()
    ledger = BudgetLedger(f"sqlite:///{db}", catalog)
    _without_fsync(ledger.store.engine)
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

        for path in decisions:
            with path.open("rb") as source:
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


def _without_fsync(engine: Any) -> None:
    """A what-if ledger is thrown away: its commits need not wait for the disk (``synchronous=OFF``)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:  # after the store's own pragmas
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()

    engine.dispose()  # connections opened by the migrations go; new ones get the pragma


_JOBS: dict[str, tuple[Catalog, list[AllocationSet], Path, BudgetLines]] = {}  # side -> what its ledgers need (fork)
_COUNTER: Any = None


def _ledger_job(job: tuple[str, int, list[str], list[str]]) -> tuple[dict[str, Claim], list[NeedRow]]:
    label, index, holders, programs = job
    catalog, allocations, folder, lines = _JOBS[label]
    wanted = set(holders)
    db = folder / f"ledger-{index}.sqlite"
    try:
        return run_ledger(catalog, [folder / f"{p}.jsonl" for p in programs],
                          [a for a in allocations if lines.holder(a.program_id) in wanted], db, _COUNTER)
    finally:
        db.unlink(missing_ok=True)


def run_whatif(base: Catalog, scenario: Scenario, applications: Path, allocations: list[AllocationSet], *,
               full: bool = False, workers: int | None = None, workdir: Path | None = None,
               progress: Progress | None = None, budget: str = "memory") -> tuple[Side, Side, frozenset[str]]:
    """Baseline and scenario, decided and budgeted; returns both sides and the recomputed programs.

    ``budget="memory"`` (the default): the lean decisions (``dopomoga.rules.lean``) of both sides in
    one pass over the applications, into in-memory budgets (``dopomoga.budget.memory``).
    ``budget="sql"``: the traced batch path into temporary SQLite ledgers (the reference the
    in-memory budget is tested against; several times slower).
    """
    workers = workers or default_workers()
    lines = BudgetLines.load(base.root)
    recomputed = frozenset(base.programs) if full else recomputed_programs(scenario, base, lines)
    if budget == "memory":
        return _run_memory(base, scenario, applications, allocations, recomputed, lines, full=full,
                           workers=workers, progress=progress)
    if budget != "sql":
        raise ValueError(f"budget must be 'memory' or 'sql', not {budget!r}")
    return _run_sql(base, scenario, applications, allocations, recomputed, lines, workers=workers,
                    workdir=workdir, progress=progress)


def _memory_side(budget: MemoryBudget) -> tuple[dict[str, Claim], list[NeedRow]]:
    """A budget's claims and month rows (those of the budget keys it has claims of, as the ledgers)."""
    budget.close_year()
    holders = {budget.policy.holder(p) for p, _, _ in budget.budgets}
    months = [r for year in budget.years() for r in budget.need_report(year) if r.program_id in holders]
    new = tuple.__new__  # Claim(...) without its Python-level __new__ (a million per side)
    claims = {c.application_id: new(Claim, (c.program_id, c.origin_period, c.eligible, c.claimed_kop, c.status,
                                            c.payout_kop, c.coefficient, mask(c.context)))
              for c in budget.claims()}
    return claims, months


def _run_memory(base: Catalog, scenario: Scenario, applications: Path, allocations: list[AllocationSet],
                recomputed: frozenset[str], lines: BudgetLines, *, full: bool, workers: int,
                progress: Progress | None) -> tuple[Side, Side, frozenset[str]]:
    scen_catalog = scenario.catalog()
    budgets = (MemoryBudget(base, lines), MemoryBudget(scen_catalog, lines))
    for budget, commands in zip(budgets, (allocations, scenario.allocations(allocations)), strict=True):
        for allocation in commands:
            if allocation.program_id in budget.catalog.programs:
                budget.apply(allocation)
    counts: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
    errors = [0, 0]
    done = [0, 0]
    collecting = gc.isenabled()
    gc.disable()  # a million claims and grants, no cycles among them: the collector's scans would cost ~20 %
    try:
        redone: list[str] = []
        _feed(budgets, counts, errors, done, lean_batch([base, scen_catalog], Path(applications), workers=workers,
                                                        recompute=None if full else recomputed), progress, redone)
        if progress is not None:
            progress("baseline", done[0] % 2000)
            progress("scenario", done[1])
        base_claims, base_months = _memory_side(budgets[0])
        if progress is not None:
            progress("budget", len(base_claims))
        scen_claims, scen_months = _memory_side(budgets[1])
        if progress is not None:
            progress("budget", len(scen_claims))
    finally:
        # The objects made meanwhile (a million claims, grants, outcomes: no cycles among them) would
        # otherwise all sit in the youngest generation, and the collector's first passes after this
        # would walk every one of them two or three times (seconds, in the comparison): out of its
        # scans for good (they are still freed when the last reference goes).
        gc.freeze()
        if collecting:
            gc.enable()
    return _sides(scenario, recomputed, lines, (base_claims, base_months, errors[0], counts[0]),
                  (scen_claims, scen_months, errors[1], counts[1]), redone)


def _feed(budgets: tuple[MemoryBudget, MemoryBudget], counts: tuple[Counter[str], Counter[str]], errors: list[int],
          done: list[int], decided: Iterator[tuple[int, list[Any]]], progress: Progress | None,
          redone: list[str] | None = None) -> None:
    """Each side's lean decisions into its budget, in input order. ``redone``: gets the application id of
    each baseline decision the scenario decided again (every claim of a recomputed program is among them)."""
    for _, sides in decided:
        if redone is not None and sides[1] is not None and sides[0][1] is not None:
            redone.append(sides[0][1].application_id)
        for index, outcome in enumerate(sides):
            if outcome is None:
                continue
            done[index] += 1
            lean = outcome[1]
            if lean is None:
                errors[index] += 1
                continue
            budgets[index].submit(lean)
            counts[index][lean.program_id] += 1
        if progress is not None and done[0] % 2000 == 0:
            progress("baseline", 2000)
            progress("scenario", done[1])
            done[1] = 0


def _sides(scenario: Scenario, recomputed: frozenset[str], lines: BudgetLines,
           base: tuple[dict[str, Claim], list[NeedRow], int, Counter[str]],
           scen: tuple[dict[str, Claim], list[NeedRow], int, Counter[str]],
           redone: list[str] | None = None) -> tuple[Side, Side, frozenset[str]]:
    """Both sides; programs not recomputed keep the baseline's outcomes on the scenario's side.
    ``redone``: application ids among which are all the baseline's claims of recomputed programs
    (then the baseline's claims are copied whole and only those looked at)."""
    base_claims, base_months, base_errors, base_counts = base
    scen_claims, scen_months, scen_errors, scen_counts = scen
    base_months = sorted(base_months, key=_month_key)
    # Programs not recomputed: the scenario's outcomes are the baseline's (same rules, money, claims).
    if redone is None:
        merged = {k: v for k, v in base_claims.items() if v.program_id not in recomputed}
    else:
        merged = dict(base_claims)
        for app_id in redone:
            claim = merged.get(app_id)
            if claim is not None and claim.program_id in recomputed:
                del merged[app_id]
    merged.update(scen_claims)
    keys = {lines.holder(p) for p in recomputed}  # a month row is a budget key's: a program or a line holder
    months = sorted([r for r in base_months if r.program_id not in keys]
                    + [r for r in scen_months if r.program_id in keys], key=_month_key)
    baseline = Side("baseline", base_claims, base_months, base_errors, sum(base_counts.values()))
    scen_decided = sum(scen_counts.values()) + sum(c for p, c in base_counts.items() if p not in recomputed)
    scenario_side = Side(scenario.id, merged, months, scen_errors, scen_decided)
    return baseline, scenario_side, recomputed


def _run_sql(base: Catalog, scenario: Scenario, applications: Path, allocations: list[AllocationSet],
             recomputed: frozenset[str], lines: BudgetLines, *, workers: int, workdir: Path | None,
             progress: Progress | None) -> tuple[Side, Side, frozenset[str]]:
    global _COUNTER
    with tempfile.TemporaryDirectory(prefix="dopomoga-whatif-", dir=workdir) as tmp:
        root = Path(tmp)
        base_programs, base_counts, base_errors = decide_side(
            base, applications, root / "baseline", workers=workers, progress=progress, label="baseline")
        keep = (lambda n: base_programs.get(n, "") in recomputed or base_programs.get(n) == "")  # noqa: E731
        _, scen_counts, scen_errors = decide_side(
            scenario.catalog(), applications, root / "scenario", keep=keep, workers=workers, progress=progress,
            label="scenario")
        _JOBS["baseline"] = (base, allocations, root / "baseline", lines)
        _JOBS["scenario"] = (scenario.catalog(), scenario.allocations(allocations), root / "scenario", lines)
        # Ledger jobs, heaviest first: each side's budget keys (a program, or a pooled line's holder)
        # in `workers` groups of about equal claims; a pooled line's programs stay in one ledger.
        jobs = []
        for label, counts in (("baseline", base_counts), ("scenario", scen_counts)):
            by_key: Counter[str] = Counter()
            for program, count in counts.items():
                by_key[lines.holder(program)] += count
            for i, group in enumerate(shards(by_key, workers)):
                keys = set(group)
                jobs.append((label, i, group, sorted(p for p in counts if lines.holder(p) in keys)))
        weight = {"baseline": base_counts, "scenario": scen_counts}
        jobs.sort(key=lambda job: -sum(weight[job[0]][p] for p in job[3]))
        context = multiprocessing.get_context("fork")
        _COUNTER = context.Value("q", 0)
        results: dict[str, list[tuple[dict[str, Claim], list[NeedRow]]]] = {"baseline": [], "scenario": []}
        try:
            with context.Pool(min(workers, max(len(jobs), 1))) as pool:
                pending = [(job[0], pool.apply_async(_ledger_job, (job,))) for job in jobs]
                done = 0
                while pending:
                    label, result = pending[0]
                    result.wait(0.2)
                    now = _COUNTER.value
                    if progress is not None and now > done:
                        progress("budget", now - done)
                    done = now
                    if result.ready():
                        results[label].append(result.get())
                        pending.pop(0)
        finally:
            _JOBS.clear()
            _COUNTER = None
    base_claims = {k: v for claims, _ in results["baseline"] for k, v in claims.items()}
    base_months = [r for _, months in results["baseline"] for r in months]
    scen_claims = {k: v for claims, _ in results["scenario"] for k, v in claims.items()}
    scen_months = [r for _, months in results["scenario"] for r in months]
    return _sides(scenario, recomputed, lines, (base_claims, base_months, base_errors, base_counts),
                  (scen_claims, scen_months, scen_errors, scen_counts))


def _month_key(row: NeedRow) -> tuple[str, str, str]:
    return row.program_id, row.district or "", row.period
