"""Idempotent ingest: which application ids were already published, with a fingerprint.

Same id and same content: a duplicate (answered 202, not published again). Same id and
different content: a conflict (409) - a registry must use a new id for a new application.
The log is SQLite (``var/gateway-ingest.sqlite`` by default; ``:memory:`` in tests).
Downstream services dedupe on ``event_id`` as well, so a lost log only costs a re-publish.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path


def fingerprint(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


class IngestLog:
    def __init__(self, path: str | Path = ":memory:"):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL") if str(path) != ":memory:" else None
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS ingested (application_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)"
        )
        self._lock = threading.Lock()

    def seen(self, application_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT fingerprint FROM ingested WHERE application_id = ?", (application_id,)
            ).fetchone()
        return None if row is None else row[0]

    def record(self, application_id: str, print_: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO ingested (application_id, fingerprint) VALUES (?, ?)", (application_id, print_)
            )

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM ingested").fetchone()[0]
