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

from schemas.events import AllocationSet, ApplicationSubmitted, ParameterConfirmed, PeriodClosed
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


class Undelivered(RuntimeError):
    """The broker did not acknowledge some records (the emulator exits non-zero)."""


class Registry:
    """Publishes and checks that the broker acknowledged every record (acks=all).

    ``acked`` holds the keys of the applications the broker acknowledged, in order; ``failed``
    counts those it did not (after the producer's retries). With ``strict`` (the default) a batch
    with failures raises ``Undelivered`` once the rest are flushed: a broker that died mid-stream
    is reported, never counted as published (issue 15: "published 3000" while 739 arrived).
    """

    def __init__(self, bootstrap: str, strict: bool = True, **producer_options):
        self.producer = producer(bootstrap, **producer_options)
        self.strict = strict
        self.acked: list[bytes] = []
        self.failed = 0
        self.last_error: BaseException | None = None

    def _ack(self, key: bytes, _metadata=None) -> None:
        self.acked.append(key)

    def _nack(self, exc: BaseException) -> None:
        self.failed += 1
        self.last_error = exc

    def _send(self, topic: str, key: bytes, value: bytes) -> None:
        try:
            future = self.producer.send(topic, key=key, value=value)
        except Exception as exc:  # the producer refused it outright (buffer full, closed, timeout)
            self._nack(exc)
            return
        future.add_callback(lambda metadata, key=key: self._ack(key, metadata))
        future.add_errback(self._nack)

    def _flush(self, what: str, before_failed: int, sent: int) -> None:
        self.producer.flush()
        failed = self.failed - before_failed
        if failed and self.strict:
            raise Undelivered(f"{failed} of {sent} {what} were not acknowledged by the broker "
                              f"({type(self.last_error).__name__})")

    def publish_raw(self, raw_values: Iterable[bytes], rate: float | None = None,
                    on_sent=None) -> int:
        """Publish raw application lines (as is: invalid ones are the services' to dead-letter);
        returns how many were sent, once all of them are acknowledged (else ``Undelivered``)."""
        sent = 0
        before = self.failed
        started = time.monotonic()
        for raw in raw_values:
            if rate:
                wait = started + sent / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            self._send(APPLICATIONS, application_key(raw), raw)
            sent += 1
            if on_sent:
                on_sent(sent)
        self._flush("applications", before, sent)
        return sent

    def publish(self, applications: Iterable[ApplicationSubmitted], rate: float | None = None, on_sent=None) -> int:
        return self.publish_raw((a.model_dump_json().encode() for a in applications), rate, on_sent)

    def command(self, command: AllocationSet | PeriodClosed | ParameterConfirmed) -> None:
        if isinstance(command, AllocationSet):
            key = command_key(command.program_id, command.year, command.district)
        elif isinstance(command, PeriodClosed):
            key = command_key(command.program_id, command.period, command.district)
        else:  # ParameterConfirmed: the program's budget year
            key = command_key(command.program_id, command.year)
        before = self.failed
        self._send(BUDGET_COMMANDS, key.encode(), command.model_dump_json().encode())
        self._flush("budget commands", before, 1)

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
