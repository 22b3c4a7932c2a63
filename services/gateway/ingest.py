"""Idempotent ingest: which application ids (and allocation amendments) were taken, atomically.

An id is *claimed* with its content's fingerprint by one unique insert before anything is
published (TigerBeetle's ``exists`` / ``exists_with_different_…``):

- a new id: claimed (``pending``), published, then marked ``published``; if publishing fails the
  claim is released, so the registry's retry can go through;
- the same id with the same content, already published: a duplicate (202, not published again);
- the same id with different content, or an id another request is publishing right now: 409.

So of twelve parallel posts of one id with different persons exactly one gets 202. The log is
SQLAlchemy Core on either store (issue 15):

- **PostgreSQL**, shared by every gateway replica: ``DOPOMOGA_INGEST_DB`` (a URL), else the
  ledger's database when that is PostgreSQL (``DOPOMOGA_DB`` with ``DOPOMOGA_DB_PASSWORD_FILE``,
  ``dopomoga.budget.location.ledger_url``; compose does this). A claim is one transaction; the
  unique key makes a second claim of an id wait for the first's commit or rollback, so the
  answer is atomic across threads and replicas; a batch's ids are claimed in sorted order (two
  batches never deadlock each other). Tables ``gateway_ingested`` / ``gateway_commands``, created
  once under an advisory lock (``dopomoga migrate`` does it when the log is on PostgreSQL).
- **SQLite** otherwise (``var/gateway-ingest.sqlite``; ``:memory:`` in tests; one replica), one
  lock around each statement group and ``BEGIN IMMEDIATE`` transactions.

Downstream services dedupe and detect conflicts on their own as well (the eligibility
service's grant history, the ledger's input ids), so a lost log costs no double decision.

``admit_applications`` is the whole ``POST /applications`` after validation: plausibility
(``dopomoga.rules.plausibility``, on the gateway's clock), the message size limit (413), the
claims, and the publishing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from fastapi.responses import JSONResponse
from sqlalchemy import (
    Column,
    Connection,
    Float,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import StaticPool

from dopomoga.rules.plausibility import Implausible, check_application
from dopomoga.rules.programs import Catalog
from schemas.events import AllocationSet, ApplicationSubmitted
from services.gateway.models import Accepted, IngestResponse
from services.platform.topology import APPLICATIONS, MAX_MESSAGE_BYTES

#: A pending claim older than this was left by a gateway that died while publishing.
STALE_CLAIM_S = 120.0
Claim = Literal["new", "duplicate", "conflict", "in_progress"]

metadata = MetaData()
ingested = Table(
    "gateway_ingested", metadata,
    Column("application_id", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False, server_default="published"),
    Column("claimed_at", Float, nullable=False, server_default="0"),
)
commands = Table(
    "gateway_commands", metadata,
    Column("event_id", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
)
_SCHEMA_LOCK = 0x6761746577617969  # "gatewayi": one creator of the tables at a time


def fingerprint(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def allocation_fingerprint(event: AllocationSet) -> str:
    """The content of an amendment, without its receiving time (re-posts get a new ``occurred_at``)."""
    return fingerprint(event.model_dump_json(exclude={"occurred_at"}).encode("utf-8"))


def ingest_url() -> str | None:
    """Where the shared ingest log lives: ``DOPOMOGA_INGEST_DB``, else the gateway's console database
    (``DOPOMOGA_GATEWAY_DB``) or the ledger's (``DOPOMOGA_DB``), the first that is PostgreSQL, else
    ``None``: the gateway's local SQLite file (``DOPOMOGA_INGEST_DB=local`` forces it)."""
    value = os.environ.get("DOPOMOGA_INGEST_DB")
    if value:
        return None if value == "local" else value
    if os.environ.get("DOPOMOGA_GATEWAY_DB", "").startswith("postgresql"):
        return os.environ["DOPOMOGA_GATEWAY_DB"]
    if os.environ.get("DOPOMOGA_DB", "").startswith("postgresql"):
        from dopomoga.budget.location import ledger_url

        return ledger_url()
    return None


def open_ingest_log(var_dir: Path) -> IngestLog:
    """The gateway's log: where ``ingest_url`` says, else ``<var>/gateway-ingest.sqlite``."""
    return IngestLog(ingest_url() or var_dir / "gateway-ingest.sqlite")


def _url(where: str | Path) -> str:
    """A SQLAlchemy URL for ``where``: a URL as given, ``:memory:``, or a SQLite file path."""
    text_ = str(where)
    if "://" in text_:
        return text_
    if text_ == ":memory:":
        return "sqlite://"
    Path(text_).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{text_}"


