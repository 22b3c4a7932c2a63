"""History windows: how many earlier grants a limit or a history count sees.

A program's ``history`` counts and its ``frequency.limit`` ask the grant history (the
``GrantHistory`` port) for grants of some programs to the same subject (the person, the
household, or whoever a fact names) within a window: lifetime, the calendar year of the
month claimed, that month, the last N years up to the application, or fixed dates.
"""

from __future__ import annotations

import datetime as dt

from dopomoga.rules.history import Grant, GrantHistory, InMemoryHistory
from dopomoga.rules.programs import HistorySpec, Program
from schemas.events import ApplicationSubmitted


def subject_keys(scope: str, application: ApplicationSubmitted) -> list[str]:
    """The subject keys a history scope counts by (the person's when the scope cannot apply)."""
    applicant = application.applicant
    if scope == "household" and applicant.household_id:
        return [f"household:{applicant.household_id}"]
    if scope.startswith("fact:"):
        name = scope[5:]
        if name in application.facts:
            return [f"fact:{name}:{application.facts[name]}"]
    return [applicant.subject_key]


def history_count(history: GrantHistory, program: Program, application: ApplicationSubmitted, spec: HistorySpec) -> int:
    if type(history) is InMemoryHistory and history.empty:
        return 0  # nothing granted yet (a batch worker's history, a run with record=False): every count is 0
    window = spec.window
    start = end = None
    period = None
    if window == "lifetime":
        pass
    elif window == "calendar_year":
        year = int(application.effective_period[:4])
        start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
    elif window == "period":
        period = application.effective_period
    elif window == "years":
        on = application.submitted_on
        years = spec.years or 0
        try:
            back = on.replace(year=on.year - years)
        except ValueError:  # 29 February
            back = on.replace(year=on.year - years, day=28)
        start, end = back + dt.timedelta(days=1), on
    elif window == "dates":
        start, end = spec.from_date, spec.to_date
    return history.count(
        [application.applicant.subject_key] if spec.scope == "person" else subject_keys(spec.scope, application),
        spec.programs or [program.id],
        start,
        end,
        period,
        application.application_id,
    )


def counted_keys(program: Program, application: ApplicationSubmitted) -> tuple[str, ...]:
    """Every subject key the program's history counts and frequency limit count by, for this application."""
    spec = program.spec
    scopes = [h.scope for h in spec.history.values()]
    if spec.frequency.limit is not None:
        scopes.append(spec.frequency.limit.scope)
    keys: list[str] = []
    for scope in scopes:
        for key in [application.applicant.subject_key] if scope == "person" else subject_keys(scope, application):
            if key not in keys:
                keys.append(key)
    return tuple(keys)


def grant_for(program: Program, application: ApplicationSubmitted) -> Grant:
    """The history record of a granted application (all keys any scope may ask for)."""
    scopes = {h.scope for h in program.spec.history.values()}
    if program.spec.frequency.limit:
        scopes.add(program.spec.frequency.limit.scope)
    keys = [application.applicant.subject_key]
    for scope in sorted(scopes - {"person"}):
        keys.extend(k for k in subject_keys(scope, application) if k not in keys)
    return Grant(
        keys=tuple(keys),
        program_id=program.id,
        application_id=application.application_id,
        on=application.submitted_on,
        period=application.effective_period,
    )
