"""Storage of the budget ledger: the database, and each input applied once, in one transaction.

- ``Store`` owns the database (SQLAlchemy engine, alembic migrations) and runs inputs: each
  input (a claim or a command, keyed by its deterministic id) is applied in one database
  transaction (``dopomoga.budget.tx.Tx``); the decisions it produced are stored byte for byte,
  and replaying the input returns exactly those bytes and changes nothing (at-least-once
  consumers re-emit them).
- every mutation takes the next ``budget_inputs.seq``. On SQLite one writer holds the database
  (``BEGIN IMMEDIATE``) and the number is ``max(seq) + 1``. On PostgreSQL budgets do not
  serialise each other (issue 15): a transaction first takes a transaction-scoped advisory lock
  per budget scope it touches (``lock_keys``: ``<scope>:<year>``, the scope being the budget key -
  the program or its pooled line's holder - when the ledger opens the store; sorted, so two writers never
  wait on each other in a circle), then draws its numbers from the sequence
  ``budget_inputs_seq_gen``. Writers on different budgets run in parallel; writers on one budget
  queue on its lock, in the order the numbers then say. A deadlock or serialization failure
  (PostgreSQL aborts one side) and a unique-key race on the same input id are retried with
  jittered backoff. Before: every writer read ``max(seq)`` and collided on it, and 1.7-16.5 % of
  submissions failed after 8 retries with 2-4 writers.

No budget policy here: what an input does to a budget is ``dopomoga.budget.policy``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from dopomoga.budget import schema as t
from dopomoga.budget.tx import Tx, bulk_insert
from dopomoga.errors import LedgerError
from schemas.events import PayoutDecided

DEFAULT_URL = "sqlite:///var/budget.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_RETRIES = 40  # with jittered backoff: ~20 s before a truly contended input gives up
_SEQUENCE = "budget_inputs_seq_gen"
_GLOBAL_SCOPE = "*"  # an input whose budgets are not known locks every budget (exclusive)
MIGRATION_LOCK = 0x646F706F6D6F6761 & 0x7FFFFFFFFFFFFFFF  # pg_advisory_xact_lock key: "dopomoga"
_CHUNK = 500  # ids per IN (...) query
Input = tuple[str, str, Any, Callable[[Tx], None]]  # input id, kind, occurred_at, work[, the event]

_B = bindparam
_Q_KNOWN = select(t.inputs.c.input_id, t.inputs.c.outputs).where(
    t.inputs.c.input_id.in_(_B("ids", expanding=True))
)
_Q_BODIES = (
    select(t.decisions.c.input_id, t.decisions.c.body)
    .where(t.decisions.c.input_id.in_(_B("ids", expanding=True)))
    .order_by(t.decisions.c.input_id, t.decisions.c.position)
)
_Q_MAX_SEQ = select(func.max(t.inputs.c.seq))
_Q_NEXTVAL = text(f"SELECT nextval('{_SEQUENCE}') FROM generate_series(1, :n)")
_Q_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_Q_LOCK_SHARED = text("SELECT pg_advisory_xact_lock_shared(:k)")


class Published(NamedTuple):
    """A decision and the JSON the ledger stored for it (what the budget service publishes)."""

    decision: PayoutDecided
    body: str


class Store:
    """The ledger's database: migrations, and inputs applied once each, in one transaction."""

    def __init__(self, url: str = DEFAULT_URL, scope: Callable[[str], str] | None = None):
        self.url = url
        self.engine = make_engine(url)
        self.postgres = self.engine.dialect.name == "postgresql"
        #: the budget scope of a program for the advisory locks: programs that share a budget must
        #: share a scope. ``BudgetLedger`` passes its lines' holder (the budget key: the program, or
        #: the holder id of a line allocated whole), so programs of one city proceed in parallel and
        #: a pooled line's programs queue on one lock. Everything a transaction reads or writes is
        #: under its input's budget key (claims, plans, closes, carry-over, the next year of a
        #: December claim); numbers come from the sequence. Every writer of one database must use
        #: the same scope (stop all budget replicas when upgrading from the city scope). The
        #: default, the city, is safe without the budget lines (a line never spans cities).
        self.scope: Callable[[str], str] = scope or city_scope

    def upgrade(self, revision: str = "head") -> None:
        """Run the alembic migrations (``upgrade head`` by default)."""
        self._migrate(alembic_command.upgrade, revision)

    def downgrade(self, revision: str) -> None:
        """Run the alembic migrations down to ``revision`` (``base`` drops the ledger)."""
        self._migrate(alembic_command.downgrade, revision)

    def _migrate(self, action: Callable[[AlembicConfig, str], None], revision: str) -> None:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # One migrator at a time: four processes opening a fresh ledger at once raced on
                # CREATE TABLE / alembic_version (UniqueViolation). The lock ends with the transaction;
                # the others then find the schema at head and do nothing.
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            config.attributes["connection"] = conn
            action(config, revision)
            if conn.dialect.name == "postgresql":
                _ensure_sequence(conn, dropped=revision == "base" and action is alembic_command.downgrade)

    def close(self) -> None:
        self.engine.dispose()

    def run(self, inputs: Sequence[Input]) -> list[list[Published]]:
        """Process ``inputs`` in order in one transaction; each one's decisions, in order."""
        last: Exception | None = None
        for attempt in range(_RETRIES):
            try:
                return self._transaction(inputs)
            except IntegrityError as exc:  # a concurrent writer took the seq (SQLite), or the same input
                last = exc
            except OperationalError as exc:
                if not _retryable(exc):
                    raise
                last = exc  # PostgreSQL aborted one side of a deadlock / serialization conflict
            time.sleep(random.uniform(0, min(1.0, 0.005 * 2**attempt)))
        if len(inputs) > 1:  # one by one, exactly as separate calls would go (errors included)
            return [self.run([item])[0] for item in inputs]
        raise RuntimeError(f"budget ledger: could not commit input after {_RETRIES} attempts") from last

    def _transaction(self, inputs: Sequence[Input]) -> list[list[Published]]:
        with self.engine.begin() as conn:
            stored = self._stored(conn, [item[0] for item in inputs])
            for item in inputs:
                if item[0] in stored and len(item) > 4:
                    check_same_content(conn, item[0], item[1], item[4])  # type: ignore[misc]
            if all(item[0] in stored for item in inputs):
                return [self._replay(stored[item[0]]) for item in inputs]
            if self.postgres:
                self._lock_budgets(conn, inputs)
                numbers = iter(conn.execute(_Q_NEXTVAL, {"n": len(inputs) + 1}).scalars().all())
                tx = Tx(conn, next(numbers))
            else:
                first = (conn.execute(_Q_MAX_SEQ).scalar() or 0) + 1
                numbers = itertools.count(first + 1)
                tx = Tx(conn, first)
            input_rows: list[dict[str, Any]] = []
            decision_rows: list[dict[str, Any]] = []
            results: list[list[Published]] = []
            taken: set[str] = set()  # inputs taken by this transaction
            for input_id, kind, occurred_at, work, *event in inputs:
                bodies = stored.get(input_id)
                if bodies is not None:
                    if event and input_id in taken:  # a second copy in this batch: the same content?
                        tx.sync()  # the first copy's rows, for the comparison to read
                        check_same_content(conn, input_id, kind, event[0])
                    results.append(self._replay(bodies))
                    continue
                tx.start(occurred_at)
                work(tx)
                published = []
                for position, decision in enumerate(tx.emitted):
                    body = decision.model_dump_json()
                    published.append(Published(decision, body))
                    decision_rows.append(
                        {
                            "event_id": decision.event_id,
                            "input_id": input_id,
                            "position": position,
                            "application_id": decision.application_id,
                            "revision": tx.revisions[decision.event_id],
                            "program_id": decision.program_id,
                            "period": decision.period,
                            "final": decision.final,
                            "body": body,
                        }
                    )
                input_rows.append(
                    {
                        "input_id": input_id,
                        "seq": tx.seq,
                        "kind": kind,
                        "occurred_at": occurred_at.isoformat(),
                        "outputs": len(tx.emitted),
                    }
                )
                stored[input_id] = [p.body for p in published]  # a second copy later in the batch is a replay
                taken.add(input_id)
                results.append(published)
                tx.seq = next(numbers)
            tx.flush_claims()
            tx.flush_totals()
            bulk_insert(conn, t.inputs, input_rows)
            bulk_insert(conn, t.decisions, decision_rows)
            return results

    def _lock_budgets(self, conn: Connection, inputs: Sequence[Input]) -> None:
        """Take the advisory locks of every budget the inputs touch, sorted (PostgreSQL only).

        Each scope's lock is exclusive; every transaction also holds the global lock shared,
        and an input whose budgets are unknown takes it exclusive (it waits for all others)."""
        keys: set[str] = set()
        for item in inputs:
            keys |= lock_keys(item[4] if len(item) > 4 else None, self.scope)  # type: ignore[misc]
        if _GLOBAL_SCOPE in keys:
            conn.execute(_Q_LOCK, {"k": _lock_id(_GLOBAL_SCOPE)})
            return
        conn.execute(_Q_LOCK_SHARED, {"k": _lock_id(_GLOBAL_SCOPE)})
        for lock in sorted(_lock_id(key) for key in keys):
            conn.execute(_Q_LOCK, {"k": lock})

    @staticmethod
    def _replay(bodies: list[str]) -> list[Published]:
        return [Published(PayoutDecided.model_validate_json(body), body) for body in bodies]

    @staticmethod
    def _stored(conn: Connection, input_ids: Sequence[str]) -> dict[str, list[str]]:
        """The decision bodies of the inputs already taken (input id -> bodies, in order)."""
        stored: dict[str, list[str]] = {}
        unique = list(dict.fromkeys(input_ids))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            with_outputs = []
            for input_id, outputs in conn.execute(_Q_KNOWN, {"ids": chunk}):
                stored[input_id] = []
                if outputs:
                    with_outputs.append(input_id)
            if with_outputs:
                for input_id, body in conn.execute(_Q_BODIES, {"ids": with_outputs}):
                    stored[input_id].append(body)
        return stored


