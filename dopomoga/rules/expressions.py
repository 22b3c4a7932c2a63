"""CEL expressions of program files: compile once, bind only what an expression reads.

The CEL implementation is ``common-expression-language`` (cel-rust bindings). It
converts the whole activation on every call (measured: ~0.5 µs per flat variable,
~10 µs per nested map), so programs use flat identifiers and each compiled
expression is executed with exactly the variables it references.

Dates are bound as integers ``YYYYMMDD`` (months as ``YYYYMM``): comparisons work as
they read, and whole years between two dates are ``age_on(birth, on)``.

Functions available to every program (each a named, exact integer operation):

================================  =========================================================
``round_half_up(n, d)``           n/d rounded to the nearest integer, halves up
``floor_div(n, d)``               n/d rounded down
``ceil_div(n, d)``                n/d rounded up
``min_int(a, b)`` / ``max_int``   smaller / larger of two integers
``sum_int(list)``                 sum of a list of integers
``age_on(birth, on)``             whole years from ``birth`` to ``on`` (YYYYMMDD ints)
``days_inclusive(from, to)``      calendar days from ``from`` to ``to``, both counted
``year_of(d)``                    the year of a YYYYMMDD date
================================  =========================================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cel

from dopomoga.money import floor_div, round_half_up
from dopomoga.periods import int_to_date

#: What evaluating a CEL expression raises for a failing evaluation (a missing name, a wrong type, a
#: division by zero, an integer overflowing 64 bits: cel-rust raises ``OverflowError`` for that).
CEL_ERRORS = (TypeError, RuntimeError, ValueError, OverflowError)


class ExpressionError(ValueError):
    """A malformed or ill-typed expression in a program file (names file, rule, position)."""


def _age_on(birth: int, on: int) -> int:
    if birth <= 0 or on <= 0:
        raise ValueError("age_on needs two dates")
    return (on - birth) // 10000


def _days_inclusive(start: int, end: int) -> int:
    return (int_to_date(end) - int_to_date(start)).days + 1


def _ceil_div(numerator: int, denominator: int) -> int:
    return -floor_div(-numerator, denominator)


FUNCTIONS: dict[str, Callable[..., int]] = {
    "round_half_up": round_half_up,
    "floor_div": floor_div,
    "ceil_div": _ceil_div,
    "min_int": min,
    "max_int": max,
    "sum_int": lambda values: sum(int(v) for v in values),
    "age_on": _age_on,
    "days_inclusive": _days_inclusive,
    "year_of": lambda value: value // 10000,
}


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled CEL expression with the names it reads."""

    source: str
    where: str  # "programs/x.yaml: rule 'age_100'" - for error messages
    program: Any
    variables: tuple[str, ...]  # free variables it reads (functions excluded)
    functions: tuple[str, ...]  # helper functions it calls
    sizes: tuple[str, ...] = ()  # variables it reads only as ``size(x)`` / ``x.size()``
    #: ``(name, FUNCTIONS[name])`` of every helper it calls, bound with its variables on each call
    bound_functions: tuple[tuple[str, Callable[..., int]], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bound_functions", tuple((name, FUNCTIONS[name]) for name in self.functions))

    #: results by the values read (``run``'s memo; see there): never compared, copied or shown
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    #: [calls, hits] since the memo was last judged; ``memo_off`` once it did not pay
    memo_stats: list[int] = field(default_factory=lambda: [0, 0], compare=False, repr=False)
    memo_off: list[bool] = field(default_factory=lambda: [not MEMO], compare=False, repr=False)

    def run(self, scope: dict[str, Any]) -> Any:
        """The expression's value with ``scope``'s values of the names it reads.

        Memoised: CEL is pure and so are the helper functions, so the value depends only on the
        values read. The key is those values with their types (``True == 1`` in Python, not in CEL),
        a name absent from the scope as a marker of its own; a value that cannot be a key (a list of
        rows, a map) is never memoised. An expression whose memo hits less than a quarter of its
        calls (over ``MEMO_JUDGED`` calls: values that rarely repeat, a date of birth say) stops
        memoising in this process; the memo is emptied at ``MEMO_MAX`` entries. A failing evaluation
        is not memoised (it fails again, with the same error). Lists and maps are returned as copies."""
        if self.memo_off[0]:
            return self._execute(scope)
        key = typed_key(tuple([scope.get(name, _ABSENT) for name in self.variables]))
        stats = self.memo_stats
        stats[0] += 1
        try:
            found = self.memo.get(key, _ABSENT)
        except TypeError:  # an unhashable value: rows, a map
            found = key = None
        if found is not _ABSENT and key is not None:
            stats[1] += 1
            return _copy(found)
        result = self._execute(scope)
        if stats[0] >= MEMO_JUDGED:
            if stats[1] * 4 < stats[0]:
                self.memo_off[0] = True
                self.memo.clear()
                return result
            stats[0] = stats[1] = 0
        if key is not None:
            if len(self.memo) >= MEMO_MAX:
                self.memo.clear()
            self.memo[key] = _copy(result)
        return result

    def _execute(self, scope: dict[str, Any]) -> Any:
        binding = {name: scope[name] for name in self.variables if name in scope}
        for name in self.sizes:
            # Only the length is read: bind a list of as many zeros, which cel-rust converts in
            # a fraction of the time of the rows themselves (~2 µs per row field).
            value = binding.get(name)
            if type(value) is list:
                binding[name] = _zeros(len(value))
        if self.bound_functions:
            binding.update(self.bound_functions)
        return self.program.execute(binding)


def typed_key(values: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[type, ...]]:
    """A memo key for these values: the values with their types (``True == 1`` and ``1 == 1.0`` in Python,
    but CEL and the sentences written from them tell them apart). Unhashable values raise ``TypeError``
    at the lookup."""
    return values, tuple(map(type, values))


def _copy(value: Any) -> Any:
    """A list or map result as a new one (a caller may change what it got), anything else as it is."""
    kind = type(value)
    return list(value) if kind is list else dict(value) if kind is dict else value


#: ``DOPOMOGA_CEL_MEMO=off`` turns every expression's memo off (benchmarks compare both ways)
MEMO = os.environ.get("DOPOMOGA_CEL_MEMO", "on") != "off"
_ABSENT = object()  # a name the scope does not have (a key of its own), or no memo entry
MEMO_JUDGED = 2048  # calls after which an expression's memo is judged (and every as many after)
MEMO_MAX = 2048  # entries at which an expression's memo is emptied (measured: 1.8 MiB for 12 values and 13 results)


_ZEROS: dict[int, list[int]] = {}


def _zeros(n: int) -> list[int]:
    zeros = _ZEROS.get(n)
    if zeros is None:
        zeros = _ZEROS[n] = [0] * n
    return zeros


def size_only(source: str, names: Iterable[str]) -> tuple[str, ...]:
    """The names ``source`` reads only through their length: every use is ``size(x)`` or ``x.size()``.

    Such a list is bound as a list of zeros of the same length: the same result, without
    converting its rows. Any other use (a macro, an index, a comparison) binds the value itself.
    """
    found = []
    for name in names:
        quoted = re.escape(name)
        uses = len(re.findall(rf"(?<![\w.]){quoted}(?!\w)", source))
        sized = len(re.findall(rf"(?<![\w.])size\(\s*{quoted}\s*\)", source)) + len(
            re.findall(rf"(?<![\w.]){quoted}\s*\.\s*size\(\s*\)", source)
        )
        if uses and uses == sized:
            found.append(name)
    return tuple(found)


def _position(source: str, name: str) -> str:
    """``line:column`` (1-based) of the first use of ``name`` as an identifier in ``source``."""
    match = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", source)
    if match is None:  # pragma: no cover - CEL reported a name the text does not contain
        return "?"
    before = source[: match.start()]
    return f"{before.count(chr(10)) + 1}:{match.start() - (before.rfind(chr(10)) + 1) + 1}"


def compile_expression(source: Any, where: str, known: Iterable[str]) -> Expression:
    """Compile CEL; fail with the file, the rule and the position on any problem.

    ``known`` names every identifier the expression may read. Identifiers that are
    neither known nor helper functions are refused, except variables bound by CEL
    comprehension macros (``rows.all(r, r.seats > 0)``), which the sample evaluation in
    the program loader then checks.
    """
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError(f"{where}: expression must be a non-empty string")
    try:
        program = cel.compile(source)
    except ValueError as exc:
        message = str(exc).replace("<input>", "expression")
        raise ExpressionError(f"{where}: {message}") from None
    names = set(program.variables())
    called = {name for name in program.functions() if name in FUNCTIONS}
    known_set = set(known)
    unknown = sorted(names - known_set - set(FUNCTIONS) - _loop_variables(source))
    if unknown:
        places = ", ".join(f"{name} at {_position(source, name)}" for name in unknown)
        raise ExpressionError(f"{where}: unknown name(s) {places} in {source!r}")
    variables = tuple(sorted(names & known_set))
    return Expression(
        source=source,
        where=where,
        program=program,
        variables=variables,
        functions=tuple(sorted(called)),
        sizes=size_only(source, variables),
    )


_MACRO = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,")


def _loop_variables(source: str) -> set[str]:
    """Names bound by CEL comprehension macros, e.g. ``c`` in ``children.exists(c, c.age < 18)``.

    cel-rust expands macros before ``Program.variables()``/``functions()`` see them, so the
    loop variable shows up as a free name; it is recognised from the macro call itself.
    """
    return set(_MACRO.findall(source))
