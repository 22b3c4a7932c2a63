"""`dopomoga whatif SCENARIO.yaml --applications FILE.jsonl`: a scenario against the baseline, budgets included.

Read-only against production: decisions and both ledgers live in a temporary directory. Prints
rich tables (programs, the months whose money or coefficient changed, the largest per-person
changes with masked ids) and writes CSV and XLSX to ``--out``. No chart: no plotting library is
a dependency (the tables and the XLSX carry the same numbers).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dopomoga.money import format_uah

if TYPE_CHECKING:
    from dopomoga.whatif.report import Comparison

console = Console()
err = Console(stderr=True)
DEFAULT_ALLOCATIONS = Path("examples/allocations.json")


def _signed(kop: int) -> str:
    return ("+" if kop > 0 else "") + format_uah(kop) if kop else "0"


def show(comparison: Comparison, title: str, recomputed: int) -> None:
    programs = Table(title=f"{title}: виплати за програмами (базовий → сценарій)")
    for column in ("програма", "отримувачі", "+/-", "до сплати, базовий", "до сплати, сценарій", "різниця",
                   "коеф. змінено"):
        programs.add_column(column, justify="left" if column == "програма" else "right")
    for row in [*(r for r in comparison.programs if r.payable_change_kop or r.gained or r.lost
                  or r.coefficient_changes or r.entitled_baseline_kop != r.entitled_scenario_kop),
                comparison.totals]:
        programs.add_row(row.program_id, f"{row.recipients_baseline} → {row.recipients_scenario}",
                         f"+{row.gained}/-{row.lost}", format_uah(row.payable_baseline_kop),
                         format_uah(row.payable_scenario_kop), _signed(row.payable_change_kop),
                         str(row.coefficient_changes))
    console.print(programs)
    changed = [m for m in comparison.months if m.paid_change_kop or m.coefficient_baseline != m.coefficient_scenario
               or m.allocation_baseline_kop != m.allocation_scenario_kop or m.need_baseline_kop != m.need_scenario_kop]
    if changed:
        months = Table(title="Місяці, де змінилися потреба, асигнування, виплати або коефіцієнт")
        for column in ("програма", "район", "місяць", "потреба", "асигновано", "сплачено", "різниця", "коефіцієнт"):
            months.add_column(column, justify="left" if column in ("програма", "район", "місяць") else "right")
        for m in changed[:60]:
            months.add_row(
                m.program_id, m.district or "—", m.period,
                f"{format_uah(m.need_baseline_kop)} → {format_uah(m.need_scenario_kop)}",
                f"{format_uah(m.allocation_baseline_kop)} → {format_uah(m.allocation_scenario_kop)}",
                f"{format_uah(m.paid_baseline_kop)} → {format_uah(m.paid_scenario_kop)}",
                _signed(m.paid_change_kop), f"{m.coefficient_baseline} → {m.coefficient_scenario}")
        console.print(months)
        if len(changed) > 60:
            console.print(f"… and {len(changed) - 60} more months (months.csv)")
    if comparison.people:
        people = Table(title=f"Найбільші зміни для осіб (ідентифікатори замасковано), перші {len(comparison.people)}")
        for column in ("особа", "програма", "місяць", "статус", "базовий", "сценарій", "різниця"):
            people.add_column(column, justify="right" if column in ("базовий", "сценарій", "різниця") else "left")
        for p in comparison.people:
            people.add_row(p.payee, p.program_id, p.period, f"{p.status_baseline} → {p.status_scenario}",
                           format_uah(p.payout_baseline_kop), format_uah(p.payout_scenario_kop), _signed(p.change_kop))
        console.print(people)
    console.print(
        f"рішень: {comparison.decided_baseline} базових, {comparison.decided_scenario} за сценарієм "
        f"(відхилених рядків {comparison.rejected_baseline} / {comparison.rejected_scenario}); "
        f"перераховано програм: {recomputed}")


def whatif(
    scenario: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="scenario file (docs/whatif.md)")],
    applications: Annotated[Path | None, typer.Option("--applications", exists=True, dir_okay=False,
                                                      help="applications, one JSON event per line")] = None,
    from_ledger: Annotated[int | None, typer.Option("--from-ledger", help="replay this budget year of a ledger "
                                                    "(its claims' applications and its allocations; read only)")]
    = None,
    db: Annotated[str | None, typer.Option("--db", help="the ledger for --from-ledger (default: $DOPOMOGA_DB, "
                                           "else the budget service's)")] = None,
    allocations: Annotated[Path | None, typer.Option(help="allocation commands (JSON, as examples/allocations.json); "
                                                     "ignored with --from-ledger")] = DEFAULT_ALLOCATIONS,
    out: Annotated[Path | None, typer.Option(help="where CSV and XLSX go (default var/whatif/<scenario id>)")] = None,
    top: Annotated[int, typer.Option(help="how many per-person changes to list")] = 20,
    workers: Annotated[int | None, typer.Option(help="processes deciding (default: every core)")] = None,
    full: Annotated[bool, typer.Option(help="recompute every program, not only those the scenario can change")]
    = False,
    xlsx: Annotated[bool, typer.Option(help="also write whatif.xlsx")] = True,
    sql_ledgers: Annotated[bool, typer.Option("--sql-ledgers", help="budget in temporary SQLite ledgers on the "
                                              "traced path (the reference; several times slower) instead of "
                                              "in memory on the lean path")] = False,
) -> None:
    """What if: a scenario (parameters, program versions, allocations, budget policy) against the baseline,
    decisions and budget included, in temporary ledgers (production state is never touched)."""
    # imported here: `dopomoga --help` should not load SQLAlchemy and the ledger
    from dopomoga.rules.programs import Catalog, ProgramError
    from dopomoga.whatif.run import load_allocations
    from dopomoga.whatif.scenario import ScenarioError, load_scenario

    try:
        base = Catalog.load()
    except ProgramError as exc:
        err.print(f"[red]Program files do not load:[/red] {exc}")
        raise typer.Exit(2) from None
    if (applications is None) == (from_ledger is None):
        err.print("give exactly one of --applications FILE, --from-ledger YEAR")
        raise typer.Exit(2)
    try:
        loaded = load_scenario(scenario, base)
    except ScenarioError as exc:
        err.print(f"[red]scenario:[/red] {exc}")
        raise typer.Exit(2) from None
    with tempfile.TemporaryDirectory(prefix="dopomoga-whatif-input-") as tmp:
        if from_ledger is not None:
            from dopomoga.budget.location import ledger_url
            from dopomoga.whatif.sources import from_ledger as read_ledger

            applications, commands = read_ledger(db or ledger_url(), from_ledger, Path(tmp))
        else:
            commands = load_allocations(allocations if allocations and allocations.exists() else None)
        assert applications is not None
        _run(base, loaded, applications, commands, out=out, top=top, workers=workers, full=full, xlsx=xlsx,
             budget="sql" if sql_ledgers else "memory")


def _run(base, loaded, applications: Path, commands, *, out, top, workers, full, xlsx, budget="memory") -> None:
    from dopomoga.whatif.report import compare, write_csv, write_xlsx
    from dopomoga.whatif.run import run_whatif
    from dopomoga.whatif.scenario import ScenarioError

    try:
        started = time.perf_counter()
        lines = sum(1 for _ in applications.open("rb"))
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err) as progress:
            tasks = {
                "baseline": progress.add_task("рішення, базовий", total=lines),
                "scenario": progress.add_task("рішення, сценарій", total=None),
                "budget": progress.add_task("бюджет (два реєстри)", total=None),
            }

            def advance(stage: str, count: int) -> None:
                progress.advance(tasks[stage], count)

            baseline, side, recomputed = run_whatif(base, loaded, applications, commands, full=full,
                                                    workers=workers, progress=advance, budget=budget)
    except ScenarioError as exc:
        err.print(f"[red]scenario:[/red] {exc}")
        raise typer.Exit(2) from None
    comparison = compare(baseline, side, top)
    show(comparison, f"{loaded.id} — {loaded.spec.title_uk}", len(recomputed))
    target = out or Path("var/whatif") / loaded.id
    written = write_csv(comparison, target)
    if xlsx:
        try:
            written.append(write_xlsx(comparison, target / "whatif.xlsx"))
        except ImportError:
            err.print("[yellow]no XLSX: openpyxl is not installed (pip install openpyxl)[/yellow]")
    console.print(f"{time.perf_counter() - started:.1f} s; written: {', '.join(str(p) for p in written)}; "
                  "charts: none (no plotting library installed; the XLSX has the same tables)")