def city_scope(program_id: str) -> str:
    """``zhytomyr.centenarians`` -> ``zhytomyr``: the budgets a city's lines may share."""
    return program_id.split(".", 1)[0]


def lock_keys(event: Any, scope: Callable[[str], str] = city_scope) -> set[str]:
    """The budget scopes (``<scope>:<year>``) an input may read or write.

    A claim: its budget year, and the next for a December claim (a late one moves to January). An
    allocation: its year and the year before (it pays what that year carried over). A month's
    close: its year, and the next for December (payables). A parameter confirmation: its year.
    Anything else: every budget (``*``)."""
    program_id = getattr(event, "program_id", None)
    if not isinstance(program_id, str):
        return {_GLOBAL_SCOPE}
    kind = getattr(event, "event_type", type(event).__name__)
    period = getattr(event, "period", None)
    year = getattr(event, "year", None)
    if isinstance(period, str) and len(period) >= 7:
        year = int(period[:4])
    if not isinstance(year, int):
        return {_GLOBAL_SCOPE}
    years = {year}
    if kind == "AllocationSet":
        years.add(year - 1)
    elif kind in ("PeriodClosed", "EntitlementCalculated") and isinstance(period, str) and period[5:7] == "12":
        years.add(year + 1)  # December: what is deferred or arrives late moves into the next year
    elif kind not in ("EntitlementCalculated", "PeriodClosed", "ParameterConfirmed"):
        return {_GLOBAL_SCOPE}
    return {f"{scope(program_id)}:{y}" for y in years}


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(b"dopomoga-budget:" + key.encode()).digest()[:8], "big", signed=True)


