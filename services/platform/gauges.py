"""Budget gauges (utilisation, coefficient) from the ledger's status; never fails the stream."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from services.platform.observability import BUDGET_COEFFICIENT, BUDGET_UTILISATION


def _get(status: Any, *names: str) -> Any:
    for name in names:
        if isinstance(status, dict) and name in status:
            return status[name]
        if hasattr(status, name):
            return getattr(status, name)
    return None


def _ratio(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(Fraction(str(value)))
    except (ValueError, ZeroDivisionError):
        return None


def update_budget_gauges(ledger: Any, budgets: Iterable[tuple[str, str, str | None]]) -> None:
    for program_id, period, district in budgets:
        try:
            status = ledger.status(program_id, period, district)
        except Exception:
            continue
        allocated = _get(status, "allocation_kop")
        paid, reserved = _get(status, "paid_kop"), _get(status, "reserved_kop") or 0
        spent = paid + reserved if isinstance(paid, int) else None
        label = (program_id, period if district is None else f"{period}:{district}")
        if isinstance(allocated, int) and isinstance(spent, int) and allocated > 0:
            BUDGET_UTILISATION.labels(*label).set(spent / allocated)
        coefficient = _ratio(_get(status, "coefficient"))
        if coefficient is not None:
            BUDGET_COEFFICIENT.labels(*label).set(coefficient)
