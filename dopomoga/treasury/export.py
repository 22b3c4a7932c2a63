"""Export and reconcile against the budget ledger (the only I/O around the pure core)."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from schemas.events import PayoutDecided
from services.treasury.debtors import Debtor, debtor_for, load_debtors
from services.treasury.reconcile import Report, read_control, reconcile_dir
from services.treasury.registers import ExportError, RegisterSet, build_registers, write_registers

DEFAULT_OUT = Path(os.environ.get("DOPOMOGA_REGISTERS", "var/registers"))


class LedgerLike(Protocol):
    def final_payouts(self, program_id: str | None = None, period: str | None = None) -> list[PayoutDecided]: ...

    def status(self, program_id: str, period: str, district: str | None = None) -> Any: ...


def default_db_url() -> str:
    """The ledger the budget service writes (see ``dopomoga.budget.location``)."""
    from dopomoga.budget.location import ledger_url
    from services.config import settings

    prefixed = os.environ.get("DOPOMOGA_APP_PREFIX")
    return ledger_url(settings("budget").app_id if prefixed else None)


def open_ledger(url: str | None = None, catalog: Any = None) -> Any:
    import importlib

    from dopomoga.rules.programs import Catalog

    ledger_module = importlib.import_module("dopomoga.budget.ledger")
    return ledger_module.BudgetLedger(url or default_db_url(), catalog or Catalog.load())


def program_purpose(program_id: str, catalog: Any = None) -> str:
    """The payment purpose written in pain.001 (the program's Ukrainian title)."""
    if catalog is None:
        return program_id
    program = catalog.programs.get(program_id)
    return program.spec.title.uk if program is not None else program_id


@dataclass
class ExportResult:
    directory: Path
    changed: list[str]
    registers: RegisterSet
    ledger_count: int
    ledger_sum_kop: int


def export_period(ledger: LedgerLike, program_id: str, period: str, out: Path = DEFAULT_OUT, *,
                  debtor: Debtor | None = None, debtors_file: Path | None = None, catalog: Any = None,
                  execution_date: dt.date | None = None) -> ExportResult:
    """Write the registers of one program and month from the ledger's final payouts.

    The registers' control totals are checked against the ledger's own figures before
    anything is written; a mismatch raises ``ExportError`` and writes nothing.
    """
    payouts = ledger.final_payouts(program_id=program_id, period=period)
    debtor = debtor or debtor_for(program_id, load_debtors(debtors_file))
    registers = build_registers(payouts, program_id, period, debtor, purpose=program_purpose(program_id, catalog),
                                execution_date=execution_date)
    paying = [p for p in payouts if p.final and p.program_id == program_id and p.period == period and p.payout_kop > 0]
    ledger_count = len({p.application_id for p in paying})
    ledger_sum = sum({p.application_id: p.payout_kop for p in paying}.values())
    if (registers.summary["count"], registers.summary["sum_kop"]) != (ledger_count, ledger_sum):
        raise ExportError(
            f"control totals {registers.summary['count']} / {registers.summary['sum_kop']} kop differ from the "
            f"ledger's {ledger_count} / {ledger_sum} kop; nothing written"
        )
    directory, changed = write_registers(registers, out)
    return ExportResult(directory, changed, registers, ledger_count, ledger_sum)


def reconcile_with_ledger(ledger: LedgerLike, directory: Path) -> Report:
    summary = read_control(directory)
    program_id, period = summary["program_id"], summary["period"]
    status = None
    try:
        status = ledger.status(program_id, period)
    except Exception:  # the ledger may not know the budget (e.g. no allocation yet)
        status = None
    return reconcile_dir(directory, ledger.final_payouts(program_id=program_id, period=period), status)


__all__ = ["DEFAULT_OUT", "ExportError", "ExportResult", "default_db_url", "export_period", "open_ledger",
           "reconcile_with_ledger"]
