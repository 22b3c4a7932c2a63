"""The encoded decisions (what the CLI writes and the services send) are the models' own JSON.

``Engine.*_encoded`` write the event with orjson from the same record the pydantic model
is validated from. These tests hold the two paths to byte equality: on every example
application, and on generated ones with awkward text (quotes, control characters,
non-BMP letters) and timestamps (offsets, microseconds).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dopomoga.errors import ApplicationError
from dopomoga.rules.engine import Engine
from schemas.events import ApplicationSubmitted
from tests.core.test_engine_properties import CATALOG, applications

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example_applications() -> list[ApplicationSubmitted]:
    found = []
    for path in sorted(EXAMPLES.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                found.append(ApplicationSubmitted.model_validate_json(line))
            except ValueError:
                continue  # the examples include invalid lines on purpose
    return found


def _assert_same(model_engine: Engine, encoded_engine: Engine, app: ApplicationSubmitted) -> None:
    try:
        model = model_engine.decide(app)
    except ApplicationError as exc:
        with pytest.raises(ApplicationError) as again:
            encoded_engine.decide_encoded(app)
        assert (again.value.reason_code, str(again.value)) == (exc.reason_code, str(exc))
        return
    encoded = encoded_engine.decide_encoded(app)
    assert encoded.json == model.model_dump_json().encode()
    assert (encoded.application_id, encoded.program_id, encoded.period, encoded.eligible, encoded.amount_kop,
            encoded.budget_key) == (model.application_id, model.program_id, model.period, model.eligible,
                                    model.amount_kop, model.budget_key)

    eligibility = model_engine.check_eligibility(app)
    eligibility_encoded = encoded_engine.check_eligibility_encoded(app)
    assert eligibility_encoded.json == eligibility.model_dump_json().encode()
    assert eligibility_encoded.eligible is eligibility.eligible and eligibility_encoded.amount_kop is None
    assert encoded_engine.calculate_encoded(eligibility).json == model_engine.calculate(eligibility).model_dump_json().encode()


def test_every_example_decision_is_written_byte_for_byte_as_its_model_would_write_it(catalog):
    apps = _example_applications()
    assert len(apps) >= 200
    model_engine, encoded_engine = Engine(catalog), Engine(catalog)
    for app in apps:  # in file order, each engine with its own history: repeats are refused alike
        _assert_same(model_engine, encoded_engine, app)


_awkward_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40
).filter(lambda s: s.strip() == s and s)
_offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(applications(), _awkward_text, st.one_of(st.none(), _awkward_text), st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=_offsets))
def test_generated_decisions_with_awkward_text_and_timestamps_are_written_byte_for_byte(app, name, district, at):
    try:
        app = ApplicationSubmitted.model_validate({
            **app.model_dump(),
            "occurred_at": at,
            "applicant": {**app.applicant.model_dump(), "name": name[:256], "district": district and district[:64]},
        })
    except ValueError:
        return  # a name the schema refuses (e.g. only spaces) is not a decision
    _assert_same(Engine(CATALOG), Engine(CATALOG), app)
