"""Budget gauges (utilisation, coefficient) from the ledger's status; never fails the stream.

Label values come only from the program catalog and the districts its cities declare
(``label_values``): a district from an application or a query string that no ``city.yaml``
declares is never written into ``/metrics`` (it may be anything, a person's name included), so
the series stay bounded and free of personal data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


#: program id -> the district names its city declares (``allowed_labels`` builds it from a catalog)
Allowed = Mapping[str, frozenset[str]]


def allowed_labels(catalog: Any) -> Allowed:
    """Each catalog program with the districts of its city (``programs/<city>/city.yaml``)."""
    out: dict[str, frozenset[str]] = {}
    for program_id, program in catalog.programs.items():
        city = catalog.cities.get(program.spec.city)
        out[program_id] = frozenset(city.district_names) if city is not None else frozenset()
    return out


def update_budget_gauges(ledger: Any, budgets: Iterable[tuple[str, str, str | None]], allowed: Allowed) -> None:
    for program_id, period, district in budgets:
        districts = allowed.get(program_id)
        if districts is None or (district is not None and district not in districts):
            continue  # not a label value the catalog declares
        if len(period) != 7 or not period[:4].isdigit() or period[4] != "-" or not period[5:].isdigit():
            continue
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
