"""Decisions fit to be signed (issue 14, item 6): what a citizen or carrier reads cites the act and
the clause and shows the calculation; seed line pointers, spec ids, INFERRED, «обране прочитання»
and field names stay in the program file's ``source`` and the decision's operator section."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import yaml

from dopomoga.explain_uk import internal_markers
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from schemas.events import ApplicationSubmitted

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "applications.jsonl"
INVALID_LINES = 8  # the last lines of the examples each break one rule a registry can break

#: ``*_uk`` keys of a program file that only operators and the department read (the file's
#: working notes, the formula's rounding shown beside the formula in the trace, input descriptions,
#: operator flags). Every other ``*_uk`` value, the title and every parameter reference can reach a
#: citizen's or carrier's decision.
OPERATOR_ONLY = {"readings_uk", "note_uk", "description_uk", "rounding_uk", "flag_uk"}
NOT_TEXT = {"when", "formula", "include_when", "priority", "source", "seed", "notes", "confirmed_by"}


@pytest.fixture(scope="module")
def decisions():
    catalog = Catalog.load()
    engine = Engine(catalog)
    lines = [line for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [engine.decide(ApplicationSubmitted.model_validate_json(line)) for line in lines[:-INVALID_LINES]]


def _citizen_texts(node: Any, where: str) -> list[tuple[str, str]]:
    """Every citizen-facing text of a program file's raw YAML, with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            path, key = f"{where}.{key}", str(key)
            if key in OPERATOR_ONLY or key in NOT_TEXT:
                continue
            if key == "calculation_uk":  # the template's own words; the values are checked in decisions
                found += [(path, literal) for literal, *_ in string.Formatter().parse(str(value))]
            elif key.endswith("_uk") or key in ("uk", "reference"):
                found.append((path, str(value)))
            else:
                found += _citizen_texts(value, path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _citizen_texts(value, f"{where}[{index}]")
    return found


def test_every_example_application_is_decided_and_its_sentence_carries_no_internal_pointer(decisions):
    assert len(decisions) > 300
    leaks = [(d.program_id, d.application_id, internal_markers(d.explanation_uk), d.explanation_uk)
             for d in decisions if internal_markers(d.explanation_uk)]
    assert leaks == []


def test_every_condition_clause_and_refusal_of_every_example_decision_is_fit_to_be_signed(decisions):
    leaks = [
        (d.program_id, c.id, text)
        for d in decisions
        for c in d.conditions
        for text in (c.clause, c.refusal_uk or "")
        if internal_markers(text)
    ]
    assert leaks == []


def test_every_parameter_reference_a_decision_shows_is_a_legal_reference_without_pointers(decisions):
    leaks = {(d.program_id, p.name, p.reference) for d in decisions for p in d.parameters if internal_markers(p.reference)}
    assert leaks == set()


def test_every_example_decision_keeps_its_seed_pointers_in_the_operator_section(decisions):
    without = sorted({d.program_id for d in decisions if not d.operator.sources})
    assert without == []
    assert all(any(s.rule == "legal_basis" for s in d.operator.sources) for d in decisions)


def test_the_examples_cover_granted_and_refused_decisions_of_every_city(decisions):
    for city in ("zhytomyr", "kamianske", "zaporizhzhia"):
        ours = [d for d in decisions if d.program_id.startswith(city + ".")]
        assert any(d.eligible for d in ours) and any(not d.eligible for d in ours), city


def test_a_calculated_amount_shows_its_calculation_in_the_sentence(decisions):
    shown = {d.program_id for d in decisions if d.eligible and "; " in d.explanation_uk.split(" — ")[0]}
    for program in ("zaporizhzhia.capital-repair", "zhytomyr.triplets", "kamianske.fallen-ato-family-monthly",
                    "kamianske.material-assistance"):
        assert program in shown, program


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "programs").glob("*/*.yaml")
                                        if p.parent.name != "parameters" and p.name not in ("city.yaml", "budget-lines.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_citizen_facing_text_of_a_program_file_contains_an_internal_pointer(path):
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    leaks = [(where, internal_markers(text), text) for where, text in _citizen_texts(raw, path.stem) if internal_markers(text)]
    assert leaks == []


def test_every_global_parameter_reference_is_fit_to_be_cited():
    catalog = Catalog.load()
    leaks = [
        (name, value.effective_from, value.reference)
        for name in catalog.parameters.names()
        for value in catalog.parameters[name].values
        if internal_markers(value.reference)
    ]
    assert leaks == []
