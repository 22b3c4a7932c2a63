"""SQLite adapter of the engine's ``GrantHistory`` port (the eligibility service's state).

A grant is recorded *provisionally* when an application is found eligible (so two
applications racing for the same one-off grant are not both approved), confirmed when
its final payout decision pays money, and forgotten when the final decision refuses it.
Writes are grouped into transactions by the caller (``commit`` once per batch), before
the batch's Kafka offsets are committed; replays are idempotent (primary keys).

Every decided application id is kept with the fingerprint of its content (``remember_application``): a
replay of the same content is harmless, an id reused for other content is a conflict the
service dead-letters (TigerBeetle's ``exists_with_different_…``), so a second person's
application under a known id is never decided, and so never recorded as granted. A final
decision confirms only the grant of the person it pays (``confirm``).

The file is ``synchronous=FULL``: a commit survives a power cut before the batch's offsets
are committed (with ``NORMAL`` in WAL mode the last commits could roll back after them).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from dopomoga.rules.history import Grant

SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (
    subject_key TEXT NOT NULL,
    application_id TEXT NOT NULL,
    program_id TEXT NOT NULL,
    granted_on TEXT NOT NULL,
    period TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'provisional',
    PRIMARY KEY (subject_key, application_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS grants_by_application ON grants (application_id);
CREATE TABLE IF NOT EXISTS applications (
    application_id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    source TEXT NOT NULL,
    decision BLOB
) WITHOUT ROWID;
"""


class SqliteGrantHistory:
    """``GrantHistory`` backed by one SQLite file (``:memory:`` for tests)."""

    def __init__(self, path: str | Path = ":memory:"):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level="DEFERRED", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(applications)")}
        if "decision" not in columns:  # a file from before replays were made deterministic
            self._db.execute("ALTER TABLE applications ADD COLUMN decision BLOB")
        self._db.commit()

    # -- GrantHistory port ------------------------------------------------------------------
    def record(self, grant: Grant, status: str = "provisional") -> None:
        rows = [
            (key, grant.application_id, grant.program_id, grant.on.isoformat(), grant.period, status)
            for key in grant.keys
        ]
        # A provisional record never downgrades a confirmed one.
        self._db.executemany(
            "INSERT INTO grants VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject_key, application_id) DO UPDATE SET "
            "status = CASE WHEN grants.status = 'final' THEN 'final' ELSE excluded.status END",
            rows,
        )

    def forget(self, application_id: str) -> None:
        self._db.execute("DELETE FROM grants WHERE application_id = ?", (application_id,))

    def count(
        self,
        keys: Sequence[str],
        program_ids: Sequence[str],
        start: dt.date | None,
        end: dt.date | None,
        period: str | None,
        exclude_application: str,
    ) -> int:
        if not keys or not program_ids:
            return 0
        sql = [
            f"SELECT COUNT(DISTINCT application_id) FROM grants WHERE subject_key IN ({','.join('?' * len(keys))})",
            f"AND program_id IN ({','.join('?' * len(program_ids))}) AND application_id != ?",
        ]
        args: list[object] = [*keys, *program_ids, exclude_application]
        if start is not None:
            sql.append("AND granted_on >= ?")
            args.append(start.isoformat())
        if end is not None:
            sql.append("AND granted_on <= ?")
            args.append(end.isoformat())
        if period is not None:
            sql.append("AND period = ?")
            args.append(period)
        return self._db.execute(" ".join(sql), args).fetchone()[0]

    # -- feedback from final payout decisions ------------------------------------------------
    def confirm(self, application_id: str, fallback: Grant | None = None) -> None:
        """A final decision paid money: make the grant final (record ``fallback`` if it was never seen).

        ``fallback.keys[0]`` is the paid person's key: if the application's provisional grant names
        another person (an id reused for someone else before conflicts were refused), that record
        is replaced by the paid person's, so nobody who was not paid is ever recorded as granted.
        """
        if fallback is not None:
            recorded = {row[0] for row in self._db.execute(
                "SELECT subject_key FROM grants WHERE application_id = ?", (application_id,))}
            if recorded and fallback.keys[0] not in recorded:
                self.forget(application_id)
        updated = self._db.execute(
            "UPDATE grants SET status = 'final' WHERE application_id = ?", (application_id,)
        ).rowcount
        if not updated and fallback is not None:
            self.record(fallback, status="final")

    def known_application(self, application_id: str) -> tuple[str, str] | None:
        """The (fingerprint, source) an application id was decided with, if it was."""
        row = self._db.execute(
            "SELECT fingerprint, source FROM applications WHERE application_id = ?", (application_id,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def remember_application(self, application_id: str, fingerprint: str, source: str,
                             decision: bytes | None = None) -> None:
        """Keep the content fingerprint of a decided application, and the decision's bytes (a replay
        changes nothing, and re-emits these bytes: ``decision_of``)."""
        self._db.execute("INSERT OR IGNORE INTO applications VALUES (?, ?, ?, ?)",
                         (application_id, fingerprint, source, decision))

    def decision_of(self, application_id: str) -> bytes | None:
        """The eligibility decision first emitted for an application (replays re-emit it)."""
        row = self._db.execute("SELECT decision FROM applications WHERE application_id = ?", (application_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def status(self, application_id: str) -> str | None:
        row = self._db.execute(
            "SELECT status FROM grants WHERE application_id = ? LIMIT 1", (application_id,)
        ).fetchone()
        return row[0] if row else None

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.close()
