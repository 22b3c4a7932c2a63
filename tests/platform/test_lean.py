"""The lean consumption path (services/platform/lean.py) keeps the stream path's guarantees.

No broker: a service's real app and consumer (never started), records handed to the lean
topic as the consumer's drain loop hands them (``LeanBatches.deliver``), the batch loop the
service registers (``StreamService.agent(..., lean=True)``), and an outbox whose broker
acknowledgement the test releases. What Faust would commit is read from the consumer's own
bookkeeping (``_new_offset``: the contiguous acked prefix of a partition).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest
from aiokafka.structs import TopicPartition
from faust.types import TP, Message

import services.platform.runtime as runtime
from services.platform.config import settings

TOPIC = "entitlements"


class GatedOutbox:
    """Stands for ``runtime.Outbox``: ``flush`` returns once the test says the broker acknowledged."""

    instances: ClassVar[list[GatedOutbox]] = []

    def __init__(self, app):
        self.added: list[tuple[str, bytes, bytes]] = []
        self.acknowledged = asyncio.Event()
        self.flushes = 0
        GatedOutbox.instances.append(self)

    async def add(self, topic, key, value):
        self.added.append((topic, key, value))

    async def flush(self):
        self.flushes += 1
        await self.acknowledged.wait()
        self.acknowledged.clear()
        return {"payout-decisions": 1}


@pytest.fixture
def service(monkeypatch, tmp_path):
    monkeypatch.setenv("DOPOMOGA_VAR", str(tmp_path))
    monkeypatch.setenv("DOPOMOGA_METRICS_PORT_BUDGET", "0")
    monkeypatch.setenv("DOPOMOGA_BATCH_WITHIN_BUDGET", "0")
    monkeypatch.setenv("DOPOMOGA_BATCH_BUDGET", "3")
    monkeypatch.setattr(runtime, "Outbox", GatedOutbox)
    GatedOutbox.instances.clear()

    def make(handled: list):
        svc = runtime.StreamService(settings("budget"), outputs=["payout-decisions"])

        def decide(messages):
            handled.append([source.offset for _, source in messages])
            return [[("payout-decisions", "k", raw or b"")] for raw, _ in messages]

        loop_task = svc.agent(TOPIC, batch_handler=decide, lean=True)
        svc.app.flow_control.resume()
        return svc, loop_task

    return make


def record(offset: int, generation: int = 0, partition: int = 0) -> Message:
    # as the aiokafka driver makes them: the message's tp is aiokafka's TopicPartition, not Faust's TP
    return Message(TOPIC, partition, offset, 0.0, 0, None, b"key", b"value-%d" % offset, None,
                   tp=TopicPartition(TOPIC, partition), generation_id=generation)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_records_are_acked_only_after_their_batchs_outputs_are_acknowledged(service):
    async def main():
        handled: list = []
        svc, loop_task = service(handled)
        consumer, batches = svc.app.consumer, svc.app.lean_topics[TOPIC]
        svc.app.topics._acking_topics.add(TOPIC)
        task = asyncio.create_task(loop_task())
        for offset in range(3):
            batches.deliver(consumer, record(offset))
        await settle()
        outbox = GatedOutbox.instances[0]
        assert handled == [[0, 1, 2]] and outbox.flushes == 1  # decided, outputs sent, not yet acknowledged
        assert len(consumer.unacked) == 3  # a rebalance would wait for them
        assert consumer._new_offset(TP(TOPIC, 0)) is None  # nothing Faust could commit
        outbox.acknowledged.set()
        await settle()
        assert not consumer.unacked
        assert consumer._new_offset(TP(TOPIC, 0)) == 3  # the batch's offsets, committed as one prefix
        task.cancel()

    asyncio.run(main())


def test_a_rebalance_drops_the_records_not_yet_in_a_batch_and_lets_the_batch_in_flight_finish(service):
    async def main():
        handled: list = []
        svc, loop_task = service(handled)
        consumer, batches = svc.app.consumer, svc.app.lean_topics[TOPIC]
        svc.app.topics._acking_topics.add(TOPIC)
        task = asyncio.create_task(loop_task())
        for offset in range(5):  # a batch of 3 is taken; 2 wait behind it
            batches.deliver(consumer, record(offset))
        await settle()
        assert handled == [[0, 1, 2]]
        # a rebalance begins (Faust's on_partitions_revoked): the flow stops, then wait_empty
        consumer.stop_flow()
        svc.app.flow_control.suspend()
        GatedOutbox.instances[0].acknowledged.set()  # the batch in flight completes
        await settle()
        assert not consumer.unacked  # so wait_empty returns: nothing left tracked
        assert handled == [[0, 1, 2]]  # offsets 3 and 4 were not decided by this owner...
        assert consumer._new_offset(TP(TOPIC, 0)) == 3  # ...and never committed: the next owner reads them
        assert batches.dropped == 2
        task.cancel()

    asyncio.run(main())


def test_records_fetched_before_the_last_rebalance_are_not_decided(service):
    async def main():
        handled: list = []
        svc, loop_task = service(handled)
        consumer, batches = svc.app.consumer, svc.app.lean_topics[TOPIC]
        svc.app.topics._acking_topics.add(TOPIC)
        svc.app.consumer_generation_id = 2
        task = asyncio.create_task(loop_task())
        batches.deliver(consumer, record(7, generation=1))  # fetched in generation 1
        batches.deliver(consumer, record(7, generation=2))  # read again after the seek
        await settle()
        assert handled == [[7]]
        GatedOutbox.instances[0].acknowledged.set()
        await settle()
        assert not consumer.unacked and batches.dropped == 1
        task.cancel()

    asyncio.run(main())


def test_the_drain_loop_waits_while_two_batches_of_records_wait_and_goes_on_once_one_is_taken(service):
    async def main():
        handled: list = []
        svc, loop_task = service(handled)
        consumer, batches = svc.app.consumer, svc.app.lean_topics[TOPIC]
        svc.app.topics._acking_topics.add(TOPIC)
        full = [batches.deliver(consumer, record(offset)) for offset in range(6)]  # before the loop runs
        assert full == [False] * 5 + [True]  # 2 x batch size: the drain loop must wait
        room = asyncio.create_task(batches.wait_room())
        await settle()
        assert not room.done()
        task = asyncio.create_task(loop_task())
        await settle()
        assert handled == [[0, 1, 2]] and room.done()  # a batch taken: room again
        GatedOutbox.instances[0].acknowledged.set()
        await settle()
        assert handled == [[0, 1, 2], [3, 4, 5]]
        task.cancel()

    asyncio.run(main())
