"""Where a what-if's inputs come from: a JSONL file, or a year of a ledger (read-only).

``from_ledger(url, year, folder)`` reads a ledger's claims of a budget year (each stores the full
entitlement, which carries the application) in arrival order, and its allocation history for the
year (every amendment, in order): the applications go to a JSONL file in ``folder``, the
allocations come back as commands. It only ever runs SELECTs; the what-if then works on its own
temporary ledgers, so production state is never written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
from sqlalchemy import create_engine, select

from dopomoga.budget import schema as t
from schemas.events import AllocationSet, MonthlyPlan


def from_ledger(url: str, year: int, folder: Path) -> tuple[Path, list[AllocationSet]]:
    """The applications (a JSONL file in ``folder``) and allocation commands of ``year`` in a ledger."""
    engine = create_engine(url)
    applications = folder / f"ledger-{year}-applications.jsonl"
    allocations: list[AllocationSet] = []
    try:
        with engine.connect() as conn, applications.open("wb") as sink:
            claims = conn.execute(
                select(t.claims.c.entitlement).where(t.claims.c.year == year).order_by(t.claims.c.arrival_seq)
            )
            for (body,) in claims:
                sink.write(orjson.dumps(orjson.loads(body)["application"]) + b"\n")
            history = conn.execute(
                select(t.allocation_history).where(t.allocation_history.c.year == year)
                .order_by(t.allocation_history.c.occurred_at, t.allocation_history.c.version)
            ).mappings()
            for row in history:
                plan = orjson.loads(row["plan"])
                months = ({f"{year}-{m:02d}": amount for m, amount in enumerate(plan, start=1)}
                          if row["plan_kind"] == "explicit" else None)
                allocations.append(AllocationSet(
                    event_id=row["event_id"],
                    occurred_at=dt.datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00")),
                    program_id=row["program_id"],
                    district=row["district"] or None,
                    year=year,
                    annual_kop=row["annual_kop"],
                    plan=MonthlyPlan(kind=row["plan_kind"], months=months),
                    amendment_id=row["amendment_id"],
                    legal_reference=row["legal_reference"],
                ))
    finally:
        engine.dispose()
    return applications, allocations
