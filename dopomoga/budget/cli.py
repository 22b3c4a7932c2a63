"""`dopomoga budget ...`: the department's reports, a month's budget status, funding requests, seed replay.

- ``report [need|execution|funding|payables]``: the need report (default, as before), the
  programme execution report, the funding requests, the payables; ``--out FILE.xlsx|.csv``
  writes the department's document (``dopomoga.budget.documents``);
- ``status``: one month of one budget key;
- ``funding request|approve|receive``: the monthly «заявка на фінансування»;
- ``replay TABLE.csv``: a seed table through the rules and a temporary ledger.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dopomoga.money import kop_to_decimal_str

app = typer.Typer(no_args_is_help=True, help="Budget ledger: allocations, status, need report.")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="ledger database URL (default: $DOPOMOGA_DB, else the budget service's ledger)"),
]
DEFAULT_DB = None


def _ledger(db: str | None):  # imported lazily: the ledger pulls in SQLAlchemy, alembic and the catalog
    from dopomoga.budget.ledger import BudgetLedger
    from dopomoga.budget.location import ledger_url

    return BudgetLedger(db or ledger_url())


@app.command()
def report(
    kind: Annotated[str, typer.Argument(help="need (default) | execution | funding | payables | amendments")] = "need",
    year: Annotated[int | None, typer.Option("--year", help="budget year")] = None,
    program: Annotated[str | None, typer.Option("--program", help="one program id")] = None,
    city: Annotated[str | None, typer.Option("--city", help="execution report: the city (programs/<city>)")] = None,
    period: Annotated[str | None, typer.Option("--period", help="execution report: 2023, 2023-H1, 2023-Q2, 2023-04")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the document: FILE.xlsx or FILE.csv")] = None,
    db: DbOption = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """«Заявка на фінансування» (need vs allocation vs paid), or the department's documents."""
    if kind != "need":
        _document(kind, _ledger(db), year=year, city=city, period=period, out=out)
        return
    if year is None:
        raise typer.BadParameter("--year is required for the need report")
    rows = _ledger(db).need_report(year, program)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(dataclasses.asdict(row), ensure_ascii=False, sort_keys=True))
        return
    table = Table(title=f"Потреба та асигнування, {year} р. (грн)")
    for column in (
        "програма",
        "район",
        "місяць",
        "заявок",
        "потреба",
        "асигновано",
        "сплачено",
        "резерв",
        "дефіцит",
        "коефіцієнт",
    ):
        table.add_column(column, justify="left" if column in ("програма", "район", "місяць") else "right")
    for row in rows:
        if not (row.need_kop or row.allocation_kop or row.paid_kop):
            continue
        table.add_row(
            row.program_id,
            row.district or "—",
            row.period + (" ✓" if row.closed else ""),
            str(row.claims),
            kop_to_decimal_str(row.need_kop),
            kop_to_decimal_str(row.allocation_kop),
            kop_to_decimal_str(row.paid_kop),
            kop_to_decimal_str(row.reserved_kop),
            kop_to_decimal_str(row.shortfall_kop),
            row.coefficient,
        )
    Console().print(table)


def _document(kind: str, ledger, *, year: int | None, city: str | None, period: str | None, out: Path | None) -> None:
    from dopomoga import explain_uk as uk
    from dopomoga.budget import documents as d

    if kind == "execution":
        if city is None or period is None:
            raise typer.BadParameter("the execution report needs --city and --period")
        found = ledger.execution_report(city, period)
        title, columns, rows, thousands = d.execution_title(found), d.EXECUTION_COLUMNS, d.execution_rows(found), True
    elif kind in ("funding", "payables", "amendments"):
        if year is None:
            raise typer.BadParameter(f"the {kind} report needs --year")
        if kind == "funding":
            title, columns, rows = uk.funding_title_uk(year), d.FUNDING_COLUMNS, d.funding_rows(ledger.funding.report(year))
        elif kind == "amendments":
            title, columns, rows = uk.amendments_title_uk(year), d.AMENDMENT_COLUMNS, d.amendment_rows(ledger.amendments(year))
        else:
            title, columns, rows = uk.payables_title_uk(year), d.PAYABLE_COLUMNS, d.payable_rows(ledger.payables(year))
        thousands = False
    else:
        raise typer.BadParameter(f"unknown report {kind!r}: need, execution, funding, payables or amendments")
    if out is not None:
        d.write(out, title, columns, rows, thousands_format=thousands)
        typer.echo(f"{out}: {len(rows)} rows")
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(d._csv_value(v) for v in row))
    Console().print(table)


