"""The budget service killed (SIGKILL) while its lean batch fills: nothing delivered is lost, and
a redone batch publishes the very decision bytes the ledger stored the first time.

An embedded broker of its own, the budget service as a subprocess (restarted by the supervisor)
with a 3 s batch window, so records sit delivered but undecided while Faust's committer ticks
(every 0.5 s): if they were acknowledged on delivery (the ``at_most_once_lean`` mutant of
``tests/streaming/mutants.py``), their offsets would be committed and the kill would lose them.
Then the same service with a new consumer group (every offset forgotten) redoes the whole topic
against the same ledger: every decision is published again with the bytes of the first time.
The ledger is a fresh PostgreSQL database (``DOPOMOGA_TEST_PG``), else a SQLite file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import defaultdict

import pytest

from bench.budget_service import HOT, entitlements
from dopomoga.rules.programs import Catalog
from schemas.events import AllocationSet
from services.devstack.broker import start_broker
from services.devstack.registry import Registry, producer
from services.devstack.supervisor import ServiceProcess, Supervisor
from services.devstack.watch import Watcher
from services.platform.topology import ENTITLEMENTS, SERVICE_BY_NAME, budget_partition_key, create_topics
from tests.databases import create_database, drop_database

N = 200


@pytest.fixture
def ledger_url(tmp_path):
    server = os.environ.get("DOPOMOGA_TEST_PG", "").strip()
    if not server:
        yield None
        return
    from services.migrate import migrate_ledger

    url = create_database(server, "leankill")
    migrate_ledger(url)
    yield url
    drop_database(server, url)


def test_a_budget_service_killed_while_a_batch_fills_loses_nothing_and_redoes_it_with_the_same_bytes(tmp_path, ledger_url):
    raws = entitlements(Catalog.load(), HOT, N + 20, seed=5)
    ids = [json.loads(raw)["application_id"] for raw in raws]
    warm_ids, ids = ids[:20], ids[20:]
    key = budget_partition_key(HOT, 2024).encode()
    with start_broker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker.bootstrap)
        env = {"DOPOMOGA_BROKER": broker.url, "DOPOMOGA_VAR": str(tmp_path), "DOPOMOGA_APP_PREFIX": f"lk{time.time_ns()}-",
               "DOPOMOGA_METRICS_PORT_BUDGET": "0", "DOPOMOGA_BATCH_WITHIN": "3", "PYTHONUNBUFFERED": "1"}
        env["DOPOMOGA_DB"] = ledger_url or f"sqlite:///{tmp_path / 'ledger.sqlite'}"  # one ledger for both groups
        supervisor = Supervisor(backoff_s=0.5)
        supervisor.add(ServiceProcess("budget", SERVICE_BY_NAME["budget"].module, env, tmp_path / "budget.log"))
        send = producer(broker.bootstrap)
        published: dict[str, set[bytes]] = defaultdict(set)  # event_id -> every distinct body published
        decided: set[str] = set()  # application ids with a final decision

        count = [0]

        def seen(raw: bytes, _at: float) -> None:
            count[0] += 1
            body = json.loads(raw)
            published[body["event_id"]].add(raw)  # a decision's revisions are events of their own
            if body["final"]:
                decided.add(body["application_id"])

        def wait(watcher: Watcher, wanted: list[str], timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                watcher.poll()
                if decided.issuperset(wanted):
                    return True
            return False

        try:
            with supervisor, Registry(broker.bootstrap) as registry, Watcher(broker.bootstrap) as watcher:
                watcher.on_decision_bytes = seen
                registry.command(AllocationSet(
                    event_id="lean-kill", occurred_at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC), program_id=HOT, year=2024,
                    annual_kop=10**13, plan={"kind": "even"}, amendment_id="lean-kill", legal_reference="test"))
                for raw in raws[:20]:
                    send.send(ENTITLEMENTS, key=key, value=raw)
                send.flush()
                assert wait(watcher, warm_ids, 120), "the service never started"
                for raw in raws[20:]:
                    send.send(ENTITLEMENTS, key=key, value=raw)
                send.flush()
                time.sleep(1.6)  # delivered, waiting in the 3 s window; the committer has ticked
                service = supervisor.services[0]
                service.kill()
                assert wait(watcher, ids, 90), (
                    f"{len(set(ids) - decided)} of {N} entitlements have no decision after the kill")
                assert service.restarts >= 1
                # then every offset forgotten: a new consumer group, the same ledger, the whole topic redone
                first_pass = count[0]
                service.env["DOPOMOGA_APP_PREFIX"] = f"lk{time.time_ns()}-again-"
                service.kill()
                deadline = time.monotonic() + 90
                while count[0] < first_pass + N + 20 and time.monotonic() < deadline:
                    watcher.poll()
                assert count[0] >= first_pass + N + 20, "the redone topic was not published again"
                # an event published twice (redone after a kill, or replayed) is the same bytes each time
                assert len(published) >= N + 20
                assert all(len(bodies) == 1 for bodies in published.values())
        finally:
            send.close()
