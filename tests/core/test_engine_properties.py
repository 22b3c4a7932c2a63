"""Properties of the engine over every program, with facts drawn from the declared input types."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dopomoga.errors import ApplicationError
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from tests.factories import application

CATALOG = Catalog.load()
PROGRAM_IDS = sorted(CATALOG.programs)

_dates = st.dates(min_value=dt.date(1915, 1, 1), max_value=dt.date(2026, 12, 31)).map(dt.date.isoformat)


def _value(spec):
    kind = spec.type
    if kind == "bool":
        return st.booleans()
    if kind == "int":
        return st.integers(min_value=0, max_value=100_000)
    if kind == "money":
        return st.integers(min_value=0, max_value=10**9)
    if kind == "string":
        return st.text(alphabet="абвгдxyz0123456789", min_size=1, max_size=12)
    if kind == "enum":
        return st.sampled_from(spec.values)
    if kind == "date":
        return _dates
    if kind == "list":
        return st.lists(st.text(alphabet="abc", min_size=1, max_size=3), max_size=3)
    fields = spec.fields or {}
    row = st.fixed_dictionaries({name: _value(type("S", (), {"type": t, "values": None, "fields": None})) for name, t in fields.items()})
    return st.lists(row, max_size=4)


@st.composite
def applications(draw):
    program = CATALOG.get(draw(st.sampled_from(PROGRAM_IDS)))
    facts = {}
    for name, spec in program.spec.inputs.items():
        if spec.required or draw(st.booleans()):
            facts[name] = draw(_value(spec))
    last_day = program.versions[-1].effective_to or dt.date(2026, 12, 31)
    submitted = draw(st.dates(min_value=program.versions[0].effective_from, max_value=last_day))
    channel = draw(st.sampled_from(program.spec.payment_channels))
    id_kind = "edrpou" if program.spec.payee == "organisation" else "rnokpp"
    return application(
        program.id,
        facts,
        submitted_on=submitted,
        birth_date=draw(st.dates(min_value=dt.date(1915, 1, 1), max_value=submitted)) if id_kind == "rnokpp" else None,
        person=draw(st.integers(min_value=1, max_value=50)),
        channel=channel,
        id_kind=id_kind,
        household_id=draw(st.sampled_from([None, "h1", "h2"])),
        district=draw(st.sampled_from([None, "Комунарський", "Богунський"])),
    )


def _no_float(node) -> bool:
    if isinstance(node, float):
        return False
    if isinstance(node, dict):
        return all(_no_float(v) for v in node.values())
    if isinstance(node, list):
        return all(_no_float(v) for v in node)
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(applications())
def test_any_application_gets_a_non_negative_exact_deterministic_decision_or_a_clear_error(app):
    try:
        first = Engine(CATALOG).decide(app)
    except ApplicationError as exc:
        assert exc.reason_code and str(exc)
        return
    second = Engine(CATALOG).decide(app)
    assert first.model_dump_json() == second.model_dump_json()
    assert first.amount_kop >= 0 and type(first.amount_kop) is int
    assert first.eligible or first.amount_kop == 0
    assert _no_float(json.loads(first.model_dump_json()))
    assert first.explanation_uk and (first.eligible or "Відмовлено" in first.explanation_uk)
    staged = Engine(CATALOG)
    assert staged.calculate(staged.check_eligibility(app)).model_dump_json() == first.model_dump_json()
