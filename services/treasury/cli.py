"""`dopomoga treasury ...`: write payment registers, reconcile them, follow payout decisions."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dopomoga.budget.location import open_ledger
from dopomoga.money import format_uah
from services.platform.topology import SERVICE_BY_NAME

app = typer.Typer(no_args_is_help=True, help="Payment registers (pain.001, bank/post/MY TRANSFER CSV) and reconciliation.")
console = Console()
err = Console(stderr=True)
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _ledger(db: str | None):
    from services.platform.config import ledger_app_id

    try:
        return open_ledger(db, app_id=ledger_app_id())
    except ImportError:
        err.print("[red]the budget ledger (dopomoga.budget.ledger) is not available in this installation[/red]")
        raise typer.Exit(2) from None


@app.command("export")
def export_cmd(
    program: str = typer.Option(..., "--program", help="program id, e.g. zhytomyr.centenarians"),
    period: str = typer.Option(..., "--period", help="month YYYY-MM"),
    db: str | None = typer.Option(None, "--db", help="ledger URL (default: $DOPOMOGA_DB or the budget service's SQLite)"),
    out: Path | None = typer.Option(None, "--out", help="registers root (default: var/registers)"),
    debtors: Path | None = typer.Option(None, "--debtors", help="JSON file with the paying departments' accounts"),
    execution_date: str | None = typer.Option(None, help="requested execution date YYYY-MM-DD (default: from the data)"),
) -> None:
    """Write the registers of one program and month from the ledger's final payouts."""
    from dopomoga.rules.programs import Catalog
    from dopomoga.treasury.debtors import DebtorError
    from dopomoga.treasury.export import DEFAULT_OUT, export_period
    from dopomoga.treasury.registers import ExportError

    if not _PERIOD.match(period):
        err.print(f"[red]period must be YYYY-MM, got {period!r}[/red]")
        raise typer.Exit(2)
    when = None
    if execution_date:
        try:
            when = dt.date.fromisoformat(execution_date)
        except ValueError:
            err.print(f"[red]execution date must be YYYY-MM-DD, got {execution_date!r}[/red]")
            raise typer.Exit(2) from None
    catalog = Catalog.load()
    if program not in catalog.programs:
        err.print(f"[red]unknown program {program!r}[/red]; known: {', '.join(sorted(catalog.programs))}")
        raise typer.Exit(2)
    ledger = _ledger(db)
    try:
        result = export_period(ledger, program, period, out or DEFAULT_OUT, debtors_file=debtors, catalog=catalog,
                               execution_date=when)
    except (ExportError, DebtorError) as exc:
        err.print(f"[red]export failed:[/red] {exc}")
        raise typer.Exit(1) from None
    summary = result.registers.summary
    table = Table(title=f"{program} {period} → {result.directory}")
    for column in ("channel", "count", "sum", "files"):
        table.add_column(column)
    for channel, register in result.registers.registers.items():
        table.add_row(channel, str(register.count), format_uah(register.sum_kop), ", ".join(register.files))
    table.add_row("total", str(summary["count"]), format_uah(summary["sum_kop"]), "control.json")
    console.print(table)
    console.print(f"ledger: {result.ledger_count} payouts, {format_uah(result.ledger_sum_kop)} — control totals equal")
    console.print(f"{len(result.changed)} file(s) changed" if result.changed else "unchanged (byte-identical)")


@app.command()
def reconcile(
    register_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="var/registers/<program>/<period>"),
    db: str | None = typer.Option(None, "--db", help="ledger URL (default: $DOPOMOGA_DB or the budget service's SQLite)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable report"),
) -> None:
    """Compare a register directory with the ledger; list every difference (exit 1 if any)."""
    from dopomoga.treasury.export import reconcile_with_ledger
    from dopomoga.treasury.reconcile import RegisterFormatError

    ledger = _ledger(db)
    try:
        report = reconcile_with_ledger(ledger, register_dir)
    except RegisterFormatError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        console.print(
            f"{report.program_id} {report.period}: register {report.register_count} / {format_uah(report.register_sum_kop)}, "
            f"ledger {report.ledger_count} / {format_uah(report.ledger_sum_kop)}"
        )
        if report.ok:
            console.print("[green]reconciled: no differences[/green]")
        else:
            table = Table(title=f"{len(report.differences)} difference(s)")
            for column in ("channel", "file", "kind", "application", "detail"):
                table.add_column(column, overflow="fold")
            for d in report.differences:
                table.add_row(d.channel, d.file, d.kind, d.ref, d.detail)
            console.print(table)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def consume(
    broker: str | None = typer.Option(None, "--broker", help="kafka://host:port (default: $DOPOMOGA_BROKER)"),
    db: str | None = typer.Option(None, "--db", help="export from this ledger (default: from the spooled decisions)"),
    out: Path | None = typer.Option(None, "--out", help="registers root (default: var/registers)"),
    group: str = typer.Option(SERVICE_BY_NAME["treasury"].group, help="consumer group id"),
    idle_exit: float | None = typer.Option(None, help="stop after this many idle seconds (default: run forever)"),
) -> None:
    """Follow `payout-decisions` and rewrite the registers of every month a final decision touches."""
    from dopomoga.treasury.export import DEFAULT_OUT
    from services.platform.config import settings
    from services.platform.observability import configure_logging, serve_metrics
    from services.platform.topology import bootstrap_of
    from services.treasury.consumer import Follower, Spool, run

    cfg = settings("treasury")
    log = configure_logging("treasury")
    serve_metrics(cfg.metrics_port)
    ledger = _ledger(db) if db else None
    # the spool belongs to one ledger generation: the consumer group (a fresh `dopomoga up` makes a new one)
    spool = Spool(cfg.var_dir / "treasury" / "spool", generation=cfg.app_id if group == SERVICE_BY_NAME["treasury"].group
                  else group)
    follower = Follower(out or DEFAULT_OUT, spool, ledger=ledger, log=log)
    bootstrap = bootstrap_of(broker) if broker else cfg.bootstrap
    log.info("treasury_following", topic="payout-decisions", group=group)
    seen = run(bootstrap, follower, group_id=group, idle_timeout_s=idle_exit)
    log.info("treasury_stopped", messages=seen, rejected=follower.rejected)
