"""Ledger tables (SQLAlchemy Core). Portable types only; money is ``BigInteger`` kopiyky.

The migrations in ``migrations/versions`` create exactly these tables; a test compares
them with alembic's autogenerate, so the two cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

ID = 96  # schemas.events.Identifier max length
PROGRAM = 96
DISTRICT = 64
PERIOD = 7
COEFFICIENT = 64

#: Every input the ledger has processed (entitlement decision_id or command event_id).
inputs = Table(
    "budget_inputs",
    metadata,
    Column("input_id", String(ID), primary_key=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("kind", String(32), nullable=False),
    Column("occurred_at", String(40), nullable=False),
    Column("outputs", Integer, nullable=False),
)

#: Every PayoutDecided emitted, byte for byte, in the order emitted per input.
decisions = Table(
    "budget_decisions",
    metadata,
    Column("event_id", String(ID), primary_key=True),
    Column("input_id", String(ID), nullable=False),
    Column("position", Integer, nullable=False),
    Column("application_id", String(ID), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("program_id", String(PROGRAM), nullable=False),
    Column("period", String(PERIOD), nullable=False),
    Column("final", Boolean, nullable=False),
    Column("body", Text, nullable=False),
    UniqueConstraint("input_id", "position", name="uq_budget_decisions_input_position"),
    UniqueConstraint("application_id", "revision", name="uq_budget_decisions_application_revision"),
    Index("ix_budget_decisions_final", "final", "program_id", "period"),
)

#: One row per claim (application), with its current state and the full entitlement.
claims = Table(
    "budget_claims",
    metadata,
    Column("application_id", String(ID), primary_key=True),
    Column("entitlement_decision_id", String(ID), nullable=False, unique=True),
    Column("program_id", String(PROGRAM), nullable=False),
    Column("district", String(DISTRICT), nullable=False),  # '' when not by district
    Column("year", Integer, nullable=False),
    Column("origin_period", String(PERIOD), nullable=False),
    Column("budget_period", String(PERIOD), nullable=False),  # month the claim is charged to
    Column("policy", String(32), nullable=False),
    Column("priority_class", Integer, nullable=False),
    Column("arrival_seq", Integer, nullable=False),
    Column("eligible", Boolean, nullable=False),
    Column("claimed_kop", BigInteger, nullable=False),
    Column("payout_kop", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("final", Boolean, nullable=False),
    Column("reason_code", String(48), nullable=False),
    Column("coefficient", String(COEFFICIENT), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("context", Text, nullable=False),  # payee, payment, rules (JSON) for later decisions
    Column("entitlement", Text, nullable=False),  # the full EntitlementCalculated JSON
    # the year the claim was owed in, when carried into the next year as a payable (0: not one)
    Column("carried_from", Integer, nullable=False, server_default="0"),
    # the budget key it is charged to: the program, or its budget line allocated as a whole
    Column("holder", String(PROGRAM), nullable=False, server_default=""),
    Index("ix_budget_claims_holder_status", "holder", "district", "year", "status"),
    Index("ix_budget_claims_holder_period_status", "holder", "district", "budget_period", "status"),
)

#: Running totals per program (and district), year and month the claims are charged to,
#: updated in the transaction that changes a claim: what ``status``, ``need_report`` and
#: the year-to-date availability read instead of summing ``budget_claims``. A row exists
#: for every month any claim (eligible or not) was ever charged to.
totals = Table(
    "budget_totals",
    metadata,
    Column("program_id", String(PROGRAM), primary_key=True),
    Column("district", String(DISTRICT), primary_key=True),
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("month", Integer, primary_key=True, autoincrement=False),
    Column("claims", Integer, nullable=False),  # eligible claims charged to the month
    Column("need_kop", BigInteger, nullable=False),  # their claimed amounts
    Column("reserved_kop", BigInteger, nullable=False),  # claimed amounts of pending claims
    Column("paid_kop", BigInteger, nullable=False),  # payouts of paid and prorated claims
    Column("deferred", Integer, nullable=False),  # deferred claims (the FIFO queue)
)

#: The plan in force for a program (and district) and year: the latest AllocationSet.
allocations = Table(
    "budget_allocations",
    metadata,
    Column("program_id", String(PROGRAM), primary_key=True),
    Column("district", String(DISTRICT), primary_key=True),
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    Column("annual_kop", BigInteger, nullable=False),
    Column("plan_kind", String(16), nullable=False),
    Column("amendment_id", String(ID), nullable=False),
    Column("event_id", String(ID), nullable=False),
)

allocation_months = Table(
    "budget_allocation_months",
    metadata,
    Column("program_id", String(PROGRAM), primary_key=True),
    Column("district", String(DISTRICT), primary_key=True),
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("month", Integer, primary_key=True, autoincrement=False),
    Column("allocation_kop", BigInteger, nullable=False),
)

#: Every AllocationSet ever applied (amendment history, with its legal reference).
allocation_history = Table(
    "budget_allocation_history",
    metadata,
    Column("event_id", String(ID), primary_key=True),
    Column("program_id", String(PROGRAM), nullable=False),
    Column("district", String(DISTRICT), nullable=False),
    Column("year", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("annual_kop", BigInteger, nullable=False),
    Column("plan_kind", String(16), nullable=False),
    Column("plan", Text, nullable=False),  # JSON list of 12 monthly kopiyky
    Column("amendment_id", String(ID), nullable=False),
    Column("legal_reference", Text, nullable=False),
    Column("occurred_at", String(40), nullable=False),
    Column("line", String(64), nullable=True),  # budget line code (budget-lines.yaml)
    Column("reason", Text, nullable=True),  # why the plan was amended
    Column("document", Text, nullable=True),  # the decision amending it (number, date)
    Column("amended_on", String(10), nullable=True),  # ISO date of that decision
    UniqueConstraint(
        "program_id", "district", "year", "version", name="uq_budget_allocation_history_version"
    ),
)

#: Closed months and their settlement (pool, claimed, paid, unspent, exact coefficient).
periods = Table(
    "budget_periods",
    metadata,
    Column("program_id", String(PROGRAM), primary_key=True),
    Column("district", String(DISTRICT), primary_key=True),
    Column("period", String(PERIOD), primary_key=True),
    Column("closed_event_id", String(ID), nullable=False),
    Column("pool_kop", BigInteger, nullable=False),
    Column("claimed_kop", BigInteger, nullable=False),
    Column("paid_kop", BigInteger, nullable=False),
    Column("unspent_kop", BigInteger, nullable=False),
    Column("coefficient", String(COEFFICIENT), nullable=False),
)


#: The monthly «заявка на фінансування» per program (measure) and month: requested → approved
#: → received (004 L741, L1179–1181; 002 L604, L1120).
funding_requests = Table(
    "budget_funding_requests",
    metadata,
    Column("program_id", String(PROGRAM), primary_key=True),
    Column("period", String(PERIOD), primary_key=True),
    Column("line", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested_kop", BigInteger, nullable=False),
    Column("approved_kop", BigInteger, nullable=True),
    Column("received_kop", BigInteger, nullable=True),
    Column("requested_on", String(10), nullable=False),
    Column("approved_on", String(10), nullable=True),
    Column("received_on", String(10), nullable=True),
    Column("document", Text, nullable=True),
)

# Parameter values an operator confirmed for a program's budget year (ParameterConfirmed): claims
# held for them (status ``held``) are admitted, and later claims using them are not held.
confirmations = Table(
    "budget_confirmations",
    metadata,
    Column("program_id", String(PROGRAM), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("parameter", String(ID), primary_key=True),
    Column("document", String(512), nullable=False),
    Column("confirmed_by", String(ID), nullable=False),
    Column("event_id", String(ID), nullable=False),
    Column("occurred_at", String(40), nullable=False),
)
