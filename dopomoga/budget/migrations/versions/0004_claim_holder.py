"""Budget ledger: the budget key a claim is charged to (its program, or its pooled budget line).

A budget line allocated as a whole (``allocated: line`` in ``budget-lines.yaml``) is one budget
key for all its programs; ``budget_claims.holder`` is that key (the line's holder id, e.g.
``zhytomyr.line-1-1-2``) or the program itself. Existing claims are charged to their program.
The open-claim indexes move from the program to the holder.

Revision ID: 0004_claim_holder
Revises: 0003_payables_lines_funding
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_claim_holder"
down_revision = "0003_payables_lines_funding"
branch_labels = None
depends_on = None

PROGRAM = 96


def upgrade() -> None:
    with op.batch_alter_table("budget_claims") as batch:
        batch.add_column(sa.Column("holder", sa.String(PROGRAM), nullable=False, server_default=""))
    op.execute("UPDATE budget_claims SET holder = program_id")
    op.drop_index("ix_budget_claims_key_status", table_name="budget_claims")
    op.drop_index("ix_budget_claims_period_status", table_name="budget_claims")
    op.create_index("ix_budget_claims_holder_status", "budget_claims", ["holder", "district", "year", "status"])
    op.create_index(
        "ix_budget_claims_holder_period_status", "budget_claims", ["holder", "district", "budget_period", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_budget_claims_holder_period_status", table_name="budget_claims")
    op.drop_index("ix_budget_claims_holder_status", table_name="budget_claims")
    op.create_index("ix_budget_claims_key_status", "budget_claims", ["program_id", "district", "year", "status"])
    op.create_index(
        "ix_budget_claims_period_status", "budget_claims", ["program_id", "district", "budget_period", "status"]
    )
    with op.batch_alter_table("budget_claims") as batch:
        batch.drop_column("holder")
