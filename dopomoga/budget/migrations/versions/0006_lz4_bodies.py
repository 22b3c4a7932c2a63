"""Budget ledger on PostgreSQL: the stored event bodies compressed with lz4 instead of pglz.

A claim's entitlement (~5-20 KB of JSON with its trace) and each decision's body are TOASTed;
pglz compressing them was about a third of the PostgreSQL backend's CPU per claim under the
budget's lock, the serial stage of a hot budget (issue 15, docs/scale-out.md). lz4 is several
times cheaper; the bytes read back are the same. Applies to rows written from now on. A server
built without lz4 keeps pglz (the statement's error is reported as a notice). SQLite: nothing.

Revision ID: 0006_lz4_bodies
Revises: 0005_confirmations
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0006_lz4_bodies"
down_revision = "0005_confirmations"
branch_labels = None
depends_on = None

_COLUMNS = (("budget_claims", "entitlement"), ("budget_decisions", "body"))


def _compression(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.execute(
            f"DO $$ BEGIN ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}; "
            f"EXCEPTION WHEN others THEN RAISE NOTICE 'compression {method} not set on {table}.{column}: %', SQLERRM; "
            "END $$"
        )


def upgrade() -> None:
    _compression("lz4")


def downgrade() -> None:
    _compression("default")
