"""Follow ``payout-decisions`` and keep the registers on disk up to date (kafka-python).

At-least-once: offsets are committed only after the touched registers are written and
the dead letters sent. Final decisions are spooled per program and month
(``var/treasury/spool``), so a restarted consumer rebuilds the same registers; with a
ledger URL the ledger is the source instead and the spool only says which months to
re-export. Either way the registers are built by ``dopomoga.treasury.export.export_registers``,
which checks their control totals before writing. Re-exporting is idempotent
(byte-identical files), so replays are harmless. An event that does not decode is published
to ``dead-letter`` as a ``Rejected`` with the reason, as every service does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dopomoga.treasury.debtors import Debtor, debtor_for, load_debtors
from dopomoga.treasury.export import export_registers
from dopomoga.treasury.registers import ExportError
from schemas.events import PayoutDecided, Rejected
from services.platform.observability import EVENTS_CONSUMED, EVENTS_DEAD_LETTERED
from services.platform.rejections import Rejection, Source, dead_letter, decode
from services.platform.topology import DEAD_LETTER, PAYOUT_DECISIONS

SERVICE = "treasury"


class Spool:
    """Final decisions per (program, period), deduplicated by application id, on disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._cache: dict[tuple[str, str], dict[str, PayoutDecided]] = {}

    def _path(self, program_id: str, period: str) -> Path:
        return self.root / program_id / f"{period}.jsonl"

    def _load(self, key: tuple[str, str]) -> dict[str, PayoutDecided]:
        if key not in self._cache:
            found: dict[str, PayoutDecided] = {}
            path = self._path(*key)
            if path.exists():
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        decision = PayoutDecided.model_validate_json(line)
                        found[decision.application_id] = decision
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
        if self.spool.add(decision):
            self.dirty.add((decision.program_id, decision.period))

    def take_dead_letters(self) -> list[Rejected]:
        taken, self.dead_letters = self.dead_letters, []
        return taken

    def _decisions(self, program_id: str, period: str) -> list[PayoutDecided]:
        if self.ledger is not None:
            return self.ledger.final_payouts(program_id=program_id, period=period)
        return self.spool.decisions(program_id, period)

    def flush(self) -> list[Path]:
        """Export every month a final decision touched (control totals checked); the written directories."""
        written: list[Path] = []
        for program_id, period in sorted(self.dirty):
            try:
                result = export_registers(self._decisions(program_id, period), program_id, period, self.out,
                                          debtor=debtor_for(program_id, self.debtors), catalog=self.catalog)
            except ExportError as exc:
                EVENTS_DEAD_LETTERED.labels(SERVICE, "export_failed").inc()
                if self.log:
                    self.log.error("export_failed", program=program_id, period=period, reason=str(exc)[:300])
                continue
            written.append(result.directory)
            if self.log:
                self.log.info("registers_written", program=program_id, period=period)
        self.dirty.clear()
        return written


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


def summary_json(directory: Path) -> dict:
    return json.loads((Path(directory) / "control.json").read_text(encoding="utf-8"))
