"""The traced path's shortcuts give the bytes of the plain evaluation, byte for byte.

Two shortcuts of ``dopomoga.rules`` change how CEL is called, never what it computes:

- item rows go through one ``cel.Context`` per decision (``engine._RowsCel``): the values the
  rows share are converted once, each row's fields per row, ``item_amount`` per flag;
- a list a rule reads only as ``size(x)`` is bound as zeros of the same length
  (``Expression.sizes``).

The plain evaluation - every rule on its own, with the full binding of ``Expression.run`` - must
give the same decision bytes (or the same error) on every example application and on generated
ones. (The constant parts written once, ``records.fragment``, are held to the model's own JSON by
tests/core/test_encoded.py.)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from dopomoga.errors import ApplicationError
from dopomoga.rules import engine as engine_module
from dopomoga.rules.engine import Engine
from dopomoga.rules.expressions import FUNCTIONS, Expression
from tests.core.test_encoded import _example_applications
from tests.core.test_engine_properties import CATALOG, applications


class _NoRowsContext:
    """Every row and flag left to the one-rule-at-a-time evaluation."""

    def __init__(self, *args: Any) -> None:
        pass

    def row(self, row: dict[str, Any]) -> None:
        return None

    def flag(self, position: int, item_amount: int) -> None:
        return None


def _full_binding(self: Expression, scope: dict[str, Any]) -> Any:
    binding = {name: scope[name] for name in self.variables if name in scope}
    binding.update({name: FUNCTIONS[name] for name in self.functions})
    return self.program.execute(binding)


@contextmanager
def _plain():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_module, "_RowsCel", _NoRowsContext)
        patch.setattr(Expression, "run", _full_binding)
        yield


def _outcome(engine: Engine, application: Any) -> Any:
    try:
        return engine.decide_encoded(application, record=False)
    except ApplicationError as exc:
        return exc.reason_code, str(exc)


def _assert_same(applications_: list[Any]) -> None:
    fast = [_outcome(Engine(CATALOG), a) for a in applications_]
    with _plain():
        plain = [_outcome(Engine(CATALOG), a) for a in applications_]
    for application, got, expected in zip(applications_, fast, plain, strict=True):
        assert got == expected, application.application_id


def test_every_example_decision_is_the_plain_evaluations_bytes():
    apps = _example_applications()
    with_items = [a for a in apps if any(isinstance(v, list) and v and isinstance(v[0], dict) for v in a.facts.values())]
    assert len(with_items) >= 50  # registers, routes, children: the rows the shortcut is for
    _assert_same(apps)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(applications())
def test_any_generated_decision_is_the_plain_evaluations_bytes(app):
    _assert_same([app])
