"""The batch path (dopomoga.rules.batch) gives what the traced loop gives, byte for byte.

The traced loop is ``dopomoga.cli.decide_lines`` with one ``Engine`` (grant history recorded in
input order). The batch path decides on forked workers with an empty history and re-decides in
the parent whatever the real history could change; repeats are forced here by deciding every
example twice and by generating applications from 50 people and two households.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dopomoga.cli import decide_lines
from dopomoga.rules.batch import decide_batch
from dopomoga.rules.engine import Engine
from tests.core.test_engine_properties import CATALOG, applications

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "applications.jsonl"


def test_batch_equals_traced_on_every_example_application_twice_over():
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()
    again = [line.replace('"application_id":"', '"application_id":"again-') for line in lines]
    lines = [*lines, "", *again]  # the second copy meets the first one's grants; a blank line is skipped
    traced = list(decide_lines(Engine(CATALOG), lines))
    batched = list(decide_batch(CATALOG, lines, workers=2, chunk=17))
    assert batched == traced
    assert sum(1 for _, d, _ in traced if d is not None and d.eligible) > 200
    assert any(e is not None for _, _, e in traced)  # invalid lines are reported the same way
    # a repeat refused by the history shows the batch path really re-decided it
    first = {d.application_id: d for _, d, _ in traced[: len(traced) // 2] if d is not None}
    repeats = [d for _, d, _ in traced[len(traced) // 2:] if d is not None and d.application_id.startswith("again-")]
    assert sum(1 for d in repeats if first[d.application_id[6:]].eligible and not d.eligible) > 100


def test_batch_on_one_worker_is_the_traced_loop():
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()[:60]
    assert list(decide_batch(CATALOG, lines, workers=1)) == list(decide_lines(Engine(CATALOG), lines))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(applications(), min_size=1, max_size=40), st.integers(min_value=1, max_value=9))
def test_batch_equals_traced_on_generated_applications(apps, chunk):
    lines = [app.model_dump_json() for app in apps]
    assert list(decide_batch(CATALOG, lines, workers=2, chunk=chunk)) == list(decide_lines(Engine(CATALOG), lines))
