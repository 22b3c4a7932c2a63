"""The fast JSON-line entry (``dopomoga.rules.intake``) reads every line as pydantic does.

``parse_application(line)`` must give exactly the model ``ApplicationSubmitted.model_validate_json``
gives (values, types, field order, fields set, the timestamp's zone type), and reject exactly what
it rejects with the same errors. Checked on every example line (which include invalid ones on
purpose) and on generated applications, written in several JSON forms and then damaged in ways a
registry's export can damage them (a missing or extra field, a wrong type, an odd timestamp).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dopomoga.rules.intake import parse_application
from schemas.events import TRUSTED, ApplicationSubmitted
from tests.core.test_engine_properties import applications

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _errors(exc: ValidationError) -> list[tuple[Any, ...]]:
    return [(e["type"], e["loc"], e["msg"], e["input"]) for e in exc.errors()]


def _state(model: Any) -> Any:
    """Everything a model holds, nested models included, with each value's exact type."""
    if hasattr(model, "__pydantic_fields_set__"):
        return (
            type(model).__name__,
            sorted(model.model_fields_set),
            model.__pydantic_extra__,
            model.__pydantic_private__,
            [(name, _state(value)) for name, value in model.__dict__.items()],
        )
    tz = getattr(model, "tzinfo", None)
    return (type(model).__name__, type(tz).__name__ if tz else None, repr(model))


def _assert_read_alike(line: str | bytes, trusted: bool = False) -> None:
    context = TRUSTED if trusted else None
    try:
        expected = ApplicationSubmitted.model_validate_json(line, context=context)
    except ValidationError as exc:
        with pytest.raises(ValidationError) as again:
            parse_application(line, trusted=trusted)
        assert _errors(again.value) == _errors(exc)
        return
    got = parse_application(line, trusted=trusted)
    assert _state(got) == _state(expected)
    assert got == expected
    assert got.model_dump_json() == expected.model_dump_json()


def test_every_example_line_is_read_as_pydantic_reads_it_valid_or_not():
    lines = [
        line
        for path in sorted(EXAMPLES.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(lines) >= 300
    for line in lines:
        _assert_read_alike(line)
        _assert_read_alike(line.encode())
        _assert_read_alike(line, trusted=True)


_ODD_VALUES = [
    None, True, False, 0, 1, -1, 2**70, 1.5, "", "x", "2023-02-30", "2023-04-01T00:00:00", "2023-04-01T09:00:00+25:00",
    "2023-04-01T09:00:00z", "2023-04-01 09:00:00Z", "2023-04-01T09:00:00.1234567Z", "2023-04-01T09:00:00-03:30",
    "2023-04-01T24:00:00Z", "2023-04-01T09:00:00.5+00:00", "2023-13", "2023-04", "١٢٣٤-04", "2023-04-01\n",
    [], [1, "a"], [{"a": 1}], [1, {"a": 1}], [[1]], {}, {"a": 1}, "UA213223130000026007233566001", "UA21 3223 1300 0002 6007 2335 6600 1",
    "bank", "post", "treasury", "passport", "edrpou", "rnokpp", "АБ123456", "9332226940", " 9332226940", "a.b", "a..b", "A.b",
    *("a" * n for n in (32, 33, 64, 65, 96, 97, 256, 257, 512, 513)),
]
_KEYS = {  # fields a registry's export might add where they belong, or misplace
    (): ["extra", "period", "event_type", "schema_version", "district"],
    ("applicant",): ["district", "household_id", "birth_date", "iban", "extra"],
    ("payment",): ["iban", "channel", "extra"],
    ("facts",): ["extra_fact", "Bad-Name", "a" * 65],
}


def _leaves(data: dict[str, Any]) -> list[tuple[Any, str]]:
    """(container, key) of every field: the event's, the applicant's, the payment's, facts and fact rows."""
    found = [(data, key) for key in data]
    for part in ("applicant", "payment", "facts"):
        found += [(data[part], key) for key in data[part]]
    for value in data["facts"].values():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            found += [(value[0], key) for key in value[0]]
    return found


@st.composite
def damaged(draw):
    """A generated application's JSON, often with one field removed, added or replaced."""
    app = draw(applications())
    data = json.loads(app.model_dump_json())
    action = draw(st.sampled_from(["keep", "drop", "add", "replace", "replace"]))
    if action == "drop":
        where, key = draw(st.sampled_from(_leaves(data)))
        del where[key]
    elif action == "add":
        place = draw(st.sampled_from(sorted(_KEYS)))
        where = data
        for part in place:
            where = where[part]
        where[draw(st.sampled_from(_KEYS[place]))] = draw(st.sampled_from(_ODD_VALUES))
    elif action == "replace":
        where, key = draw(st.sampled_from(_leaves(data)))
        where[key] = draw(st.sampled_from(_ODD_VALUES))
    form = draw(st.sampled_from(["compact", "spaced", "ascii"]))
    if form == "compact":
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(data, ensure_ascii=form == "ascii")


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged(), st.booleans())
def test_any_generated_or_damaged_application_line_is_read_as_pydantic_reads_it(line, trusted):
    _assert_read_alike(line, trusted=trusted)


def _outcome(check: Any, *args: str) -> Any:
    try:
        return check(*args)
    except ValueError as exc:
        return "rejected", str(exc)


_DIGITS = "0123456789"
_IBAN_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@st.composite
def ua_ibans(draw):
    """Ukrainian IBANs: most with canonical check digits, some spaced, lower-case, short or off by a digit."""
    bank = draw(st.text(alphabet=_DIGITS, min_size=6, max_size=6))
    account = draw(st.text(alphabet=draw(st.sampled_from([_DIGITS, _IBAN_CHARS])), min_size=19, max_size=19))
    bban = bank + account
    number = int((bban + "UA00").translate(str.maketrans({c: str(int(c, 36)) for c in _IBAN_CHARS[10:]})))
    check = 98 - number * 1 % 97
    value = f"UA{draw(st.sampled_from([check, check, check, (check + 1) % 100, 0, 1, 99])):02d}{bban}"
    damage = draw(st.sampled_from(["none", "none", "lower", "spaced", "short", "country"]))
    if damage == "lower":
        value = value.lower()
    elif damage == "spaced":
        value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    elif damage == "short":
        value = value[:-1]
    elif damage == "country":
        value = "DE" + value[2:]
    return value


@settings(max_examples=1500, deadline=None)
@given(ua_ibans())
def test_the_iban_shortcut_accepts_and_returns_what_schwifty_does(value):
    from dopomoga.rules import intake
    from schemas.identifiers import normalise_ua_iban

    assert _outcome(intake._iban.__wrapped__, value) == _outcome(normalise_ua_iban, value)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from([("rnokpp", 10), ("edrpou", 8)]), st.data())
def test_the_identifier_shortcut_accepts_and_returns_what_python_stdnum_does(kind_length, data):
    from dopomoga.rules import intake
    from schemas.identifiers import normalise_identifier

    kind, length = kind_length
    value = data.draw(st.text(alphabet=_DIGITS, min_size=length - 1, max_size=length + 1)
                      | st.text(alphabet=_DIGITS + " ٣-", min_size=length, max_size=length + 2))
    assert _outcome(intake._identifier.__wrapped__, kind, value) == _outcome(normalise_identifier, kind, value)
