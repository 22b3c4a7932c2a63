"""Where the budget ledger lives: one answer for the service, the CLI, the gateway and treasury.

1. ``$DOPOMOGA_DB`` (a SQLAlchemy URL; PostgreSQL in production), else
2. the budget service's SQLite file ``<var>/<app id>-ledger.sqlite`` when the app id is known, else
3. the newest ``<var>/*dopomoga-budget-ledger.sqlite`` (``dopomoga up`` prefixes the app id per
   run, so a shell afterwards finds the run it just watched), else
4. ``sqlite:///<var>/budget.db``.

``<var>`` is ``$DOPOMOGA_VAR`` or ``var``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dopomoga.budget.ledger import BudgetLedger


def var_dir() -> Path:
    return Path(os.environ.get("DOPOMOGA_VAR", "var"))


def ledger_url(app_id: str | None = None) -> str:
    if os.environ.get("DOPOMOGA_DB"):
        return os.environ["DOPOMOGA_DB"]
    directory = var_dir()
    if app_id:
        return f"sqlite:///{directory / f'{app_id}-ledger.sqlite'}"
    runs = sorted(directory.glob("*dopomoga-budget-ledger.sqlite"), key=lambda p: p.stat().st_mtime)
    if runs:
        return f"sqlite:///{runs[-1]}"
    return f"sqlite:///{directory / 'budget.db'}"


def open_ledger(url: str | None = None, catalog: Any = None, *, app_id: str | None = None) -> BudgetLedger:
    """The budget ledger at ``url``, else where ``ledger_url(app_id)`` says (the catalog loaded if not given).

    Imported lazily: the ledger pulls in SQLAlchemy, alembic and the program catalog."""
    from dopomoga.budget.ledger import BudgetLedger
    from dopomoga.rules.programs import Catalog

    return BudgetLedger(url or ledger_url(app_id), catalog or Catalog.load())