funding = typer.Typer(no_args_is_help=True, help="«Заявка на фінансування»: request → approve → receive.")
app.add_typer(funding, name="funding")
OnOption = Annotated[str, typer.Option("--on", help="date of the step, YYYY-MM-DD")]


def _show(request) -> None:
    typer.echo(json.dumps(dataclasses.asdict(request), ensure_ascii=False, sort_keys=True))


@funding.command("request")
def funding_request(
    program: Annotated[str, typer.Argument(help="program id or budget line holder id")],
    period: Annotated[str, typer.Argument(help="month, YYYY-MM")],
    on: OnOption,
    amount: Annotated[int | None, typer.Option("--amount-kop", help="default: the month's need in the ledger")] = None,
    document: Annotated[str | None, typer.Option("--document")] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Request the month's money for a budget line / measure."""
    _show(_ledger(db).funding.request(program, period, dt.date.fromisoformat(on), amount, document))


@funding.command("approve")
def funding_approve(
    program: Annotated[str, typer.Argument()], period: Annotated[str, typer.Argument()], on: OnOption,
    amount: Annotated[int, typer.Option("--amount-kop")], document: Annotated[str, typer.Option("--document")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Record the approved amount and its document."""
    _show(_ledger(db).funding.approve(program, period, amount, dt.date.fromisoformat(on), document))


@funding.command("receive")
def funding_receive(
    program: Annotated[str, typer.Argument()], period: Annotated[str, typer.Argument()], on: OnOption,
    amount: Annotated[int, typer.Option("--amount-kop")], db: DbOption = DEFAULT_DB,
) -> None:
    """Record the amount received on the department's account."""
    _show(_ledger(db).funding.receive(program, period, amount, dt.date.fromisoformat(on)))


@app.command()
def status(
    program: Annotated[str, typer.Argument(help="program id")],
    period: Annotated[str, typer.Argument(help="month, YYYY-MM")],
    district: Annotated[str | None, typer.Option("--district")] = None,
    db: DbOption = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One month of one program: allocation, available (year to date), reserved, paid, need."""
    result = _ledger(db).status(program, period, district)
    data = dataclasses.asdict(result)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, sort_keys=True))
        return
    table = Table(title=f"{program} — {period}" + (f" — {district}" if district else ""))
    table.add_column("показник")
    table.add_column("значення", justify="right")
    for key, value in data.items():
        if key.endswith("_kop"):
            value = kop_to_decimal_str(value)
        table.add_row(key, str(value))
    Console().print(table)


@app.command("replay")
def replay_command(
    table: Annotated[Path, typer.Argument(help="a seed table: 000-zhytomyr-measures.csv, 002-figures.csv, 004-budget.csv")],
    year: Annotated[int | None, typer.Option("--year", help="only the rows of this year")] = None,
    db: Annotated[str, typer.Option("--db", help="keep the replay's ledger here (default: in memory)")] = "sqlite://",
    out: Annotated[Path | None, typer.Option("--out", help="000 only: write the H1 2023 execution report (.xlsx/.csv)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Replay a seed table's rows through the rules and a temporary ledger; non-zero exit on a mismatch."""
    from dopomoga.budget.replay import replay_table

    raise typer.Exit(replay_table(table, year=year, db=db, out=out, as_json=as_json))
