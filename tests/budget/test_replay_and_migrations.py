"""Durability: replays change nothing and return the same bytes; the schema comes from alembic."""

from __future__ import annotations

import random

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text

from dopomoga.budget import schema
from dopomoga.budget.ledger import BudgetLedger
from dopomoga.budget.store import MIGRATIONS
from schemas.events import AllocationSet, PeriodClosed
from tests.budget.conftest import allocation, close, entitlement, uah

PROGRAMS = {
    "zaporizhzhia.test-bus-carriers": None,
    "zaporizhzhia.test-priority": None,
    "zaporizhzhia.test-visual": None,
    "zhytomyr.centenarians": None,
    "zaporizhzhia.test-capital-repair": ["Дніпровський", "Заводський"],
}


def stream(catalog, n: int = 10_000, seed: int = 7) -> list:
    """A deterministic mix of allocations, amendments, claims of every policy and closes."""
    rng = random.Random(seed)
    events: list = []
    for program, districts in PROGRAMS.items():
        for district in districts or [None]:
            events.append(allocation(program, 2023, uah("600000"), district=district))
    month = 1
    i = 0
    while len(events) < n:
        i += 1
        program = rng.choice(list(PROGRAMS))
        districts = PROGRAMS[program]
        district = rng.choice(districts) if districts else None
        period = f"2023-{month:02d}"
        roll = rng.random()
        if roll < 0.004 and month < 12:
            for p, ds in PROGRAMS.items():
                for d in ds or [None]:
                    events.append(close(p, period, district=d))
            month += 1
        elif roll < 0.006:
            events.append(
                allocation(program, 2023, uah(str(600000 + 1000 * i)), district=district, amendment=f"a{i}")
            )
        else:
            facts = None
            amount = rng.choice([uah("4500"), uah("10000"), rng.randint(1, 5_000_000)])
            if program == "zaporizhzhia.test-priority":
                facts = {"claim_kop": amount, "disability_group": rng.choice([1, 2, 3])}
            events.append(
                entitlement(
                    catalog,
                    program,
                    f"app-{i:06d}",
                    amount,
                    period,
                    eligible=rng.random() > 0.05,
                    district=district,
                    facts=facts,
                )
            )
    return events[:n]


def feed(ledger: BudgetLedger, events: list) -> list[str]:
    out: list[str] = []
    for item in events:
        decisions = (
            ledger.apply(item) if isinstance(item, AllocationSet | PeriodClosed) else ledger.submit(item)
        )
        out.append("\n".join(d.model_dump_json() for d in decisions))
    return out


def dump(ledger: BudgetLedger) -> bytes:
    """Every table, every row, ordered by primary key."""
    lines: list[str] = []
    with ledger.engine.connect() as conn:
        for name in sorted(inspect(conn).get_table_names()):
            table = schema.metadata.tables.get(name)
            if table is None:
                lines.append(f"# {name}")
                lines += [repr(tuple(r)) for r in conn.execute(text(f"SELECT * FROM {name} ORDER BY 1"))]
                continue
            lines.append(f"# {name}")
            rows = conn.execute(select(table).order_by(*table.primary_key.columns))
            lines += [repr(tuple(r)) for r in rows]
    return "\n".join(lines).encode()


def test_replaying_ten_thousand_events_changes_nothing_and_returns_the_same_decision_bytes(budget_catalog):
    events = stream(budget_catalog)
    assert len(events) == 10_000
    ledger = BudgetLedger("sqlite://", budget_catalog)
    first = feed(ledger, events)
    before = dump(ledger)
    assert sum(1 for out in first if out) > 9_000
    again = feed(ledger, events)
    assert again == first
    assert dump(ledger) == before
    # every kind of outcome happened
    statuses = {d.status for d in ledger.final_payouts()}
    assert {"paid", "prorated", "refused"} <= statuses


def test_the_same_inputs_give_a_byte_identical_ledger_in_a_fresh_database(budget_catalog):
    events = stream(budget_catalog, n=500, seed=11)
    one, two = BudgetLedger("sqlite://", budget_catalog), BudgetLedger("sqlite://", budget_catalog)
    assert feed(one, events) == feed(two, events)
    assert dump(one) == dump(two)


def test_no_month_pays_more_than_its_cumulative_allocation(budget_catalog):
    events = stream(budget_catalog, n=1_000, seed=3)
    ledger = BudgetLedger("sqlite://", budget_catalog)
    feed(ledger, events)
    cumulative: dict[tuple, list[int]] = {}
    for row in ledger.need_report(2023):  # ordered by program, district, month
        paid, allocated = cumulative.setdefault((row.program_id, row.district), [0, 0])
        paid, allocated = paid + row.paid_kop, allocated + row.allocation_kop
        cumulative[(row.program_id, row.district)] = [paid, allocated]
        assert row.paid_kop <= row.need_kop
        assert paid <= allocated, row


def test_migrations_create_exactly_the_ledger_schema_and_run_both_ways(tmp_path, budget_catalog):
    url = f"sqlite:///{tmp_path / 'budget.db'}"
    ledger = BudgetLedger(url, budget_catalog)
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "budget_alembic_version"})
        assert context.get_current_revision() == head
        assert compare_metadata(context, schema.metadata) == []
    ledger.downgrade("base")
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) == {"budget_alembic_version"}
    ledger.upgrade("head")  # and again, on an existing database: a no-op the second time
    BudgetLedger(url, budget_catalog)
    with engine.connect() as conn:
        assert set(schema.metadata.tables) <= set(inspect(conn).get_table_names())
