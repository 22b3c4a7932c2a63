"""The traced path's shortcuts (issue 16) give what the plain path gives.

- ``batch.decide_lines`` reads lines ``AHEAD`` at a time before deciding them: the same outcomes,
  in the same order, with the grant history read and written in input order;
- a count over an empty in-memory grant history is 0 without asking it, and one grant changes it;
- a rule version's calculation sentence is remembered by the values it shows *and their types*;
- the intake remembers the program ids and registries it has seen valid, each kind apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from dopomoga.errors import ApplicationError
from dopomoga.explain_uk import render_calculation
from dopomoga.rules import batch
from dopomoga.rules.engine import Engine, _calculation
from dopomoga.rules.intake import parse_application
from dopomoga.rules.scope import VersionPlan
from schemas.events import ApplicationSubmitted
from tests.core.test_engine_properties import CATALOG
from tests.factories import application

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _line_by_line(engine: Engine, lines: list[str]) -> list[tuple[int, bytes | None, str | None]]:
    """What deciding each line in turn gives: (line number, bytes, reason of an error)."""
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            app = parse_application(line)
        except ValueError:
            out.append((number, None, "invalid_event"))
            continue
        try:
            out.append((number, engine.decide_encoded(app).json, None))
        except ApplicationError as exc:
            out.append((number, None, exc.reason_code))
    return out


def _again(line: str) -> str:
    """The same claim under another application id (a repeat the grant history must see)."""
    try:
        data = json.loads(line)
    except ValueError:
        return line
    if isinstance(data, dict) and isinstance(data.get("application_id"), str):
        data["application_id"] = "again-" + data["application_id"]
    return json.dumps(data, ensure_ascii=False)


def _seen(outcomes) -> list[tuple[int, bytes | None, str | None]]:
    return [(n, d.json if d is not None else None, e["reason_code"] if e else None) for n, d, e in outcomes]


def test_lines_decided_a_few_dozen_at_a_time_give_what_each_line_decided_in_turn_gives():
    lines = []
    for path in sorted(EXAMPLES.glob("*.jsonl")):
        lines += path.read_text(encoding="utf-8").splitlines()  # the examples' broken lines included
    # repeats (a one-off grant asked for again: the history must be read in input order), blank lines,
    # and a broken line on each side of a chunk's edge
    lines = lines + ["", "{not json"] + [_again(line) for line in lines[: batch.AHEAD * 2]] + ["{", ""]
    assert len(lines) > 3 * batch.AHEAD

    expected = _line_by_line(Engine(CATALOG), lines)
    got = _seen(batch.decide_lines(Engine(CATALOG), 1, lines))

    assert got == expected
    assert any(reason == "invalid_event" for _, _, reason in got)
    refused_repeats = [json.loads(b) for _, b, _ in got[len(got) // 2:] if b is not None]
    assert any(not d["eligible"] and "frequency_limit" in {c["id"] for c in d["conditions"] if not c["passed"]}
               for d in refused_repeats)


def test_a_count_over_an_empty_history_is_zero_and_one_grant_makes_the_repeat_a_refusal():
    engine = Engine(CATALOG)
    first = application("zhytomyr.centenarians", {"resident_of_community": True}, birth_date="1920-01-01",
                        person=1, channel="post")
    again = first.model_copy(update={"application_id": "again", "event_id": "ev-again"})
    assert engine.history.empty

    assert engine.decide(first, record=True).eligible
    assert not engine.history.empty
    repeat = engine.decide(again, record=False)

    assert not repeat.eligible
    limit = next(c for c in repeat.conditions if c.id == "frequency_limit")
    assert limit.inputs == {"prior_grants": 1}


def test_a_calculation_remembered_by_its_values_tells_true_from_one():
    parts = (("", "x", "uah"), (" / ", "y", ""))
    vplan = VersionPlan(rules=None, conditions=(), combined_variables=frozenset(), formula_shown=(),
                        amount_expression="", granted_tail="", sources=(), calculation_names=("x", "y"))
    scopes = [{"x": 1, "y": 1}, {"x": 1, "y": True}, {"x": True, "y": 1}, {"x": 1, "y": 1}, {"x": 250_000, "y": [1]}]

    texts = [_calculation(vplan, parts, scope) for scope in scopes]

    assert texts == [render_calculation(parts, scope) for scope in scopes]
    assert texts[0] != texts[1] and texts[0] == texts[3]


def test_a_registry_seen_valid_is_still_refused_where_a_program_id_is_expected():
    line = (EXAMPLES / "zhytomyr.jsonl").read_text(encoding="utf-8").splitlines()[0]
    data = json.loads(line)
    assert "." not in data["registry"]  # not a program id's shape
    parse_application(line)  # the intake has now seen this registry and this program id valid

    as_program = json.dumps({**data, "program_id": data["registry"]}, ensure_ascii=False)
    with pytest.raises(ValidationError) as refused:
        parse_application(as_program)
    assert refused.value.errors()[0]["loc"] == ("program_id",)
    with pytest.raises(ValidationError):
        ApplicationSubmitted.model_validate_json(as_program)
