"""Idempotent ingest: which application ids (and allocation amendments) were taken, atomically.

An id is *claimed* with its content's fingerprint by one unique insert before anything is
published (TigerBeetle's ``exists`` / ``exists_with_different_…``):

- a new id: claimed (``pending``), published, then marked ``published``; if publishing fails the
  claim is released, so the registry's retry can go through;
- the same id with the same content, already published: a duplicate (202, not published again);
- the same id with different content, or an id another request is publishing right now: 409.

So of twelve parallel posts of one id with different persons exactly one gets 202. The log is
SQLite (``var/gateway-ingest.sqlite``; ``:memory:`` in tests), one lock around each statement
group. Downstream services dedupe and detect conflicts on their own as well (the eligibility
service's grant history, the ledger's input ids), so a lost log costs no double decision.

``admit_applications`` is the whole ``POST /applications`` after validation: plausibility
(``dopomoga.rules.plausibility``, on the gateway's clock), the message size limit (413), the
claims, and the publishing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from fastapi.responses import JSONResponse

from dopomoga.rules.plausibility import Implausible, check_application
from dopomoga.rules.programs import Catalog
from schemas.events import AllocationSet, ApplicationSubmitted
from services.gateway.models import Accepted, IngestResponse
from services.platform.topology import APPLICATIONS, MAX_MESSAGE_BYTES

#: A pending claim older than this was left by a gateway that died while publishing.
STALE_CLAIM_S = 120.0
Claim = Literal["new", "duplicate", "conflict", "in_progress"]


def fingerprint(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def allocation_fingerprint(event: AllocationSet) -> str:
    """The content of an amendment, without its receiving time (re-posts get a new ``occurred_at``)."""
    return fingerprint(event.model_dump_json(exclude={"occurred_at"}).encode("utf-8"))


class IngestLog:
    def __init__(self, path: str | Path = ":memory:"):
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if not memory:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS ingested (application_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)"
        )
        # ``state`` was added with the atomic claim; rows of older logs are published ones.
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(ingested)")}
        if "state" not in columns:
            self._db.execute("ALTER TABLE ingested ADD COLUMN state TEXT NOT NULL DEFAULT 'published'")
            self._db.execute("ALTER TABLE ingested ADD COLUMN claimed_at REAL NOT NULL DEFAULT 0")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS commands (event_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)"
        )
        self._lock = threading.Lock()

    def seen(self, application_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT fingerprint FROM ingested WHERE application_id = ?", (application_id,)
            ).fetchone()
        return None if row is None else row[0]

    def claim(self, marks: Sequence[tuple[str, str]]) -> dict[str, Claim]:
        """Claim every (application id, fingerprint) at once, or none: if any is a conflict or in
        progress, the new claims of this call are withdrawn. Returns each id's outcome."""
        outcome: dict[str, Claim] = {}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for application_id, mark in marks:
                    now = time.time()
                    # a claim left pending by a gateway that died while publishing may be taken over
                    inserted = self._db.execute(
                        "INSERT INTO ingested (application_id, fingerprint, state, claimed_at) "
                        "VALUES (?, ?, 'pending', ?) ON CONFLICT (application_id) DO UPDATE SET "
                        "fingerprint = excluded.fingerprint, claimed_at = excluded.claimed_at "
                        "WHERE ingested.state = 'pending' AND ingested.claimed_at < ?",
                        (application_id, mark, now, now - STALE_CLAIM_S),
                    ).rowcount
                    if inserted:
                        outcome[application_id] = "new"
                        continue
                    known, state = self._db.execute(
                        "SELECT fingerprint, state FROM ingested WHERE application_id = ?", (application_id,)
                    ).fetchone()
                    if known != mark:
                        outcome[application_id] = "conflict"
                    else:
                        outcome[application_id] = "duplicate" if state == "published" else "in_progress"
                if any(v in ("conflict", "in_progress") for v in outcome.values()):
                    self._db.execute("ROLLBACK")
                else:
                    self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return outcome

    def published(self, application_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE ingested SET state = 'published' WHERE application_id = ?", (application_id,))

    def published_many(self, application_ids: Sequence[str]) -> None:
        """``published`` for a batch, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("UPDATE ingested SET state = 'published' WHERE application_id = ?",
                                     [(i,) for i in application_ids])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def release(self, application_ids: Sequence[str]) -> None:
        """Withdraw claims whose publishing failed (the registry may retry them)."""
        with self._lock:
            self._db.executemany(
                "DELETE FROM ingested WHERE application_id = ? AND state = 'pending'", [(i,) for i in application_ids]
            )

    def record(self, application_id: str, print_: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO ingested (application_id, fingerprint, state) VALUES (?, ?, 'published')",
                (application_id, print_),
            )

    def claim_command(self, event_id: str, mark: str) -> Literal["new", "duplicate", "conflict"]:
        """Record a budget command's content by its event id (an amendment id names one content)."""
        with self._lock:
            inserted = self._db.execute(
                "INSERT INTO commands (event_id, fingerprint) VALUES (?, ?) ON CONFLICT (event_id) DO NOTHING",
                (event_id, mark),
            ).rowcount
            if inserted:
                return "new"
            known = self._db.execute("SELECT fingerprint FROM commands WHERE event_id = ?", (event_id,)).fetchone()[0]
        return "duplicate" if known == mark else "conflict"

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM ingested WHERE state = 'published'").fetchone()[0]


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
