"""`examples/applications.jsonl` (what `make run` replays) has an application to every program of the
catalog, and one that is granted for every program (issue 14: «covers every program, including the new
ones»)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from schemas.events import ApplicationSubmitted

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "applications.jsonl"
INVALID_LINES = 8  # the last lines each break one rule a registry can break


@pytest.fixture(scope="module")
def decided():
    catalog = Catalog.load()
    engine = Engine(catalog)
    lines = [line for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()][:-INVALID_LINES]
    return catalog, [engine.decide(ApplicationSubmitted.model_validate_json(line)) for line in lines]


def test_every_program_of_the_catalog_has_an_example_application(decided):
    catalog, decisions = decided
    assert sorted(set(catalog.programs) - {d.program_id for d in decisions}) == []


def test_every_program_has_an_example_that_is_granted_an_amount(decided):
    catalog, decisions = decided
    granted = {d.program_id for d in decisions if d.eligible and d.amount_kop > 0}
    assert sorted(set(catalog.programs) - granted) == []
