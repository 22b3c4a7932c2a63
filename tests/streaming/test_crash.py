"""A verifier-based crash suite, in the shape of Kafka Streams' EOS system tests
(``streams_eos_test.py``: a driver writes known data, processors are killed, a verifier counts).

- **Driver.** Applications are published once, in three waves, each send's acknowledgement
  awaited: the verifier counts against what the broker *acknowledged*, and nothing is ever re-sent.
- **Binding budgets.** Each program's annual allocation is 80 % of its claims' need, planned
  evenly, and the claims are in September: the year-to-date money covers 60 % then, so claims are
  deferred month to month and some are still owed after December (exhaustion: payables of 2022).
- **Kills.** During each wave (applications trickle in at ``RATE``/s; services fill batches for up
  to ``WITHIN`` s), eligibility, calculation and budget are SIGKILLed, each once it has reported
  (``/metrics``, ``dopomoga_events_consumed_total``) that it consumed records since it started, at
  a random point of its next batch: three kills per service, all mid-stream. During the month
  closes the budget service is killed once it reports consuming a close, and the treasury follower
  twice. The supervisor restarts each.
- **Verifier.** Every acknowledged application has an outcome (a payout decision or a dead
  letter) and nothing else appears; no application has two different final decisions; what the
  stream says last equals what the ledger holds; for every program and every month m of 2021,
  Σ paid[Jan..m] ≤ Σ allocation[Jan..m]; deferrals and exhaustion really happened; and the
  treasury's registers reconcile with the ledger (``reconcile_with_ledger``) and add up to it.

``tests/streaming/mutants.py`` applies two mutants (acknowledging on receipt = at-most-once, and
paying regardless of the money) and expects this suite to fail on each.

Sizes: ``DOPOMOGA_CRASH_APPS`` (default 240 applications; about 2 minutes on 2 cores). Its own
broker and stack, so no other test's topics or groups are involved.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

from dopomoga.budget.allocation import cumulative, monthly_plan
from dopomoga.budget.commands import allocation_set, period_closed
from dopomoga.rules.engine import Engine
from services.devstack.broker import free_port, start_broker
from services.devstack.registry import producer
from services.devstack.supervisor import Supervisor, add_services, service_env
from services.devstack.synthetic import SyntheticRegistry
from services.devstack.watch import Watcher
from services.platform.topology import APPLICATIONS, BUDGET_COMMANDS, SERVICES, command_key, create_topics
from tests.streaming.conftest import ledger_available, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.skipif(not ledger_available(), reason="ledger not written yet")]

YEAR = 2021
SUBMITTED = "2021-09-06"
SHARE = 0.8  # annual allocation / need: 60 % of the need by September, 80 % by December
APPS = int(os.environ.get("DOPOMOGA_CRASH_APPS", "240"))
WAVES = 3
PIPELINE = ("eligibility", "calculation", "budget")
#: Each service fills a batch for up to this long: records wait in the stream for a while, which is
#: when an acknowledgement that came too early (the at-most-once mutant) gets committed.
WITHIN = 1.0
RATE = 30.0  # applications/s within a wave: input keeps arriving while the kills land


def consumed(port: int, topic: str | None = None) -> float:
    """``dopomoga_events_consumed_total`` of the process on ``port`` (since it started); -1 if not up."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
    except OSError:
        return -1.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith("dopomoga_events_consumed_total{") and (topic is None or f'topic="{topic}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def crash_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    broker = start_broker(log_path=root / "broker.log")
    create_topics(broker.bootstrap)
    ports = {spec.name: free_port() for spec in SERVICES}
    (root / "logs").mkdir()
    var = root / "var"
    envs = service_env(broker.url, var, prefix=f"crash{os.getpid()}-", metrics=ports,
                       extra={"DOPOMOGA_REGISTERS": str(root / "registers"), "DOPOMOGA_BATCH_WITHIN": str(WITHIN)})
    supervisor = Supervisor(backoff_s=0.5)
    add_services(supervisor, [*PIPELINE, "treasury"], envs, root / "logs")
    supervisor.start()
    supervisor.var, supervisor.ports, supervisor.broker = var, ports, broker  # type: ignore[attr-defined]
    supervisor.registers = root / "registers"  # type: ignore[attr-defined]
    try:
        yield supervisor
    finally:
        supervisor.stop()
        broker.stop()


class Driver:
    """Sends every record once and remembers which the broker acknowledged."""

    def __init__(self, bootstrap: str):
        self.producer = producer(bootstrap, retries=0)  # never re-sent, not even by the client
        self.acked: set[str] = set()
        self.failed: set[str] = set()

    def send(self, topic: str, key: str, value: bytes, ident: str) -> None:
        future = self.producer.send(topic, key=key.encode(), value=value)
        future.add_callback(lambda _meta: self.acked.add(ident))
        future.add_errback(lambda _exc: self.failed.add(ident))

    def flush(self) -> None:
        self.producer.flush(30)

    def close(self) -> None:
        self.producer.close()


def ledger_inputs(var: Path) -> set[str]:
    path = next(var.glob("*dopomoga-budget-ledger.sqlite"), None)
    if path is None:
        return set()
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return {row[0] for row in db.execute("SELECT input_id FROM budget_inputs")}
    except sqlite3.Error:
        return set()


def kill_after_progress(stack, name: str, kills: list, topic: str | None = None, timeout: float = 40.0) -> bool:
    """SIGKILL ``name`` once it reports having consumed records (of ``topic``) since it started."""
    service = next(s for s in stack.services if s.name == name)
    port = stack.ports[name]
    if not wait_for(lambda: service.alive() and consumed(port, topic) >= 1, timeout, 0.05):
        return False
    # anywhere in the next batch: filling (records delivered, not yet processed), processing, sending
    time.sleep(random.uniform(0.3, WITHIN + 0.3))
    with stack.paused():
        seen = consumed(port, topic)
        service.kill()
        kills.append((name, topic, seen))
    return True


def test_verifier_counts_every_acknowledged_application_through_kills(crash_stack, catalog):
    stack = crash_stack
    rng = random.Random(12)
    random.seed(12)
    apps = list(SyntheticRegistry(catalog, seed=1201, submitted_on=SUBMITTED).generate(APPS))
    ids = {a.application_id for a in apps}
    engine = Engine(catalog)
    need: dict[str, int] = defaultdict(int)
    for application in apps:
        need[application.program_id] += engine.decide(application).amount_kop
    commands = [allocation_set(program_id=p, year=YEAR, annual_kop=int(n * SHARE), plan={"kind": "even"},
                               amendment_id=f"crash-{p}", legal_reference="crash suite")
                for p, n in sorted(need.items()) if n > 0]
    annual = {c.program_id: c.annual_kop for c in commands}
    driver = Driver(stack.broker.bootstrap)
    kills: list[tuple[str, str | None, float]] = []
    began = time.monotonic()

    def mark(what: str) -> None:
        print(f"{time.monotonic() - began:6.1f} s  {what}", flush=True)

    try:
        for command in commands:
            driver.send(BUDGET_COMMANDS, command_key(command.program_id, YEAR, None),
                        command.model_dump_json().encode(), command.event_id)
        driver.flush()
        assert wait_for(lambda: {c.event_id for c in commands} <= ledger_inputs(stack.var), 90), "allocations"
        # -- the stream: three waves at RATE/s, each pipeline service killed during each wave ------
        size = -(-len(apps) // WAVES)
        for wave in range(WAVES):
            killers = [threading.Thread(target=kill_after_progress, args=(stack, name, kills))
                       for name in rng.sample(PIPELINE, len(PIPELINE))]
            for killer in killers:
                killer.start()
            for application in apps[wave * size:(wave + 1) * size]:
                time.sleep(1 / RATE)
                driver.send(APPLICATIONS, application.application_id, application.model_dump_json().encode(),
                            application.application_id)
            driver.flush()
            for killer in killers:
                killer.join()
        mark(f"published and killed: {kills}")
        acked = driver.acked & ids
        assert acked, "the broker acknowledged nothing"
        with Watcher(stack.broker.bootstrap) as watcher:
            assert watcher.wait(lambda o: all(o.seen(i) for i in acked), 150), (
                f"{sum(not watcher.outcomes.seen(i) for i in acked)} of {len(acked)} acknowledged applications "
                "have no outcome (lost)")
            mark("every acknowledged application has an outcome")
            # -- month closes, September to December, with the budget service and treasury killed --
            closes = [period_closed(p, f"{YEAR}-{m:02d}") for m in range(9, 13) for p in sorted(need)]
            for close in closes:
                driver.send(BUDGET_COMMANDS, command_key(close.program_id, close.period, None),
                            close.model_dump_json().encode(), close.event_id)
            driver.flush()
            kill_after_progress(stack, "budget", kills, topic=BUDGET_COMMANDS)
            kill_after_progress(stack, "treasury", kills)
            assert wait_for(lambda: {c.event_id for c in closes} <= ledger_inputs(stack.var), 120), "closes"
            kill_after_progress(stack, "treasury", kills)
            mark("closes applied")

            def settled(outcomes) -> bool:
                for i in acked:
                    if i in outcomes.rejected_ids:
                        continue
                    last = outcomes.decisions.get(i, [None])[-1]
                    if last is None or not (last.final or last.period > f"{YEAR}-12"):
                        return False
                return True

            assert watcher.wait(settled, 120), "applications still waiting for a decision after December"
            outcomes = watcher.outcomes
            mark("settled")
    finally:
        driver.close()

    # -- the verifier -----------------------------------------------------------------------------
    by_service = defaultdict(int)
    for name, _, _ in kills:
        by_service[name] += 1
    assert all(by_service[name] >= 2 for name in PIPELINE), f"kills: {dict(by_service)}"
    assert any(topic == BUDGET_COMMANDS for _, topic, _ in kills), "no kill during the month closes"
    assert by_service["treasury"] >= 1, f"kills: {dict(by_service)}"
    assert not driver.failed & ids, "the broker refused sends (the suite never re-sends them)"
    seen = {i for i in ids if outcomes.seen(i)}
    assert seen == acked, f"{len(acked - seen)} acknowledged applications lost, {len(seen - acked)} unexpected"
    stray = set(outcomes.decisions) - ids
    assert not stray, f"{len(stray)} decisions for applications never sent"
    two = [i for i in acked if len(outcomes.distinct_finals(i)) > 1]
    assert not two, f"{len(two)} applications with two different final decisions"
    # year to date: Σ paid[Jan..m] <= Σ allocation[Jan..m], every program, every month
    paid: dict[str, list[int]] = defaultdict(lambda: [0] * 12)
    for i in acked:
        final = outcomes.final(i)
        if final is not None and final.period.startswith(f"{YEAR}-"):
            paid[final.program_id][int(final.period[5:]) - 1] += final.payout_kop
    for program_id, months in paid.items():
        limit = cumulative(monthly_plan(YEAR, annual.get(program_id, 0), "even"))
        running = 0
        for m in range(12):
            running += months[m]
            assert running <= limit[m], f"{program_id}: paid {running} > allocated {limit[m]} by {YEAR}-{m + 1:02d}"
    statuses = [d.status for i in acked for d in outcomes.decisions.get(i, [])]
    assert "deferred" in statuses, "the budget never bound (no deferral)"
    exhausted = [i for i in acked if i in outcomes.decisions and not outcomes.decisions[i][-1].final]
    assert exhausted, "no claim was still owed after December (the money never ran out)"

    # -- the ledger and the registers -------------------------------------------------------------
    expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for i in acked:
        final = outcomes.final(i)
        if final is not None and final.payout_kop > 0:
            expected[(final.program_id, final.period)][0] += 1
            expected[(final.program_id, final.period)][1] += final.payout_kop

    def registers_caught_up() -> bool:
        for (program_id, period), (count, total) in expected.items():
            control = stack.registers / program_id / period / "control.json"
            try:
                summary = json.loads(control.read_text())
            except (OSError, ValueError):  # not written yet, or being written
                return False
            if (summary["count"], summary["sum_kop"]) != (count, total):
                return False
        return True

    if not wait_for(registers_caught_up, 90, 0.5):
        behind = []
        for (program_id, period), (count, total) in sorted(expected.items()):
            control = stack.registers / program_id / period / "control.json"
            found = json.loads(control.read_text()) if control.exists() else {}
            if (found.get("count"), found.get("sum_kop")) != (count, total):
                behind.append(f"{program_id} {period}: want {count}/{total}, found "
                              f"{found.get('count')}/{found.get('sum_kop')}")
        raise AssertionError(f"the treasury's registers did not catch up: {behind[:4]}")
    mark("registers caught up")
    stack.stop()
    from dopomoga.budget.ledger import BudgetLedger
    from dopomoga.treasury.export import reconcile_with_ledger
    from dopomoga.treasury.registers import register_dir

    ledger_path = next(stack.var.glob("*dopomoga-budget-ledger.sqlite"))
    ledger = BudgetLedger(f"sqlite:///{ledger_path}", catalog)
    for i in acked:
        if i in outcomes.decisions:
            assert ledger.payout(i).model_dump_json() == outcomes.decisions[i][-1].model_dump_json(), i
    months = {(d.program_id, d.period) for d in ledger.final_payouts() if d.payout_kop > 0}
    assert months
    for program_id, period in sorted(months):
        directory = register_dir(stack.registers, program_id, period)
        report = reconcile_with_ledger(ledger, directory)
        assert report.ok, f"{program_id} {period}: {[d.kind for d in report.differences][:5]}"
    total = sum(d.payout_kop for d in ledger.final_payouts())
    registered = 0
    for control in stack.registers.glob("*/*/control.json"):
        registered += json.loads(control.read_text())["sum_kop"]
    assert registered == total, f"registers {registered} kop != ledger {total} kop"
