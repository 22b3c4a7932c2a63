"""kill -9 each service in turn mid-stream; the supervisor restarts it. Afterwards no application
lacks a final decision, none has two different ones, and no budget is over its allocation."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from dopomoga.budget.allocation import cumulative, monthly_plan
from services.devstack.registry import Registry
from services.devstack.synthetic import SyntheticRegistry
from tests.streaming.conftest import ledger_available, wait_for
from tests.streaming.test_budget import allocations, applied, drive_to_final

pytestmark = [pytest.mark.broker, pytest.mark.skipif(not ledger_available(), reason="ledger not written yet")]


def test_kill_9_each_service_mid_stream(broker, stack, catalog):
    apps = list(SyntheticRegistry(catalog, seed=401, submitted_on="2025-06-04").generate(900))
    commands = allocations(catalog, apps, 2025, share=0.6, tag="crash")
    with Registry(broker.bootstrap) as registry:
        for command in commands:
            registry.command(command)
    assert wait_for(lambda: applied(stack, [c.event_id for c in commands]), 60)

    by_name = {s.name: s for s in stack.services}
    kills: list[tuple[str, int]] = []

    def killer() -> None:
        for name in ("eligibility", "calculation", "budget"):
            time.sleep(0.7)
            service = by_name[name]
            with stack.paused():
                kills.append((name, service.pid))
                service.kill()  # SIGKILL; the supervisor restarts it

    thread = threading.Thread(target=killer)
    # publish at a bounded rate so the kills land while events are in flight
    with Registry(broker.bootstrap) as registry:
        thread.start()
        registry.publish(apps, rate=400)
    thread.join()
    assert [k[0] for k in kills] == ["eligibility", "calculation", "budget"]

    outcomes, _ = drive_to_final(broker, stack, apps, [], timeout=120)
    assert all(s.restarts >= 1 for s in stack.services)
    paid: dict[tuple[str, str], int] = defaultdict(int)
    for application in apps:
        finals = outcomes.distinct_finals(application.application_id)
        assert len(finals) == 1, f"{len(finals)} different final decisions"
        final = outcomes.final(application.application_id)
        paid[(final.program_id, final.period)] += final.payout_kop
    annual = {c.program_id: c.annual_kop for c in commands}
    for (program_id, period), total in paid.items():
        year, month = int(period[:4]), int(period[5:])
        limit = cumulative(monthly_plan(year, annual[program_id], "even"))[month - 1]
        assert total <= limit, f"{program_id} {period}: paid {total} > cumulative allocation {limit}"
