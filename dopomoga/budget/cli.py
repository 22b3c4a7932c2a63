"""`dopomoga budget ...`: the department's need report and a month's budget status."""

from __future__ import annotations

import dataclasses
import json
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
    year: Annotated[int, typer.Option("--year", help="budget year")],
    program: Annotated[str | None, typer.Option("--program", help="one program id")] = None,
    db: DbOption = DEFAULT_DB,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """«Заявка на фінансування»: need vs allocation vs paid per program and month."""
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
