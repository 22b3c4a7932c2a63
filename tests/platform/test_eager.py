"""The services' Faust consumer starts each message's delivery eagerly (services/platform/eager.py).

No broker needed: these drive ``EagerConsumer.wait_first`` as ``Consumer._drain_messages``
calls it, ``wait_first(callback(message), consumer.suspend_flow.wait())``.
"""

from __future__ import annotations

import asyncio

import pytest

from services.platform.eager import DopomogaApp, EagerConsumer


def make_consumer() -> EagerConsumer:
    """The consumer of a services app (never started: no broker is contacted).

    Made inside the running loop, which mode services bind to."""
    app = DopomogaApp("eager-test", broker="kafka://127.0.0.1:9", web_enabled=False, store="memory://")
    return app.consumer


def test_the_services_app_uses_the_eager_consumer():
    async def main():
        return make_consumer()

    assert isinstance(asyncio.run(main()), EagerConsumer)


def test_a_delivery_that_need_not_wait_completes_without_a_task():
    delivered = []

    async def deliver(message):
        delivered.append(message)
        return "queued"

    async def main():
        consumer = make_consumer()
        created = []
        loop = asyncio.get_running_loop()
        factory = loop.get_task_factory()
        loop.set_task_factory(lambda lp, coro, **kw: created.append(coro) or asyncio.Task(coro, loop=lp, **kw))
        try:
            result = await consumer.wait_first(deliver("m1"), consumer.suspend_flow.wait())
        finally:
            loop.set_task_factory(factory)
        return result, created

    result, created = asyncio.run(main())
    assert delivered == ["m1"]
    assert result.results == ["queued"] and not result.stopped
    assert created == []  # mode's wait_first would have made four


def test_a_delivery_that_must_wait_finishes_once_it_can():
    async def main():
        consumer = make_consumer()
        gate = asyncio.Event()
        steps = []

        async def deliver():
            steps.append("started")
            await gate.wait()
            steps.append("finished")
            return "queued"

        asyncio.get_running_loop().call_later(0.05, gate.set)
        result = await consumer.wait_first(deliver(), consumer.suspend_flow.wait())
        return result, steps

    result, steps = asyncio.run(main())
    assert steps == ["started", "finished"]  # started once, not restarted by the task
    assert "queued" in result.results


def test_a_waiting_delivery_is_abandoned_when_the_flow_is_suspended():
    async def main():
        consumer = make_consumer()
        steps = []

        async def deliver():
            steps.append("started")
            try:
                await asyncio.Event().wait()  # never set: blocked, as on flow control during a rebalance
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise

        asyncio.get_running_loop().call_later(0.05, consumer.stop_flow)
        result = await asyncio.wait_for(consumer.wait_first(deliver(), consumer.suspend_flow.wait()), 5)
        await asyncio.sleep(0)
        return result, steps

    result, steps = asyncio.run(main())
    assert steps == ["started", "cancelled"]
    assert result.results == [True]  # only the suspend_flow wait finished


def test_an_error_in_the_delivery_reaches_the_drain_loop():
    async def deliver():
        raise ValueError("undecodable")

    async def main():
        consumer = make_consumer()
        return await consumer.wait_first(deliver(), consumer.suspend_flow.wait())

    with pytest.raises(ValueError, match="undecodable"):
        asyncio.run(main())
