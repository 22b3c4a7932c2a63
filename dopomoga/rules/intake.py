"""A JSON line -> ``ApplicationSubmitted``, as ``model_validate_json`` gives it, at a fraction of the cost.

``parse_application(line)`` returns exactly the model ``ApplicationSubmitted.model_validate_json(line)``
returns (the same field values and types, the same fields set) and rejects exactly what it
rejects, with the same ``ValidationError``:

- the line is parsed by orjson and checked against the event's known shape by precompiled checks
  (field names, types, patterns, lengths, literals, the identifier and IBAN checks of
  ``schemas.identifiers``), and the models are built without validating them again;
- anything the checks do not accept as plainly valid - any error, and any input they are not sure
  of (an unusual date or timestamp form, a number orjson cannot read, a union pydantic might
  coerce) - goes to ``model_validate_json`` itself, which gives the answer and the error message.

So the fast path accepts only a subset of what pydantic accepts, and builds the same model for it;
tests/core/test_intake.py checks both on every example line and on generated ones, valid and not.

The identifier and IBAN checks (``normalise_identifier``, ``normalise_ua_iban``: pure functions,
10-40 µs each) are memoised (a person's applications repeat their identifier and IBAN), and their
plain forms - a РНОКПП or ЄДРПОУ of ASCII digits, a compact UA IBAN - are checked here by the same
arithmetic (python-stdnum's check-digit functions; ISO 7064 mod 97-10 as schwifty applies it), every
other form and every failing one by the functions themselves (tests/core/test_intake.py compares
them on generated identifiers and IBANs).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic_core import TzInfo
from stdnum.ua import edrpou

from schemas.events import TRUSTED, Applicant, ApplicationSubmitted, Payment
from schemas.identifiers import normalise_identifier, normalise_ua_iban

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,95}").fullmatch
_PROGRAM_ID = re.compile(r"[a-z0-9]+(?:\.[a-z0-9\-]+)+").fullmatch
_PERIOD = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])").fullmatch
_FACT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}").fullmatch
_TEN_DIGITS = re.compile(r"[0-9]{10}").fullmatch
_EIGHT_DIGITS = re.compile(r"[0-9]{8}").fullmatch
_UA_IBAN = re.compile(r"UA[0-9]{2}[0-9]{6}[0-9A-Z]{19}").fullmatch
_BASE36 = str.maketrans({letter: str(10 + n) for n, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")})
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch
_TIMESTAMP = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?)(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))"
).fullmatch

_EVENT_KEYS = frozenset(ApplicationSubmitted.model_fields)
_EVENT_REQUIRED = frozenset(k for k, f in ApplicationSubmitted.model_fields.items() if f.is_required())
_APPLICANT_KEYS = frozenset(Applicant.model_fields)
_APPLICANT_REQUIRED = frozenset(k for k, f in Applicant.model_fields.items() if f.is_required())
_PAYMENT_KEYS = frozenset(Payment.model_fields)
_ID_KINDS = frozenset(("rnokpp", "passport", "edrpou"))
_CHANNELS = frozenset(("bank", "post", "my_transfer", "treasury"))
_TZ: dict[int, TzInfo] = {}
_ZULU = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z").fullmatch
_UTC = _TZ[0] = TzInfo(0)


# ``_build`` writes each model's fields in this order (checked here, at import)
assert tuple(ApplicationSubmitted.model_fields) == ("event_id", "schema_version", "occurred_at", "event_type",
    "application_id", "program_id", "registry", "submitted_on", "period", "applicant", "payment", "facts")
assert tuple(Applicant.model_fields) == ("id_kind", "id", "name", "birth_date", "household_id", "district")
assert tuple(Payment.model_fields) == ("channel", "iban")
for _model in (ApplicationSubmitted, Applicant, Payment):
    assert not _model.__pydantic_post_init__ and not _model.__private_attributes__
assert ApplicationSubmitted.model_fields["period"].default is None
assert all(Applicant.model_fields[name].default is None for name in ("birth_date", "household_id", "district"))
assert Payment.model_fields["iban"].default is None
_FACT_NAMES: set[str] = set()  # fact names seen to match ``_FACT_NAME`` (bounded)
#: program ids and registries seen to pass their checks (a handful per run; bounded), each in its own set
_PROGRAM_IDS: set[str] = set()
_REGISTRIES: set[str] = set()


def _seen(value: str, seen: set[str]) -> str:
    if len(seen) < 4096:
        seen.add(value)
    return value
_DATES: dict[str, dt.date] = {}  # ISO dates read (bounded)


def _new(model: type[BaseModel], fields: dict[str, Any], fields_set: set[str]) -> Any:
    """What ``model.model_construct(**fields)`` builds (``fields``: every field, in the model's order;
    ``fields_set``: those the input gave), without its generic bookkeeping: the instance's four slots
    set through their descriptors (a model defines no ``__new__``: ``object.__new__`` is its own)."""
    instance = _OBJECT_NEW(model)
    _SET_DICT(instance, fields)
    _SET_FIELDS_SET(instance, fields_set)
    _SET_EXTRA(instance, None)
    _SET_PRIVATE(instance, None)
    return instance


_OBJECT_NEW = object.__new__
_SET_DICT = BaseModel.__dict__["__dict__"].__set__
_SET_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_SET_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_SET_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__
assert all("__new__" not in model.__dict__ for model in (*ApplicationSubmitted.__mro__, *Applicant.__mro__, *Payment.__mro__)
           if model is not object)
assert BaseModel.__slots__ == ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")


class _Unsure(Exception):
    """The fast checks do not accept the line: pydantic decides (and words any error)."""


def _rntrc_check(number: str) -> str:
    """``stdnum.ua.rntrc.calc_check_digit`` of ten ASCII digits, on their bytes: weights -1 5 7 9 4 6 10 5 7
    (sum 52) of the digits ``c - 48``."""
    b = number.encode()
    total = -b[0] + 5 * b[1] + 7 * b[2] + 9 * b[3] + 4 * b[4] + 6 * b[5] + 10 * b[6] + 5 * b[7] + 7 * b[8] - 48 * 52
    return _DIGIT[total % 11 % 10]


_DIGIT = "0123456789"


@functools.lru_cache(maxsize=1 << 16)
def _identifier(kind: str, value: str) -> str:
    """``normalise_identifier``. A РНОКПП or ЄДРПОУ of plain ASCII digits is checked here by python-stdnum's
    own check-digit function: its ``compact`` leaves such a string as it is, so ``validate`` would give
    the same string; anything else, and any wrong check digit, goes to ``normalise_identifier``."""
    raw = value.strip()
    if kind == "rnokpp":
        if _TEN_DIGITS(raw) and raw[-1] == _rntrc_check(raw):
            return raw
    elif kind == "edrpou" and _EIGHT_DIGITS(raw) and raw[-1] == edrpou.calc_check_digit(raw):
        return raw
    return normalise_identifier(kind, value)  # type: ignore[arg-type]  # kind checked by the caller


@functools.lru_cache(maxsize=1 << 16)
def _iban(value: str) -> str:
    """``normalise_ua_iban``. A compact Ukrainian IBAN (``UA``, two check digits, six digits of the bank
    code, 19 digits or capitals) whose ISO 7064 mod 97-10 check digits are the canonical ones (02-98, the
    number mod 97 is 1) is what schwifty accepts and returns unchanged; anything else goes to it."""
    if _UA_IBAN(value):
        check = int(value[2:4])
        if 2 <= check <= 98 and int((value[4:] + "UA" + value[2:4]).translate(_BASE36)) % 97 == 1:
            return value
    return normalise_ua_iban(value)


def parse_application(line: str | bytes, trusted: bool = False) -> ApplicationSubmitted:
    """``ApplicationSubmitted.model_validate_json(line)`` (with ``context=TRUSTED`` if ``trusted``)."""
    try:
        data = orjson.loads(line)
        return _build(data, trusted)
    except (_Unsure, orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
        return ApplicationSubmitted.model_validate_json(line, context=TRUSTED if trusted else None)


def _date(value: Any) -> dt.date:
    if type(value) is not str:
        raise _Unsure
    date = _DATES.get(value)
    if date is None:
        if not _DATE(value):
            raise _Unsure
        date = dt.date.fromisoformat(value)  # ValueError (30 February) -> pydantic
        if len(_DATES) >= 65536:
            _DATES.clear()
        _DATES[value] = date
    return date


def _timestamp(value: Any) -> dt.datetime:
    if type(value) is not str:
        raise _Unsure
    if len(value) == 20 and _ZULU(value):  # the usual form, UTC to the second: no groups to take apart
        naive = dt.datetime.fromisoformat(value[:19])  # ValueError (hour 24, 30 February) -> pydantic
        return _COMBINE(naive, naive.time(), _UTC)
    match = _TIMESTAMP(value)
    if match is None:
        raise _Unsure
    local, zulu, sign, hours, minutes = match.groups()
    naive = dt.datetime.fromisoformat(local)  # ValueError (hour 24, 30 February) -> pydantic
    offset = 0 if zulu else (int(hours) * 3600 + int(minutes) * 60) * (-1 if sign == "-" else 1)
    if not -86400 < offset < 86400:
        raise _Unsure
    tz = _TZ.get(offset)
    if tz is None:
        tz = _TZ[offset] = TzInfo(offset)
    return _COMBINE(naive, naive.time(), tz)  # ``naive.replace(tzinfo=tz)``, in half the time


_COMBINE = dt.datetime.combine


def _identifier_field(value: Any) -> str:
    if type(value) is not str or not _IDENTIFIER(value):
        raise _Unsure
    return value


def _text(value: Any, low: int, high: int) -> str:
    if type(value) is not str or not low <= len(value) <= high:
        raise _Unsure
    return value


def _scalar(value: Any) -> bool:
    kind = type(value)
    return kind is bool or kind is int or (kind is str and len(value) <= 512)


def _fact(value: Any) -> None:
    if _scalar(value):
        return
    if type(value) is not list or len(value) > 500:
        raise _Unsure
    if all(_scalar(v) for v in value):
        return
    for row in value:
        if type(row) is not dict or len(row) > 64:
            raise _Unsure
        for key, item in row.items():
            if len(key) > 64 or not _scalar(item):
                raise _Unsure


def _build(data: Any, trusted: bool) -> ApplicationSubmitted:
    """The event, every field checked in the model's order (straight-line: the line's own key order
    matters only for the fields set, a set); any doubt raises ``_Unsure``."""
    if type(data) is not dict or (data.keys() != _EVENT_KEYS  # every field given: the usual line
                                  and (not data.keys() <= _EVENT_KEYS or not _EVENT_REQUIRED <= data.keys())):
        raise _Unsure
    get = data.get
    schema = get("schema_version", 1)
    if type(schema) is not int or schema != 1:
        raise _Unsure
    if get("event_type", "ApplicationSubmitted") != "ApplicationSubmitted":
        raise _Unsure
    program_id = data["program_id"]
    if program_id not in _PROGRAM_IDS:  # (an unhashable value: TypeError -> pydantic)
        if type(program_id) is not str or len(program_id) > 96 or not _PROGRAM_ID(program_id):
            raise _Unsure
        _seen(program_id, _PROGRAM_IDS)
    period = get("period")
    if period is not None and (type(period) is not str or not _PERIOD(period)):
        raise _Unsure
    facts = data["facts"]
    if type(facts) is not dict or len(facts) > 64:
        raise _Unsure
    if not facts.keys() <= _FACT_NAMES:
        for name in facts:
            if type(name) is not str or not _FACT_NAME(name):
                raise _Unsure
        if len(_FACT_NAMES) < 4096:
            _FACT_NAMES.update(facts)
    for fact in facts.values():
        kind = type(fact)
        if not (kind is bool or kind is int or (kind is str and len(fact) <= 512)):
            _fact(fact)
    return _new(ApplicationSubmitted, {
        "event_id": _identifier_field(data["event_id"]),
        "schema_version": 1,
        "occurred_at": _timestamp(data["occurred_at"]),
        "event_type": "ApplicationSubmitted",
        "application_id": _identifier_field(data["application_id"]),
        "program_id": program_id,
        "registry": registry if (registry := data["registry"]) in _REGISTRIES
        else _seen(_identifier_field(registry), _REGISTRIES),
        "submitted_on": _date(data["submitted_on"]),
        "period": period,
        "applicant": _applicant(data["applicant"], trusted),
        "payment": _payment(data["payment"], trusted),
        "facts": facts,
    }, set(data))


def _applicant(value: Any, trusted: bool) -> Applicant:
    if type(value) is not dict or (value.keys() != _APPLICANT_KEYS
                                   and (not value.keys() <= _APPLICANT_KEYS or not _APPLICANT_REQUIRED <= value.keys())):
        raise _Unsure
    kind = value["id_kind"]
    if kind not in _ID_KINDS:
        raise _Unsure
    get = value.get
    raw = _text(value["id"], 1, 32)
    birth = get("birth_date")
    household = get("household_id")
    district = get("district")
    return _new(Applicant, {
        "id_kind": kind,
        "id": raw if trusted else _identifier(kind, raw),  # ValueError -> pydantic
        "name": _text(value["name"], 1, 256),
        "birth_date": None if birth is None else _date(birth),
        "household_id": None if household is None else _identifier_field(household),
        "district": None if district is None else _text(district, 0, 64),
    }, set(value))


def _payment(value: Any, trusted: bool) -> Payment:
    if type(value) is not dict or not value.keys() <= _PAYMENT_KEYS or "channel" not in value:
        raise _Unsure
    channel = value["channel"]
    if type(channel) is not str or channel not in _CHANNELS:
        raise _Unsure
    iban = value.get("iban")
    if iban is None:
        if channel == "bank" or channel == "treasury":
            raise _Unsure
    elif type(iban) is not str:
        raise _Unsure
    elif not trusted:
        iban = _iban(iban)  # ValueError -> pydantic
    return _new(Payment, {"channel": channel, "iban": iban}, set(value))
