"""The monthly funding request («заявка на фінансування»): requested → approved → received.

The department asks the finance department every month for the money its obligations need
(004 L741, L1179-1181; 002 L604, L1120: «сума, на яку подано заявку на фінансування»), per budget
line and measure. Here a request is one row per budget key (a program, or a line allocated
whole) and month, with its three states:

- ``request``: the amount asked for; by default the month's need in the ledger (every eligible
  claim charged to the month, payables carried into it included);
- ``approve``: the amount the finance department approved, with its document;
- ``receive``: the amount actually received on the department's account.

Each step is idempotent for the same amounts (a replayed command changes nothing) and refuses
to skip a state or to go back. This is the documentary side: the ledger's payments are still
limited by the allocation and its monthly plan, not by what was received (docs/budget.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from dopomoga.budget import schema as t
from dopomoga.budget.lines import BudgetLines
from dopomoga.budget.tx import load_year
from dopomoga.errors import LedgerError
from dopomoga.periods import split_period

STATES = ("requested", "approved", "received")


@dataclass(frozen=True, slots=True)
class FundingRequest:
    key: str  # budget key: the program, or the line's holder id
    line: str  # the budget line's code ('' when the program has no line)
    period: str
    state: str
    requested_kop: int
    approved_kop: int | None
    received_kop: int | None
    requested_on: str
    approved_on: str | None
    received_on: str | None
    document: str | None


class FundingRequests:
    def __init__(self, engine: Engine, lines: BudgetLines, holder):  # holder: program -> budget key
        self.engine = engine
        self.lines = lines
        self.holder = holder

    def _row(self, conn, key: str, period: str):
        return conn.execute(
            select(t.funding_requests).where(
                t.funding_requests.c.program_id == key, t.funding_requests.c.period == period
            )
        ).mappings().first()

    def request(self, program_id: str, period: str, on: dt.date, amount_kop: int | None = None,
                document: str | None = None) -> FundingRequest:
        key = self.holder(program_id)
        year, month = split_period(period)
        line = self.lines.line_of(program_id) or self.lines.line_by_holder(key)
        with self.engine.begin() as conn:
            if amount_kop is None:
                amount_kop = load_year(conn, key, "", year).rows[month - 1][1]  # the month's need
            if amount_kop < 0:
                raise LedgerError("bad_amount", "a funding request cannot be negative")
            found = self._row(conn, key, period)
            if found is None:
                conn.execute(insert(t.funding_requests).values(
                    program_id=key, period=period, line=line.code if line else "", state="requested",
                    requested_kop=amount_kop, requested_on=on.isoformat(), document=document,
                ))
            elif found["requested_kop"] != amount_kop:
                raise LedgerError("funding_conflict", f"{key} {period}: already requested {found['requested_kop']} kop")
            return self._get(conn, key, period)

    def approve(self, program_id: str, period: str, amount_kop: int, on: dt.date, document: str) -> FundingRequest:
        return self._advance(program_id, period, "approved", amount_kop, on, document)

    def receive(self, program_id: str, period: str, amount_kop: int, on: dt.date) -> FundingRequest:
        return self._advance(program_id, period, "received", amount_kop, on, None)

    def _advance(self, program_id: str, period: str, state: str, amount_kop: int, on: dt.date,
                 document: str | None) -> FundingRequest:
        key = self.holder(program_id)
        with self.engine.begin() as conn:
            found = self._row(conn, key, period)
            if found is None:
                raise LedgerError("no_funding_request", f"{key} {period}: nothing was requested")
            have = STATES.index(found["state"])
            want = STATES.index(state)
            if have >= want:  # a replay with the same amount is harmless; another amount is not
                if found[f"{state}_kop"] != amount_kop:
                    raise LedgerError("funding_conflict", f"{key} {period}: already {found['state']}")
                return self._get(conn, key, period)
            if want != have + 1:
                raise LedgerError("funding_state", f"{key} {period}: {found['state']} cannot become {state}")
            limit = found["requested_kop"] if state == "approved" else found["approved_kop"]
            if amount_kop < 0 or amount_kop > limit:
                raise LedgerError("bad_amount", f"{key} {period}: {state} {amount_kop} kop is more than {limit}")
            values = {"state": state, f"{state}_kop": amount_kop, f"{state}_on": on.isoformat()}
            if document is not None:
                values["document"] = document
            conn.execute(update(t.funding_requests).where(
                t.funding_requests.c.program_id == key, t.funding_requests.c.period == period
            ).values(**values))
            return self._get(conn, key, period)

    def _get(self, conn, key: str, period: str) -> FundingRequest:
        row = self._row(conn, key, period)
        return FundingRequest(key=row["program_id"], **{k: row[k] for k in (
            "line", "period", "state", "requested_kop", "approved_kop", "received_kop",
            "requested_on", "approved_on", "received_on", "document")})

    def report(self, year: int) -> list[FundingRequest]:
        """Every request of ``year``, by line, key and month."""
        with self.engine.connect() as conn:
            keys = conn.execute(
                select(t.funding_requests.c.program_id, t.funding_requests.c.period)
                .where(t.funding_requests.c.period.like(f"{year:04d}-%"))
                .order_by(t.funding_requests.c.line, t.funding_requests.c.program_id, t.funding_requests.c.period)
            ).all()
            return [self._get(conn, k, p) for k, p in keys]
