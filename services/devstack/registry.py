"""Registry emulator: publishes applications (JSONL or synthetic) and budget commands.

kafka-python 3.x producer, acks=all, idempotence OFF (Tansu 0.6.0's memory engine has no
usable producer ids for aiokafka, and we do not need it: consumers are idempotent).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from kafka import KafkaProducer

from schemas.events import AllocationSet, ApplicationSubmitted, PeriodClosed
from services.platform.topology import APPLICATIONS, BUDGET_COMMANDS, command_key


def producer(bootstrap: str, **overrides) -> KafkaProducer:
    options = dict(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,
        retries=5,
        client_id="dopomoga-registry",
    )
    options.update(overrides)
    return KafkaProducer(**options)


def application_key(raw: bytes) -> bytes:
    """The application id of a raw line (best effort: malformed lines get an empty key)."""
    try:
        data = json.loads(raw)
        return str(data.get("application_id", "")).encode()
    except (ValueError, AttributeError):
        return b""


class Registry:
    def __init__(self, bootstrap: str, **producer_options):
        self.producer = producer(bootstrap, **producer_options)

    def publish_raw(self, raw_values: Iterable[bytes], rate: float | None = None,
                    on_sent=None) -> int:
        """Publish raw application lines (as is: invalid ones are the services' to dead-letter)."""
        sent = 0
        started = time.monotonic()
        for raw in raw_values:
            if rate:
                wait = started + sent / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            self.producer.send(APPLICATIONS, key=application_key(raw), value=raw)
            sent += 1
            if on_sent:
                on_sent(sent)
        self.producer.flush()
        return sent

    def publish(self, applications: Iterable[ApplicationSubmitted], rate: float | None = None, on_sent=None) -> int:
        return self.publish_raw((a.model_dump_json().encode() for a in applications), rate, on_sent)

    def command(self, command: AllocationSet | PeriodClosed) -> None:
        if isinstance(command, AllocationSet):
            key = command_key(command.program_id, command.year, command.district)
        else:
            key = command_key(command.program_id, command.period, command.district)
        self.producer.send(BUDGET_COMMANDS, key=key.encode(), value=command.model_dump_json().encode())
        self.producer.flush()

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        for line in source:
            line = line.strip()
            if line:
                yield line
