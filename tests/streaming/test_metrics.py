"""After an end-to-end run, each service's counters equal the events and decisions that flowed.

The test runs its own broker and services (metrics on free ports), so no other test's events
are counted.
"""

from __future__ import annotations

import os
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dopomoga.rules.engine import Engine
from schemas.events import PayoutDecided
from services.devstack.broker import free_port, start_broker
from services.devstack.registry import Registry
from services.devstack.supervisor import Supervisor, add_services, service_env
from services.devstack.synthetic import SyntheticRegistry
from services.platform.topology import PAYOUT_DECISIONS, create_topics
from tests.streaming.conftest import SERVICES, wait_for
from tests.streaming.test_pipeline import TopicReader

pytestmark = pytest.mark.broker

Samples = dict[tuple[str, frozenset], float]


def scrape(port: int) -> Samples:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and all((k, x) in ls for k, x in labels.items()))


def test_after_a_run_the_counters_equal_the_events_and_decisions(tmp_path, catalog):
    broker = start_broker(log_path=tmp_path / "broker.log")
    supervisor = Supervisor()
    reader = None
    try:
        create_topics(broker.bootstrap)
        ports = {name: free_port() for name in SERVICES}
        envs = service_env(broker.url, tmp_path, prefix=f"metrics{os.getpid()}-", metrics=ports)
        add_services(supervisor, SERVICES, envs, tmp_path)
        supervisor.start()
        apps = list(SyntheticRegistry(catalog, seed=501).generate(80))
        n = len(apps)
        with Registry(broker.bootstrap) as registry:
            registry.publish(apps)
        offline = Counter("eligible" if Engine(catalog).decide(a).eligible else "ineligible" for a in apps)

        def scraped():
            try:
                return {name: scrape(port) for name, port in ports.items()}
            except OSError:
                return None

        def settled() -> bool:
            now = scraped()
            return now is not None and total(now["budget"], "dopomoga_events_consumed_total", topic="entitlements") >= n

        assert wait_for(settled, 120), "the budget service did not consume every entitlement"
        reader = TopicReader(broker.bootstrap, PAYOUT_DECISIONS)
        payouts: list[PayoutDecided] = []

        def payouts_read() -> bool:
            reader.poll()
            payouts[:] = [PayoutDecided.model_validate_json(r.value) for r in reader.records[PAYOUT_DECISIONS]]
            return {p.application_id for p in payouts} >= {a.application_id for a in apps}

        assert wait_for(payouts_read, 60)
        metrics = scraped()
        assert metrics is not None
        eligibility, calculation, budget = metrics["eligibility"], metrics["calculation"], metrics["budget"]

        assert total(eligibility, "dopomoga_events_consumed_total", topic="applications") == n
        assert total(eligibility, "dopomoga_events_produced_total", topic="eligibility-decisions") == n
        for outcome in ("eligible", "ineligible"):
            assert total(eligibility, "dopomoga_decisions_total", outcome=outcome) == offline[outcome]
        assert total(calculation, "dopomoga_events_consumed_total", topic="eligibility-decisions") == n
        assert total(calculation, "dopomoga_events_produced_total", topic="entitlements") == n
        assert total(calculation, "dopomoga_decisions_total", outcome="entitled") == offline["eligible"]
        assert total(budget, "dopomoga_events_consumed_total", topic="entitlements") == n
        assert total(budget, "dopomoga_events_produced_total", topic="payout-decisions") == len(payouts)
        assert total(budget, "dopomoga_decisions_total") == len(payouts)
        for service in (eligibility, calculation, budget):
            assert total(service, "dopomoga_events_dead_lettered_total") == 0
    finally:
        if reader is not None:
            reader.close()
        supervisor.stop()
        broker.stop()
