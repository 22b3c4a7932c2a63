"""Budget ledger: payables carried across years, budget lines on amendments, funding requests.

- ``budget_claims.carried_from``: the budget year a claim was owed in when it was carried into
  the next year as a payable («кредиторська заборгованість», 002 L984, L1237–1238); 0 for
  every other claim (existing claims get 0).
- ``budget_allocation_history``: the budget line (КПКВК code where the seed gives one), the
  reason, the document and the date of each amendment (all optional; old rows stay NULL).
- ``budget_funding_requests``: the monthly «заявка на фінансування» per program (measure) and
  month, with its states requested → approved → received.

Revision ID: 0003_payables_lines_funding
Revises: 0002_budget_totals
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_payables_lines_funding"
down_revision = "0002_budget_totals"
branch_labels = None
depends_on = None

ID = 96
PROGRAM = 96
PERIOD = 7


def upgrade() -> None:
    with op.batch_alter_table("budget_claims") as batch:
        batch.add_column(sa.Column("carried_from", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("budget_allocation_history") as batch:
        batch.add_column(sa.Column("line", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("document", sa.Text, nullable=True))
        batch.add_column(sa.Column("amended_on", sa.String(10), nullable=True))
    op.create_table(
        "budget_funding_requests",
        sa.Column("program_id", sa.String(PROGRAM), primary_key=True),
        sa.Column("period", sa.String(PERIOD), primary_key=True),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_kop", sa.BigInteger, nullable=False),
        sa.Column("approved_kop", sa.BigInteger, nullable=True),
        sa.Column("received_kop", sa.BigInteger, nullable=True),
        sa.Column("requested_on", sa.String(10), nullable=False),
        sa.Column("approved_on", sa.String(10), nullable=True),
        sa.Column("received_on", sa.String(10), nullable=True),
        sa.Column("document", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("budget_funding_requests")
    with op.batch_alter_table("budget_allocation_history") as batch:
        for name in ("amended_on", "document", "reason", "line"):
            batch.drop_column(name)
    with op.batch_alter_table("budget_claims") as batch:
        batch.drop_column("carried_from")
