"""The ledger's lock scope on PostgreSQL is the budget key and year (issue 15): programs of one city
no longer queue on each other; a pooled line's programs (one allocation) still do, and a December
claim still locks its budget's next year too (a late claim moves to January)."""

from __future__ import annotations

import threading
import time

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.budget.lines import BudgetLines, CityLines
from dopomoga.budget.store import lock_keys
from dopomoga.rules.programs import Catalog
from tests.budget.conftest import allocation, close, entitlement

POOLED = ("zhytomyr.centenarians", "zhytomyr.triplets")  # a test line allocated whole
ALONE = "zhytomyr.honorary-citizens"  # same city, its own allocation


def _lines() -> BudgetLines:
    """Zhytomyr's shipped lines, plus a line 9.9.9 paying two programs from one allocation."""
    shipped = BudgetLines.load(Catalog.load().root)
    city = shipped.cities["zhytomyr"]
    taken = set(POOLED)
    kept = [line.model_copy(update={"measures": [m for m in line.measures if m.program not in taken]})
            for line in city.lines]
    pooled = {"code": "9.9.9", "name_uk": "Тестовий рядок", "reference": "тест", "allocated": "line",
              "measures": [{"measure": f"9.9.9.{n}", "program": p, "name_uk": p, "reference": "тест"}
                           for n, p in enumerate(POOLED, 1)]}
    lines = [line.model_dump() for line in kept if line.measures] + [pooled]
    return BudgetLines({**shipped.cities, "zhytomyr": CityLines.model_validate(
        {"city": "zhytomyr", "reference": city.reference, "lines": lines})})


def test_an_input_locks_its_budget_key_and_year():
    catalog, lines = Catalog.load(), _lines()
    scope = lines.holder
    holder = "zhytomyr.line-9-9-9"
    assert lock_keys(entitlement(catalog, ALONE, "s-1", 100, "2023-06"), scope) == {f"{ALONE}:2023"}
    for program in POOLED:  # a pooled line's programs: one key, its holder's
        assert lock_keys(entitlement(catalog, program, f"s-{program}", 100, "2023-06"), scope) == {f"{holder}:2023"}
    assert lock_keys(allocation(holder, 2023, 100), scope) == {f"{holder}:2023", f"{holder}:2022"}
    assert lock_keys(close(POOLED[1], "2023-12"), scope) == {f"{holder}:2023", f"{holder}:2024"}
    assert lock_keys(entitlement(catalog, ALONE, "s-2", 100, "2023-12"), scope) == {f"{ALONE}:2023", f"{ALONE}:2024"}


def test_two_programs_of_one_city_proceed_in_parallel_and_a_pooled_line_serialises(pg_url):
    """Writer A holds the locks of a claim of one pooled program (its transaction open). A claim of
    another program of the same city is decided meanwhile; a claim of the pooled line's other
    program waits until A commits. (Seen failing with the city scope: the first claim waited too.)"""
    catalog, lines = Catalog.load(), _lines()
    first, second = BudgetLedger(pg_url, catalog, lines), BudgetLedger(pg_url, catalog, lines)
    for program in (ALONE, "zhytomyr.line-9-9-9"):
        second.apply(allocation(program, 2023, 10**9))
    held = entitlement(catalog, POOLED[0], "scope-a", 100, "2023-06")
    conn = first.store.engine.connect()
    transaction = conn.begin()
    first.store._lock_budgets(conn, [("scope-a", "claim", held.occurred_at, None, held)])

    def timed(event, out: list) -> None:
        started = time.monotonic()
        second.submit(event)
        out.append(time.monotonic() - started)

    other: list[float] = []
    thread = threading.Thread(target=timed, args=(entitlement(catalog, ALONE, "scope-b", 100, "2023-06"), other))
    thread.start()
    thread.join(20)
    assert other and other[0] < 10, "a claim of another program of the city waited for A"
    pooled: list[float] = []
    thread = threading.Thread(target=timed, args=(entitlement(catalog, POOLED[1], "scope-c", 100, "2023-06"), pooled))
    thread.start()
    time.sleep(1.5)
    assert thread.is_alive() and not pooled  # the pooled line's other program queues on A's lock
    transaction.commit()
    conn.close()
    thread.join(20)
    assert pooled and pooled[0] >= 1.5
    first.close()
    second.close()
