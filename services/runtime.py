"""What the three Faust services share: the app factory (settings that work on Tansu),
decoding with dead-letter classification, the batch loop and the lag gauge.

No business logic here: decisions come from ``dopomoga`` (engine, ledger).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import faust
from pydantic import BaseModel, ValidationError

from dopomoga.rules.engine import decision_id
from schemas.events import SCHEMA_VERSION, Rejected
from services.config import ServiceSettings
from services.observability import (
    CONSUMER_LAG,
    DECISION_LATENCY,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_PRODUCED,
    configure_logging,
    serve_metrics,
)
from services.topology import BY_NAME, DEAD_LETTER, MAX_MESSAGE_BYTES

M = TypeVar("M", bound=BaseModel)
UTC = dt.UTC
#: Original bytes kept in a dead-letter record (the whole message up to this size).
MAX_ORIGINAL_KEPT = 640 * 1024


class Rejection(Exception):
    """An input this service cannot process; it goes to ``dead-letter`` with the reason."""

    def __init__(self, reason_code: str, reason: str):
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason


def _frames(exc: BaseException) -> str:
    """Where an exception happened (file:line of each frame), without its message (may hold personal data)."""
    return " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(traceback.extract_tb(exc.__traceback__)))


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(event)"


def classify_validation(exc: ValidationError) -> Rejection:
    """A reason code and a readable reason, without echoing input values (personal data)."""
    errors = exc.errors(include_url=False, include_input=True)
    code = "invalid_event"
    for err in errors:
        loc = tuple(str(p) for p in err["loc"])
        msg = err["msg"]
        if "schema_version" in loc:
            code = "unsupported_schema_version"
        elif "iban" in loc or "IBAN" in msg:
            code = "invalid_iban"
        elif loc[:1] in (("applicant",), ("payee",)) and any(w in msg for w in ("РНОКПП", "ЄДРПОУ", "passport")):
            code = "invalid_identifier"
        elif err["type"] == "int_type" and isinstance(err.get("input"), float):
            code = "float_money"
        else:
            continue
        break
    reason = "; ".join(f"{_where(err['loc'])}: {err['msg']}" for err in errors[:5])
    if len(errors) > 5:
        reason += f"; and {len(errors) - 5} more"
    return Rejection(code, reason[:1900])


def decode(model: type[M], raw: bytes | None) -> M:
    """Bytes -> event, or ``Rejection`` (oversized, invalid_json, unsupported_schema_version, ...)."""
    if raw is None:
        raise Rejection("empty_message", "the message has no value")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejection("oversized", f"the message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES} bytes")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise Rejection("invalid_json", f"not valid JSON: {first['msg']}") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise Rejection("invalid_json", "not valid JSON") from None
        if not isinstance(data, dict):
            raise Rejection("invalid_json", f"expected a JSON object, got {type(data).__name__}") from None
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            shown = version if isinstance(version, int | str) and len(str(version)) < 20 else "?"
            raise Rejection(
                "unsupported_schema_version",
                f"schema_version {shown!r} is not supported; this service reads version {SCHEMA_VERSION}",
            ) from None
        raise classify_validation(exc) from None


@dataclass(frozen=True, slots=True)
class Source:
    topic: str
    partition: int | None
    offset: int | None
    timestamp: float | None = None


def dead_letter(service: str, source: Source, raw: bytes | None, rejection: Rejection) -> Rejected:
    """The Rejected record of an input; its id is derived from (service, topic, partition, offset)."""
    original = raw or b""
    reason = rejection.reason
    if len(original) > MAX_ORIGINAL_KEPT:
        reason = f"{reason} (original truncated to the first {MAX_ORIGINAL_KEPT} of {len(original)} bytes)"
        original = original[:MAX_ORIGINAL_KEPT]
    when = dt.datetime.fromtimestamp(source.timestamp, UTC) if source.timestamp else dt.datetime.now(UTC)
    ident = decision_id(f"rejected:{service}", f"{source.topic}:{source.partition}:{source.offset}")
    return Rejected(
        event_id=ident,
        occurred_at=when,
        service=service,
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        reason_code=rejection.reason_code,
        reason=reason[:2000],
        original_b64=base64.b64encode(original).decode("ascii"),
    )


Output = tuple[str, str, bytes]  # (topic, key, value)
Handler = Callable[[bytes | None, Source], Iterable[Output]]


def make_app(cfg: ServiceSettings, **overrides: Any) -> faust.App:
    """A Faust app with the settings measured to work on Tansu 0.6.0 (streaming-notes §1)."""
    options: dict[str, Any] = dict(
        broker=cfg.broker_url,
        key_serializer="raw",
        value_serializer="raw",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=0.5,
        broker_rebalance_timeout=6.0,
        broker_request_timeout=10.0,
        broker_commit_interval=0.5,
        broker_commit_every=10_000,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.002,
        producer_max_request_size=2 * 1024 * 1024,
        consumer_max_fetch_size=4 * 1024 * 1024,
        stream_buffer_maxsize=8192,
        stream_recovery_delay=0.0,
        processing_guarantee="at_least_once",  # never exactly_once on Tansu (no usable transactions)
        store="memory://",  # no Faust tables: state lives in SQLite (tables lose writes on Tansu recovery)
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        datadir=str(cfg.var_dir / "faust" / cfg.app_id),
    )
    options.update(overrides)
    (cfg.var_dir / "faust").mkdir(parents=True, exist_ok=True)
    return faust.App(cfg.app_id, **options)


def raw_topic(app: faust.App, name: str) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=BY_NAME[name].partitions,
        internal=False,
    )


class StreamService:
    """One service: its Faust app, its outbound topics and the shared batch loop."""

    def __init__(self, cfg: ServiceSettings, outputs: Iterable[str]):
        self.cfg = cfg
        self.name = cfg.service
        self.log = configure_logging(cfg.service)
        self.app = make_app(cfg)
        self.topics = {name: raw_topic(self.app, name) for name in {*outputs, DEAD_LETTER}}
        self.positions: dict[Any, int] = {}
        self.app.timer(1.0)(self._update_lag)

    def agent(
        self,
        topic: str,
        handler: Handler,
        after_batch: Callable[[], Awaitable[None] | None] | None = None,
    ) -> Any:
        """Register an agent (concurrency 1) that runs ``handler`` on each message of ``topic``."""
        source_topic = raw_topic(self.app, topic)
        service = self

        async def process(stream: faust.StreamT) -> None:
            async for events in stream.take_events(service.cfg.batch_size, within=service.cfg.batch_within_s):
                await service._process_batch(topic, events, handler)
                if after_batch is not None:
                    result = after_batch()
                    if result is not None:
                        await result

        process.__name__ = f"{self.name}_{topic.replace('-', '_')}"
        return self.app.agent(source_topic, name=process.__name__, concurrency=1)(process)

    async def _process_batch(self, topic: str, events: list, handler: Handler) -> None:
        consumed = EVENTS_CONSUMED.labels(self.name, topic)
        latency = DECISION_LATENCY.labels(self.name)
        for event in events:
            message = event.message
            started = time.perf_counter()
            source = Source(topic, message.partition, message.offset, message.timestamp)
            consumed.inc()
            outputs = self._handle(handler, message.value, source)
            for out_topic, key, value in outputs:
                await self.topics[out_topic].send(key=key.encode(), value=value)
                EVENTS_PRODUCED.labels(self.name, out_topic).inc()
            latency.observe(time.perf_counter() - started)
            self.positions[message.tp] = message.offset + 1

    def _handle(self, handler: Handler, raw: bytes | None, source: Source) -> list[Output]:
        try:
            return list(handler(raw, source))
        except Rejection as rejection:
            return [self._dead(source, raw, rejection)]
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            code = getattr(exc, "reason_code", None)  # ApplicationError, LedgerError
            if isinstance(code, str):
                return [self._dead(source, raw, Rejection(code, str(exc)))]
            # A defect or an input the domain cannot handle: park it, keep the stream moving.
            self.log.error(
                "processing_failed",
                topic=source.topic,
                partition=source.partition,
                offset=source.offset,
                error_type=type(exc).__name__,
                where=_frames(exc),
            )
            reason = f"{type(exc).__name__} while processing (see service logs at this offset)"
            return [self._dead(source, raw, Rejection("processing_failed", reason))]
        except Exception as exc:
            # Infrastructure failure (database, disk): crash; the supervisor restarts and replays.
            self.log.error(
                "fatal_error",
                topic=source.topic,
                partition=source.partition,
                offset=source.offset,
                error_type=type(exc).__name__,
                where=_frames(exc),
            )
            os._exit(70)

    def _dead(self, source: Source, raw: bytes | None, rejection: Rejection) -> Output:
        EVENTS_DEAD_LETTERED.labels(self.name, rejection.reason_code).inc()
        self.log.warning(
            "dead_lettered",
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
            reason_code=rejection.reason_code,
        )
        record = dead_letter(self.name, source, raw, rejection)
        return DEAD_LETTER, source.topic, record.model_dump_json().encode()

    async def _update_lag(self) -> None:
        try:
            consumer = self.app.consumer
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                position = self.positions.get(tp)
                if position is None:
                    position = await consumer.position(tp)
                if position is None:
                    continue
                CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(max(0, highwater - position))
        except Exception:  # metrics must never take the service down
            pass

    def run(self) -> None:
        """Serve /metrics, then run the Faust worker until SIGTERM/SIGINT."""
        port = serve_metrics(self.cfg.metrics_port)
        self.log.info("starting", app_id=self.cfg.app_id, broker=self.cfg.broker_url, metrics_port=port)
        worker = faust.Worker(
            self.app, loglevel=os.environ.get("DOPOMOGA_FAUST_LOG_LEVEL", "WARNING"), quiet=True, redirect_stdouts=False
        )
        worker.execute_from_commandline()
