"""``python tests/budget/ledger_writer.py URL YEAR N``: one writer of tests/budget/test_postgres_ledger.py.

Allocates a year of ``zhytomyr.centenarians`` and submits N claims one by one (one transaction
each) to that year's budget; prints a JSON line: submitted, failed (RuntimeError after the
ledger's retries), seconds."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.rules.programs import Catalog
from tests.budget.conftest import allocation, entitlement

PROGRAM = "zhytomyr.centenarians"


def main(url: str, year: int, n: int) -> None:
    catalog = Catalog.load()
    ledger = BudgetLedger(url, catalog)
    ledger.apply(allocation(PROGRAM, year, 10_000_000_00))
    claims = [entitlement(catalog, PROGRAM, f"w{year}-{i:05d}", 100_00, f"{year}-{1 + i % 12:02d}") for i in range(n)]
    failed = 0
    started = time.monotonic()
    for claim in claims:
        try:
            ledger.submit(claim)
        except RuntimeError:
            failed += 1
    print(json.dumps({"year": year, "submitted": n, "failed": failed, "seconds": round(time.monotonic() - started, 2)}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
