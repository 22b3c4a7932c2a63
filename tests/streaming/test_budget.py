"""Final payout decisions through all three services equal Engine.decide + BudgetLedger offline."""

from __future__ import annotations

import datetime as dt

import pytest

from dopomoga.budget.commands import confirmations_of_inferred, period_closed
from dopomoga.rules.engine import Engine
from schemas.events import AllocationSet, EntitlementCalculated
from services.devstack.registry import Registry
from services.devstack.synthetic import SyntheticRegistry
from services.devstack.watch import Watcher
from services.platform.topology import ENTITLEMENTS
from tests.streaming.conftest import ledger_available, wait_for
from tests.streaming.test_pipeline import TopicReader

pytestmark = [pytest.mark.broker, pytest.mark.skipif(not ledger_available(), reason="ledger not written yet")]


def allocations(catalog, apps, year: int, share: float, tag: str) -> list[AllocationSet]:
    """Annual allocations giving each program ``share`` of its claims' total in every month."""
    offline = Engine(catalog)
    need: dict[str, int] = {}
    for application in apps:
        entitlement = offline.decide(application)
        need[entitlement.program_id] = need.get(entitlement.program_id, 0) + entitlement.amount_kop
    return [
        AllocationSet(
            event_id=f"alloc-{tag}-{program}", occurred_at=dt.datetime(year, 1, 2, tzinfo=dt.UTC), program_id=program,
            year=year, annual_kop=int(total * share) * 12, plan={"kind": "even"}, amendment_id=f"{tag}-{program}",
            legal_reference="test allocation",
        )
        for program, total in sorted(need.items())
    ]


def applied(stack, input_ids) -> bool:
    """Has the budget service's ledger taken these inputs? (read-only look at its SQLite file)"""
    import sqlite3

    from dopomoga.budget.schema import inputs

    path = next(stack.var.glob("*dopomoga-budget-ledger.sqlite"), None)
    if path is None:
        return False
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            rows = db.execute(f"SELECT input_id FROM {inputs.name}").fetchall()
        except sqlite3.Error:
            return False
    return set(input_ids) <= {r[0] for r in rows}


def drive_to_final(broker, stack, apps, commands, timeout: float):
    """Publish, wait for first decisions, close periods until every application is final."""
    ids = {a.application_id for a in apps}
    issued = list(commands)
    with Registry(broker.bootstrap) as registry, Watcher(broker.bootstrap) as watcher:
        for command in commands:
            registry.command(command)
        # claims and commands travel on different topics: make sure the allocations are in first
        assert wait_for(lambda: applied(stack, [c.event_id for c in commands]), timeout)
        registry.publish(apps)
        assert watcher.wait(lambda o: all(o.seen(i) for i in ids), timeout), "claims did not reach the budget service"
        closed = set()

        def step(outcomes) -> bool:
            pending = {(d.program_id, d.period, d.district) for i in ids if not outcomes.settled(i)
                       for d in outcomes.decisions.get(i, [])}
            for budget in sorted(pending - closed, key=str):
                command = period_closed(*budget)
                registry.command(command)
                issued.append(command)
                closed.add(budget)
            return all(outcomes.settled(i) for i in ids)

        assert watcher.wait(step, timeout), "not every application got a final decision"
        return watcher.outcomes, issued


def offline_reference(catalog, broker, ids, commands_before, closes, tmp_path):
    """The same inputs through a fresh ledger, entitlements in the order the budget service read them."""
    from dopomoga.budget.ledger import BudgetLedger

    reader = TopicReader(broker.bootstrap, ENTITLEMENTS)
    ordered: dict[int, list[EntitlementCalculated]] = {}
    try:
        def complete():
            reader.poll()
            return len({r.key for r in reader.records[ENTITLEMENTS]}) > 0 and ids <= {
                EntitlementCalculated.model_validate_json(r.value).application_id for r in reader.records[ENTITLEMENTS]}
        assert wait_for(complete, 30)
        for record in reader.records[ENTITLEMENTS]:
            entitlement = EntitlementCalculated.model_validate_json(record.value)
            if entitlement.application_id in ids:
                ordered.setdefault(record.partition, []).append(entitlement)
    finally:
        reader.close()
    ledger = BudgetLedger(f"sqlite:///{tmp_path / 'offline.sqlite'}", catalog)
    for command in commands_before:
        ledger.apply(command)
    seen = set()
    for partition in sorted(ordered):
        for entitlement in ordered[partition]:
            if entitlement.decision_id not in seen:
                seen.add(entitlement.decision_id)
                ledger.submit(entitlement)
    for command in closes:
        ledger.apply(command)
    return {d.application_id: d for d in ledger.final_payouts()}


def test_every_application_gets_one_final_decision_equal_to_offline(broker, stack, catalog, tmp_path):
    apps = list(SyntheticRegistry(catalog, seed=301, submitted_on="2024-03-05").generate(250))
    # 70 % of the need in 2024 binds; what is still owed on 31 December is a payable of 2025
    # (002 L984), paid first from 2025's allocation - so every application still ends final.
    commands = allocations(catalog, apps, 2024, share=0.7, tag="e2e") + allocations(
        catalog, apps, 2025, share=1.0, tag="e2e-next")
    # amounts the acts do not state are confirmed by the department before they are paid
    commands += [c for program in sorted({a.program_id for a in apps}) for c in confirmations_of_inferred(
        catalog.get(program), 2024, document="рішення (тест)", confirmed_by="test-operator",
        occurred_at=dt.datetime(2024, 1, 2, 9, tzinfo=dt.UTC))]
    outcomes, issued = drive_to_final(broker, stack, apps, commands, timeout=90)
    ids = {a.application_id for a in apps}
    for application_id in ids:
        assert len(outcomes.distinct_finals(application_id)) == 1, "two different final decisions"
    # equal to Engine.decide + ledger offline
    offline_engine = Engine(catalog)
    for application in apps:
        assert outcomes.final(application.application_id).entitlement_decision_id == offline_engine.decide(
            application).decision_id
    expected = offline_reference(catalog, broker, ids, commands, issued[len(commands):], tmp_path)
    for application_id in ids:
        assert outcomes.final(application_id).model_dump_json() == expected[application_id].model_dump_json()
    statuses = {outcomes.final(i).status for i in ids}
    assert "paid" in statuses and len(statuses) > 1, statuses  # the allocation was really binding
