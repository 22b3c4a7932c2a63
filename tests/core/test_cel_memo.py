"""The CEL memo (``Expression.run``): a memoised value is the one CEL gives for exactly those values."""

from __future__ import annotations

import pytest

from dopomoga.rules import expressions
from dopomoga.rules.expressions import CEL_ERRORS, compile_expression


def _expression(source: str, *names: str) -> expressions.Expression:
    expression = compile_expression(source, "test", names)
    assert not expression.memo_off[0], "the memo is on by default"
    return expression


def test_a_memoised_true_is_not_taken_for_the_integer_one():
    expression = _expression("flag ? 1 : 2", "flag")
    assert expression.run({"flag": True}) == 1
    assert expression.run({"flag": True}) == 1  # from the memo
    with pytest.raises(CEL_ERRORS):  # CEL refuses an integer as a condition; Python has True == 1
        expression.run({"flag": 1})


def test_a_name_the_scope_lacks_is_not_taken_for_null():
    expression = _expression("x == null", "x")
    assert expression.run({"x": None}) is True
    with pytest.raises(CEL_ERRORS):
        expression.run({})


def test_a_list_result_from_the_memo_is_a_copy_the_caller_may_change():
    expression = _expression("[a > 1, a * 2]", "a")
    first = expression.run({"a": 5})
    first.append("changed")
    again = expression.run({"a": 5})
    assert again == [True, 10]
    assert expression.memo_stats[1] == 1


def test_rows_are_evaluated_every_time_and_never_kept():
    expression = _expression("size(rows) + rows[0].n", "rows")
    assert expression.run({"rows": [{"n": 1}]}) == 2
    assert expression.run({"rows": [{"n": 5}]}) == 6
    assert expression.memo == {}


def test_an_expression_whose_values_rarely_repeat_stops_memoising():
    expression = _expression("birth + 1", "birth")
    for value in range(expressions.MEMO_JUDGED):
        assert expression.run({"birth": value}) == value + 1
    assert expression.memo_off[0] and expression.memo == {}
    assert expression.run({"birth": 7}) == 8


def test_an_expression_whose_values_repeat_keeps_memoising_and_answers_the_same():
    expression = _expression("round_half_up(size * 150, 100)", "size")
    for n in range(3 * expressions.MEMO_JUDGED):
        assert expression.run({"size": n % 7}) == (n % 7 * 150 + 50) // 100
    assert not expression.memo_off[0]
    assert len(expression.memo) == 7
