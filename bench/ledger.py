"""Budget ledger throughput: claims/s as the budget year fills (``python bench/ledger.py``).

    .venv/bin/python bench/ledger.py [--n 10000] [--batch 500]

Two real programs of the catalog, a fresh SQLite file ledger under a temp dir each time:

- ``first_come`` (zhytomyr.visual-disability-utilities): N claims in one month of a year
  with a large allocation (every claim paid at once), one ``submit`` per claim;
- ``pro_rata_at_close`` (zhytomyr.children-of-fallen): N claims reserved, then the
  month is closed (allocation 2/3 of the need: every claim is prorated).

Claims are clones of one entitlement the engine decided (distinct application ids and
amounts), so setup is quick and the ledger sees real payloads. Each scenario also runs
with ``submit_many`` in batches (as the budget service does), when the ledger has it.
Prints a markdown table; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.ids import decision_id
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from schemas.events import AllocationSet, EntitlementCalculated, PeriodClosed
from services.devstack.synthetic import SyntheticRegistry

FIRST_COME = "zhytomyr.visual-disability-utilities"
PRO_RATA = "zhytomyr.children-of-fallen"
SUBMITTED_ON = "2024-05-06"


def claims(catalog: Catalog, program_id: str, n: int, seed: int) -> list[EntitlementCalculated]:
    """``n`` eligible entitlements of ``program_id``: clones of one the engine decided."""
    apps = SyntheticRegistry(
        catalog, seed=seed, submitted_on=SUBMITTED_ON, eligible_share=1.0, programs=[program_id]
    ).generate(40)
    engine = Engine(catalog)
    base = next(e for e in (engine.decide(a, record=False) for a in apps) if e.eligible and e.amount_kop > 0)
    rng = random.Random(seed)
    data = base.model_dump(mode="json")
    out: list[EntitlementCalculated] = []
    for i in range(n):
        app_id = f"bench-{seed}-{i:07d}"
        ident = decision_id("entitlement", app_id)
        application = {**data["application"], "application_id": app_id, "event_id": f"ev-{app_id}"}
        out.append(
            EntitlementCalculated.model_validate(
                {
                    **data,
                    "event_id": ident,
                    "decision_id": ident,
                    "application_id": app_id,
                    "amount_kop": rng.randint(100_000, 5_000_000),
                    "application": application,
                }
            )
        )
    return out


def allocation(program_id: str, year: int, annual_kop: int) -> AllocationSet:
    return AllocationSet(
        event_id=f"bench-alloc-{program_id}",
        occurred_at=dt.datetime(year, 1, 2, tzinfo=dt.UTC),
        program_id=program_id,
        year=year,
        annual_kop=annual_kop,
        plan={"kind": "explicit"}
        | {
            "months": {
                f"{year}-{m:02d}": annual_kop // 12 + (annual_kop % 12 if m == 12 else 0)
                for m in range(1, 13)
            }
        },
        amendment_id="bench",
        legal_reference="bench",
    )


def feed(
    ledger: BudgetLedger, entitlements: list[EntitlementCalculated], batch: int
) -> list[tuple[int, float]]:
    """Submit everything; returns (claims, seconds) of each successive chunk of ~1 000 claims."""
    chunks: list[tuple[int, float]] = []
    many = getattr(ledger, "submit_many", None) if batch > 1 else None
    step = 1000 if many is None else max(batch, 1000 // batch * batch)
    for start in range(0, len(entitlements), step):
        part = entitlements[start : start + step]
        began = time.perf_counter()
        if many is None:
            for entitlement in part:
                ledger.submit(entitlement)
        else:
            for i in range(0, len(part), batch):
                many(part[i : i + batch])
        chunks.append((len(part), time.perf_counter() - began))
    return chunks


def _synchronous(ledger: BudgetLedger, level: str) -> None:
    """Override the ledger's ``PRAGMA synchronous`` (FULL since issue 12) to measure what it costs."""
    from sqlalchemy import event

    event.listen(ledger.engine, "connect", lambda conn, _r: conn.execute(f"PRAGMA synchronous={level}"))
    ledger.engine.dispose()


def run(catalog: Catalog, program_id: str, entitlements: list[EntitlementCalculated], batch: int,
        synchronous: str | None = None) -> dict:
    period = entitlements[0].period
    year = int(period[:4])
    need = sum(e.amount_kop for e in entitlements)
    with tempfile.TemporaryDirectory() as tmp:
        ledger = BudgetLedger(f"sqlite:///{Path(tmp) / 'ledger.db'}", catalog)
        if synchronous:
            _synchronous(ledger, synchronous)
        if program_id == PRO_RATA:
            ledger.apply(allocation(program_id, year, need * 2 // 3 * 12 // int(period[5:])))
        else:
            ledger.apply(allocation(program_id, year, 10**13))
        chunks = feed(ledger, entitlements, batch)
        close_s = 0.0
        if program_id == PRO_RATA:
            began = time.perf_counter()
            for month in range(1, int(period[5:]) + 1):
                ledger.apply(
                    PeriodClosed(
                        event_id=f"bench-close-{month}",
                        occurred_at=dt.datetime(year, month, 28, tzinfo=dt.UTC),
                        program_id=program_id,
                        period=f"{year}-{month:02d}",
                        closed_by="bench",
                    )
                )
            close_s = time.perf_counter() - began
        statuses = {d.status for d in ledger.final_payouts(program_id)}
        ledger.close()
    n = len(entitlements)
    seconds = sum(s for _, s in chunks)
    return {
        "claims_s": n / seconds,
        "first_1000": chunks[0][0] / chunks[0][1],
        "last_1000": chunks[-1][0] / chunks[-1][1],
        "close_s": close_s,
        "with_close": n / (seconds + close_s),
        "statuses": ",".join(sorted(statuses)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="submit_many batch size (when available)")
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default=None,
                        help="override the ledger's PRAGMA synchronous (default: the ledger's own, FULL)")
    args = parser.parse_args()
    catalog = Catalog.load()
    data = {
        FIRST_COME: claims(catalog, FIRST_COME, args.n, 11),
        PRO_RATA: claims(catalog, PRO_RATA, args.n, 12),
    }
    modes = [("submit", 1)] + ([("submit_many", args.batch)] if hasattr(BudgetLedger, "submit_many") else [])
    print(
        f"\n## Budget ledger benchmark ({args.n:,} claims per program, SQLite file, "
        f"synchronous={args.synchronous or 'the ledger default (FULL)'}, {os.cpu_count()} cores)\n"
    )
    print(
        "| program (policy) | call | claims/s | first chunk claims/s | last chunk claims/s "
        "| close s | claims/s incl. close | final statuses |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for program_id, policy in ((FIRST_COME, "first_come"), (PRO_RATA, "pro_rata_at_close")):
        for mode, batch in modes:
            r = run(catalog, program_id, data[program_id], batch, args.synchronous)
            call = mode if batch == 1 else f"{mode} ×{batch}"
            print(
                f"| {program_id} ({policy}) | {call} | {r['claims_s']:,.0f} | {r['first_1000']:,.0f} "
                f"| {r['last_1000']:,.0f} | {r['close_s']:.2f} | {r['with_close']:,.0f} | {r['statuses']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
