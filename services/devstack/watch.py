"""Reading outcomes back from the broker: payout decisions and dead letters (kafka-python,
manual partition assignment, no consumer group - so no join delay)."""

from __future__ import annotations

import base64
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition

from schemas.events import TRUSTED, PayoutDecided, Rejected
from services.platform.topology import (
    APPLICATIONS,
    BY_NAME,
    DEAD_LETTER,
    ELIGIBILITY_DECISIONS,
    ENTITLEMENTS,
    PAYOUT_DECISIONS,
)

#: Topics on which a rejection means "this application will get no payout decision".
APPLICATION_PATH = (APPLICATIONS, ELIGIBILITY_DECISIONS, ENTITLEMENTS)


def original_application_id(rejected: Rejected) -> str | None:
    try:
        data = json.loads(base64.b64decode(rejected.original_b64))
        return str(data["application_id"]) if isinstance(data, dict) and "application_id" in data else None
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Outcomes:
    """Everything seen on ``payout-decisions`` and ``dead-letter`` so far."""

    decisions: dict[str, list[PayoutDecided]] = field(default_factory=lambda: defaultdict(list))
    rejected: list[Rejected] = field(default_factory=list)
    rejected_ids: set[str] = field(default_factory=set)

    def finals(self, application_id: str) -> list[PayoutDecided]:
        return [d for d in self.decisions.get(application_id, []) if d.final]

    def final(self, application_id: str) -> PayoutDecided | None:
        finals = self.finals(application_id)
        return finals[-1] if finals else None

    def distinct_finals(self, application_id: str) -> set[str]:
        return {d.model_dump_json() for d in self.finals(application_id)}

    def settled(self, application_id: str) -> bool:
        return application_id in self.rejected_ids or bool(self.finals(application_id))

    def seen(self, application_id: str) -> bool:
        return application_id in self.rejected_ids or application_id in self.decisions


class Watcher:
    def __init__(self, bootstrap: str, topics: tuple[str, ...] = (PAYOUT_DECISIONS, DEAD_LETTER)):
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            group_id=None,
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # record CRCs are checked (kafka-python's default), in C: the crc32c package
            client_id="dopomoga-watch",
        )
        partitions = [TopicPartition(t, p) for t in topics for p in range(BY_NAME[t].partitions)]
        self.consumer.assign(partitions)
        self.consumer.seek_to_beginning(*partitions)
        self.outcomes = Outcomes()
        self.on_decision: Callable[[PayoutDecided, float], None] | None = None
        #: When set, payout decisions are handed over as raw bytes (with the poll time) instead of
        #: being decoded and recorded in ``outcomes``: benchmarks time the pipeline, not the watcher.
        self.on_decision_bytes: Callable[[bytes, float], None] | None = None

    def poll(self, timeout_ms: int = 200) -> int:
        batch = self.consumer.poll(timeout_ms=timeout_ms, max_records=50_000)
        count = 0
        now = time.time()
        for tp, records in batch.items():
            for record in records:
                count += 1
                if tp.topic == PAYOUT_DECISIONS and self.on_decision_bytes is not None:
                    self.on_decision_bytes(record.value, now)
                elif tp.topic == PAYOUT_DECISIONS:
                    decision = PayoutDecided.model_validate_json(record.value, context=TRUSTED)  # our own output
                    self.outcomes.decisions[decision.application_id].append(decision)
                    if self.on_decision:
                        self.on_decision(decision, now)
                else:
                    rejected = Rejected.model_validate_json(record.value)
                    self.outcomes.rejected.append(rejected)
                    app_id = original_application_id(rejected)
                    if app_id and rejected.source_topic in APPLICATION_PATH:
                        self.outcomes.rejected_ids.add(app_id)
        return count

    def wait(self, done: Callable[[Outcomes], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.poll()
            if done(self.outcomes):
                return True
        return done(self.outcomes)

    def close(self) -> None:
        self.consumer.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
