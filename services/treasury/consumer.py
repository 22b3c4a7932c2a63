"""Follow ``payout-decisions`` and keep the registers on disk up to date (kafka-python).

At-least-once: offsets are committed only after the touched registers are written.
Final decisions are spooled per program and month (``var/treasury/spool``), so a
restarted consumer rebuilds the same registers; with a ledger URL the ledger is the
source instead and the spool only says which months to re-export. Re-exporting is
idempotent (byte-identical files), so replays are harmless.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.events import PayoutDecided
from services.observability import EVENTS_CONSUMED, EVENTS_DEAD_LETTERED
from services.topology import PAYOUT_DECISIONS
from services.treasury.debtors import Debtor, debtor_for, load_debtors
from services.treasury.exporter import export_period
from services.treasury.registers import ExportError, build_registers, write_registers

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
    """The broker-free core of the consumer: feed it message values, then ``flush``."""

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

    def handle(self, raw: bytes | None) -> None:
        EVENTS_CONSUMED.labels(SERVICE, PAYOUT_DECISIONS).inc()
        try:
            decision = PayoutDecided.model_validate_json(raw or b"")
        except ValidationError:
            self.rejected += 1
            EVENTS_DEAD_LETTERED.labels(SERVICE, "invalid_event").inc()
            return
        if not decision.final:
            return
        if self.spool.add(decision):
            self.dirty.add((decision.program_id, decision.period))

    def flush(self) -> list[Path]:
        written: list[Path] = []
        for program_id, period in sorted(self.dirty):
            try:
                if self.ledger is not None:
                    result = export_period(self.ledger, program_id, period, self.out,
                                           debtor=debtor_for(program_id, self.debtors), catalog=self.catalog)
                    written.append(result.directory)
                else:
                    from services.treasury.exporter import program_purpose

                    registers = build_registers(self.spool.decisions(program_id, period), program_id, period,
                                                debtor_for(program_id, self.debtors),
                                                purpose=program_purpose(program_id, self.catalog))
                    written.append(write_registers(registers, self.out)[0])
            except ExportError as exc:
                EVENTS_DEAD_LETTERED.labels(SERVICE, "export_failed").inc()
                if self.log:
                    self.log.error("export_failed", program=program_id, period=period, reason=str(exc)[:300])
                continue
            if self.log:
                self.log.info("registers_written", program=program_id, period=period)
        self.dirty.clear()
        return written


def run(bootstrap: str, follower: Follower, *, group_id: str = "dopomoga-treasury",
        idle_timeout_s: float | None = None, poll_ms: int = 500,
        consumer_factory: Callable[..., Any] | None = None) -> int:
    """Poll ``payout-decisions`` until interrupted (or idle for ``idle_timeout_s``)."""
    if consumer_factory is None:
        from kafka import KafkaConsumer

        consumer_factory = KafkaConsumer
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
                follower.handle(record.value)
            seen += len(records)
            if records:
                follower.flush()
                consumer.commit()
                last = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                return seen
    except KeyboardInterrupt:
        return seen
    finally:
        consumer.close()


def summary_json(directory: Path) -> dict:
    return json.loads((Path(directory) / "control.json").read_text(encoding="utf-8"))
