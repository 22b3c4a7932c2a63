"""Every pipeline service as two replicas on PostgreSQL under kill -9 (issue 15, item 3).

Eligibility, calculation and budget run twice each (one consumer group per service), the ledger
and the grant history on one PostgreSQL database. 400 applications stream in while one replica
of each service is SIGKILLed in turn (the supervisor restarts it); then 30 people apply three
times each to a one-off program (``zhytomyr.centenarians``: once in a lifetime), the three
applications on three partitions, so two replicas decide one person at the same moment.
Afterwards: 0 lost, 0 with two different final decisions, 0 paid twice, 0 kopiyky over any
allocation.

``local-history`` is the same run with each eligibility replica on its own SQLite history (the
atomic per-person limit removed, as before issue 15): the replicas do not see each other's
grants and a person is paid twice - a strict xfail (30 of 30 people paid twice in one run).
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from dopomoga.budget.allocation import cumulative, monthly_plan
from dopomoga.budget.commands import period_closed
from services.devstack.broker import start_broker
from services.devstack.registry import Registry
from services.devstack.supervisor import ServiceProcess, Supervisor
from services.devstack.synthetic import SyntheticRegistry
from services.devstack.watch import Watcher
from services.platform.topology import PIPELINE, SERVICE_BY_NAME, create_topics
from tests.databases import create_database, drop_database, pg_server_url
from tests.devstack.outcomes import done, parked
from tests.streaming.conftest import wait_for
from tests.streaming.test_budget import allocations

pytestmark = pytest.mark.broker
ONE_OFF = "zhytomyr.centenarians"
REPLICAS = 2


def _twin_id(application_id: str, shift: int) -> str:
    """Another id for the same application, on the partition ``shift`` after the original's."""
    from services.platform.runtime import key_partition
    from services.platform.topology import APPLICATIONS, BY_NAME

    partitions = BY_NAME[APPLICATIONS].partitions
    target = (key_partition(application_id.encode(), partitions) + shift) % partitions
    return next(f"{application_id}-twin{k}" for k in range(1000)
                if key_partition(f"{application_id}-twin{k}".encode(), partitions) == target)


def _applied(url: str, ids: list[str]) -> bool:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = {r[0] for r in conn.execute(text("SELECT input_id FROM budget_inputs"))}
    except Exception:
        return False
    finally:
        engine.dispose()
    return set(ids) <= found


@pytest.fixture(params=["pg-history", pytest.param("local-history", marks=pytest.mark.xfail(
    strict=True, reason="without the shared, locked grant history a person's twin is paid twice"))])
def replicas(request, tmp_path):
    server = pg_server_url()
    url = create_database(server, "chaos")
    broker = start_broker(log_path=tmp_path / "broker.log")
    create_topics(broker.bootstrap)
    prefix = f"rep{int(time.time())}-"
    supervisor = Supervisor(backoff_s=0.5)
    for name in PIPELINE:
        for n in range(1, REPLICAS + 1):
            var = tmp_path / f"{name}-{n}" if request.param == "local-history" else tmp_path
            var.mkdir(exist_ok=True)
            env = {"DOPOMOGA_BROKER": broker.url, "DOPOMOGA_VAR": str(var), "DOPOMOGA_APP_PREFIX": prefix,
                   "PYTHONUNBUFFERED": "1", "DOPOMOGA_DB": url, f"DOPOMOGA_METRICS_PORT_{name.upper()}": "0"}
            env["DOPOMOGA_HISTORY_DB"] = url if request.param == "pg-history" else "local"
            supervisor.add(ServiceProcess(f"{name}-{n}", SERVICE_BY_NAME[name].module, env, tmp_path / f"{name}-{n}.log"))
    from services.migrate import migrate_ledger  # once, before the services (as `dopomoga up` and compose do)

    migrate_ledger(url)
    supervisor.start()
    try:
        yield broker, supervisor, url
    finally:
        supervisor.stop()
        broker.stop()
        drop_database(server, url)


