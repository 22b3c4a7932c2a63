"""Export registers of one program and month, their control totals checked, and reconcile them.

The one register path: every register set is built from final payout decisions by
``export_registers``, which checks the registers' control totals against the decisions' own
figures before writing anything. The decisions come from the budget ledger
(``export_period``, the CLI) or from the treasury follower's spool; the path is the same.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dopomoga.treasury.debtors import Debtor, debtor_for, load_debtors
from dopomoga.treasury.reconcile import Report, read_control, reconcile_dir
from dopomoga.treasury.registers import ExportError, RegisterSet, build_registers, write_registers
from dopomoga.treasury.schedule import scheduled_execution
from schemas.events import PayoutDecided

DEFAULT_OUT = Path(os.environ.get("DOPOMOGA_REGISTERS", "var/registers"))


class LedgerLike(Protocol):
    def final_payouts(self, program_id: str | None = None, period: str | None = None) -> list[PayoutDecided]: ...

    def status(self, program_id: str, period: str, district: str | None = None) -> Any: ...


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


def export_registers(payouts: Iterable[PayoutDecided], program_id: str, period: str, out: Path = DEFAULT_OUT, *,
                     debtor: Debtor, catalog: Any = None, execution_date: dt.date | None = None) -> ExportResult:
    """Build the registers of one program and month from final payout decisions, check their
    control totals against the decisions' own count and sum, and write them.

    A mismatch raises ``ExportError`` and writes nothing.
    """
    payouts = list(payouts)
    registers = build_registers(payouts, program_id, period, debtor, purpose=program_purpose(program_id, catalog),
                                execution_date=execution_date)
    paying = [p for p in payouts if p.final and p.program_id == program_id and p.period == period and p.payout_kop > 0]
    expected_count = len({p.application_id for p in paying})
    expected_sum = sum({p.application_id: p.payout_kop for p in paying}.values())
    if (registers.summary["count"], registers.summary["sum_kop"]) != (expected_count, expected_sum):
        raise ExportError(
            f"control totals {registers.summary['count']} / {registers.summary['sum_kop']} kop differ from the "
            f"decisions' {expected_count} / {expected_sum} kop; nothing written"
        )
    directory, changed = write_registers(registers, out)
    return ExportResult(directory, changed, registers, expected_count, expected_sum)


def export_period(ledger: LedgerLike, program_id: str, period: str, out: Path = DEFAULT_OUT, *,
                  debtor: Debtor | None = None, debtors_file: Path | None = None, catalog: Any = None,
                  execution_date: dt.date | None = None) -> ExportResult:
    """Write the registers of one program and month from the ledger's final payouts (``export_registers``)."""
    debtor = debtor or debtor_for(program_id, load_debtors(debtors_file))
    payouts = ledger.final_payouts(program_id=program_id, period=period)
    if execution_date is None:  # the payment schedule's date where the program has one (Annex 7)
        execution_date = scheduled_execution(payouts, lambda app_id: facts_from(ledger, app_id))
    return export_registers(payouts, program_id, period, out,
                            debtor=debtor, catalog=catalog, execution_date=execution_date)


def facts_from(ledger: Any, application_id: str) -> dict | None:
    """The facts of the application behind a claim (the entitlement the ledger keeps), if any."""
    entitlement = getattr(ledger, "entitlement", None)
    found = entitlement(application_id) if entitlement is not None else None
    return dict(found.application.facts) if found is not None else None


def reconcile_with_ledger(ledger: LedgerLike, directory: Path) -> Report:
    summary = read_control(directory)
    program_id, period = summary["program_id"], summary["period"]
    status = None
    try:
        status = ledger.status(program_id, period)
    except Exception:  # the ledger may not know the budget (e.g. no allocation yet)
        status = None
    return reconcile_dir(directory, ledger.final_payouts(program_id=program_id, period=period), status)


__all__ = ["DEFAULT_OUT", "ExportError", "ExportResult", "export_period", "export_registers", "reconcile_with_ledger"]
