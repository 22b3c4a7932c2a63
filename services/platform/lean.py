"""The lean consumption path: a topic's records taken in batches straight from the consumer.

Faust hands each fetched record to a stream through the conductor (a flow-control wait, a
producer-buffer wait, decoding key and value with the codec registry, an ``Event``, a put on
the channel's queue), then the stream takes it off the queue (sensors, processors,
``current_event``), then ``take_batches`` gathers the events and acks each through the
event, the message's reference count and the consumer: about a dozen coroutine steps and
a hundred Python calls per record. The budget service's hot replica spent more CPU there
than in a quarter of its ledger work (issue 15; docs/scale-out.md, "where the budget
process's CPU goes").

For a topic registered with ``LeanBatches`` the consumer's drain loop
(``services.platform.eager.EagerConsumer._drain_messages``) appends the record itself, as
the consumer delivered it (raw key and value bytes), to this object's list, synchronously,
and ``batches()`` yields lists of them. The guarantees are Faust's own, kept by using its
consumer's bookkeeping rather than a second one:

- **Offsets are committed only for acked records**, and a record is acked
  (``consumer.ack``) only after the caller's loop body for its batch has returned, that is
  after the batch's outputs were acknowledged by the broker (``Outbox.flush``) and its
  ledger transaction committed. Faust's committer commits the contiguous acked prefix of
  each partition, as for a stream.
- **Rebalance**: a delivered record is tracked (``consumer.unacked``), so Faust's
  ``on_partitions_revoked`` waits (``wait_empty``) for the batch being processed to be
  acked and committed, as it waits for a stream's event. Records delivered but not yet in
  a batch are dropped, untracked and never acked, when the flow is suspended (a rebalance)
  or when they were fetched in an earlier consumer generation, as Faust clears its
  streams' queues and skips stale events; the consumer seeks every assigned partition back
  to its committed offset before the flow resumes, so they are read again, by this replica
  or the partition's new owner. A commit for a partition no longer assigned is discarded by
  Faust's consumer (``_commit_offsets``).
- **One partition in order**: records are appended in the order the drain loop sees them
  and batches are taken and processed one at a time (one task).
- **Backpressure**: when ``2 x max_`` records wait, the drain loop waits until a batch is
  taken (as it waits on a full stream queue); a rebalance ends that wait (``suspend_flow``).

Faust is pinned (0.15.3): re-check ``Consumer._drain_messages``, ``ack`` and ``wait_empty``
when upgrading.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from mode.utils.futures import notify


class LeanBatches:
    """The records of one topic, delivered by the consumer's drain loop, taken in batches."""

    def __init__(self, app: Any, topic: str, max_: int, within: float):
        self.app = app
        self.topic = topic
        self.max = max_
        self.within = within
        self._high = 2 * max_
        self.pending: deque = deque()
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._room = asyncio.Event()
        self.dropped = 0  # records dropped at a rebalance (read again after the seek)

    # -- called by the consumer's drain loop ----------------------------------------------

    def deliver(self, consumer: Any, message: Any) -> bool:
        """Take a record (the flow is active: the drain loop checked). Tracked at once, so a
        rebalance waits for it to be acked or dropped. True when ``2 x max_`` records wait:
        the drain loop then waits for room (``wait_room``) before it delivers another."""
        message.tracked = True
        consumer._unacked_messages.add(message)
        pending = self.pending
        pending.append(message)
        n = len(pending)
        self._arrived.set()
        if n >= self.max:
            self._full.set()
        return n >= self._high

    async def wait_room(self) -> None:
        """Until fewer than ``2 x max_`` records wait (as a full stream queue holds the drain loop;
        pausing the partition instead left the fetcher in a long poll of the other partitions)."""
        while len(self.pending) >= self._high:
            self._room.clear()
            await self._room.wait()

    # -- the batch loop -------------------------------------------------------------------

    def _active(self, consumer: Any) -> bool:
        return bool(consumer.flow_active) and self.app.flow_control.is_active()

    def _untrack(self, consumer: Any, messages: list) -> None:
        unacked = consumer._unacked_messages
        for message in messages:
            unacked.discard(message)
        self.dropped += len(messages)
        notify(consumer._waiting_for_ack)  # a rebalance waiting in wait_empty looks again

    async def batches(self) -> AsyncIterator[list]:
        """Lists of at most ``max_`` records, in delivery order. A batch is taken once
        ``within`` seconds have passed since the previous one ended and a record waits, or
        at once when ``max_`` wait (records keep arriving while the caller works on a batch,
        as with ``runtime.take_batches``). The caller acks a batch's records
        (``consumer.ack``) when it is done with them, before asking for the next batch."""
        loop = asyncio.get_running_loop()
        arrived, full = self._arrived, self._full
        pending = self.pending
        consumer = self.app.consumer
        deadline = loop.time() + self.within
        while True:
            if not pending:
                arrived.clear()
                await arrived.wait()
                deadline = loop.time() + self.within
                continue
            if self._active(consumer) and len(pending) < self.max and (remaining := deadline - loop.time()) > 0:
                full.clear()
                try:
                    await asyncio.wait_for(full.wait(), remaining)
                except TimeoutError:
                    pass
            if not self._active(consumer):  # a rebalance (or stop): drop what waits, it is read again
                dropped = list(pending)
                pending.clear()
                self._untrack(consumer, dropped)
                self._room.set()
                continue
            generation = self.app.consumer_generation_id
            batch, stale = [], []
            while pending and len(batch) < self.max:
                message = pending.popleft()
                (batch if message.generation_id == generation else stale).append(message)
            if stale:  # fetched before the last rebalance: the seek after it reads them again
                self._untrack(consumer, stale)
            if len(pending) < self._high:
                self._room.set()
            if batch:
                yield batch
            deadline = loop.time() + self.within
