"""The grant history on a SQL database (SQLAlchemy Core): PostgreSQL, shared by eligibility replicas,
or SQLite - the same behaviour as ``SqliteGrantHistory`` (issue 15, items 2-3).

Selected by ``DOPOMOGA_HISTORY_DB`` (a SQLAlchemy URL), else the ledger's ``DOPOMOGA_DB`` when that
is PostgreSQL (the tables are ``eligibility_*`` beside the ledger's ``budget_*``: compose does
this); otherwise the service keeps its local SQLite file (``history.SqliteGrantHistory``). Tables are created once (``ensure_schema``, under
a PostgreSQL advisory lock; ``dopomoga migrate`` runs it when the variable is set).

**Per-person checks are atomic across replicas on PostgreSQL.** Before counting a person's (or
household's) grants, ``count`` takes a transaction-scoped advisory lock per subject key; the
batch's transaction holds it until ``commit``. A second replica deciding the same person waits
until the first has committed its provisional record, then counts it: two applications racing
for one one-off grant on two replicas are never both found eligible. (Two replicas locking two
people in opposite orders deadlock; PostgreSQL aborts one, which exits and replays its batch.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    create_engine,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dopomoga.rules.history import Grant

metadata = MetaData()
grants = Table(
    "eligibility_grants", metadata,
    Column("subject_key", String(200), primary_key=True),
    Column("application_id", String(200), primary_key=True),
    Column("program_id", String(200), nullable=False),
    Column("granted_on", String(10), nullable=False),
    Column("period", String(7), nullable=False),
    Column("status", String(16), nullable=False, server_default="provisional"),
    Index("eligibility_grants_by_application", "application_id"),
)
applications = Table(
    "eligibility_applications", metadata,
    Column("application_id", String(200), primary_key=True),
    Column("fingerprint", String(200), nullable=False),
    Column("source", String(200), nullable=False),
    Column("decision", LargeBinary, nullable=True),  # the first decision's bytes: replays re-emit them
)
_SCHEMA_LOCK = 0x656C696769626C65  # "eligible": one creator of the tables at a time
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(b"dopomoga-grant:" + key.encode()).digest()[:8], "big", signed=True)


def history_url() -> str | None:
    """Where the shared history lives: ``DOPOMOGA_HISTORY_DB``, else the ledger's database when that is
    PostgreSQL (``DOPOMOGA_DB``, with ``DOPOMOGA_DB_PASSWORD_FILE``), else ``None`` (local SQLite;
    ``DOPOMOGA_HISTORY_DB=local`` forces it)."""
    if os.environ.get("DOPOMOGA_HISTORY_DB"):
        value = os.environ["DOPOMOGA_HISTORY_DB"]
        return None if value == "local" else value
    if os.environ.get("DOPOMOGA_DB", "").startswith("postgresql"):
        from dopomoga.budget.location import ledger_url

        return ledger_url()
    return None


def ensure_schema(url: str) -> None:
    """Create the tables if they are missing (serialised on PostgreSQL)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(_LOCK, {"k": _SCHEMA_LOCK})
            metadata.create_all(conn)
    finally:
        engine.dispose()


class SqlGrantHistory:
    """``GrantHistory`` on SQLAlchemy: one connection, one open transaction per batch (``commit``)."""

    def __init__(self, url: str):
        ensure_schema(url)
        self.engine = create_engine(url, pool_pre_ping=True)
        self.postgres = self.engine.dialect.name == "postgresql"
        self._insert = pg_insert if self.postgres else sqlite_insert
        self._conn: Connection = self.engine.connect()
        self._conn.begin()
        self._locked: set[str] = set()

    # -- GrantHistory port ------------------------------------------------------------------
    def record(self, grant: Grant, status: str = "provisional") -> None:
        rows = [{"subject_key": key, "application_id": grant.application_id, "program_id": grant.program_id,
                 "granted_on": grant.on.isoformat(), "period": grant.period, "status": status} for key in grant.keys]
        statement = self._insert(grants)
        # A provisional record never downgrades a confirmed one.
        statement = statement.on_conflict_do_update(
            index_elements=["subject_key", "application_id"],
            set_={"status": text(f"CASE WHEN {grants.name}.status = 'final' THEN 'final' ELSE excluded.status END")},
        )
        self._conn.execute(statement, rows)

    def forget(self, application_id: str) -> None:
        self._conn.execute(delete(grants).where(grants.c.application_id == application_id))

    def count(self, keys: Sequence[str], program_ids: Sequence[str], start: dt.date | None, end: dt.date | None,
              period: str | None, exclude_application: str) -> int:
        if not keys or not program_ids:
            return 0
        self._lock(keys)
        conditions: list[Any] = [grants.c.subject_key.in_(list(keys)), grants.c.program_id.in_(list(program_ids)),
                                 grants.c.application_id != exclude_application]
        if start is not None:
            conditions.append(grants.c.granted_on >= start.isoformat())
        if end is not None:
            conditions.append(grants.c.granted_on <= end.isoformat())
        if period is not None:
            conditions.append(grants.c.period == period)
        query = select(func.count(grants.c.application_id.distinct())).where(and_(*conditions))
        return int(self._conn.execute(query).scalar() or 0)

    def _lock(self, keys: Sequence[str]) -> None:
        """Hold each subject's lock until this batch commits (PostgreSQL; SQLite has one writer)."""
        if not self.postgres:
            return
        for key in sorted(set(keys) - self._locked):
            self._conn.execute(_LOCK, {"k": _lock_id(key)})
            self._locked.add(key)

    # -- feedback from final payout decisions ------------------------------------------------
    def confirm(self, application_id: str, fallback: Grant | None = None) -> None:
        """As ``SqliteGrantHistory.confirm``: make the grant final, or record the paid person's."""
        if fallback is not None:
            recorded = set(self._conn.execute(
                select(grants.c.subject_key).where(grants.c.application_id == application_id)).scalars())
            if recorded and fallback.keys[0] not in recorded:
                self.forget(application_id)
        updated = self._conn.execute(
            update(grants).where(grants.c.application_id == application_id).values(status="final")).rowcount
        if not updated and fallback is not None:
            self.record(fallback, status="final")

    def known_application(self, application_id: str) -> tuple[str, str] | None:
        row = self._conn.execute(select(applications.c.fingerprint, applications.c.source)
                                 .where(applications.c.application_id == application_id)).first()
        return None if row is None else (row[0], row[1])

    def remember_application(self, application_id: str, fingerprint: str, source: str,
                             decision: bytes | None = None) -> None:
        statement = self._insert(applications).values(application_id=application_id, fingerprint=fingerprint,
                                                      source=source, decision=decision).on_conflict_do_nothing()
        self._conn.execute(statement)

    def decision_of(self, application_id: str) -> bytes | None:
        value = self._conn.execute(select(applications.c.decision)
                                   .where(applications.c.application_id == application_id)).scalar()
        return None if value is None else bytes(value)

    def status(self, application_id: str) -> str | None:
        return self._conn.execute(select(grants.c.status).where(grants.c.application_id == application_id)
                                  .limit(1)).scalar()

    def commit(self) -> None:
        self._conn.commit()
        self._locked.clear()
        self._conn.begin()

    def rollback(self) -> None:
        self._conn.rollback()
        self._locked.clear()
        self._conn.begin()

    def close(self) -> None:
        self._conn.commit()
        self._conn.close()
        self.engine.dispose()
