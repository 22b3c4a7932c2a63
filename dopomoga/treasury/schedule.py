"""When a register asks the bank to pay, and CSV cells a spreadsheet cannot run.

**Execution dates** (the pain.001 ``ReqdExctnDt`` and ``control.json``'s ``execution_date``):

- by default, the next banking day after the decision (the latest final decision of the register),
  and never before the month paid for starts: a May payment decided in January (a deferred claim
  released by an allocation) is executed in May, not on the decision's event time;
- Zaporizhzhia Annex 7 (seed 004 L1149-1221, spec §2.8): «за 2 дні до укладення договору
  купівлі-продажу, але не раніше дати надання письмової згоди» - two days before the sale
  contract, not before the written consent, moved back to a banking day; if that date has passed
  when the decision is taken, the next banking day after the decision.

Banking days are Monday to Friday. Public holidays are not observed: under martial law (since
24.02.2022) Ukraine has no moved or additional days off (Labour Code art. 73 suspended), and the
registers of 2019-2021 programmes would need that year's calendar (not in the seed documents).

**CSV cells** (OWASP "CSV injection"): a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return (or an apostrophe) is written with a leading apostrophe, so a spreadsheet shows it as text
instead of running it as a formula; ``restore_cell`` undoes it when a register is read back.
Amounts are never negative, so no number is touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DAY = dt.timedelta(days=1)


def is_banking_day(day: dt.date) -> bool:
    return day.weekday() < 5


def next_banking_day(after: dt.date) -> dt.date:
    day = after + DAY
    while not is_banking_day(day):
        day += DAY
    return day


def previous_banking_day(on_or_before: dt.date) -> dt.date:
    day = on_or_before
    while not is_banking_day(day):
        day -= DAY
    return day


def execution_date(decided_on: dt.date, period: str) -> dt.date:
    """The next banking day after the decision, not before the month paid for."""
    start = dt.date(int(period[:4]), int(period[5:7]), 1)
    return next_banking_day(max(decided_on, start - DAY))


def annex7_execution_date(decided_on: dt.date, contract_on: dt.date, consent_on: dt.date | None = None) -> dt.date:
    """Two days before the sale contract (a banking day), not before the written consent; if that is
    already past when decided, the next banking day after the decision."""
    day = previous_banking_day(contract_on - 2 * DAY)
    if consent_on is not None and day < consent_on:
        day = consent_on if is_banking_day(consent_on) else next_banking_day(consent_on)
    if day <= decided_on:
        return next_banking_day(decided_on)
    return day


_ESCAPED = (*FORMULA_STARTS, "'")  # a leading apostrophe is escaped too, so restoring is exact


#: Annex 7's facts (programs/zaporizhzhia/orphan-ownership-registration.yaml)
CONTRACT_FACT, CONSENT_FACT = "sale_contract_date", "written_consent_date"


def scheduled_execution(payouts: Iterable[Any], facts_of: Callable[[str], dict | None]) -> dt.date | None:
    """The execution date a register's payment schedule sets, or None for the default rule.

    Payments whose application names a sale contract (Annex 7) must reach the account two days
    before it: the register (one date for all its lines) takes the earliest such date, so no line
    is paid after its own deadline. ``facts_of(application_id)`` gives the application's facts
    (from the ledger's entitlement); an exporter without them (the spool) uses the default rule.
    """
    dates = []
    for payout in payouts:
        if not payout.final or payout.payout_kop <= 0:
            continue
        facts = facts_of(payout.application_id) or {}
        contract = facts.get(CONTRACT_FACT)
        if not isinstance(contract, str):
            continue
        consent = facts.get(CONSENT_FACT)
        dates.append(annex7_execution_date(
            payout.occurred_at.date(), dt.date.fromisoformat(contract),
            dt.date.fromisoformat(consent) if isinstance(consent, str) else None))
    return min(dates) if dates else None


def neutralise_cell(value: str) -> str:
    return "'" + value if value.startswith(_ESCAPED) else value


def restore_cell(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_ESCAPED) else value
