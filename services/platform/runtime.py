"""What the three Faust services share: the app factory (settings that work on Tansu),
the batch loop, the outbox and the lag gauge (decoding and dead-letter records are in
``services.platform.rejections``).

No business logic here: decisions come from ``dopomoga`` (engine, ledger).
"""

from __future__ import annotations

import asyncio
import gc
import os
import struct
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, cast

import faust

from services.platform.config import ServiceSettings
from services.platform.eager import DopomogaApp
from services.platform.lean import LeanBatches
from services.platform.lifecycle import install_stop_deadline
from services.platform.observability import (
    BATCHES,
    CONSUMER_LAG,
    DECISION_LATENCY,
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_PRODUCED,
    configure_logging,
    serve_metrics,
)
from services.platform.rejections import Rejection, Source, dead_letter
from services.platform.topology import BY_NAME, DEAD_LETTER


def _frames(exc: BaseException) -> str:
    """Where an exception happened (file:line of each frame), without its message (may hold personal data)."""
    return " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(traceback.extract_tb(exc.__traceback__)))


Output = tuple[str, str, bytes]  # (topic, key, value)
Handler = Callable[[bytes | None, Source], Iterable[Output]]
#: A whole batch: (value, source) of each message -> the outputs of each message, in order.
BatchHandler = Callable[[list[tuple[bytes | None, Source]]], list[list[Output]]]


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
        # Record batches up to 512 KiB (aiokafka's default is 16 KiB: two 6 KB decisions) and
        # under the topics' max.message.bytes (1 MiB). Outbox builds them, one per partition.
        producer_max_batch_size=512 * 1024,
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
    return DopomogaApp(cfg.app_id, **options)  # Faust's app, consumer delivering eagerly (services/platform/eager.py)


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


