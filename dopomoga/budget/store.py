"""Storage of the budget ledger: the database, and each input applied once, in one transaction.

- ``Store`` owns the database (SQLAlchemy engine, alembic migrations) and runs inputs: each
  input (a claim or a command, keyed by its deterministic id) is applied in one database
  transaction (``dopomoga.budget.tx.Tx``); the decisions it produced are stored byte for byte,
  and replaying the input returns exactly those bytes and changes nothing (at-least-once
  consumers re-emit them).
- every mutation takes the next ``budget_inputs.seq``; concurrent writers collide on that
  unique number and the loser retries, so mutations are serialised on PostgreSQL as on
  SQLite without dialect-specific locking.

No budget policy here: what an input does to a budget is ``dopomoga.budget.policy``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from dopomoga.budget import schema as t
from dopomoga.budget.tx import Tx
from dopomoga.errors import LedgerError
from schemas.events import PayoutDecided

DEFAULT_URL = "sqlite:///var/budget.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_RETRIES = 8
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
_I_INPUT = insert(t.inputs)
_I_DECISIONS = insert(t.decisions)


class Published(NamedTuple):
    """A decision and the JSON the ledger stored for it (what the budget service publishes)."""

    decision: PayoutDecided
    body: str


class Store:
    """The ledger's database: migrations, and inputs applied once each, in one transaction."""

    def __init__(self, url: str = DEFAULT_URL):
        self.url = url
        self.engine = make_engine(url)

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

    def close(self) -> None:
        self.engine.dispose()

    def run(self, inputs: Sequence[Input]) -> list[list[Published]]:
        """Process ``inputs`` in order in one transaction; each one's decisions, in order."""
        last: Exception | None = None
        for _ in range(_RETRIES):
            try:
                return self._transaction(inputs)
            except IntegrityError as exc:  # a concurrent writer took the seq, or the same input
                last = exc
                continue
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
            tx = Tx(conn, (conn.execute(_Q_MAX_SEQ).scalar() or 0) + 1)
            input_rows: list[dict[str, Any]] = []
            decision_rows: list[dict[str, Any]] = []
            results: list[list[Published]] = []
            for input_id, kind, occurred_at, work, *_ in inputs:
                bodies = stored.get(input_id)
                if bodies is not None:
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
                results.append(published)
                tx.seq += 1
            tx.flush_claims()
            tx.flush_totals()
            conn.execute(_I_INPUT, input_rows)
            if decision_rows:
                conn.execute(_I_DECISIONS, decision_rows)
            return results

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
