"""Budget commands, built in one place with one event-id scheme.

The gateway, the CLI, the demo and the registry emulator all build ``AllocationSet`` and
``PeriodClosed`` here, so the same command always gets the same ``event_id`` whoever sends it,
and re-sending it is a harmless replay in the ledger:

- a month close: UUIDv5 of ``period-closed:program:period:district``;
- an allocation or amendment: UUIDv5 of ``allocation-set:program:year:district:amendment_id``;
- a parameter value confirmed: UUIDv5 of ``parameter-confirmed:program:year:parameter``.

``occurred_at`` is given by the caller (the gateway's receiving time; the demo's and the CLI's
fixed times, so replays are byte-identical); a close without a time is stamped 23:59 UTC of the
month's last day.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dopomoga.ids import decision_id
from dopomoga.periods import last_day
from schemas.events import AllocationSet, ParameterConfirmed, PeriodClosed


def period_closed_id(program_id: str, period: str, district: str | None) -> str:
    return decision_id("period-closed", f"{program_id}:{period}:{district or ''}")


def allocation_set_id(program_id: str, year: int, district: str | None, amendment_id: str) -> str:
    return decision_id("allocation-set", f"{program_id}:{year}:{district or ''}:{amendment_id}")


def period_closed(
    program_id: str,
    period: str,
    district: str | None = None,
    *,
    closed_by: str = "operator",
    occurred_at: dt.datetime | None = None,
) -> PeriodClosed:
    """The command that closes a month of a program's budget (and district)."""
    when = occurred_at or dt.datetime.combine(last_day(period), dt.time(23, 59), tzinfo=dt.UTC)
    return PeriodClosed(
        event_id=period_closed_id(program_id, period, district),
        occurred_at=when,
        program_id=program_id,
        district=district,
        period=period,
        closed_by=closed_by,
    )


def allocation_set(
    *,
    program_id: str,
    year: int,
    annual_kop: int,
    plan: Any,
    amendment_id: str,
    legal_reference: str,
    district: str | None = None,
    occurred_at: dt.datetime | None = None,
    line: str | None = None,
    reason_uk: str | None = None,
    document: str | None = None,
    amended_on: dt.date | None = None,
) -> AllocationSet:
    """The command that sets or amends a budget key's annual appropriation and monthly plan.

    ``program_id`` is a program or a budget line's holder id (``zhytomyr.line-1-1-2``); an
    amendment names its ``reason_uk``, ``document`` and ``amended_on`` (kept in the history)."""
    return AllocationSet(
        event_id=allocation_set_id(program_id, year, district, amendment_id),
        occurred_at=occurred_at or dt.datetime(year, 1, 2, tzinfo=dt.UTC),
        program_id=program_id,
        district=district,
        year=year,
        annual_kop=annual_kop,
        plan=plan,
        amendment_id=amendment_id,
        legal_reference=legal_reference,
        line=line,
        reason_uk=reason_uk,
        document=document,
        amended_on=amended_on,
    )


def parameter_confirmed(
    program_id: str,
    year: int,
    parameter: str,
    *,
    document: str,
    confirmed_by: str,
    occurred_at: dt.datetime,
) -> ParameterConfirmed:
    """The command by which an operator confirms a parameter value the act does not state."""
    return ParameterConfirmed(
        event_id=decision_id("parameter-confirmed", f"{program_id}:{year}:{parameter}"),
        occurred_at=occurred_at,
        program_id=program_id,
        year=year,
        parameter=parameter,
        document=document,
        confirmed_by=confirmed_by,
    )


def confirmations_of_inferred(
    program: Any, year: int, *, document: str, confirmed_by: str, occurred_at: dt.datetime
) -> list[ParameterConfirmed]:
    """A ``ParameterConfirmed`` for each of a program's own parameter values in ``year`` that the act
    does not state (``inferred``, no ``confirmed_by``): what an operator sends with the document."""
    names = sorted(
        name
        for name, parameter in program.local_parameters.items()
        if any(v.pending_confirmation and v.effective_from.year <= year for v in parameter.values)
    )
    return [
        parameter_confirmed(program.id, year, name, document=document, confirmed_by=confirmed_by,
                            occurred_at=occurred_at)
        for name in names
    ]
