"""Encoded decisions are byte for byte the models' own JSON, where the cached and precomputed parts
of the hot path (the dated scope parts, the refusal reasons, the shown names) are exercised hardest.

- every example application decided twice in one engine (the second time the frequency limits and
  history counts see the first grant: failed limits, refusal sentences from several reasons);
- the example applications with item rows, their rows changed by hypothesis so that rows are left
  out for every reason a version gives (dates moved, amounts to zero and to huge values);
- an item row whose arithmetic overflows 64 bits is an evaluation error on both paths.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dopomoga.errors import ApplicationError, LedgerError
from dopomoga.rules.engine import Engine
from dopomoga.rules.expressions import compile_expression
from schemas.events import ApplicationSubmitted
from tests.core.test_encoded import _assert_same, _example_applications
from tests.core.test_engine_properties import CATALOG

EXAMPLES = _example_applications()
WITH_ROWS = [
    app for app in EXAMPLES
    if app.program_id in CATALOG.programs
    and any(version.items is not None for version in CATALOG.get(app.program_id).versions)
]


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


def test_a_budget_priority_whose_arithmetic_overflows_64_bits_is_a_priority_failed_ledger_error():
    """``Program.priority_class`` (the ledger's and the what-if's one evaluation of ``budget.priority``)
    names an overflowing priority as ``priority_failed``, like any other priority it cannot evaluate."""
    program = dataclasses.replace(next(iter(CATALOG.programs.values())),
                                  priority=compile_expression("big * 2", "test priority", ["big"]))
    with pytest.raises(LedgerError) as raised:
        program.priority_class({"big": 2**63 - 1})
    assert raised.value.reason_code == "priority_failed"
