"""``submit_many`` equals ``submit`` one by one; the running totals equal a full recomputation."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import case, func, select

from dopomoga.budget import schema as t
from dopomoga.budget.ledger import BudgetLedger
from schemas.events import AllocationSet, PeriodClosed
from tests.budget.conftest import allocation, close, entitlement, uah
from tests.budget.test_replay_and_migrations import PROGRAMS, dump, feed, stream


def feed_in_batches(ledger: BudgetLedger, events: list, rng: random.Random, bodies: bool = False) -> list[str]:
    """Commands one by one; runs of entitlements through ``submit_many`` in random-sized batches
    (``bodies``: with each entitlement's event bytes, as the budget service passes them)."""
    out: list[str] = []
    batch: list = []

    def flush() -> None:
        while batch:
            size = rng.randint(1, 40)
            chunk = batch[:size]
            raw = [e.model_dump_json().encode() for e in chunk] if bodies else None
            for decisions in ledger.submit_many(chunk, raw):
                out.append("\n".join(d.model_dump_json() for d in decisions))
            del batch[:size]

    for item in events:
        if isinstance(item, AllocationSet | PeriodClosed):
            flush()
            out.append("\n".join(d.model_dump_json() for d in ledger.apply(item)))
        else:
            batch.append(item)
    flush()
    return out


def test_submit_many_gives_exactly_the_decisions_of_submit_one_by_one(budget_catalog):
    events = stream(budget_catalog, n=1_500, seed=5)
    # replays inside and across batches: an entitlement again right after itself, and earlier ones
    claims = [e for e in events if not isinstance(e, AllocationSet | PeriodClosed)]
    rng = random.Random(1)
    for _ in range(60):
        at = rng.randrange(len(events))
        events.insert(at + 1, rng.choice(claims[: max(1, at // 2)]) if at % 2 else events[at])
    one, many = BudgetLedger("sqlite://", budget_catalog), BudgetLedger("sqlite://", budget_catalog)
    expected = feed(one, events)
    got = feed_in_batches(many, events, random.Random(2), bodies=True)
    assert got == expected
    assert dump(many) == dump(one)  # the bodies as received are stored: the same rows
    # a replayed batch returns the stored bytes and writes nothing
    before = dump(many)
    again = feed_in_batches(many, events, random.Random(3))
    assert again == expected
    assert dump(many) == before
    assert many.submit_many([]) == []


def recomputed(ledger: BudgetLedger) -> dict[tuple, tuple[int, ...]]:
    """The running totals summed from budget_claims (non-zero rows)."""
    c = t.claims.c
    eligible = c.eligible.is_(True)
    query = select(
        c.program_id,
        c.district,
        c.year,
        c.budget_period,
        func.sum(case((eligible, 1), else_=0)),
        func.sum(case((eligible, c.claimed_kop), else_=0)),
        func.sum(case((eligible & (c.status == "pending"), c.claimed_kop), else_=0)),
        func.sum(case((eligible & c.status.in_(("paid", "prorated")), c.payout_kop), else_=0)),
        func.sum(case((eligible & (c.status == "deferred"), 1), else_=0)),
    ).group_by(c.program_id, c.district, c.year, c.budget_period)
    with ledger.engine.connect() as conn:
        rows = {
            (p, d, y, int(period[5:7])): tuple(int(v) for v in values)
            for p, d, y, period, *values in conn.execute(query)
        }
    return {k: v for k, v in rows.items() if any(v)}


def stored_totals(ledger: BudgetLedger) -> tuple[dict[tuple, tuple[int, ...]], set[tuple], set[tuple]]:
    c = t.totals.c
    with ledger.engine.connect() as conn:
        rows = {
            (p, d, y, m): tuple(values)
            for p, d, y, m, *values in conn.execute(
                select(
                    c.program_id,
                    c.district,
                    c.year,
                    c.month,
                    c.claims,
                    c.need_kop,
                    c.reserved_kop,
                    c.paid_kop,
                    c.deferred,
                )
            )
        }
        claim_keys = set(
            conn.execute(select(t.claims.c.program_id, t.claims.c.district, t.claims.c.year)).all()
        )
    return {k: v for k, v in rows.items() if any(v)}, claim_keys, {k[:3] for k in rows}


event = st.tuples(
    st.sampled_from(["claim"] * 8 + ["close", "amend"]),
    st.sampled_from(sorted(PROGRAMS)),
    st.integers(0, 1),  # district index
    st.integers(1, 4),  # month
    st.sampled_from([0, uah("4500"), uah("10000"), uah("30000"), 1]),
    st.booleans(),  # eligible
    st.integers(0, 3),  # allocation size / priority fact
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, min_size=1, max_size=40), batched=st.booleans())
def test_running_totals_equal_a_full_recomputation(budget_catalog, events, batched):
    ledger = BudgetLedger("sqlite://", budget_catalog)
    items: list = []
    for i, (kind, program, d, month, amount, eligible, size) in enumerate(events):
        districts = PROGRAMS[program]
        district = districts[d] if districts else None
        period = f"2023-{month:02d}"
        if kind == "close":
            items.append(close(program, period, district=district if d else None))
        elif kind == "amend":
            annual = [0, uah("12000"), uah("60000"), uah("600000")][size]
            items.append(allocation(program, 2023, annual, district=district, amendment=f"a{i}"))
        else:
            facts = {"claim_kop": amount, "disability_group": size % 3 + 1} if "priority" in program else None
            items.append(
                entitlement(
                    budget_catalog,
                    program,
                    f"app-{i:03d}",
                    amount,
                    period,
                    eligible=eligible,
                    district=district,
                    facts=facts,
                )
            )
    if batched:
        feed_in_batches(ledger, items, random.Random(len(items)))
    else:
        feed(ledger, items)
    totals, claim_keys, total_keys = stored_totals(ledger)
    assert totals == recomputed(ledger)
    assert total_keys == claim_keys  # a row for every key that has claims, eligible or not
    for program in PROGRAMS:  # and status() agrees
        for month in range(1, 5):
            status = ledger.status(program, f"2023-{month:02d}")
            row = totals.get((program, "", 2023, month), (0, 0, 0, 0, 0))
            assert (status.need_kop, status.reserved_kop, status.paid_kop) == (row[1], row[2], row[3])
