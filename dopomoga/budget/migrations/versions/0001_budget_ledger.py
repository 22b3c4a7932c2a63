"""Budget ledger: inputs, decisions, claims, allocations (with history), closed periods.

Revision ID: 0001_budget_ledger
Revises:
Create Date: 2024-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_budget_ledger"
down_revision = None
branch_labels = None
depends_on = None

ID = 96
PROGRAM = 96
DISTRICT = 64
PERIOD = 7
COEFFICIENT = 64


def upgrade() -> None:
    op.create_table(
        "budget_inputs",
        sa.Column("input_id", sa.String(ID), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.Column("outputs", sa.Integer, nullable=False),
    )
    op.create_table(
        "budget_decisions",
        sa.Column("event_id", sa.String(ID), primary_key=True),
        sa.Column("input_id", sa.String(ID), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("application_id", sa.String(ID), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("program_id", sa.String(PROGRAM), nullable=False),
        sa.Column("period", sa.String(PERIOD), nullable=False),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.UniqueConstraint("input_id", "position", name="uq_budget_decisions_input_position"),
        sa.UniqueConstraint("application_id", "revision", name="uq_budget_decisions_application_revision"),
    )
    op.create_index("ix_budget_decisions_final", "budget_decisions", ["final", "program_id", "period"])
    op.create_table(
        "budget_claims",
        sa.Column("application_id", sa.String(ID), primary_key=True),
        sa.Column("entitlement_decision_id", sa.String(ID), nullable=False, unique=True),
        sa.Column("program_id", sa.String(PROGRAM), nullable=False),
        sa.Column("district", sa.String(DISTRICT), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("origin_period", sa.String(PERIOD), nullable=False),
        sa.Column("budget_period", sa.String(PERIOD), nullable=False),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("priority_class", sa.Integer, nullable=False),
        sa.Column("arrival_seq", sa.Integer, nullable=False),
        sa.Column("eligible", sa.Boolean, nullable=False),
        sa.Column("claimed_kop", sa.BigInteger, nullable=False),
        sa.Column("payout_kop", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("reason_code", sa.String(48), nullable=False),
        sa.Column("coefficient", sa.String(COEFFICIENT), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("entitlement", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_budget_claims_key_status", "budget_claims", ["program_id", "district", "year", "status"]
    )
    op.create_index("ix_budget_claims_period", "budget_claims", ["program_id", "district", "budget_period"])
    op.create_table(
        "budget_allocations",
        sa.Column("program_id", sa.String(PROGRAM), primary_key=True),
        sa.Column("district", sa.String(DISTRICT), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("annual_kop", sa.BigInteger, nullable=False),
        sa.Column("plan_kind", sa.String(16), nullable=False),
        sa.Column("amendment_id", sa.String(ID), nullable=False),
        sa.Column("event_id", sa.String(ID), nullable=False),
    )
    op.create_table(
        "budget_allocation_months",
        sa.Column("program_id", sa.String(PROGRAM), primary_key=True),
        sa.Column("district", sa.String(DISTRICT), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("month", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("allocation_kop", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "budget_allocation_history",
        sa.Column("event_id", sa.String(ID), primary_key=True),
        sa.Column("program_id", sa.String(PROGRAM), nullable=False),
        sa.Column("district", sa.String(DISTRICT), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("annual_kop", sa.BigInteger, nullable=False),
        sa.Column("plan_kind", sa.String(16), nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("amendment_id", sa.String(ID), nullable=False),
        sa.Column("legal_reference", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.UniqueConstraint(
            "program_id", "district", "year", "version", name="uq_budget_allocation_history_version"
        ),
    )
    op.create_table(
        "budget_periods",
        sa.Column("program_id", sa.String(PROGRAM), primary_key=True),
        sa.Column("district", sa.String(DISTRICT), primary_key=True),
        sa.Column("period", sa.String(PERIOD), primary_key=True),
        sa.Column("closed_event_id", sa.String(ID), nullable=False),
        sa.Column("pool_kop", sa.BigInteger, nullable=False),
        sa.Column("claimed_kop", sa.BigInteger, nullable=False),
        sa.Column("paid_kop", sa.BigInteger, nullable=False),
        sa.Column("unspent_kop", sa.BigInteger, nullable=False),
        sa.Column("coefficient", sa.String(COEFFICIENT), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "budget_periods",
        "budget_allocation_history",
        "budget_allocation_months",
        "budget_allocations",
        "budget_claims",
        "budget_decisions",
        "budget_inputs",
    ):
        op.drop_table(table)
