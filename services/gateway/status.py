"""What happened to each application, as the gateway learns it: accepted, decided, dead-lettered.

The gateway cannot see the services' stores, so it follows three topics into a small store of
its own (``StatusFollower``, a kafka-python consumer thread in the gateway's group ``dopomoga-gateway``):

- ``applications``: the id, program, period and registry of every application (no personal data);
- ``payout-decisions``: the latest budget decision of each application (status, amount, final);
- ``dead-letter``: every rejection with its reason, the service that rejected it (the stage), the
  time, and the original bytes (shown masked to viewers, correctable by a registry role).

The store is SQL through SQLAlchemy Core: SQLite ``<var>/gateway-status.sqlite`` by default, any
URL in ``DOPOMOGA_GATEWAY_DB`` (PostgreSQL in production). Replicas share the consumer group, so
each reads some partitions: several replicas need the shared database, one replica may keep SQLite. Every
write is an upsert keyed by application id or event id, so replaying a topic (offsets are committed
after the write; a crash replays a little) changes nothing. A corrected dead letter stays in the
store, linked to the application it was resubmitted as (``resubmitted_as``); resubmitting it
again is refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    select,
)
from sqlalchemy import event as sa_event

from services.platform.topology import APPLICATIONS, DEAD_LETTER, PAYOUT_DECISIONS

log = logging.getLogger("dopomoga.gateway.status")
metadata = MetaData()

applications = Table(
    "app_status", metadata,
    Column("application_id", String(96), primary_key=True),
    Column("program_id", String(96), index=True),
    Column("period", String(7), index=True),
    Column("registry", String(96)),
    Column("status", String(16), nullable=False, index=True),  # accepted | decided | dead_lettered
    Column("stage", String(32)),  # the service that decided or rejected it
    Column("reason_code", String(96)),
    Column("reason", Text),
    Column("at", String(40)),  # when it entered the current status (event time, ISO 8601 UTC)
    Column("payout_status", String(16)),
    Column("payout_kop", Integer),
    Column("coefficient", String(64)),
    Column("final", Boolean),
    Column("dead_letter_id", String(96)),
)

dead_letters = Table(
    "dead_letters", metadata,
    Column("event_id", String(96), primary_key=True),
    Column("occurred_at", String(40), index=True),
    Column("service", String(32), index=True),
    Column("source_topic", String(64)),
    Column("reason_code", String(96), index=True),
    Column("reason", Text),
    Column("application_id", String(96), index=True),
    Column("program_id", String(96), index=True),
    Column("original_b64", Text),
    Column("resubmitted_as", String(96)),
    Column("resubmitted_by", String(96)),
    Column("resubmitted_at", String(40)),
)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="seconds")
    return str(value)[:40]


def _decode_original(b64: str | None) -> tuple[dict[str, Any] | None, str]:
    """The original message as JSON (when it is JSON) and as text (for display)."""
    raw = base64.b64decode(b64 or "")
    text = raw.decode("utf-8", errors="replace")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, text
    return (data if isinstance(data, dict) else None), text


def engine_for(url: str) -> Engine:
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        @sa_event.listens_for(engine, "connect")
        def _pragmas(conn, _record):  # pragma: no cover - trivial
            if ":memory:" not in url:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=5000")
    return engine


class StatusStore:
    def __init__(self, engine: Engine | str):
        self.engine = engine_for(engine) if isinstance(engine, str) else engine
        metadata.create_all(self.engine)

    # -- writes (the follower, and the gateway on ingest) -----------------------------------------
    def _upsert(self, conn, table: Table, key: str, row: dict[str, Any], keep_if: Any = None) -> None:
        current = conn.execute(select(table).where(table.c[key] == row[key])).mappings().first()
        if current is None:
            conn.execute(table.insert().values(**row))
        elif keep_if is None or not keep_if(current):
            conn.execute(table.update().where(table.c[key] == row[key]).values(**row))

    def accepted(self, conn, app: dict[str, Any], at: str | None) -> None:
        app_id = app.get("application_id")
        if not isinstance(app_id, str):
            return
        row = {"application_id": app_id[:96], "program_id": str(app.get("program_id", ""))[:96],
               "period": app.get("period") or str(app.get("submitted_on", ""))[:7] or None,
               "registry": str(app.get("registry", ""))[:96], "status": "accepted", "stage": "gateway",
               "at": at or _iso(app.get("occurred_at"))}
        # an application already decided or dead-lettered keeps that status (replays, late copies)
        self._upsert(conn, applications, "application_id", row, keep_if=lambda cur: cur["status"] != "accepted")

    def decided(self, conn, payout: dict[str, Any]) -> None:
        app_id = payout.get("application_id")
        if not isinstance(app_id, str):
            return
        self._upsert(conn, applications, "application_id", {
            "application_id": app_id, "program_id": payout.get("program_id"), "period": payout.get("period"),
            "status": "decided", "stage": "budget", "reason_code": payout.get("reason_code"), "reason": None,
            "at": _iso(payout.get("occurred_at")), "payout_status": payout.get("status"),
            "payout_kop": payout.get("payout_kop"), "coefficient": payout.get("coefficient"),
            "final": bool(payout.get("final")),
        })

    def rejected(self, conn, record: dict[str, Any]) -> None:
        event_id = record.get("event_id")
        if not isinstance(event_id, str):
            return
        original, _ = _decode_original(record.get("original_b64"))
        inner = original or {}
        app_id = inner.get("application_id")
        app_id = app_id[:96] if isinstance(app_id, str) else None
        program_id = inner.get("program_id") if isinstance(inner.get("program_id"), str) else None
        at = _iso(record.get("occurred_at"))
        row = {"event_id": event_id, "occurred_at": at, "service": record.get("service"),
               "source_topic": record.get("source_topic"), "reason_code": record.get("reason_code"),
               "reason": record.get("reason"), "application_id": app_id, "program_id": program_id and program_id[:96],
               "original_b64": record.get("original_b64")}
        self._upsert(conn, dead_letters, "event_id", row, keep_if=lambda cur: True)
        if app_id:
            period = inner.get("period") or (str(inner.get("submitted_on", ""))[:7] or None)
            self._upsert(conn, applications, "application_id", {
                "application_id": app_id, "program_id": program_id and program_id[:96],
                "period": period if isinstance(period, str) else None, "status": "dead_lettered",
                "stage": record.get("service"), "reason_code": record.get("reason_code"),
                "reason": record.get("reason"), "at": at, "dead_letter_id": event_id,
            }, keep_if=lambda cur: cur["status"] == "decided")

    def apply(self, records: Iterable[tuple[str, bytes | None, float | None]]) -> int:
        """Topic records (topic, value, timestamp) into the store, in one transaction."""
        n = 0
        with self.engine.begin() as conn:
            for topic, value, timestamp in records:
                if not value:
                    continue
                try:
                    data = orjson.loads(value)
                except orjson.JSONDecodeError:
                    continue  # not ours to judge: the services dead-letter it, and we learn that
                if not isinstance(data, dict):
                    continue
                if topic == APPLICATIONS:
                    at = _iso(dt.datetime.fromtimestamp(timestamp, dt.UTC)) if timestamp else None
                    self.accepted(conn, data, at)
                elif topic == PAYOUT_DECISIONS:
                    self.decided(conn, data)
                elif topic == DEAD_LETTER:
                    self.rejected(conn, data)
                n += 1
        return n

    def record_accepted(self, items: Iterable[dict[str, Any]], at: dt.datetime) -> None:
        with self.engine.begin() as conn:
            for item in items:
                self.accepted(conn, item, _iso(at))

    def mark_resubmitted(self, event_id: str, new_id: str, by: str, at: dt.datetime) -> bool:
        """Link a dead letter to the application it was corrected into; False if it already was."""
        with self.engine.begin() as conn:
            done = conn.execute(
                dead_letters.update().where(dead_letters.c.event_id == event_id, dead_letters.c.resubmitted_as.is_(None))
                .values(resubmitted_as=new_id, resubmitted_by=by[:96], resubmitted_at=_iso(at))
            )
            return done.rowcount == 1

    def unmark_resubmitted(self, event_id: str) -> None:
        """Undo ``mark_resubmitted`` when publishing the correction failed (it may be tried again)."""
        with self.engine.begin() as conn:
            conn.execute(dead_letters.update().where(dead_letters.c.event_id == event_id)
                         .values(resubmitted_as=None, resubmitted_by=None, resubmitted_at=None))

    # -- reads ----------------------------------------------------------------------------------
    def application(self, application_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(applications).where(applications.c.application_id == application_id)).mappings().first()
        return dict(row) if row else None

    def search(self, *, application_id: str | None = None, program_id: str | None = None,
               status: str | None = None, period: str | None = None, limit: int = 50,
               offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        q = select(applications)
        if application_id:
            q = q.where(applications.c.application_id.like(f"%{application_id}%"))
        if program_id:
            q = q.where(applications.c.program_id == program_id)
        if status:
            column = applications.c.payout_status if status in ("paid", "prorated", "pending", "deferred", "refused") \
                else applications.c.status
            q = q.where(column == status)
        if period:
            q = q.where(applications.c.period == period)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            rows = conn.execute(q.order_by(applications.c.application_id).limit(limit).offset(offset)).mappings()
            return total, [dict(r) for r in rows]

    def dead_letter(self, event_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(dead_letters).where(dead_letters.c.event_id == event_id)).mappings().first()
        if not row:
            return None
        out = dict(row)
        out["original"], out["original_text"] = _decode_original(out.get("original_b64"))
        return out

    def dead_letters(self, *, service: str | None = None, reason_code: str | None = None,
                     program_id: str | None = None, since: str | None = None, open_only: bool = False,
                     limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        q = select(dead_letters)
        for column, value in (("service", service), ("reason_code", reason_code), ("program_id", program_id)):
            if value:
                q = q.where(dead_letters.c[column] == value)
        if since:
            q = q.where(dead_letters.c.occurred_at >= since)
        if open_only:
            q = q.where(dead_letters.c.resubmitted_as.is_(None))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
            rows = conn.execute(q.order_by(dead_letters.c.occurred_at.desc(), dead_letters.c.event_id)
                                .limit(limit).offset(offset)).mappings()
            return total, [dict(r) for r in rows]

    def tally(self, period: str) -> dict[str, dict[str, int]]:
        """program -> {payout status or status: applications} for one month."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(applications.c.program_id, applications.c.status, applications.c.payout_status, func.count())
                .where(applications.c.period == period)
                .group_by(applications.c.program_id, applications.c.status, applications.c.payout_status)
            ).all()
        out: dict[str, dict[str, int]] = {}
        for program, status, payout_status, n in rows:
            bucket = out.setdefault(program or "", {})
            key = payout_status or status
            bucket[key] = bucket.get(key, 0) + n
        return out

    def latest_period(self, upto: str | None = None) -> str | None:
        """The latest month with a decision, not after ``upto`` (default: this month)."""
        upto = upto or dt.date.today().strftime("%Y-%m")
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(applications.c.period))
                                .where(applications.c.status == "decided", applications.c.period <= upto)).scalar()

    def dead_letters_since(self, since: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(dead_letters)
                                .where(dead_letters.c.occurred_at >= since,
                                       dead_letters.c.resubmitted_as.is_(None))).scalar_one()

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(applications.c.status, func.count()).group_by(applications.c.status)).all()
            open_dl = conn.execute(select(func.count()).select_from(dead_letters)
                                   .where(dead_letters.c.resubmitted_as.is_(None))).scalar_one()
        return {**{status: n for status, n in rows}, "dead_letters_open": open_dl}