def _retryable(exc: OperationalError) -> bool:
    """PostgreSQL's deadlock_detected (40P01) and serialization_failure (40001)."""
    return getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def _ensure_sequence(conn: Connection, dropped: bool = False) -> None:
    """The sequence the inputs' numbers come from on PostgreSQL, never behind ``max(seq)``
    (created here, not by a migration: it only exists where the dialect needs it)."""
    if dropped:
        conn.exec_driver_sql(f"DROP SEQUENCE IF EXISTS {_SEQUENCE}")
        return
    conn.exec_driver_sql(f"CREATE SEQUENCE IF NOT EXISTS {_SEQUENCE}")
    top = conn.execute(_Q_MAX_SEQ).scalar() or 0
    if top:
        conn.exec_driver_sql(f"SELECT setval('{_SEQUENCE}', GREATEST({int(top)}, "
                             f"(SELECT last_value FROM {_SEQUENCE})))")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_same_content(conn: Connection, input_id: str, kind: str, event: Any) -> None:
    """An input id seen before must carry the same content (TigerBeetle's ``exists_with_different_…``):
    raise ``LedgerError`` naming both versions by digest (never their values) if it does not.

    A claim is compared by its application (without ``occurred_at``), an allocation by its amounts,
    plan and legal reference; a month's close has no content beyond its id.
    """
    if kind == "EntitlementCalculated":
        body = conn.execute(
            select(t.claims.c.entitlement).where(t.claims.c.entitlement_decision_id == input_id)
        ).scalar()
        if not body:
            return
        known = json.loads(body).get("application", {})
        known.pop("occurred_at", None)
        new = event.application.model_dump(mode="json", exclude={"occurred_at"})
        if known != new:
            raise LedgerError("input_conflict", f"claim {input_id} was taken with another application: first version "
                              f"digest {_digest(known)}, this version digest {_digest(new)}")
    elif kind == "AllocationSet":
        row = conn.execute(
            select(t.allocation_history.c.annual_kop, t.allocation_history.c.plan_kind,
                   t.allocation_history.c.plan, t.allocation_history.c.legal_reference)
            .where(t.allocation_history.c.event_id == input_id)
        ).first()
        if row is None:
            return
        known = {"annual_kop": row[0], "plan_kind": row[1], "legal_reference": row[3]}
        new = {"annual_kop": event.annual_kop, "plan_kind": event.plan.kind, "legal_reference": event.legal_reference}
        months = event.plan.months
        if months is not None:  # the stored plan is the twelve monthly amounts
            known["months"] = json.loads(row[2])
            new["months"] = [months.get(f"{event.year}-{m:02d}", 0) for m in range(1, 13)]
        if known != new:
            raise LedgerError("amendment_conflict", f"amendment {event.amendment_id} was applied with other content: "
                              f"first version digest {_digest(known)}, this version digest {_digest(new)}")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:") or ":memory:" in url
        if not memory:
            path = url.split("sqlite:///", 1)[-1]
            if path:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        options: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if memory:
            options["poolclass"] = StaticPool
        engine = create_engine(url, **options)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, start transactions (SQLAlchemy's pysqlite
            # recipe), and start them IMMEDIATE so concurrent writers queue on the lock.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=MEMORY" if memory else "PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the batch's offsets are committed (NORMAL in WAL mode
            # may roll the last commits back on a power cut). Cost: bench/ledger.py, docs/operations.md.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)