def test_two_replicas_of_every_service_under_kill_9(replicas, catalog):
    broker, stack, url = replicas
    apps = list(SyntheticRegistry(catalog, seed=611, submitted_on="2025-06-04").generate(400))
    # twins: the same person applies twice to the one-off program, under two application ids
    centenarians = list(SyntheticRegistry(catalog, seed=612, submitted_on="2025-06-04", eligible_share=1.0,
                                          programs=[ONE_OFF]).generate(30))
    # two twins on the next two partitions: whichever two partitions each replica owns (4 over 2
    # replicas), at least one of the three applications is decided by the other replica
    twins = [a.model_copy(update={"application_id": _twin_id(a.application_id, shift)})
             for a in centenarians for shift in (1, 2)]
    pairs = [x for i, a in enumerate(centenarians) for x in (a, twins[2 * i], twins[2 * i + 1])]
    stream = apps + pairs
    commands = allocations(catalog, stream, 2025, share=0.6, tag="replicas")
    # the one-off program has money for every twin: only the per-person limit may refuse one
    commands = [c.model_copy(update={"annual_kop": c.annual_kop * 4}) if c.program_id == ONE_OFF else c
                for c in commands]
    with Registry(broker.bootstrap) as registry:
        for command in commands:
            registry.command(command)
    assert wait_for(lambda: _applied(url, [c.event_id for c in commands]), 180), "allocations not applied"

    by_name = {s.name: s for s in stack.services}
    kills: list[str] = []

    def killer() -> None:
        for name in ("eligibility-1", "calculation-2", "budget-1", "eligibility-2", "budget-2"):
            time.sleep(0.8)
            with stack.paused():
                by_name[name].kill()  # SIGKILL; the supervisor restarts it
                kills.append(name)

    thread = threading.Thread(target=killer)
    ids = {a.application_id for a in stream}
    with Registry(broker.bootstrap) as registry, Watcher(broker.bootstrap) as watcher, \
            Registry(broker.bootstrap) as closer:
        thread.start()
        registry.publish(apps, rate=200)
        thread.join()
        assert len(kills) == 5
        # the twins once both eligibility replicas own partitions again: each pair is decided by two
        # replicas at once (the last kills' rebalances over, every application so far decided)
        assert watcher.wait(lambda o: all(o.seen(a.application_id) for a in apps), 180)
        time.sleep(8)
        registry.publish(pairs)
        closed: set = set()

        def settled(outcomes) -> bool:
            if all(outcomes.seen(i) for i in ids):
                pending = {(d.program_id, d.period, d.district) for i in ids if not done(outcomes, i)
                           for d in outcomes.decisions.get(i, [])}
                for budget in sorted(pending - closed, key=str):
                    closer.command(period_closed(*budget))
                    closed.add(budget)
            return all(done(outcomes, i) for i in ids)

        watcher.wait(settled, 300)
        outcomes = watcher.outcomes

    lost = [i for i in ids if not done(outcomes, i)]
    held = [i for i in ids if parked(outcomes, i)]
    different = [i for i in ids if i not in outcomes.rejected_ids and len(outcomes.distinct_finals(i)) > 1]
    paid_by_person: dict[tuple[str, str], int] = defaultdict(int)
    paid: dict[tuple[str, str], int] = defaultdict(int)
    for i in ids:
        final = outcomes.final(i)
        if final is None:
            continue
        paid[(final.program_id, final.period)] += final.payout_kop
        if final.program_id == ONE_OFF and final.payout_kop > 0:
            paid_by_person[(final.program_id, final.payee.subject_key)] += 1
    twice = {k: v for k, v in paid_by_person.items() if v > 1}

    annual = {c.program_id: c.annual_kop for c in commands}
    over = {}
    for (program_id, period), total in paid.items():
        year, month = int(period[:4]), int(period[5:])
        limit = cumulative(monthly_plan(year, annual[program_id], "even"))[month - 1]
        if total > limit:
            over[(program_id, period)] = total - limit
    print(f"{len(ids)} applications, {len(centenarians)} people applying three times to {ONE_OFF}; held for confirmation {len(held)}; "
          f"lost {len(lost)}, two different {len(different)}, "
          f"paid twice {len(twice)}, over allocation {over}; restarts "
          f"{ {s.name: s.restarts for s in stack.services} }")
    for i in sorted(lost)[:8]:  # where they stopped (for the log of a failing run)
        print(i, [(d.status, d.period, d.final) for d in outcomes.decisions.get(i, [])],
              "rejected" if i in outcomes.rejected_ids else "")
    assert not lost, f"{len(lost)} applications without a final decision"
    assert not different
    assert not twice, f"{len(twice)} people paid twice by a one-off program"
    assert not over
    assert all(s.restarts >= 1 for s in stack.services if s.name in kills)
