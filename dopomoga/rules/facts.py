"""Facts: an application's program-specific inputs, checked against the program's declared types.

``typed_facts`` turns the JSON facts of an application into the values the rules read
(dates as YYYYMMDD integers, item rows with their date fields converted), and adds the
``has_<fact>`` flag of every optional fact. Anything that does not fit the declaration is an
``ApplicationError`` naming the fact and the program.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from dopomoga.errors import ApplicationError
from dopomoga.periods import date_to_int
from dopomoga.rules.programs import InputSpec, Program

# The value an absent optional fact reads as (``has_<name>`` says it was absent).
ZERO: dict[str, Any] = {
    "bool": False, "int": 0, "money": 0, "string": "", "enum": "", "date": 0, "list": [], "items": [],
}


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    spec: InputSpec
    presence: str | None  # has_<name> (optional facts only)
    date_fields: tuple[str, ...]  # item fields that are dates


def declared_facts(program: Program) -> tuple[Fact, ...]:
    return tuple(
        Fact(
            name,
            spec,
            None if spec.required else f"has_{name}",
            tuple(f for f, t in (spec.fields or {}).items() if t == "date"),
        )
        for name, spec in program.spec.inputs.items()
    )


def typed_facts(program: Program, declared: tuple[Fact, ...], facts: dict[str, Any]) -> dict[str, Any]:
    """The facts as the rules read them, with the ``has_<fact>`` flags."""
    if not facts.keys() <= program.fact_names:
        unknown = sorted(set(facts) - program.fact_names)
        raise ApplicationError("unknown_fact", f"program {program.id} does not use fact(s) {', '.join(unknown)}")
    scope: dict[str, Any] = {}
    for fact in declared:
        name, spec = fact.name, fact.spec
        if name not in facts:
            if fact.presence is None:
                raise ApplicationError("missing_fact", f"program {program.id} needs fact {name!r}: {spec.description_uk}")
            scope[name] = ZERO[spec.type]
            scope[fact.presence] = False
            continue
        if fact.presence is not None:
            scope[fact.presence] = True
        value = facts[name]
        kind = spec.type
        bad = False
        if kind == "bool":
            bad = type(value) is not bool
        elif kind == "int" or kind == "money":
            bad = type(value) is not int or (kind == "money" and value < 0)
        elif kind == "string":
            bad = not isinstance(value, str)
        elif kind == "enum":
            bad = value not in (spec.values or [])
        elif kind == "date":
            if isinstance(value, str):
                value = _date_int(value)
                bad = value is None
            else:
                bad = True
        elif kind == "list":
            bad = not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        elif kind == "items":
            bad = not _rows_fit(value, spec.fields or {})
            if not bad and fact.date_fields:
                date_fields = fact.date_fields
                typed = []
                for row in value:
                    row = dict(row)
                    for f in date_fields:
                        row[f] = _date_int(row[f])
                    typed.append(row)
                value = typed
        if bad:
            expected = f"one of {spec.values}" if kind == "enum" else kind
            raise ApplicationError("bad_fact", f"fact {name!r} of program {program.id} must be {expected}")
        scope[name] = value
    return scope


def _rows_fit(value: Any, fields: dict[str, str]) -> bool:
    """Every row a dict with exactly the declared fields, each of its declared type (``_fits``)."""
    if not isinstance(value, list):
        return False
    names = fields.keys()
    for row in value:
        if not isinstance(row, dict) or row.keys() != names:
            return False
        for name, kind in fields.items():
            item = row[name]
            if kind == "int" or kind == "money":
                if not isinstance(item, int) or isinstance(item, bool) or (kind == "money" and item < 0):
                    return False
            elif kind == "bool":
                if not isinstance(item, bool):
                    return False
            elif kind == "date":
                if not isinstance(item, str) or _date_int(item) is None:
                    return False
            elif not isinstance(item, str):  # a text that is not text
                if not _fits(item, kind):
                    return False
    return True


_DATE_INTS: dict[str, int] = {}  # ISO date texts read in item rows -> YYYYMMDD (bounded)


def _date_int(text: str) -> int | None:
    """``date_to_int(dt.date.fromisoformat(text))``, or ``None`` if ``text`` is not a date it reads (memoised:
    the dates in item rows repeat)."""
    value = _DATE_INTS.get(text)
    if value is None:
        try:
            value = date_to_int(dt.date.fromisoformat(text))
        except ValueError:
            return None
        if len(_DATE_INTS) >= 65536:
            _DATE_INTS.clear()
        _DATE_INTS[text] = value
    return value


def _fits(value: Any, kind: str) -> bool:
    if kind == "date":
        if not isinstance(value, str):
            return False
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("int", "money"):
        return isinstance(value, int) and not isinstance(value, bool) and (kind == "int" or value >= 0)
    return isinstance(value, str)
