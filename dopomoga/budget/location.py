"""Where the budget ledger lives: one answer for the service, the CLI, the gateway and treasury.

1. ``$DOPOMOGA_DB`` (a SQLAlchemy URL; PostgreSQL in production), with the password read from
   ``$DOPOMOGA_DB_PASSWORD_FILE`` when the URL has none (a secret file, so the password is never in
   the environment or a process's arguments), else
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
        return with_password_file(os.environ["DOPOMOGA_DB"], os.environ.get("DOPOMOGA_DB_PASSWORD_FILE"))
    directory = var_dir()
    if app_id:
        return f"sqlite:///{directory / f'{app_id}-ledger.sqlite'}"
    runs = sorted(directory.glob("*dopomoga-budget-ledger.sqlite"), key=lambda p: p.stat().st_mtime)
    if runs:
        return f"sqlite:///{runs[-1]}"
    return f"sqlite:///{directory / 'budget.db'}"


def with_password_file(url: str, password_file: str | None) -> str:
    """``url`` with the password read from ``password_file`` (percent-encoded by SQLAlchemy).

    A URL that already carries a password is an error when a password file is also given (one
    source of truth); an empty file is an error; trailing newlines are dropped.
    """
    if not password_file:
        return url
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.password:
        raise ValueError("DOPOMOGA_DB carries a password and DOPOMOGA_DB_PASSWORD_FILE is set: use one")
    password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
    if not password:
        raise ValueError(f"the password file {password_file} is empty")
    return parsed.set(password=password).render_as_string(hide_password=False)


def open_ledger(url: str | None = None, catalog: Any = None, *, app_id: str | None = None) -> BudgetLedger:
    """The budget ledger at ``url``, else where ``ledger_url(app_id)`` says (the catalog loaded if not given).

    Imported lazily: the ledger pulls in SQLAlchemy, alembic and the program catalog."""
    from dopomoga.budget.ledger import BudgetLedger
    from dopomoga.rules.programs import Catalog

    return BudgetLedger(url or ledger_url(app_id), catalog or Catalog.load())