def _upgrade_old_sqlite(conn: Connection) -> None:
    """A log written before it moved to SQLAlchemy: tables ``ingested`` (maybe without ``state``,
    added with the atomic claim: its rows are published ones) and ``commands``, renamed."""
    tables = set(inspect(conn).get_table_names())
    if "ingested" in tables and ingested.name not in tables:
        columns = {c["name"] for c in inspect(conn).get_columns("ingested")}
        if "state" not in columns:
            conn.exec_driver_sql("ALTER TABLE ingested ADD COLUMN state TEXT NOT NULL DEFAULT 'published'")
            conn.exec_driver_sql("ALTER TABLE ingested ADD COLUMN claimed_at REAL NOT NULL DEFAULT 0")
        conn.exec_driver_sql(f"ALTER TABLE ingested RENAME TO {ingested.name}")
    if "commands" in tables and commands.name not in tables:
        conn.exec_driver_sql(f"ALTER TABLE commands RENAME TO {commands.name}")


def ensure_schema(url: str) -> None:
    """Create the log's tables if they are missing (serialised on PostgreSQL; ``dopomoga migrate``)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
            metadata.create_all(conn)
    finally:
        engine.dispose()


class IngestLog:
    """The claims of ids (``where``: a SQLAlchemy URL, a SQLite file path, or ``:memory:``)."""

    def __init__(self, where: str | Path = ":memory:"):
        url = _url(where)
        sqlite = url.startswith("sqlite")
        if sqlite:
            memory = url in ("sqlite://", "sqlite:///:memory:")
            # one connection (an in-memory database lives in it), used under self._lock
            self.engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})

            @event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's
                if not memory:
                    dbapi_conn.execute("PRAGMA journal_mode=WAL")
                    dbapi_conn.execute("PRAGMA synchronous=FULL")

            @event.listens_for(self.engine, "begin")
            def _immediate(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock first: no upgrade deadlock

            self._lock: Any = threading.Lock()
            with self.engine.begin() as conn:
                _upgrade_old_sqlite(conn)
                metadata.create_all(conn)
        else:
            ensure_schema(url)
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
            self._lock = contextlib.nullcontext()  # PostgreSQL's row locks order concurrent claims
        insert = sqlite_insert if sqlite else pg_insert
        stmt = insert(ingested).values(application_id=bindparam("id"), fingerprint=bindparam("mark"),
                                       state="pending", claimed_at=bindparam("now"))
        # a claim left pending by a gateway that died while publishing may be taken over
        self._claim = stmt.on_conflict_do_update(
            index_elements=[ingested.c.application_id],
            set_={"fingerprint": stmt.excluded.fingerprint, "claimed_at": stmt.excluded.claimed_at},
            where=(ingested.c.state == "pending") & (ingested.c.claimed_at < bindparam("stale")),
        ).returning(ingested.c.application_id)  # a row back: claimed (rowcount is not portable here)
        self._record = insert(ingested).values(state="published").on_conflict_do_nothing()
        self._command = insert(commands).on_conflict_do_nothing().returning(commands.c.event_id)
        self._q_seen = select(ingested.c.fingerprint).where(ingested.c.application_id == bindparam("id"))
        self._q_state = select(ingested.c.fingerprint, ingested.c.state).where(
            ingested.c.application_id == bindparam("id"))
        self._publish = update(ingested).where(ingested.c.application_id == bindparam("id")).values(state="published")
        self._release = delete(ingested).where(ingested.c.application_id == bindparam("id"),
                                               ingested.c.state == "pending")

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._lock, self.engine.begin() as conn:
            yield conn

    def seen(self, application_id: str) -> str | None:
        with self._tx() as conn:
            return conn.execute(self._q_seen, {"id": application_id}).scalar()

    def claim(self, marks: Sequence[tuple[str, str]]) -> dict[str, Claim]:
        """Claim every (application id, fingerprint) at once, or none: if any is a conflict or in
        progress, the new claims of this call are withdrawn. Returns each id's outcome."""
        outcome: dict[str, Claim] = {}
        with self._lock, self.engine.connect() as conn:
            with conn.begin() as tx:
                for application_id, mark in sorted(marks):  # one order for every request: no deadlock
                    now = time.time()
                    inserted = conn.execute(self._claim, {"id": application_id, "mark": mark, "now": now,
                                                          "stale": now - STALE_CLAIM_S}).first()
                    if inserted:
                        outcome[application_id] = "new"
                        continue
                    known, state = conn.execute(self._q_state, {"id": application_id}).one()
                    if known != mark:
                        outcome[application_id] = "conflict"
                    else:
                        outcome[application_id] = "duplicate" if state == "published" else "in_progress"
                if any(v in ("conflict", "in_progress") for v in outcome.values()):
                    tx.rollback()
        return {application_id: outcome[application_id] for application_id, _ in marks}

    def published(self, application_id: str) -> None:
        self.published_many([application_id])

    def published_many(self, application_ids: Sequence[str]) -> None:
        """Mark claims published, in one transaction."""
        if application_ids:
            with self._tx() as conn:
                conn.execute(self._publish, [{"id": i} for i in application_ids])

    def release(self, application_ids: Sequence[str]) -> None:
        """Withdraw claims whose publishing failed (the registry may retry them)."""
        if application_ids:
            with self._tx() as conn:
                conn.execute(self._release, [{"id": i} for i in application_ids])

    def record(self, application_id: str, print_: str) -> None:
        with self._tx() as conn:
            conn.execute(self._record, {"application_id": application_id, "fingerprint": print_})

    def claim_command(self, event_id: str, mark: str) -> Literal["new", "duplicate", "conflict"]:
        """Record a budget command's content by its event id (an amendment id names one content)."""
        with self._tx() as conn:
            inserted = conn.execute(self._command, {"event_id": event_id, "fingerprint": mark}).first()
            if inserted:
                return "new"
            known = conn.execute(select(commands.c.fingerprint).where(commands.c.event_id == event_id)).scalar_one()
        return "duplicate" if known == mark else "conflict"

    def count(self) -> int:
        with self._tx() as conn:
            return conn.execute(select(func.count()).select_from(ingested)
                                .where(ingested.c.state == "published")).scalar_one()

    def close(self) -> None:
        self.engine.dispose()


