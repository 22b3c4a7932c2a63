"""Budget ledger: parameter values confirmed by an operator, per program and budget year.

A claim decided with a value the act does not state (``operator.pending_confirmation``) is held
until a ``ParameterConfirmed`` command records the confirming document here.

Revision ID: 0005_confirmations
Revises: 0004_claim_holder
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_confirmations"
down_revision = "0004_claim_holder"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_confirmations",
        sa.Column("program_id", sa.String(96), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("parameter", sa.String(96), primary_key=True),
        sa.Column("document", sa.String(512), nullable=False),
        sa.Column("confirmed_by", sa.String(96), nullable=False),
        sa.Column("event_id", sa.String(96), nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budget_confirmations")
