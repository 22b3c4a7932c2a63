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
for one one-off grant on two replicas are never both found eligible.

**One batch, two round trips** (``prefetch``, issue 15): the service hands over a batch's
application ids and every subject key their programs count by; the keys' locks are taken in one
statement, in ascending order of their lock ids (so two replicas' batches never deadlock each
other), then one query reads the batch's remembered applications and all grants of those
subjects. ``count``, ``known_application`` and ``decision_of`` then answer from memory for the
batch; a key or id outside the prefetched set falls back to the per-call lock and query (a lock
taken outside the sorted order can still deadlock: PostgreSQL aborts one replica, which exits and
replays its batch). The writes were already one statement each at ``commit``.
"""

from __future__ import annotations

import datetime as dt
import functools
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
    any_,
    bindparam,
    cast,
    create_engine,
    delete,
    literal,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
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
_LOCK_ALL = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ks AS bigint[])) AS k ORDER BY k")


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


@functools.cache
def _count_query(low: bool, high: bool, period: bool) -> Any:
    """The applications granted to some of ``keys`` in ``programs`` (built once per shape of filter)."""
    conditions: list[Any] = [grants.c.subject_key.in_(bindparam("keys", expanding=True)),
                             grants.c.program_id.in_(bindparam("programs", expanding=True)),
                             grants.c.application_id != bindparam("exclude")]
    if low:
        conditions.append(grants.c.granted_on >= bindparam("low"))
    if high:
        conditions.append(grants.c.granted_on <= bindparam("high"))
    if period:
        conditions.append(grants.c.period == bindparam("period"))
    return select(grants.c.application_id).where(and_(*conditions)).distinct()


_Q_KNOWN = select(applications.c.fingerprint, applications.c.source).where(
    applications.c.application_id == bindparam("id"))
_Q_DECISION = select(applications.c.decision).where(applications.c.application_id == bindparam("id"))


def _ids_in(column: Any, postgres: bool) -> Any:
    """``column`` in the list ``:ids`` (PostgreSQL: one array parameter)."""
    if postgres:
        return column == any_(cast(bindparam("ids"), ARRAY(String)))
    return column.in_(bindparam("ids", expanding=True))


@functools.cache
def _q_recorded(postgres: bool) -> Any:
    return select(grants.c.application_id, grants.c.subject_key).where(_ids_in(grants.c.application_id, postgres))


@functools.cache
def _u_final(postgres: bool) -> Any:
    return update(grants).where(_ids_in(grants.c.application_id, postgres)).values(status="final")


@functools.cache
def _prefetch_query(postgres: bool) -> Any:
    """One query: every grant of the batch's subjects and the batch's remembered applications
    (``kind`` g / a; the other table's columns null). PostgreSQL takes each list as one array."""
    if postgres:
        keys = grants.c.subject_key == any_(cast(bindparam("keys"), ARRAY(String)))
        ids = applications.c.application_id == any_(cast(bindparam("ids"), ARRAY(String)))
    else:
        keys = grants.c.subject_key.in_(bindparam("keys", expanding=True))
        ids = applications.c.application_id.in_(bindparam("ids", expanding=True))
    none = cast(null(), String)
    return union_all(
        select(literal("g").label("kind"), grants.c.subject_key, grants.c.application_id, grants.c.program_id,
               grants.c.granted_on, grants.c.period, none.label("fingerprint"), none.label("source"),
               cast(null(), LargeBinary).label("decision")).where(keys),
        select(literal("a"), none, applications.c.application_id, none, none, none, applications.c.fingerprint,
               applications.c.source, applications.c.decision).where(ids),
    )


class SqlGrantHistory:
    """``GrantHistory`` on SQLAlchemy: one connection, one open transaction per batch (``commit``).

    Round trips are what an application costs here (bench/scale.py): a batch's new grants and
    remembered applications are kept in memory (counted by ``count`` like stored ones) and written
    in one statement each at ``commit``, in the same transaction and before it ends, so the
    subjects' locks still cover them; the subjects' locks are taken in one statement.
    """

    def __init__(self, url: str):
        ensure_schema(url)
        self.engine = create_engine(url, pool_pre_ping=True)
        self.postgres = self.engine.dialect.name == "postgresql"
        self._insert = pg_insert if self.postgres else sqlite_insert
        self._conn: Connection = self.engine.connect()
        self._conn.begin()
        self._locked: set[str] = set()
        self._grants: dict[tuple[str, str], dict[str, Any]] = {}  # (subject, application) -> row, not yet written
        self._known: dict[str, dict[str, Any]] = {}  # application id -> row, not yet written
        self._pending_of: dict[str, set[str]] = {}  # subject -> its applications in self._grants
        # prefetched for the open batch (``prefetch``), valid while its locks are held: subject -> stored
        # grants (application, program, granted_on, period); application id -> stored (fingerprint, source, decision)
        self._stored: dict[str, list[tuple[str, str, str, str]]] = {}
        self._stored_known: dict[str, tuple[str, str, bytes | None] | None] = {}
        upsert = self._insert(grants)
        # A provisional record never downgrades a confirmed one.
        self._upsert_grants = upsert.on_conflict_do_update(
            index_elements=["subject_key", "application_id"],
            set_={"status": text(f"CASE WHEN {grants.name}.status = 'final' THEN 'final' ELSE excluded.status END")},
        )
        self._insert_known = self._insert(applications).on_conflict_do_nothing()

    # -- GrantHistory port ------------------------------------------------------------------
    def record(self, grant: Grant, status: str = "provisional") -> None:
        for key in grant.keys:
            pending = self._grants.get((key, grant.application_id))
            if pending is not None and pending["status"] == "final":
                status = "final"
            self._pending_of.setdefault(key, set()).add(grant.application_id)
            self._grants[(key, grant.application_id)] = {
                "subject_key": key, "application_id": grant.application_id, "program_id": grant.program_id,
                "granted_on": grant.on.isoformat(), "period": grant.period, "status": status}

    def forget(self, application_id: str) -> None:
        for pending in [k for k in self._grants if k[1] == application_id]:
            del self._grants[pending]
        for key, rows in self._stored.items():
            self._stored[key] = [row for row in rows if row[0] != application_id]
        self._conn.execute(delete(grants).where(grants.c.application_id == application_id))

    def prefetch(self, application_ids: Sequence[str], keys: Sequence[str]) -> None:
        """Lock ``keys`` (one statement, ascending lock ids) and read their grants and the applications'
        remembered records (one query), for this batch: ``count`` and ``known_application`` then answer
        from memory. Call before the batch's first ``count``; ``commit``/``rollback`` drop the cache."""
        new_keys = sorted(set(keys) - self._stored.keys())
        new_ids = sorted(set(application_ids) - self._stored_known.keys() - self._known.keys())
        if not new_keys and not new_ids:
            return
        self._lock(new_keys)
        rows = self._conn.execute(_prefetch_query(self.postgres), {"keys": new_keys, "ids": new_ids}).all()
        # filled only once the query succeeded: a half-filled cache would count too few grants
        stored: dict[str, list[tuple[str, str, str, str]]] = {key: [] for key in new_keys}
        known: dict[str, tuple[str, str, bytes | None] | None] = dict.fromkeys(new_ids)
        for kind, key, application_id, program_id, granted_on, period, fingerprint, source, decision in rows:
            if kind == "g":
                stored[key].append((application_id, program_id, granted_on, period))
            else:
                known[application_id] = (fingerprint, source, None if decision is None else bytes(decision))
        self._stored.update(stored)
        self._stored_known.update(known)

    def count(self, keys: Sequence[str], program_ids: Sequence[str], start: dt.date | None, end: dt.date | None,
              period: str | None, exclude_application: str) -> int:
        if not keys or not program_ids:
            return 0
        low, high = (start.isoformat() if start else None), (end.isoformat() if end else None)

        def within(application_id: str, program_id: str, granted_on: str, row_period: str) -> bool:
            return (program_id in program_ids and application_id != exclude_application
                    and (low is None or granted_on >= low) and (high is None or granted_on <= high)
                    and (period is None or row_period == period))

        stored = self._stored
        if all(key in stored for key in keys):  # prefetched: locked, read after the lock
            found = {row[0] for key in set(keys) for row in stored[key] if within(*row)}
        else:
            self._lock(keys)
            params = {"keys": list(keys), "programs": list(program_ids), "exclude": exclude_application,
                      "low": low, "high": high, "period": period}
            found = set(self._conn.execute(_count_query(low is not None, high is not None, period is not None),
                                           params).scalars())
        for key in set(keys):
            for application_id in self._pending_of.get(key, ()):
                row = self._grants.get((key, application_id))
                if row is not None and within(application_id, row["program_id"], row["granted_on"], row["period"]):
                    found.add(application_id)
        return len(found)

    def _lock(self, keys: Sequence[str]) -> None:
        """Hold each subject's lock until this batch commits (PostgreSQL; SQLite has one writer).
        One statement for all of them, in a fixed order."""
        if not self.postgres:
            return
        new = sorted(set(keys) - self._locked)
        if new:
            self._conn.execute(_LOCK_ALL, {"ks": sorted(_lock_id(key) for key in new)})
            self._locked.update(new)

    def _flush(self) -> None:
        if self._grants:
            self._conn.execute(self._upsert_grants, list(self._grants.values()))
            for row in self._grants.values():  # written: the prefetched rows now include them
                if row["subject_key"] in self._stored:
                    self._stored[row["subject_key"]].append(
                        (row["application_id"], row["program_id"], row["granted_on"], row["period"]))
            self._grants.clear()
            self._pending_of.clear()
        if self._known:
            self._conn.execute(self._insert_known, list(self._known.values()))
            for application_id, row in self._known.items():
                if application_id in self._stored_known and self._stored_known[application_id] is None:
                    self._stored_known[application_id] = (row["fingerprint"], row["source"], row["decision"])
            self._known.clear()

    # -- feedback from final payout decisions ------------------------------------------------
    def confirm(self, application_id: str, fallback: Grant | None = None) -> None:
        """As ``SqliteGrantHistory.confirm``: make the grant final, or record the paid person's."""
        self._flush()
        if fallback is not None:
            recorded = set(self._conn.execute(
                select(grants.c.subject_key).where(grants.c.application_id == application_id)).scalars())
            if recorded and fallback.keys[0] not in recorded:
                self.forget(application_id)
        updated = self._conn.execute(
            update(grants).where(grants.c.application_id == application_id).values(status="final")).rowcount
        if not updated and fallback is not None:
            self.record(fallback, status="final")
            self._flush()

    def confirm_many(self, items: Sequence[tuple[str, Grant | None]]) -> None:
        """``confirm`` for each (application id, fallback) of a batch of final payouts, in order, in
        about three statements instead of two or three per application (the feedback path of
        bench/scale.py). The ids must be distinct (the service confirms one by one otherwise)."""
        ids = [application_id for application_id, _ in items]
        assert len(set(ids)) == len(ids), "confirm_many: one item per application"
        if not ids:
            return
        self._flush()
        recorded: dict[str, set[str]] = {}
        for application_id, key in self._conn.execute(_q_recorded(self.postgres), {"ids": ids}):
            recorded.setdefault(application_id, set()).add(key)
        # a grant recorded for another person than the one paid is replaced by the paid person's
        wrong = [i for i, fallback in items if fallback is not None and recorded.get(i)
                 and fallback.keys[0] not in recorded[i]]
        for application_id in wrong:
            self.forget(application_id)
            recorded.pop(application_id)
        if recorded:
            self._conn.execute(_u_final(self.postgres), {"ids": list(recorded)})
        for application_id, fallback in items:
            if application_id not in recorded and fallback is not None:
                self.record(fallback, status="final")
        self._flush()

    def known_application(self, application_id: str) -> tuple[str, str] | None:
        pending = self._known.get(application_id)
        if pending is not None:
            return pending["fingerprint"], pending["source"]
        if application_id in self._stored_known:
            stored = self._stored_known[application_id]
            return None if stored is None else (stored[0], stored[1])
        row = self._conn.execute(_Q_KNOWN, {"id": application_id}).first()
        return None if row is None else (row[0], row[1])

    def remember_application(self, application_id: str, fingerprint: str, source: str,
                             decision: bytes | None = None) -> None:
        self._known.setdefault(application_id, {"application_id": application_id, "fingerprint": fingerprint,
                                                "source": source, "decision": decision})

    def decision_of(self, application_id: str) -> bytes | None:
        pending = self._known.get(application_id)
        if pending is not None:
            return pending["decision"]
        if application_id in self._stored_known:
            stored = self._stored_known[application_id]
            return None if stored is None else stored[2]
        value = self._conn.execute(_Q_DECISION, {"id": application_id}).scalar()
        return None if value is None else bytes(value)

    def status(self, application_id: str) -> str | None:
        self._flush()
        return self._conn.execute(select(grants.c.status).where(grants.c.application_id == application_id)
                                  .limit(1)).scalar()

    def commit(self) -> None:
        self._flush()
        self._conn.commit()
        self._locked.clear()
        self._stored.clear()
        self._stored_known.clear()
        self._conn.begin()

    def rollback(self) -> None:
        self._grants.clear()
        self._pending_of.clear()
        self._known.clear()
        self._conn.rollback()
        self._locked.clear()
        self._stored.clear()
        self._stored_known.clear()
        self._conn.begin()

    def close(self) -> None:
        self._flush()
        self._conn.commit()
        self._conn.close()
        self.engine.dispose()
