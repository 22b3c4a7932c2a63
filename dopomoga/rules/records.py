"""Decision records and their bytes.

The engine builds each decision once, as a plain record (a dict in the event model's field
order). ``EligibilityDecided.model_validate(record)`` gives the model; ``to_json(record)`` gives
the event's bytes, byte for byte what ``model_dump_json()`` of that model gives
(tests/core/test_encoded.py checks every example decision and generated ones).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel

from dopomoga.ids import decision_id
from schemas.events import SCHEMA_VERSION, ApplicationSubmitted


class Encoded(NamedTuple):
    """A decision as the bytes of its event, with the fields services route and count by.

    ``json`` is byte for byte what ``model_dump_json()`` of the decision's model gives.
    ``amount_kop`` and ``budget_key`` are ``None`` for an eligibility decision.
    """

    application_id: str
    program_id: str
    period: str
    eligible: bool
    amount_kop: int | None
    budget_key: str | None
    json: bytes


def head(event_type: str, stage: str, application: ApplicationSubmitted, period: str) -> dict[str, Any]:
    """The fields every decision event starts with, in the models' field order."""
    ident = decision_id(stage, application.application_id)
    return {
        "event_id": ident,
        "schema_version": SCHEMA_VERSION,
        "occurred_at": application.occurred_at,
        "event_type": event_type,
        "decision_id": ident,
        "application_id": application.application_id,
        "program_id": application.program_id,
        "period": period,
    }


def _fields(value: Any) -> dict[str, Any]:
    """orjson's hook for a nested pydantic model (application, rules, parameters): its fields."""
    kind = type(value)
    if kind in _MODELS:  # a set lookup: cheaper than isinstance through pydantic's metaclass
        return value.__dict__
    if isinstance(value, BaseModel):
        _MODELS.add(kind)
        return value.__dict__
    raise TypeError(f"cannot write {kind.__name__} in a decision")


_MODELS: set[type] = set()  # the model classes ``_fields`` has written


def to_json(data: dict[str, Any]) -> bytes:
    """The event's JSON, written by orjson from the decision record.

    Byte for byte what pydantic's ``model_dump_json()`` gives for the validated event:
    the same field order, compact separators, UTF-8 unescaped, dates ISO, UTC as ``Z``.
    """
    return orjson.dumps(data, default=_fields, option=orjson.OPT_UTC_Z)


def fragment(value: Any) -> orjson.Fragment:
    """A part of a decision written once (a rule version's rules reference and sources, the parameters
    used on a date): ``to_json`` copies it into every decision that carries it, byte for byte what
    writing the value itself there gives."""
    return orjson.Fragment(orjson.dumps(value, default=_fields, option=orjson.OPT_UTC_Z))


def encoded_eligibility(data: dict[str, Any]) -> Encoded:
    return Encoded(data["application_id"], data["program_id"], data["period"], data["eligible"], None, None,
                   to_json(data))


def encoded_entitlement(data: dict[str, Any]) -> Encoded:
    # ``Encoded(...)`` without the NamedTuple's Python-level ``__new__`` (once per decision)
    return _TUPLE_NEW(Encoded, (data["application_id"], data["program_id"], data["period"], data["eligible"],
                                data["amount_kop"], data["budget_key"], to_json(data)))


_TUPLE_NEW = tuple.__new__
