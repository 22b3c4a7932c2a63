"""``dopomoga migrate``: bring every store's schema to head, once, before the services start.

The budget ledger's alembic migrations (``dopomoga.budget.store.Store.upgrade``, serialised on
PostgreSQL by an advisory lock, so a race with a service opening the ledger cannot fail either).
Run by ``dopomoga up`` before it starts the services, by compose's ``migrate`` job (through
``deploy/migrate.py``, which calls ``migrate_ledger``), and by hand::

    DOPOMOGA_DB=postgresql+psycopg://... dopomoga migrate
"""

from __future__ import annotations

import time

import typer


def migrate_ledger(url: str) -> str:
    """Migrate the ledger at ``url`` to head; return the revision it is at."""
    from dopomoga.budget.store import Store

    store = Store(url)
    try:
        store.upgrade()
        with store.engine.connect() as conn:
            return str(conn.exec_driver_sql("SELECT version_num FROM budget_alembic_version").scalar())
    finally:
        store.close()


def report(url: str) -> str:
    """Migrate and say so in one line (``migrate: ledger at revision R (backend, seconds)``); the
    eligibility replicas' shared grant history too, when it is on PostgreSQL (``history_url``)."""
    from services.eligibility.adapters.sql_history import ensure_schema, history_url

    started = time.monotonic()
    revision = migrate_ledger(url)
    shared = history_url()
    if shared:
        ensure_schema(shared)
    history = "; grant history tables present" if shared else ""
    from services.gateway.ingest import ensure_schema as ensure_ingest_schema
    from services.gateway.ingest import ingest_url

    if ingest := ingest_url():  # the gateway replicas' shared ingest log (services/gateway/ingest.py)
        ensure_ingest_schema(ingest)
        history += "; ingest log tables present"
    return (f"migrate: ledger at revision {revision} ({url.split(':', 1)[0]}, "
            f"{time.monotonic() - started:.1f} s){history}")


def migrate(
    db: str | None = typer.Option(None, "--db", help="ledger URL (default: $DOPOMOGA_DB, else the local SQLite ledger)"),
) -> None:
    """Bring the ledger's schema to head (once, before the services start; safe to repeat)."""
    from dopomoga.budget.location import ledger_url

    typer.echo(report(db or ledger_url()))