_M, _MASK = 0x5BD1E995, 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def murmur2_fast(data: bytes) -> int:
    """Kafka's murmur2 (``aiokafka.partitioner.murmur2``: the same value for every input), reading the
    key's 4-byte words in one ``struct`` call instead of byte by byte: about a quarter of the time
    (12 µs a key there: 3 % of the budget's serial stage, issue 15)."""
    length = len(data)
    h = 0x9747B28C ^ length
    words = _WORDS.get(length)
    if words is None:
        words = _WORDS[length] = struct.Struct(f"<{length >> 2}I")
    for k in words.unpack_from(data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        end = length & ~3
        if tail == 3:
            h ^= data[end + 2] << 16
        if tail >= 2:
            h ^= data[end + 1] << 8
        h = ((h ^ data[end]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of a key: murmur2, as Kafka's, aiokafka's and kafka-python's default partitioners."""
    return (murmur2_fast(key) & 0x7FFFFFFF) % partitions


class Outbox:
    """The outputs of one input batch, sent together and awaited before the batch is acked.

    Records are appended to one aiokafka record batch per topic-partition (``create_batch`` /
    ``send_batch`` on the Faust app's producer) instead of one ``topic.send`` each: about a
    tenth of the per-record cost, and one produce request carries a partition's whole share.
    Partitions come from the same murmur2 partitioner as ``topic.send`` and kafka-python, so
    a key still lands where it did. ``flush`` returns once the broker has acknowledged every
    record (acks=all); only then may the batch loop move on, which is when Faust acks the
    input events and so lets their offsets be committed (at-least-once).
    """

    def __init__(self, app: faust.App):
        self.app = app
        self._builders: dict[tuple[str, int], Any] = {}
        self._pending: list[asyncio.Future] = []
        self._partitions: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    @property
    def _producer(self) -> Any:
        # faust.transport.drivers.aiokafka.Producer keeps its aiokafka.AIOKafkaProducer here.
        return self.app.producer._ensure_producer()  # type: ignore[attr-defined]

    async def _partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            producer = self._producer
            await producer.client._wait_on_metadata(topic)
            count = self._partitions[topic] = len(producer._metadata.partitions_for_topic(topic))
        return count

    async def add(self, topic: str, key: bytes, value: bytes) -> None:
        """Append a record; a full record batch is handed to the producer at once."""
        partition = key_partition(key, await self._partition_count(topic))
        tp = (topic, partition)
        builder = self._builders.get(tp)
        if builder is None:
            builder = self._builders[tp] = self._producer.create_batch()
        if builder.append(timestamp=None, key=key, value=value) is None:  # full: send it, start another
            await self._submit(tp, builder)
            builder = self._builders[tp] = self._producer.create_batch()
            if builder.append(timestamp=None, key=key, value=value) is None:  # pragma: no cover - batch size < record
                raise RuntimeError("record larger than producer_max_batch_size")
        self.counts[topic] = self.counts.get(topic, 0) + 1

    async def _submit(self, tp: tuple[str, int], builder: Any) -> None:
        self._pending.append(await self._producer.send_batch(builder, tp[0], partition=tp[1]))

    async def flush(self) -> dict[str, int]:
        """Send what is left and wait for every record to be acknowledged; returns records per topic."""
        for tp, builder in self._builders.items():
            await self._submit(tp, builder)
        self._builders.clear()
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)  # raises the first delivery error (the caller exits, input replays)
        counts, self.counts = self.counts, {}
        return counts


async def take_batches(stream: faust.StreamT, max_: int, within: float) -> AsyncIterator[list]:
    """Like Faust's ``stream.take_events(max_, within)``, but events keep arriving while a batch
    is being processed.

    ``take_events`` lets one event in while the caller works on a batch, then fills the next
    buffer for up to ``within`` seconds: fetching and processing take turns, and most batches
    were a ``within`` window's worth (~130 events, not 500). Here every event that arrives
    while a batch is processed (during its awaits: sending, waiting for the broker) joins the
    next batch, which is taken at once when it is non-empty and ``within`` has passed since
    the previous batch ended, or when it is full. At most ``max_`` events wait (then the
    stream pauses). Events are acked, as with ``take_events``, only after the caller has
    finished with their batch (the loop body returned), so their offsets are never committed
    before the batch's outputs are acknowledged (``Outbox.flush``).
    """
    loop = asyncio.get_running_loop()
    pending: list = []
    arrived, full, room = asyncio.Event(), asyncio.Event(), asyncio.Event()
    room.set()

    async def add(value: Any) -> Any:
        event = stream.current_event
        if event is None:
            raise RuntimeError("take_batches found current_event is None")
        pending.append(event)
        arrived.set()
        if len(pending) >= max_:
            full.set()
            room.clear()
            await stream.wait(room)  # type: ignore[arg-type]  # asyncio.Event; mode's annotation is narrower
        return value

    acks = stream.enable_acks
    stream.enable_acks = False  # acked below, after the batch
    stream.add_processor(add)
    stream._enable_passive(cast(faust.ChannelT, aiter(stream.channel)))  # what take_events does
    try:
        deadline = loop.time() + within
        while not stream.should_stop:
            if len(pending) < max_ and (remaining := deadline - loop.time()) > 0:
                full.clear()
                await stream.wait_for_stopped(full, timeout=remaining)  # type: ignore[arg-type]
            if not pending:
                arrived.clear()
                await stream.wait_for_stopped(arrived)  # type: ignore[arg-type]
                deadline = loop.time() + within
                continue
            batch = pending[:max_]
            del pending[:max_]
            room.set()
            yield batch
            for event in batch:
                await stream.ack(event)
            deadline = loop.time() + within
    finally:
        stream.enable_acks = acks
        stream._processors.remove(add)


class _Worker(faust.Worker):
    """Faust's worker, exiting within ``STOP_GRACE_S`` of SIGTERM/SIGINT: with the broker gone its
    graceful stop waited for the consumer and producer for minutes (services.platform.lifecycle)."""

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        install_stop_deadline()


class StreamService:
    """One service: its Faust app, its outbound topics and the shared batch loop."""

    def __init__(self, cfg: ServiceSettings, outputs: Iterable[str]):
        self.cfg = cfg
        self.name = cfg.service
        self.log = configure_logging(cfg.service)
        self.app = make_app(cfg)
        self.outputs = frozenset({*outputs, DEAD_LETTER})
        self.positions: dict[Any, int] = {}
        self.app.timer(1.0)(self._update_lag)
        self._consumed: dict[str, Any] = {}
        self._batches: dict[str, Any] = {}
        self._produced = {name: EVENTS_PRODUCED.labels(self.name, name) for name in self.outputs}
        self._latency = DECISION_LATENCY.labels(self.name)

    def agent(
        self,
        topic: str,
        handler: Handler | None = None,
        after_batch: Callable[[], Awaitable[None] | None] | None = None,
        *,
        batch_handler: BatchHandler | None = None,
        lean: bool = False,
    ) -> Any:
        """Register an agent (concurrency 1) on ``topic``: ``handler`` runs on each message, or
        ``batch_handler`` on each batch (returning each message's outputs, in order).

        ``lean``: take the topic's records in batches straight from the consumer
        (``services.platform.lean``) instead of through a Faust stream; same guarantees
        (records acked only after their batch's outputs are acknowledged), less CPU per record.
        ``DOPOMOGA_LEAN=0`` turns it off (the stream path, for comparison or as a fallback)."""
        assert (handler is None) != (batch_handler is None), "one of handler / batch_handler"
        source_topic = raw_topic(self.app, topic)
        service = self
        outbox = Outbox(self.app)
        self._consumed[topic] = EVENTS_CONSUMED.labels(self.name, topic)
        self._batches[topic] = BATCHES.labels(self.name, topic)
        name = f"{self.name}_{topic.replace('-', '_')}"

        async def done(result: Awaitable[None] | None) -> None:
            if result is not None:
                await result

        if lean and os.environ.get("DOPOMOGA_LEAN", "1") != "0":  # DOPOMOGA_LEAN=0: the stream path
            batches = LeanBatches(self.app, topic, service.cfg.batch_size, service.cfg.batch_within_s)
            self.app.lean_topics[topic] = batches  # the consumer's drain loop delivers to it
            self.app.topics.add(source_topic)  # subscribed and acked like an agent's topic

            async def lean_loop() -> None:
                consumer = service.app.consumer
                try:
                    async for messages in batches.batches():
                        await service._process_batch(topic, messages, outbox, handler, batch_handler)
                        for message in messages:  # only now: their outputs are acknowledged
                            consumer.ack(message)
                        if after_batch is not None:
                            await done(after_batch())
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a defect in the loop itself: exit, the input replays
                    service.log.error("lean_loop_failed", topic=topic, error_type=type(exc).__name__, where=_frames(exc))
                    os._exit(70)

            lean_loop.__name__ = name
            return self.app.task(lean_loop)

        async def process(stream: faust.StreamT) -> None:
            async for events in take_batches(stream, service.cfg.batch_size, service.cfg.batch_within_s):
                await service._process_batch(topic, [event.message for event in events], outbox, handler, batch_handler)
                if after_batch is not None:
                    await done(after_batch())

        process.__name__ = name
        return self.app.agent(source_topic, name=process.__name__, concurrency=1)(process)

    async def _process_batch(
        self, topic: str, messages: list, outbox: Outbox, handler: Handler | None, batch_handler: BatchHandler | None
    ) -> None:
        """Decide a batch of messages (Faust ``Message``: value, partition, offset, timestamp, tp)
        and send its outputs; return only once the broker has acknowledged them all."""
        self._consumed[topic].inc(len(messages))
        self._batches[topic].inc()
        latency = self._latency
        if handler is not None:
            for m in messages:
                started = time.perf_counter()
                for out_topic, key, value in self._handle(handler, m.value, Source(topic, m.partition, m.offset, m.timestamp)):
                    await outbox.add(out_topic, key.encode(), value)
                latency.observe(time.perf_counter() - started)
        else:
            assert batch_handler is not None
            started = time.perf_counter()
            # The cyclic collector waits while a batch handler runs (synchronously, nothing else
            # runs meanwhile): the batch's decoded events all live until it returns, so collecting
            # mid-batch only scanned and promoted them (~7 % of the budget service's CPU). They are
            # freed by reference counting when it returns; any cycles go in the next collection.
            gc.disable()
            try:
                decided = batch_handler([(m.value, Source(topic, m.partition, m.offset, m.timestamp)) for m in messages])
            finally:
                gc.enable()
            for outputs in decided:
                for out_topic, key, value in outputs:
                    await outbox.add(out_topic, key.encode(), value)
                latency.observe(time.perf_counter() - started)
        try:
            counts = await outbox.flush()
        except Exception as exc:  # the broker did not take the outputs: exit; the supervisor restarts, input replays
            self.log.error("produce_failed", topic=topic, error_type=type(exc).__name__, where=_frames(exc))
            os._exit(70)
        for out_topic, count in counts.items():
            produced = self._produced.get(out_topic)
            if produced is None:
                produced = self._produced[out_topic] = EVENTS_PRODUCED.labels(self.name, out_topic)
            produced.inc(count)
        for m in messages:
            self.positions[m.tp] = m.offset + 1

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
        worker = _Worker(
            self.app, loglevel=os.environ.get("DOPOMOGA_FAUST_LOG_LEVEL", "WARNING"), quiet=True, redirect_stdouts=False
        )
        # Faust's terminal spinner sets the root logger to DEBUG (to spin on every record), so every
        # debug call in aiokafka/faust built a LogRecord per message: ~5% of a service's CPU.
        worker.spinner = None
        # The catalog (compiled rules), the app and the libraries live as long as the process:
        # move them out of the collector's reach, so collections triggered by a batch's short-lived
        # events scan the batch, not everything loaded (bench/pipeline.py: see docs/streaming.md).
        gc.collect()
        gc.freeze()
        profile = os.environ.get("DOPOMOGA_PROFILE")
        if profile:
            self._profile(profile)
        worker.execute_from_commandline()

    def _profile(self, path: str) -> None:
        """``DOPOMOGA_PROFILE=path``: profile this process (cProfile, CPU time: waits are not in it)
        and write the stats to ``path`` every second (the last dump before the process stops is the
        profile; ``pstats`` reads it). For finding where a service's CPU goes (bench/scale.py
        ``--profile``); the profiler's overhead inflates every part, so read shares, not costs."""
        import cProfile

        profiler = cProfile.Profile(time.process_time)

        async def dump() -> None:
            profiler.disable()  # dump_stats disables it too; enabled again below
            profiler.dump_stats(path)
            profiler.enable()

        self.app.timer(1.0)(dump)
        profiler.enable()
