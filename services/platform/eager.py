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

import inspect
from collections.abc import Coroutine, Generator
from typing import Any

import faust
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


class EagerTransport(aiokafka_driver.Transport):
    Consumer = EagerConsumer


class DopomogaApp(faust.App):
    """A Faust app whose consumer is ``EagerConsumer`` (the broker URL is used as given)."""

    def _new_transport(self) -> Any:
        return EagerTransport(self.conf.broker_consumer, self)
