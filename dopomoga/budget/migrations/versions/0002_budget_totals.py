"""Budget ledger: running totals per budget key and month; claims indexed by month and status.

``budget_totals`` holds, per program, district, year and month, the eligible claims
charged to the month (count and need), the reserved (pending) and paid amounts and the
number of deferred claims. The upgrade fills it from ``budget_claims``, so an existing
ledger keeps its figures. ``ix_budget_claims_period`` becomes
``ix_budget_claims_period_status`` (the open claims of a month, at close).

Revision ID: 0002_budget_totals
Revises: 0001_budget_ledger
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_budget_totals"
down_revision = "0001_budget_ledger"
branch_labels = None
depends_on = None

PROGRAM = 96
DISTRICT = 64
PAID = ("paid", "prorated")


def upgrade() -> None:
    totals = op.create_table(
        "budget_totals",
        sa.Column("program_id", sa.String(PROGRAM), primary_key=True),
        sa.Column("district", sa.String(DISTRICT), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("month", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("claims", sa.Integer, nullable=False),
        sa.Column("need_kop", sa.BigInteger, nullable=False),
        sa.Column("reserved_kop", sa.BigInteger, nullable=False),
        sa.Column("paid_kop", sa.BigInteger, nullable=False),
        sa.Column("deferred", sa.Integer, nullable=False),
    )
    claims = sa.table(
        "budget_claims",
        *(
            sa.column(name)
            for name in ("program_id", "district", "year", "budget_period", "status", "eligible")
        ),
        sa.column("claimed_kop", sa.BigInteger),
        sa.column("payout_kop", sa.BigInteger),
    )
    c = claims.c
    grouped = sa.select(
        c.program_id,
        c.district,
        c.year,
        c.budget_period,
        c.status,
        c.eligible,
        sa.func.count(),
        sa.func.sum(c.claimed_kop),
        sa.func.sum(c.payout_kop),
    ).group_by(c.program_id, c.district, c.year, c.budget_period, c.status, c.eligible)
    rows: dict[tuple[str, str, int, int], list[int]] = {}
    for program_id, district, year, period, status, eligible, count, claimed, paid in op.get_bind().execute(
        grouped
    ):
        row = rows.setdefault((program_id, district, int(year), int(period[5:7])), [0, 0, 0, 0, 0])
        if not eligible:
            continue
        row[0] += int(count)
        row[1] += int(claimed or 0)
        if status == "pending":
            row[2] += int(claimed or 0)
        elif status in PAID:
            row[3] += int(paid or 0)
        elif status == "deferred":
            row[4] += int(count)
    if rows:
        op.bulk_insert(
            totals,
            [
                {
                    "program_id": key[0],
                    "district": key[1],
                    "year": key[2],
                    "month": key[3],
                    "claims": v[0],
                    "need_kop": v[1],
                    "reserved_kop": v[2],
                    "paid_kop": v[3],
                    "deferred": v[4],
                }
                for key, v in sorted(rows.items())
            ],
        )
    op.drop_index("ix_budget_claims_period", table_name="budget_claims")
    op.create_index(
        "ix_budget_claims_period_status",
        "budget_claims",
        ["program_id", "district", "budget_period", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_budget_claims_period_status", table_name="budget_claims")
    op.create_index("ix_budget_claims_period", "budget_claims", ["program_id", "district", "budget_period"])
    op.drop_table("budget_totals")