class StatusFollower:
    """A daemon thread feeding ``StatusStore`` from the broker; never stops the gateway on errors."""

    TOPICS = (APPLICATIONS, PAYOUT_DECISIONS, DEAD_LETTER)

    LAG_EVERY_S = 15.0

    def __init__(self, store: StatusStore, bootstrap: str, group: str, watched: dict[str, str] | None = None):
        self.store, self.bootstrap, self.group = store, bootstrap, group
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-status", daemon=True)
        self.connected = False
        self.last_error: str | None = None
        #: service -> consumer group whose lag the overview shows (records committed behind the log end)
        self.watched = dict(watched or {})
        self.lag: dict[str, int] = {}

    def start(self) -> StatusFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _lags(self, consumer) -> dict[str, int]:
        """Each watched group's committed offsets behind the end of its partitions (best effort)."""
        try:
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap.split(","), client_id="dopomoga-gateway-lag")
            try:
                found = admin.list_group_offsets(list(self.watched.values()))
            finally:
                admin.close()
            lags = {}
            for service, group in self.watched.items():
                offsets = {tp: om.offset for tp, om in (found.get(group) or {}).items() if om.offset >= 0}
                ends = consumer.end_offsets(list(offsets)) if offsets else {}
                lags[service] = sum(max(0, ends.get(tp, off) - off) for tp, off in offsets.items())
            return lags
        except Exception as exc:  # lag is information, never a reason to stop following
            log.info("status follower: consumer lag unavailable (%s)", type(exc).__name__)
            return {}

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            consumer = None
            try:
                from kafka import KafkaConsumer

                consumer = KafkaConsumer(
                    *self.TOPICS, bootstrap_servers=self.bootstrap.split(","), group_id=self.group,
                    client_id="dopomoga-gateway-status", auto_offset_reset="earliest", enable_auto_commit=False,
                    max_poll_records=2000,
                )
                self.connected, backoff = True, 1.0
                measured = 0.0
                while not self._stop.is_set():
                    if self.watched and time.monotonic() - measured > self.LAG_EVERY_S:
                        measured = time.monotonic()
                        self.lag = self._lags(consumer)
                    batch = consumer.poll(timeout_ms=300)
                    records = [(r.topic, r.value, (r.timestamp or 0) / 1000 or None)
                               for part in batch.values() for r in part]
                    if records:
                        self.store.apply(records)
                        consumer.commit()
            except Exception as exc:  # the broker is away: keep serving, try again
                self.connected, self.last_error = False, type(exc).__name__
                log.warning("status follower: %s; retrying in %.0f s", type(exc).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                if consumer is not None:
                    try:
                        consumer.close()
                    except Exception:  # pragma: no cover
                        pass
