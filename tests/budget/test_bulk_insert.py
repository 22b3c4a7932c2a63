"""A transaction's new rows go in with one COPY per table on PostgreSQL (``tx.bulk_insert``, issue
15): its errors are SQLAlchemy's as before, so a writer that loses a race on an input id still
retries and replays the winner's decisions instead of failing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dopomoga.budget import schema as t
from dopomoga.budget.ledger import BudgetLedger
from dopomoga.budget.tx import bulk_insert
from tests.budget.conftest import allocation, entitlement

PROGRAM = "zhytomyr.centenarians"
ROW = {"input_id": "x-1", "seq": 1, "kind": "EntitlementCalculated", "occurred_at": "2023-04-01T00:00:00+00:00",
       "outputs": 0}


def test_bulk_insert_writes_every_row_and_a_duplicate_is_an_integrity_error(ledger):
    rows = [ROW | {"input_id": f"x-{i}", "seq": i, "kind": "it's \"quoted\"\t\\ \n ok"} for i in range(1, 4)]
    with ledger.engine.begin() as conn:
        bulk_insert(conn, t.inputs, rows)
        bulk_insert(conn, t.inputs, [])
    with ledger.engine.connect() as conn:
        got = [dict(r) for r in conn.execute(select(t.inputs).order_by(t.inputs.c.seq)).mappings()]
    assert got == rows
    with pytest.raises(IntegrityError), ledger.engine.begin() as conn:
        bulk_insert(conn, t.inputs, [ROW | {"seq": 99}])


def test_a_claim_another_writer_took_meanwhile_is_replayed_not_failed(budget_catalog, pg_url):
    first, second = BudgetLedger(pg_url, budget_catalog), BudgetLedger(pg_url, budget_catalog)
    try:
        first.apply(allocation(PROGRAM, 2023, 12_000_000))
        claim = entitlement(budget_catalog, PROGRAM, "r-1", 100_000, "2023-04")
        body = claim.model_dump_json().encode()
        stored = second.store._stored
        won: list = []

        def race(conn, ids):  # second reads "not taken", then first takes it before second writes
            found = stored(conn, ids)
            if not won:
                won.append(first.submit_many([claim], [body], encoded=True)[0])
            return found

        second.store._stored = race  # type: ignore[method-assign]
        got = second.submit_many([claim], [body], encoded=True)[0]
        assert won and got == won[0]  # the same stored bytes: one decision, no failure
        with second.engine.connect() as conn:
            assert conn.execute(select(t.inputs.c.input_id)).scalars().all().count(claim.decision_id) == 1
    finally:
        first.close()
        second.close()
