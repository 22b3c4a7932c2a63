"""Decisions written from byte templates are byte for byte the models' own JSON.

``Engine.*_encoded`` fill a rule version's written parts (``dopomoga.rules.scope.Templates``:
conditions, the frequency limit, the amount and named-value steps, each item row's checks and amount)
with the values one decision read. These tests hold that path to the model's ``model_dump_json()``:

- every template of every rule version of every program, filled with a condition's or a step's
  values, passed and failed, against the record written whole;
- every example application decided twice in one engine (the second time the frequency limits and
  history counts see the first grant), and the example applications with item rows, their rows
  changed by hypothesis so that rows are left out for every reason a version gives.
"""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dopomoga.errors import ApplicationError
from dopomoga.rules.engine import Engine
from dopomoga.rules.records import dumps
from dopomoga.rules.scope import ScopeBuilder
from schemas.events import ApplicationSubmitted
from tests.core.test_encoded import _assert_same, _example_applications
from tests.core.test_engine_properties import CATALOG

EXAMPLES = _example_applications()
WITH_ROWS = [
    app for app in EXAMPLES
    if app.program_id in CATALOG.programs
    and any(version.items is not None for version in CATALOG.get(app.program_id).versions)
]


def _filled(head: bytes, inputs: dict, tail: bytes) -> bytes:
    return head + dumps(inputs) + tail


def test_every_template_of_every_rule_version_filled_in_is_the_record_written_whole():
    scopes = ScopeBuilder(CATALOG, None)  # type: ignore[arg-type]  # no history is asked here
    inputs = {"a": 1, "when": "2024-01-31", "text": "«лапки» \"і\" \\ \n", "rows": [{"x": True}]}
    checked = 0
    for program in CATALOG.programs.values():
        plan = scopes.plan(program.id)
        limit = program.spec.frequency.limit
        for version in program.versions:
            vplan = scopes.version_plan(plan, version)
            templates = vplan.templates
            for (condition, _), (head, passed, failed, reason) in zip(vplan.conditions, templates.conditions, strict=True):
                for ok in (True, False):
                    record = {"id": condition.id, "clause": condition.clause_uk, "expression": condition.expression.source,
                              "inputs": inputs, "passed": ok, "refusal_uk": None if ok else condition.refusal_uk}
                    assert _filled(head, inputs, passed if ok else failed) == dumps(record)
                assert reason == f"{condition.refusal_uk} ({condition.clause_uk})"
                checked += 1
            if limit is not None:
                head, passed, failed, _ = templates.frequency
                for prior in (0, 3):
                    record = {"id": "frequency_limit", "clause": limit.clause_uk, "expression": "prior_grants == 0",
                              "inputs": {"prior_grants": prior}, "passed": prior == 0,
                              "refusal_uk": None if prior == 0 else limit.refusal_uk}
                    assert _filled(head, {"prior_grants": prior}, passed if prior == 0 else failed) == dumps(record)
            record = {"step": "amount", "clause": version.amount_clause_uk, "expression": vplan.amount_expression,
                      "inputs": inputs, "result": 12345}
            assert _filled(templates.amount, inputs, b',"result":12345}') == dumps(record)
            for (name, expression), (head, _) in zip(version.values, templates.values, strict=True):
                record = {"step": f"value:{name}", "clause": version.amount_clause_uk, "expression": expression.source,
                          "inputs": inputs, "result": 7}
                assert _filled(head, inputs, b',"result":7}') == dumps(record)
            for check, (middle, passed, failed) in zip(vplan.row_checks, templates.rows, strict=True):
                step, clause, expression, exclude_uk, _ = check
                for ok in (True, False):
                    record = {"step": f"item:12:{step}", "clause": clause, "expression": expression.source,
                              "inputs": inputs, "result": True if ok else f"False — {exclude_uk or ''}".strip()}
                    assert _filled(b'{"step":"item:12' + middle, inputs, passed if ok else failed) == dumps(record)
                checked += 1
            if version.items is not None:
                record = {"step": "item:3:amount", "clause": version.amount_clause_uk,
                          "expression": version.items.formula.source, "inputs": inputs, "result": 99}
                assert _filled(b'{"step":"item:3' + templates.item_amount, inputs, b',"result":99}') == dumps(record)
    assert checked > 100
    assert len(WITH_ROWS) >= 10


def test_every_example_decided_twice_in_one_engine_is_written_as_its_model_both_times(catalog):
    model_engine, encoded_engine = Engine(catalog), Engine(catalog)
    for _ in range(2):  # the second round meets the first round's grants: limits and history counts fail
        for app in EXAMPLES:
            _assert_same(model_engine, encoded_engine, app)


def _changed_rows(rows: list, seed: int) -> list:
    """The rows with values moved about (ints to other ints, bools flipped, dates shifted, a row
    copied or dropped), so that the rows' checks fail and pass in every combination."""
    rng = random.Random(seed)
    out = []
    for row in rows:
        changed = {}
        for name, value in row.items():
            if type(value) is bool:
                changed[name] = rng.random() < 0.5
            elif type(value) is int:
                changed[name] = rng.choice([0, 1, value, value * 2, value // 3, 10**7])
            elif type(value) is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
                changed[name] = (dt.date.fromisoformat(value) + dt.timedelta(days=rng.randint(-4000, 4000))).isoformat()
            else:
                changed[name] = value
        out.append(changed)
        if rng.random() < 0.2:
            out.append(dict(changed))
    if out and rng.random() < 0.2:
        out.pop(rng.randrange(len(out)))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(WITH_ROWS), st.integers(min_value=0, max_value=2**32))
def test_applications_with_changed_item_rows_are_written_byte_for_byte_as_their_models(app, seed):
    facts = {name: _changed_rows(value, seed) if type(value) is list and value and type(value[0]) is dict else value
             for name, value in app.facts.items()}
    try:
        changed = ApplicationSubmitted.model_validate({**app.model_dump(), "facts": facts})
    except ValueError:
        return
    _assert_same(Engine(CATALOG), Engine(CATALOG), changed)


def test_an_item_row_whose_arithmetic_overflows_64_bits_is_an_evaluation_error_not_a_crash():
    """cel-rust raises ``OverflowError`` when an integer leaves 64 bits; a decision names the failing rule
    (``evaluation_failed``) on both paths, as for any other failing evaluation."""
    reasons = set()
    for app in WITH_ROWS:
        facts = {name: [{field: 4_500_000_000_000_000_000 if type(v) is int and type(v) is not bool else v
                         for field, v in row.items()} for row in value]
                 if type(value) is list and value and type(value[0]) is dict else value
                 for name, value in app.facts.items()}
        huge = ApplicationSubmitted.model_validate({**app.model_dump(), "facts": facts})
        for decide in (Engine(CATALOG).decide, Engine(CATALOG).decide_encoded):
            try:
                decide(huge)
            except ApplicationError as exc:
                reasons.add(exc.reason_code)
                if "overflow" in str(exc):
                    assert exc.reason_code == "evaluation_failed"
    assert "evaluation_failed" in reasons
