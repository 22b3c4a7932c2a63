"""Faust's Kafka consumer, with each message's delivery started eagerly.

faust-streaming 0.15.3 hands every fetched message to the topic conductor with
``await self.wait_first(callback(message), self.suspend_flow.wait())``
(``Consumer._drain_messages``). mode's ``wait_first`` wraps each argument, plus the
service's ``stopped`` and ``crashed`` events, in a task and waits on all four: four
tasks, an ``asyncio.wait`` and three cancellations per message, measured at about
60 µs, while the delivery itself (decode, put on the stream's queue) almost never
has to wait at all.

``EagerConsumer.wait_first`` runs the delivery's first step at once, as Python 3.12's
eager tasks do. If it completes there (the usual case: flow active, queue not full,
producer buffer below its limit), that is the result, with no task. If it has to wait,
the coroutine, already started, continues in a task under mode's own ``wait_first``,
so a delivery blocked on flow control is still abandoned when the flow is suspended
(a rebalance), exactly as before. Any other call goes to mode unchanged.

Installed by ``services.platform.runtime.make_app`` (``DopomogaApp``); re-check against
``Consumer._drain_messages`` when upgrading Faust (pinned 0.15.3).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine, Generator
from typing import Any

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from mode.services import WaitResults


class _Started:
    """Awaitable that finishes a coroutine whose first step has already run (and yielded)."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any):
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.yielded
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown into the task (e.g. CancelledError): pass it on
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    return await _Started(coro, yielded)


class EagerConsumer(aiokafka_driver.Consumer):
    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if len(coros) != 2 or timeout is not None or not inspect.iscoroutine(coros[0]) or self.suspend_flow.is_set():
            return await super().wait_first(*coros, timeout=timeout)
        delivery, suspended = coros
        try:
            yielded = delivery.send(None)
        except StopIteration as stop:  # delivered without waiting
            suspended.close()
            return WaitResults([delivery], [stop.value], False)
        except BaseException:
            suspended.close()
            raise
        return await super().wait_first(_resume(delivery, yielded), suspended)


    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised with a broker
        """Faust 0.15.3's drain loop (``Consumer._drain_messages``), with one branch added: a record
        of a topic registered in ``app.lean_topics`` (``services.platform.lean.LeanBatches``) is
        appended to it synchronously instead of going through the conductor, an event and a
        stream. Everything else (read offsets, gaps, commit_every, stop) is Faust's loop as it is."""
        lean: dict[str, Any] = getattr(self.app, "lean_topics", {})
        if not lean:
            return await super()._drain_messages(fetcher)
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        flow_control_active = self.app.flow_control.is_active
        suspended = self.suspend_flow.is_set
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            sink = lean.get(message.topic)
                            if sink is None:
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            elif self.flow_active and not suspended() and flow_control_active():
                                if sink.deliver(self, message):  # full: wait for room, or a rebalance
                                    await self.wait_first(sink.wait_room(), self.suspend_flow.wait())
                            # else: a rebalance suspended the flow; as a stream's delivery, the record
                            # is not taken, and the seek to the committed offset before the flow
                            # resumes reads it again
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class EagerTransport(aiokafka_driver.Transport):
    Consumer = EagerConsumer


class DopomogaApp(faust.App):
    """A Faust app whose consumer is ``EagerConsumer`` (the broker URL is used as given).

    ``lean_topics``: topic name -> ``services.platform.lean.LeanBatches``, the topics whose
    records the drain loop hands over raw (``StreamService.agent(..., lean=True)``)."""

    lean_topics: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lean_topics = {}

    def _new_transport(self) -> Any:
        return EagerTransport(self.conf.broker_consumer, self)
