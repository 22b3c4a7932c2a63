"""The lean decision path (dopomoga.rules.lean) gives the traced path's eligibility and amount.

Every field a budget reads (program, month, eligible, amount, budget key's district, policy,
parameters awaiting confirmation, payee) is compared with ``Engine.decide_encoded``'s decision,
on every example application (twice over: the second copy meets the first one's grants) and on
generated ones; so are the per-line errors.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dopomoga.cli import decide_lines
from dopomoga.errors import ApplicationError
from dopomoga.rules.engine import Engine
from dopomoga.rules.lean import Lean, lean_batch, lean_decide
from schemas.events import ApplicationSubmitted
from tests.core.test_encoded_more import WITH_ROWS
from tests.core.test_engine_properties import CATALOG, applications

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "applications.jsonl"


def _traced(lines: list[str]) -> list[tuple[int, Lean | None, dict | None]]:
    """The traced loop's decisions, cut down to the lean fields."""
    out = []
    for number, decision, error in decide_lines(Engine(CATALOG), lines):
        if decision is None:
            out.append((number, None, error))
            continue
        event = orjson.loads(decision.json)
        key = decision.budget_key or ""
        out.append((number, Lean(
            decision.application_id, decision.program_id, decision.period, decision.eligible,
            decision.amount_kop or 0, key.split(":")[2] if key.count(":") >= 2 else "", event["budget_policy"], 0,
            tuple(event["operator"]["pending_confirmation"]), event["application"]["applicant"]["id"],
        ), None))
    return out


def _lean(lines: list[str], workers: int, chunk: int) -> list[tuple[int, Lean | None, dict | None]]:
    return [sides[0] for _, sides in lean_batch([CATALOG], lines, workers=workers, chunk=chunk)]


def test_lean_equals_traced_on_every_example_application_twice_over():
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()
    again = [line.replace('"application_id":"', '"application_id":"again-') for line in lines]
    lines = [*lines, "", *again]
    traced = _traced(lines)
    assert _lean(lines, workers=2, chunk=17) == traced
    assert _lean(lines, workers=1, chunk=50) == traced
    assert sum(1 for _, d, _ in traced if d is not None and d.eligible and d.amount_kop) > 200
    assert any(e is not None for _, _, e in traced)
    assert sum(1 for _, d, _ in traced[len(traced) // 2:] if d is not None and not d.eligible) > 100


def test_a_second_catalog_decides_only_the_programs_asked_for_and_the_lines_the_first_could_not():
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()
    wanted = frozenset(sorted(CATALOG.programs)[:5])
    for number, (first, second) in lean_batch([CATALOG, CATALOG], lines, workers=2, chunk=13, recompute=wanted):
        if first[1] is None or first[1].program_id in wanted:
            assert second == first
        else:
            assert second is None, number


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(applications(), min_size=1, max_size=40), st.integers(min_value=1, max_value=9))
def test_lean_equals_traced_on_generated_applications(apps, chunk):
    lines = [app.model_dump_json() for app in apps]
    assert _lean(lines, workers=2, chunk=chunk) == _traced(lines)


def test_the_worker_computes_each_applications_history_keys_and_grant_keys_as_windows_does():
    from dopomoga.rules.intake import parse_application
    from dopomoga.rules.lean import _keys, _scopes
    from dopomoga.rules.windows import counted_keys, grant_for

    with_keys = 0
    for line in EXAMPLES.read_text(encoding="utf-8").splitlines():
        try:
            application = parse_application(line)
            program = CATALOG.get(application.program_id)
        except Exception:  # an invalid line or an unknown program: nothing to compare
            continue
        keys, grant_keys = _keys(program, application)
        assert keys == counted_keys(program, application)
        assert grant_keys == grant_for(program, application).keys
        if not _scopes(program)[1]:  # the worker's shortcut for a program that counts nothing
            assert (keys, grant_keys) == ((), (application.applicant.subject_key,))
        with_keys += len(grant_keys) > 1
    assert with_keys > 20  # households and facts, not only the person


def test_a_file_read_by_the_workers_in_byte_chunks_gives_what_its_lines_give(tmp_path):
    from dopomoga.rules.lean import file_parts, text_lines

    lines = EXAMPLES.read_text(encoding="utf-8").splitlines()[:120]
    again = [line.replace('"application_id":"', '"application_id":"again-') for line in lines]
    body = "\n".join([*lines[:60], "", "   ", "{not json", *lines[60:], *again[:40]])
    cases = {
        "plain": body + "\n",
        "no final line break": body,
        "windows line breaks": body.replace("\n", "\r\n") + "\r\n",
        "a carriage return half way": body[: len(body) // 2] + "\r" + body[len(body) // 2:] + "\n",
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(text.encode("utf-8"))
        expected = list(text_lines(path))
        for block in (1, 700, 5000, 1 << 20):
            parts = list(file_parts(path, block, size=7))
            got = [line for _, part in parts for line in (part if type(part) is list else part.lines())]
            assert got == expected, (name, block)
            numbers = [first for first, _ in parts]
            assert numbers[0] == 1 and numbers == sorted(numbers), (name, block)
        by_lines = list(lean_batch([CATALOG, CATALOG], expected, workers=2, chunk=13,
                                   recompute=frozenset(sorted(CATALOG.programs)[:5])))
        for block in (700, 1 << 20):
            assert list(lean_batch([CATALOG, CATALOG], path, workers=2, chunk=13, block=block,
                                   recompute=frozenset(sorted(CATALOG.programs)[:5]))) == by_lines, (name, block)
        assert list(lean_batch([CATALOG], path, workers=1)) == list(lean_batch([CATALOG], expected, workers=1))
        assert sum(1 for _, sides in by_lines if sides[0][2] is not None) >= 1  # the bad line's error


def test_an_item_row_whose_arithmetic_overflows_64_bits_is_the_traced_paths_evaluation_error_on_the_lean_path():
    """cel-rust raises ``OverflowError`` when an integer leaves 64 bits: the lean path falls back to the
    traced path, which names the failing rule (``evaluation_failed``), instead of crashing the what-if."""

    reasons = set()
    for app in WITH_ROWS:
        facts = {name: [{field: 4_500_000_000_000_000_000 if type(v) is int else v for field, v in row.items()}
                        for row in value]
                 if type(value) is list and value and type(value[0]) is dict else value
                 for name, value in app.facts.items()}
        huge = ApplicationSubmitted.model_validate({**app.model_dump(), "facts": facts})
        try:
            lean_decide(Engine(CATALOG), huge)
        except ApplicationError as exc:
            reasons.add(exc.reason_code)
    assert "evaluation_failed" in reasons
