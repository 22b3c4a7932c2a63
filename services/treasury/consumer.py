"""Follow ``payout-decisions`` and keep the registers on disk up to date (kafka-python).

At-least-once: offsets are committed only after the touched registers are written and
the dead letters sent. Final decisions are spooled per program and month
(``var/treasury/spool``), so a restarted consumer rebuilds the same registers; with a
ledger URL the ledger is the source instead and the spool only says which months to
re-export. Either way the registers are built by ``dopomoga.treasury.export.export_registers``,
which checks their control totals before writing. Re-exporting is idempotent
(byte-identical files), so replays are harmless. An event that does not decode is published
to ``dead-letter`` as a ``Rejected`` with the reason, as every service does.

After faults (issue 12, item 4):
- **one ledger generation per spool**: the spool records the generation it belongs to (the
  consumer group, which ``dopomoga up`` makes new for every fresh run, when it also deletes the
  ledgers). A follower of another generation moves the old spool and the registers written from
  it aside (``<spool>.archive/<generation>``, ``<registers>.archive/<generation>``) instead of
  merging two ledgers' decisions into one month's registers;
- **a kill between the spool append and the export** loses no register: a replayed decision marks
  its month for export even when the spool already has it (found by the crash suite);
- **torn spool lines** (a kill -9 in the middle of an append) are dropped and the file rewritten
  without them; the decision is still on the topic (its offset was not committed), so it comes back;
- **failed exports are retried**: a month whose export failed stays pending (``retry.json`` in the
  spool, ``dopomoga_treasury_exports_pending``), is retried at every flush and every
  ``RETRY_EVERY_S`` while idle, and is never forgotten by a commit;
- **lag**: ``dopomoga_consumer_lag{service="treasury"}`` per partition (fetch high watermark minus
  position, as the Faust services), alerted on in ``deploy/prometheus/alerts.yml``;
- a short session (10 s), so a killed follower's partitions are reassigned within seconds.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dopomoga.treasury.debtors import Debtor, debtor_for, load_debtors
from dopomoga.treasury.export import export_registers, facts_from
from dopomoga.treasury.registers import ExportError
from dopomoga.treasury.schedule import scheduled_execution
from schemas.events import PayoutDecided, Rejected
from services.platform.observability import (
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    TREASURY_EXPORTS_PENDING,
)
from services.platform.rejections import Rejection, Source, dead_letter, decode
from services.platform.topology import DEAD_LETTER, PAYOUT_DECISIONS

SERVICE = "treasury"
RETRY_EVERY_S = 30.0
GENERATION_FILE = "GENERATION"


def archive(path: Path, generation: str) -> Path | None:
    """Move ``path`` to ``<path>.archive/<generation>`` (a new name if that exists); None if absent."""
    if not path.exists():
        return None
    target = path.parent / f"{path.name}.archive" / (generation or "unknown")
    n = 1
    while target.exists():
        n += 1
        target = target.with_name(f"{generation or 'unknown'}.{n}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(target))
    return target


class Spool:
    """Final decisions per (program, period), deduplicated by application id, on disk."""

    def __init__(self, root: Path, generation: str | None = None):
        self.root = Path(root)
        self._cache: dict[tuple[str, str], dict[str, PayoutDecided]] = {}
        self.generation = generation
        self.torn = 0

    def previous_generation(self) -> str | None:
        """The generation the spool on disk belongs to, if it is not this one (None: same or new)."""
        marker = self.root / GENERATION_FILE
        if self.generation is None or not marker.exists():
            return None
        found = marker.read_text(encoding="utf-8").strip()
        return None if found == self.generation else found

    def claim(self) -> None:
        """Mark the spool as this generation's (after any other generation's was moved aside)."""
        if self.generation is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / GENERATION_FILE).write_text(self.generation + "\n", encoding="utf-8")

    def _path(self, program_id: str, period: str) -> Path:
        return self.root / program_id / f"{period}.jsonl"

    def _load(self, key: tuple[str, str]) -> dict[str, PayoutDecided]:
        if key not in self._cache:
            found: dict[str, PayoutDecided] = {}
            path = self._path(*key)
            if path.exists():
                good: list[str] = []
                torn = 0
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    if not line.strip():
                        continue
                    try:
                        decision = PayoutDecided.model_validate_json(line)
                    except ValueError:  # a torn append (kill -9): dropped; the topic still has it
                        torn += 1
                        continue
                    found[decision.application_id] = decision
                    good.append(line)
                if torn:
                    self.torn += torn
                    repaired = path.with_suffix(".jsonl.repair")
                    repaired.write_text("".join(g + "\n" for g in good), encoding="utf-8")
                    repaired.replace(path)
            self._cache[key] = found
        return self._cache[key]

    def add(self, decision: PayoutDecided) -> bool:
        key = (decision.program_id, decision.period)
        known = self._load(key)
        if known.get(decision.application_id) == decision:
            return False
        known[decision.application_id] = decision
        path = self._path(*key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as sink:
            sink.write(decision.model_dump_json() + "\n")
        return True

    def decisions(self, program_id: str, period: str) -> list[PayoutDecided]:
        return list(self._load((program_id, period)).values())


class Follower:
    """The broker-free core of the consumer: feed it message values, then ``flush``;
    send ``take_dead_letters()`` before committing."""

    def __init__(self, out: Path, spool: Spool, ledger: Any = None, debtors: dict[str, Debtor] | None = None,
                 catalog: Any = None, log: Any = None):
        self.out = Path(out)
        self.spool = spool
        self.ledger = ledger
        self.debtors = debtors if debtors is not None else load_debtors()
        self.catalog = catalog
        self.log = log
        self.dirty: set[tuple[str, str]] = set()
        self.rejected = 0
        self.dead_letters: list[Rejected] = []
        old = spool.previous_generation()
        if old is not None:  # another ledger generation's decisions: never merged into these registers
            archived = archive(spool.root, old)
            registers = archive(self.out, old)
            if self.log:
                self.log.warning("previous_generation_archived", generation=old,
                                 spool=str(archived), registers=str(registers))
        spool.claim()
        self._retry_file = spool.root / "retry.json"
        self.failed: set[tuple[str, str]] = self._load_failed()
        self.last_retry = time.monotonic()

    def _load_failed(self) -> set[tuple[str, str]]:
        try:
            pending = {tuple(item) for item in json.loads(self._retry_file.read_text(encoding="utf-8"))}
        except (OSError, ValueError):
            pending = set()
        TREASURY_EXPORTS_PENDING.set(len(pending))
        return pending  # type: ignore[return-value]

    def _save_failed(self) -> None:
        TREASURY_EXPORTS_PENDING.set(len(self.failed))
        if not self.failed and not self._retry_file.exists():
            return
        self._retry_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._retry_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(self.failed)), encoding="utf-8")
        tmp.replace(self._retry_file)

    def handle(self, raw: bytes | None, source: Source | None = None) -> None:
        EVENTS_CONSUMED.labels(SERVICE, PAYOUT_DECISIONS).inc()
        try:
            decision = decode(PayoutDecided, raw)  # strict: these decisions become payment files
        except Rejection as rejection:
            self.rejected += 1
            EVENTS_DEAD_LETTERED.labels(SERVICE, rejection.reason_code).inc()
            if self.log:
                self.log.warning("dead_lettered", topic=PAYOUT_DECISIONS, reason_code=rejection.reason_code,
                                 partition=source.partition if source else None,
                                 offset=source.offset if source else None)
            self.dead_letters.append(dead_letter(SERVICE, source or Source(PAYOUT_DECISIONS, None, None), raw, rejection))
            return
        if not decision.final:
            return
        self.spool.add(decision)
        # dirty even when the spool knew it: a record comes again only if its offset was not
        # committed, i.e. its month's export may not have happened (killed between the spool
        # append and the export). Re-exporting is idempotent (byte-identical files).
        self.dirty.add((decision.program_id, decision.period))

    def take_dead_letters(self) -> list[Rejected]:
        taken, self.dead_letters = self.dead_letters, []
        return taken

    def _decisions(self, program_id: str, period: str) -> list[PayoutDecided]:
        if self.ledger is not None:
            return self.ledger.final_payouts(program_id=program_id, period=period)
        return self.spool.decisions(program_id, period)

    def flush(self) -> list[Path]:
        """Export every month a final decision touched, and every month whose export failed before
        (control totals checked); the written directories. A month that fails stays pending (on
        disk) for the next flush, so committing the offsets never loses it."""
        written: list[Path] = []
        self.last_retry = time.monotonic()
        for program_id, period in sorted(self.dirty | self.failed):
            try:
                decisions = self._decisions(program_id, period)
                execution = None if self.ledger is None else scheduled_execution(
                    decisions, lambda app_id: facts_from(self.ledger, app_id))  # Annex 7 needs the facts
                result = export_registers(decisions, program_id, period, self.out, execution_date=execution,
                                          debtor=debtor_for(program_id, self.debtors), catalog=self.catalog)
            except (ExportError, OSError) as exc:
                EVENTS_DEAD_LETTERED.labels(SERVICE, "export_failed").inc()
                self.failed.add((program_id, period))
                if self.log:  # the reason up to its first colon: what failed, never the XSD's quoted value
                    self.log.error("export_failed", program=program_id, period=period,
                                   error_type=type(exc).__name__, reason=str(exc).split(":", 1)[0][:200])
                continue
            self.failed.discard((program_id, period))
            written.append(result.directory)
            if self.log:
                self.log.info("registers_written", program=program_id, period=period)
        self.dirty.clear()
        self._save_failed()
        return written

    def retry_due(self) -> bool:
        return bool(self.failed) and time.monotonic() - self.last_retry >= RETRY_EVERY_S


def _source(record: Any) -> Source:
    """Where a kafka-python record came from (its timestamp is in milliseconds)."""
    timestamp = getattr(record, "timestamp", None)
    return Source(getattr(record, "topic", PAYOUT_DECISIONS), getattr(record, "partition", None),
                  getattr(record, "offset", None), timestamp / 1000 if timestamp else None)


def run(bootstrap: str, follower: Follower, *, group_id: str = "dopomoga-treasury",
        idle_timeout_s: float | None = None, poll_ms: int = 500,
        consumer_factory: Callable[..., Any] | None = None,
        producer_factory: Callable[..., Any] | None = None) -> int:
    """Poll ``payout-decisions`` until interrupted (or idle for ``idle_timeout_s``).

    After each batch: registers written, dead letters sent and acknowledged, then the offsets
    committed (the producer is made at the first dead letter)."""
    if consumer_factory is None:
        from kafka import KafkaConsumer

        consumer_factory = KafkaConsumer
    if producer_factory is None:
        from kafka import KafkaProducer

        producer_factory = KafkaProducer
    producer = None
    consumer = consumer_factory(
        PAYOUT_DECISIONS,
        bootstrap_servers=bootstrap.split(","),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="dopomoga-treasury",
        # kafka-python 3's 45 s session kept a killed follower's partitions unassigned for a minute
        # or two; 10 s (heartbeat 1 s) hands them to the restarted one within seconds.
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    seen = 0
    last = time.monotonic()
    try:
        while True:
            batch = consumer.poll(timeout_ms=poll_ms, max_records=2000)
            records = [record for records in batch.values() for record in records]
            for record in records:
                follower.handle(record.value, _source(record))
            seen += len(records)
            _report_lag(consumer)
            if not records and follower.retry_due():
                follower.flush()  # failed exports, retried while idle
            if records:
                follower.flush()
                dead = follower.take_dead_letters()
                if dead:
                    if producer is None:
                        producer = producer_factory(bootstrap_servers=bootstrap.split(","), acks="all",
                                                    client_id="dopomoga-treasury")
                    for record in dead:
                        producer.send(DEAD_LETTER, key=record.source_topic.encode(),
                                      value=record.model_dump_json().encode())
                    producer.flush()
                consumer.commit()
                last = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                return seen
    except KeyboardInterrupt:
        return seen
    finally:
        consumer.close()
        if producer is not None:
            producer.close()


def _report_lag(consumer: Any) -> None:
    """``dopomoga_consumer_lag{service="treasury"}``: fetch high watermark minus position."""
    try:
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = consumer.position(tp) if highwater is not None else None
            if highwater is not None and position is not None:
                CONSUMER_LAG.labels(SERVICE, tp.topic, str(tp.partition)).set(max(0, highwater - position))
    except Exception:  # metrics never stop the follower
        pass


def summary_json(directory: Path) -> dict:
    return json.loads((Path(directory) / "control.json").read_text(encoding="utf-8"))
