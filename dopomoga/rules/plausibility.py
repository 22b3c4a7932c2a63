"""Plausibility at the boundary: an application that cannot be true is rejected before it is decided.

The gateway (on ``POST /applications``) and the eligibility service (on the ``applications``
topic) run the same checks, so an input is refused the same way with the same reason code
whichever way it came in. Each check is about plausibility, not eligibility: an implausible
application is *invalid* (dead-lettered / 4xx), never "decided ineligible".

| reason_code | when |
|---|---|
| ``invalid_unicode`` | a string holds a lone surrogate (not a Unicode scalar value) |
| ``future_date`` | ``submitted_on`` or the applicant's birth date lies after the receiving day (+ ``DATE_TOLERANCE``), or ``occurred_at`` after the receiving time (+ ``CLOCK_TOLERANCE``) |
| ``implausible_birth_date`` | the birth date is after the application, or before ``EARLIEST_BIRTH`` |
| ``period_out_of_range`` | the month claimed is before the program's first rules, or more than ``MAX_MONTHS_AHEAD`` after the receiving month (a month after the programme's term is decided: refused with the term as the reason) |
| ``amount_out_of_range`` | a money fact (or money item field) outside 0 … 10^13 kop (``Kopiyky``), or an integer fact outside int64 |

The receiving time is given by the caller (the core reads no clock): the gateway's clock, or the
broker timestamp of the record on the topic (``services.eligibility.app``).
Reasons name the field and the rule, never the value (it may be personal data).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dopomoga.errors import ApplicationError
from dopomoga.rules.programs import Catalog
from schemas.events import ApplicationSubmitted


class Implausible(ApplicationError):
    """An application that cannot be true (its ``reason_code`` says which check)."""

#: Kyiv is UTC+2/+3 and registries stamp local dates: a date may be one day "ahead" of UTC.
DATE_TOLERANCE = dt.timedelta(days=1)
#: Clock skew accepted on ``occurred_at``.
CLOCK_TOLERANCE = dt.timedelta(minutes=10)
EARLIEST_BIRTH = dt.date(1880, 1, 1)
MAX_MONTHS_AHEAD = 12
MONEY_MAX = 10**13  # schemas.events.Kopiyky
INT64 = (-(2**63), 2**63 - 1)


def _has_surrogate(value: Any) -> str | None:
    """The path of the first string (key or value) holding a lone surrogate, else None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path or "(value)"
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str) and _has_surrogate(key) is not None:
                    return f"{path}.(key)".lstrip(".")
                stack.append((f"{path}.{key}".lstrip("."), sub))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", sub) for i, sub in enumerate(item))
    return None


def _month_index(period: str) -> int:
    return int(period[:4]) * 12 + int(period[5:7]) - 1


def _check_number(where: str, kind: str, value: Any) -> None:
    if type(value) is not int:
        return  # a wrong type is the rules' bad_fact
    if kind == "money" and not 0 <= value <= MONEY_MAX:
        raise Implausible("amount_out_of_range", f"{where}: a money amount must be 0 to {MONEY_MAX} kop")
    if not INT64[0] <= value <= INT64[1]:
        raise Implausible("amount_out_of_range", f"{where}: an integer must fit in 64 bits")


def check_application(
    application: ApplicationSubmitted, catalog: Catalog, received_at: dt.datetime, *, scan_text: bool = True
) -> None:
    """Raise ``Implausible`` if the application cannot be true when received at ``received_at``.

    ``scan_text=False`` skips the lone-surrogate scan: for events decoded from JSON bytes by
    pydantic-core, whose parser already refuses them (``invalid_unicode`` in
    ``services.platform.rejections.decode``); ``json.loads`` (the gateway's body) lets them through.
    """
    if scan_text:
        where = _has_surrogate(application.model_dump(mode="python"))
        if where is not None:
            raise Implausible("invalid_unicode", f"{where}: not valid Unicode (a lone surrogate)")
    received_day = received_at.astimezone(dt.UTC).date()
    latest_day = received_day + DATE_TOLERANCE
    if application.occurred_at > received_at + CLOCK_TOLERANCE:
        raise Implausible("future_date", f"occurred_at: after the receiving time (tolerance {CLOCK_TOLERANCE})")
    if application.submitted_on > latest_day:
        raise Implausible("future_date", f"submitted_on: after the receiving day (tolerance {DATE_TOLERANCE.days} day)")
    birth = application.applicant.birth_date
    if birth is not None:
        if birth > latest_day:
            raise Implausible("future_date", "applicant.birth_date: after the receiving day")
        if birth > application.submitted_on:
            raise Implausible("implausible_birth_date", "applicant.birth_date: after the application date")
        if birth < EARLIEST_BIRTH:
            raise Implausible("implausible_birth_date", f"applicant.birth_date: before {EARLIEST_BIRTH.isoformat()}")
    program = catalog.programs.get(application.program_id)
    month = _month_index(application.effective_period)
    if month > received_day.year * 12 + received_day.month - 1 + MAX_MONTHS_AHEAD:
        raise Implausible("period_out_of_range", f"period: more than {MAX_MONTHS_AHEAD} months after the receiving month")
    if program is None:
        return  # unknown_program is the engine's reason (and the gateway's 422)
    first = program.versions[0].effective_from
    if month < first.year * 12 + first.month - 1:
        raise Implausible("period_out_of_range", f"period: before the program's first rules ({first.isoformat()})")
    # A month after the programme's term is plausible: the engine refuses it with the term as the
    # reason (a letter the applicant can be handed, issue 14), rather than dead-lettering it here.
    inputs = program.spec.inputs
    for name, value in application.facts.items():
        spec = inputs.get(name)
        kind = spec.type if spec is not None else "int"
        values = value if isinstance(value, list) else [value]
        for i, item in enumerate(values):
            if isinstance(item, dict):
                fields = (spec.fields or {}) if spec is not None else {}
                for field, sub in item.items():
                    _check_number(f"facts.{name}[{i}].{field}", fields.get(field, "int"), sub)
            else:
                _check_number(f"facts.{name}", kind, item)