def refusal(status: int, error: str, reason_code: str, message: str) -> JSONResponse:
    """An error answer with a domain reason code (never the submitted values)."""
    return JSONResponse(status_code=status, content={"error": error, "reason_code": reason_code, "message": message})


def admit_applications(
    items: list[ApplicationSubmitted],
    *,
    catalog: Catalog,
    log: IngestLog,
    publish: Callable[[str, str, bytes], None],
    publish_many: Callable[[str, list[tuple[str, bytes]]], None] | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> IngestResponse | JSONResponse:
    """Check, claim and publish a batch (all or nothing up to publishing): the 202 body or a refusal."""
    ids = [item.application_id for item in items]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        return refusal(422, "invalid_request", "repeated_id",
                       f"the batch repeats application id(s) {', '.join(repeated[:10])}")
    unknown = sorted({i.program_id for i in items if i.program_id not in catalog.programs})
    if unknown:
        return refusal(422, "invalid_request", "unknown_program", f"unknown program(s) {', '.join(unknown[:10])}"[:500])
    received = now()
    values: list[tuple[ApplicationSubmitted, bytes, str]] = []
    for n, item in enumerate(items):
        try:
            check_application(item, catalog, received)
        except Implausible as exc:
            where = f"item {n}: " if len(items) > 1 else ""
            return refusal(422, "invalid_application", exc.reason_code, f"{where}{exc}")
        value = item.model_dump_json().encode("utf-8")
        if len(value) > MAX_MESSAGE_BYTES:
            return refusal(413, "too_large", "oversized",
                           f"application {n} is {len(value)} bytes as an event; the limit is {MAX_MESSAGE_BYTES}")
        values.append((item, value, fingerprint(value)))
    outcome = log.claim([(item.application_id, mark) for item, _, mark in values])
    clashes = sorted(i for i, v in outcome.items() if v in ("conflict", "in_progress"))
    if clashes:
        code = "application_id_conflict" if any(outcome[i] == "conflict" for i in clashes) else "in_progress"
        return refusal(409, "conflict", code,
                       f"application id(s) already submitted with different content or being submitted: "
                       f"{', '.join(clashes[:10])}; use a new id for a new application")
    results: list[Accepted] = []
    todo = [i for i, v in outcome.items() if v == "new"]
    if publish_many is not None:  # the whole batch in one round trip (a 1 000-application batch in < 1 s)
        fresh = [(item.application_id, value) for item, value, _ in values if outcome[item.application_id] == "new"]
        try:
            publish_many(APPLICATIONS, fresh)
        except BaseException:
            log.release(todo)
            raise
        log.published_many([i for i, _ in fresh])
        results = [Accepted(application_id=item.application_id,
                            status="duplicate" if outcome[item.application_id] == "duplicate" else "accepted")
                   for item, _, _ in values]
        new = sum(r.status == "accepted" for r in results)
        return IngestResponse(accepted=new, duplicates=len(results) - new, results=results)
    for item, value, _ in values:
        if outcome[item.application_id] == "duplicate":
            results.append(Accepted(application_id=item.application_id, status="duplicate"))
            continue
        try:
            publish(APPLICATIONS, item.application_id, value)
        except BaseException:
            log.release(todo)
            raise
        log.published(item.application_id)
        todo.remove(item.application_id)
        results.append(Accepted(application_id=item.application_id, status="accepted"))
    new = sum(r.status == "accepted" for r in results)
    return IngestResponse(accepted=new, duplicates=len(results) - new, results=results)


def admit_allocation(event: AllocationSet, log: IngestLog) -> JSONResponse | None:
    """None if the amendment is new or a re-post of the same content; else the 409 answer."""
    if log.claim_command(event.event_id, allocation_fingerprint(event)) == "conflict":
        return refusal(409, "conflict", "amendment_conflict",
                       f"amendment {event.amendment_id!r} was already posted with different content; "
                       "use a new amendment id for a new decision")
    return None
