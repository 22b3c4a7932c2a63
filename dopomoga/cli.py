"""The core's command line: decide, explain, programs, and the ``budget`` group.

Runs alone (``python -m dopomoga.cli``) and never imports the services; the full ``dopomoga``
command (these plus ``up``, ``topics``, ``treasury``, ``emulate``) is assembled in
``services/cli.py``, the composition root."""

from __future__ import annotations

import datetime as dt
import gc
import json
from collections import Counter
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dopomoga.budget.cli import app as budget_app
from dopomoga.budget.cli import replay_command
from dopomoga.errors import ApplicationError
from dopomoga.money import format_uah
from dopomoga.rules.batch import decide_batch
from dopomoga.rules.engine import Engine
from dopomoga.rules.intake import parse_application
from dopomoga.rules.programs import Catalog, ProgramError
from dopomoga.whatif.cli import whatif
from schemas.events import EntitlementCalculated

app = typer.Typer(no_args_is_help=True, help="Dopomoga: municipal social payouts, decided exactly and explained.")
app.add_typer(budget_app, name="budget", help="Budget ledger: allocations, status, need report.")
app.command("whatif")(whatif)  # a scenario against the baseline, budgets included (docs/whatif.md)
app.command("replay")(replay_command)  # a seed table through the rules and a ledger (docs/budget.md)

console = Console()
err = Console(stderr=True)
DEFAULT_DECISIONS = Path("var/decisions.jsonl")


def _catalog() -> Catalog:
    try:
        return Catalog.load()
    except ProgramError as exc:
        err.print(f"[red]Program files do not load:[/red] {exc}")
        raise typer.Exit(2) from None


def decide_lines(engine: Engine, lines: list[str], as_of: dt.date | None = None):
    """Decide each JSONL line in order; yield (line_no, encoded decision | None, error | None).

    A line that is not a valid application, or that the rules cannot decide, yields
    a clear error instead of stopping the batch.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            application = parse_application(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(line)"
            yield number, None, {"line": number, "reason_code": "invalid_event", "message": f"{where}: {first['msg']}"}
            continue
        try:
            yield number, engine.decide_encoded(application, as_of=as_of), None
        except ApplicationError as exc:
            yield number, None, {
                "line": number,
                "application_id": application.application_id,
                "reason_code": exc.reason_code,
                "message": str(exc),
            }


@app.command()
def decide(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="applications, one JSON event per line"),
    out: Path = typer.Option(DEFAULT_DECISIONS, help="where to write decisions (JSONL)"),
    errors: Path | None = typer.Option(None, help="where to write per-line errors (default: OUT.errors.jsonl)"),
    as_of: str | None = typer.Option(None, help="decide with the rules in force on this date (YYYY-MM-DD)"),
    workers: int | None = typer.Option(None, help="processes deciding (default: every core; the same bytes as one)"),
) -> None:
    """Decide a batch of applications offline (no budget limit) and write decisions with explanations."""
    catalog = _catalog()
    lines = file.read_text(encoding="utf-8").splitlines()
    gc.freeze()  # rules and input live for the whole batch: keep them out of garbage-collector scans
    when = dt.date.fromisoformat(as_of) if as_of else None
    out.parent.mkdir(parents=True, exist_ok=True)
    errors = errors or out.with_suffix(".errors.jsonl")
    outcomes: Counter[tuple[str, str]] = Counter()
    failures: list[dict] = []
    with (
        out.open("wb") as sink,
        Progress(
            TextColumn("deciding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
        ) as progress,
    ):
        task = progress.add_task("decide", total=len(lines))
        for _, decision, error in decide_batch(catalog, lines, as_of=when, workers=workers):
            progress.advance(task)
            if decision is not None:
                sink.write(decision.json + b"\n")
                outcomes[(decision.program_id, "eligible" if decision.eligible else "refused")] += 1
            else:
                failures.append(error)
    errors.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in failures), encoding="utf-8")
    table = Table(title=f"Decisions → {out}")
    table.add_column("program")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for (program, outcome), count in sorted(outcomes.items()):
        table.add_row(program, outcome, str(count))
    console.print(table)
    for failure in failures:
        err.print(f"[yellow]line {failure['line']}[/yellow] {failure['reason_code']}: {failure['message']}")
    console.print(f"{sum(outcomes.values())} decided, {len(failures)} rejected (see {errors})")


@app.command()
def explain(
    application_id: str = typer.Argument(..., help="application id or decision id"),
    decisions: Path = typer.Option(DEFAULT_DECISIONS, exists=True, help="decisions JSONL written by `decide`"),
) -> None:
    """Explain one decision: conditions, parameters with their dates and laws, the calculation."""
    found: EntitlementCalculated | None = None
    with decisions.open(encoding="utf-8") as source:
        for line in source:
            if application_id in line:
                candidate = EntitlementCalculated.model_validate_json(line)
                if application_id in (candidate.application_id, candidate.decision_id):
                    found = candidate
                    break
    if found is None:
        err.print(f"no decision for {application_id!r} in {decisions}")
        raise typer.Exit(1)
    verdict = f"[green]{format_uah(found.amount_kop)}[/green]" if found.eligible else "[red]відмовлено[/red]"
    console.print(f"[bold]{found.application_id}[/bold] · {found.program_id} · {found.period} · {verdict}")
    console.print(
        f"правила: версія {found.rules.version}, чинна з {found.rules.effective_from}, хеш {found.rules.rules_hash}"
    )
    conditions = Table(title="Умови")
    for column in ("", "умова", "значення", "підстава"):
        conditions.add_column(column)
    for condition in found.conditions:
        values = ", ".join(f"{k}={v}" for k, v in condition.inputs.items())
        mark = "[green]✓[/green]" if condition.passed else "[red]✗[/red]"
        conditions.add_row(mark, condition.expression, values, condition.clause)
    console.print(conditions)
    if found.parameters:
        parameters = Table(title="Параметри")
        for column in ("назва", "значення", "чинне з", "джерело"):
            parameters.add_column(column)
        for parameter in found.parameters:
            shown = format_uah(parameter.value) if parameter.unit == "kop" else f"{parameter.value} {parameter.unit}"
            parameters.add_row(parameter.name, shown, parameter.effective_from.isoformat(), parameter.reference)
        console.print(parameters)
    for step in found.trace:
        console.print(f"[cyan]{step.step}[/cyan] {step.expression} → {step.result}  ({step.clause})")
    console.print(found.explanation_uk)


@app.command()
def programs(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """List every program with its legal basis, policy and rule versions."""
    catalog = _catalog()
    rows = [
        {
            "id": p.id,
            "title_uk": p.spec.title.uk,
            "title_en": p.spec.title.en,
            "legal_basis": f"{p.spec.legal_basis.act_uk}, {p.spec.legal_basis.clause_uk} (seed {p.spec.legal_basis.seed})",
            "frequency": p.spec.frequency.kind,
            "budget_policy": p.spec.budget.policy,
            "versions": [v.effective_from.isoformat() for v in p.versions],
            "rules_hash": p.rules_hash,
        }
        for p in sorted(catalog.programs.values(), key=lambda p: p.id)
    ]
    if as_json:
        console.print_json(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title=f"{len(rows)} programs")
    for column in ("id", "title", "legal basis", "frequency", "policy", "versions"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["id"], row["title_en"], row["legal_basis"], row["frequency"], row["budget_policy"], ", ".join(row["versions"])
        )
    console.print(table)


if __name__ == "__main__":
    app()
