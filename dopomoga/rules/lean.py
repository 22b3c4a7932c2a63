"""The lean decision path: what a budget needs from an application, with the traced path's amounts.

A what-if needs, per application, only what the budget reads: the program, the month claimed,
whether it is eligible, the amount, the budget key's district, the budget policy, the priority
class, the parameters awaiting confirmation, and the payee. ``lean_decide`` computes exactly
those, with the **same compiled CEL** as ``Engine.decide_encoded`` (the same scope from
``dopomoga.rules.scope``, the same combined condition-and-amount call, the same item rows and
formula) but writes no trace, no explanation, no ids and no event bytes. Whenever the fast way
does not apply (a failing CEL call, a parameter with no value, an amount out of range, no
combined call), it decides the application on the traced path itself and takes the fields from
that decision, so errors and amounts are the traced path's by construction.
``tests/whatif/test_lean.py`` checks lean == traced on every example and on generated ones.

``lean_batch`` decides JSON lines on every core, in input order, with the grant history in the
loop exactly as ``dopomoga.rules.batch`` does (workers decide with an empty history; the parent
re-decides, with the real history, any application whose history keys already have a grant).
It can decide each line under two catalogs at once (a what-if's baseline and scenario: one
parse, two decisions), each side with its own grant history. At most ``workers * 3`` chunks are
in flight: bounded memory for any input length.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import io
import multiprocessing
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from dopomoga.errors import ApplicationError
from dopomoga.rules.batch import (
    chunks,
    default_workers,
    in_order,
    parse_error,
    parsed_lines,
    rule_error,
    start_worker,
)
from dopomoga.rules.engine import MAX_KOP, Engine
from dopomoga.rules.expressions import CEL_ERRORS
from dopomoga.rules.history import Grant, InMemoryHistory
from dopomoga.rules.intake import parse_application
from dopomoga.rules.programs import Catalog
from dopomoga.rules.windows import history_count, subject_keys
from schemas.events import ApplicationSubmitted

_intern = sys.intern


class Lean(NamedTuple):
    """One application's decision, as much of it as a budget reads (money in kopiyky)."""

    application_id: str
    program_id: str
    period: str  # the month claimed (the decision's period)
    eligible: bool
    amount_kop: int  # 0 when not eligible
    district: str  # the budget key's district ('' unless the program budgets by district)
    policy: str  # the program's budget.policy
    priority: int  # the budget.priority class (0 unless the policy is priority_then_pro_rata)
    pending: tuple[str, ...]  # parameters used whose values await an operator's confirmation
    payee: str  # the applicant's id (the report masks it)


class NoHistory(InMemoryHistory):
    """The grant history of a batch worker: always empty (the parent keeps the real one), so a frequency
    limit's count is 0 without asking it. Recording into it is a mistake."""

    def record(self, grant: Grant) -> None:
        raise AssertionError("a batch worker's history stays empty")


class _Fallback(Exception):
    """The fast way does not apply: decide on the traced path."""


def _int_amount(value: Any) -> int:
    if type(value) is not int or value < 0 or value > MAX_KOP:
        raise _Fallback  # the traced path raises the bad_amount error with its message
    return value


def _fast(engine: Engine, application: ApplicationSubmitted, as_of: dt.date | None) -> Lean:
    context = engine.scopes.context(application, as_of, None)  # its errors are the traced path's
    program = context.program
    spec = program.spec
    version = context.version
    scope = context.scope
    eligible = False
    amount = 0
    priority = 0
    if not context.ended:
        combined = version.combined
        if combined is None or (context.missing and not context.vplan.combined_variables.isdisjoint(context.missing)):
            raise _Fallback
        try:
            values = combined.run(scope)
        except CEL_ERRORS:
            raise _Fallback from None
        eligible = all(values[: len(version.conditions)])
        limit = spec.frequency.limit
        if limit is not None and eligible and type(engine.history) is not NoHistory:
            eligible = history_count(engine.history, program, application, limit) == 0
        if eligible:
            if spec.budget.policy == "priority_then_pro_rata" and program.priority is not None:
                priority = program.priority_class(dict(scope))  # before items_total joins the scope
            if version.combined_amount:
                amount = _int_amount(values[-1])
            else:
                amount = _amount(version, scope, context.missing)
    district = (application.applicant.district or "") if spec.budget.by_district else ""
    return Lean(
        application.application_id, program.id, _intern(context.period), eligible, amount, _intern(district),
        spec.budget.policy, priority, tuple(context.pending) if eligible else (), application.applicant.id,
    )


def _amount(version: Any, scope: dict[str, Any], missing: dict[str, str]) -> int:
    """The amount of an eligible application with item rows (or no combined amount): the same calls."""
    items = version.items
    if items is not None:
        if items.row is None:
            raise _Fallback
        checks = (1 if items.include_when is not None else 0) + len(items.conditions)
        total = 0
        for row in scope.get(items.of, []):
            try:
                values = items.row.run({**scope, **row})
            except CEL_ERRORS:
                raise _Fallback from None
            if all(values[:checks]):
                total += _int_amount(values[-1])
        scope = {**scope, "items_total": total}
    if missing and not missing.keys().isdisjoint(version.formula.variables):
        raise _Fallback
    try:
        return _int_amount(version.formula.run(scope))
    except CEL_ERRORS:
        raise _Fallback from None


def _from_traced(engine: Engine, application: ApplicationSubmitted, as_of: dt.date | None) -> Lean:
    """The traced decision's fields (raises its ApplicationError)."""
    decision = engine.decide_encoded(application, as_of=as_of, record=False)
    event = orjson.loads(decision.json)
    program = engine.catalog.get(decision.program_id)
    priority = 0
    if decision.eligible and program.spec.budget.policy == "priority_then_pro_rata" and program.priority is not None:
        counts: dict[str, int] = {}  # history counts as the decision shows them (the ledger's reading)
        for shown in (*(c["inputs"] for c in event["conditions"]), *(s["inputs"] for s in event["trace"])):
            for name, value in shown.items():
                if name in program.spec.history and type(value) is int:
                    counts[name] = value
        rules_date = dt.date.fromisoformat(event["rules"]["effective_from"])
        priority = program.priority_class(engine.scopes.context(application, rules_date, counts).scope)
    key = decision.budget_key or ""
    return Lean(
        application.application_id, decision.program_id, _intern(decision.period), decision.eligible,
        decision.amount_kop or 0, _intern(key.split(":")[2] if key.count(":") >= 2 else ""),
        event["budget_policy"], priority, tuple(event["operator"]["pending_confirmation"]),
        application.applicant.id,
    )


def lean_decide(engine: Engine, application: ApplicationSubmitted, as_of: dt.date | None = None,
                record: bool = False) -> Lean:
    """The application's ``Lean`` decision (``record``: an eligible one enters the engine's history).

    Raises the traced path's ``ApplicationError`` for an application it cannot decide."""
    try:
        lean = _fast(engine, application, as_of)
    except _Fallback:
        lean = _from_traced(engine, application, as_of)
    if record and lean.eligible:
        engine.history.record(engine.grant_for(application))
    return lean


# -- many lines, every core ------------------------------------------------------------------------
#: (line_no, Lean or None, error or None) per side
Outcome = tuple[int, Lean | None, dict[str, Any] | None]
#: one side's decision of a line in a worker, in plain tuples (they cross a pipe: a third of the time
#: to unpickle a NamedTuple and a Grant): (Lean's fields | None, error | None,
#: the grant's (keys, date as an ordinal, month) | None, the history keys it counts by)
_Side = tuple[tuple[Any, ...] | None, dict[str, Any] | None, tuple[tuple[str, ...], int, str] | None, tuple[str, ...]]
_new = tuple.__new__

_ENGINES: tuple[Engine, ...] = ()  # the catalogs forked workers decide with (set before the fork)
_COUNTED: tuple[frozenset[str], ...] = ()  # per side: programs whose grants some history counts


def counted_programs(catalog: Catalog) -> frozenset[str]:
    """Programs whose grants some program's history count or frequency limit counts."""
    found: set[str] = set()
    for program in catalog.programs.values():
        spec = program.spec
        for h in [*spec.history.values(), *([spec.frequency.limit] if spec.frequency.limit else [])]:
            found.update(h.programs or [program.id])
    return frozenset(found)


#: id(program) -> (program, counted scopes, grant scopes); the program is kept so its id is never reused
_SCOPES: dict[int, tuple[Any, tuple[str, ...], tuple[str, ...]]] = {}


def _scopes(program: Any) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
    """The scopes ``counted_keys`` walks (history counts, then the frequency limit) and those ``grant_for``
    records (the person, then the others sorted), of a program (cached per program object: a scenario's
    catalog may replace a program's version, history included)."""
    found = _SCOPES.get(id(program))
    if found is None or found[0] is not program:
        spec = program.spec
        counted = [h.scope for h in spec.history.values()]
        if spec.frequency.limit is not None:
            counted.append(spec.frequency.limit.scope)
        found = _SCOPES[id(program)] = (program, tuple(counted), ("person", *sorted(set(counted) - {"person"})))
    return found


def _keys(program: Any, application: ApplicationSubmitted) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(counted_keys(program, application), grant_for(program, application).keys)``, each scope's keys once.

    tests/whatif/test_lean.py checks both against windows' own functions on every example."""
    _, counted_scopes, grant_scopes = _scopes(program)
    person = application.applicant.subject_key
    found: dict[str, list[str]] = {"person": [person]}
    counted: list[str] = []
    for scope in counted_scopes:
        keys = found.get(scope)
        if keys is None:
            keys = found[scope] = subject_keys(scope, application)
        for key in keys:
            if key not in counted:
                counted.append(key)
    granted = [person]
    for scope in grant_scopes[1:]:
        granted.extend(k for k in found[scope] if k not in granted)
    return tuple(counted), tuple(granted)


def _decide_one(engine: Engine, counted: frozenset[str], number: int, application: ApplicationSubmitted,
                as_of: dt.date | None) -> _Side:
    try:
        program = engine.scopes.plan(application.program_id).program
        if _scopes(program)[1]:
            keys, grant_keys = _keys(program, application)
        else:  # no history count, no limit: it counts by no key, and its grant by the person's alone
            keys, grant_keys = (), None
        lean = lean_decide(engine, application, as_of)
    except ApplicationError as exc:
        return None, rule_error(number, application, exc), None, ()
    if lean.eligible and lean.program_id in counted:
        if grant_keys is None:
            grant_keys = (application.applicant.subject_key,)
        return tuple(lean), None, (grant_keys, application.submitted_on.toordinal(), application.effective_period), keys
    return tuple(lean), None, None, keys


def _decide_chunk(first: int, lines: list[str], as_of: dt.date | None,
                  recompute: frozenset[str] | None) -> list[tuple[int, list[_Side | None]]]:
    """Each non-blank line's decision under each side's catalog (later sides only where ``_wanted``)."""
    out: list[tuple[int, list[_Side | None]]] = []
    for number, application, error in parsed_lines(first, lines):  # a few dozen lines parsed, then decided
        if application is None:
            out.append((number, [(None, error, None, ())] * len(_ENGINES)))
            continue
        first_side = _decide_one(_ENGINES[0], _COUNTED[0], number, application, as_of)
        sides: list[_Side | None] = [first_side]
        for side in range(1, len(_ENGINES)):
            if _wanted(recompute, first_side[0]):
                sides.append(_decide_one(_ENGINES[side], _COUNTED[side], number, application, as_of))
            else:
                sides.append(None)
        out.append((number, sides))
    return out


def _wanted(recompute: frozenset[str] | None, first: tuple[Any, ...] | None) -> bool:
    """Does a later side decide this line? (``first``: the first side's Lean or its fields)"""
    return recompute is None or first is None or first[1] in recompute


class _Parent:
    """One side's real grant history in the parent, and its re-decisions."""

    def __init__(self, catalog: Catalog):
        self.engine = Engine(catalog, InMemoryHistory())
        self.granted: set[str] = set()

    def take(self, number: int, part: list[str] | FileSlice, index: int, side: _Side, as_of: dt.date | None
             ) -> Outcome:
        fields, error, grant, keys = side
        if keys and not self.granted.isdisjoint(keys):
            return self.redecide(number, _line(part, index), as_of)  # a history count may not be 0
        if fields is None:
            return number, None, error
        lean: Lean = _new(Lean, fields)
        if grant is not None:
            grant_keys, on, period = grant
            self.engine.history.record(Grant(grant_keys, lean.program_id, lean.application_id,
                                             dt.date.fromordinal(on), period))
            self.granted.update(grant_keys)
        return number, lean, None

    def redecide(self, number: int, line: str, as_of: dt.date | None,
                 application: ApplicationSubmitted | None = None) -> Outcome:
        if application is None:
            application = parse_application(line)  # it parsed in the worker
        try:
            lean = lean_decide(self.engine, application, as_of, record=True)
        except ApplicationError as exc:
            return number, None, rule_error(number, application, exc)
        if lean.eligible:
            self.granted.update(self.engine.grant_for(application).keys)
        return number, lean, None


class FileSlice(NamedTuple):
    """Whole lines of a JSON-lines file: ``length`` bytes from ``offset``. A worker reads them itself,
    so the parent neither decodes nor sends them."""

    path: str
    offset: int
    length: int

    def lines(self) -> list[str]:
        """The lines, as reading the file in text mode gives them (the parent checked: no ``\\r``)."""
        with open(self.path, "rb") as source:
            source.seek(self.offset)
            text = source.read(self.length).decode("utf-8")
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        return lines


@functools.lru_cache(maxsize=4)
def _slice_lines(part: FileSlice) -> list[str]:
    return part.lines()  # the parent re-reads a chunk only to re-decide one of its lines (rare)


def _line(part: list[str] | FileSlice, index: int) -> str:
    return part[index] if type(part) is list else _slice_lines(part)[index]


def text_lines(path: Path) -> Iterator[str]:
    """A JSON-lines file's lines, read in text mode (universal newlines), without the line break."""
    with path.open(encoding="utf-8") as source:
        for line in source:
            yield line.rstrip("\n")


def file_parts(path: Path, block: int = 1 << 20, size: int = 1000) -> Iterator[tuple[int, list[str] | FileSlice]]:
    """The file in chunks of whole lines, ``(first line number, FileSlice)``, about ``block`` bytes each.

    The parent only counts line breaks (in C). The lines are those ``text_lines`` gives; a file with
    a carriage return (where text mode's universal newlines would split lines differently) is read
    from that chunk on in text mode, as lists of ``size`` lines."""
    first = 1
    offset = 0
    rest = b""
    name = str(path)
    with path.open("rb") as source:
        while True:
            data = source.read(block)
            if not data:
                if rest:
                    if b"\r" in rest:
                        break
                    yield first, FileSlice(name, offset, len(rest))
                return
            data = rest + data if rest else data
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # a line longer than a block: read on
                rest = data
                continue
            if b"\r" in data[:cut]:
                break
            yield first, FileSlice(name, offset, cut)
            first += data.count(b"\n", 0, cut)
            offset += cut
            rest = data[cut:]
    with path.open("rb") as raw:  # from the chunk with a carriage return on: text mode, as text_lines reads
        raw.seek(offset)
        text = io.TextIOWrapper(raw, encoding="utf-8")
        for number, part in chunks((line.rstrip("\n") for line in text), size):
            yield first + number - 1, part


def _decide_part(first: int, part: list[str] | FileSlice, as_of: dt.date | None,
                 recompute: frozenset[str] | None) -> list[tuple[int, list[_Side | None]]]:
    """A worker's chunk; the cyclic collector paused meanwhile (a chunk makes no cycles worth scanning
    for: ~2 % of a worker's time on the bench; it runs again between chunks)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _decide_chunk(first, part if type(part) is list else part.lines(), as_of, recompute)
    finally:
        if collecting:
            gc.enable()


def lean_batch(
    catalogs: Sequence[Catalog],
    lines: Iterable[str] | Path,
    *,
    as_of: dt.date | None = None,
    workers: int | None = None,
    chunk: int = 1000,
    recompute: frozenset[str] | None = None,
    block: int = 1 << 20,
) -> Iterator[tuple[int, list[Outcome | None]]]:
    """Decide JSON lines under each catalog; yields ``(line_no, [outcome per catalog])`` in input order.

    The first catalog decides every non-blank line; a later one only the lines the first could
    not decide and those of the programs in ``recompute`` (every line if ``None``); elsewhere its
    outcome is ``None``. Each side yields what deciding its lines in order with one engine and
    its own grant history (eligible applications recorded) gives.

    ``lines`` may be a JSON-lines file's ``Path``: its lines as ``text_lines`` reads them, the
    workers reading their chunks (``file_parts``, about ``block`` bytes each) themselves.
    """
    global _ENGINES, _COUNTED
    workers = default_workers() if workers is None else workers
    parents = [_Parent(c) for c in catalogs]
    counted = tuple(counted_programs(c) for c in catalogs)
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for first, part in chunks(text_lines(lines) if isinstance(lines, Path) else lines, chunk):
            yield from _serial(parents, first, part, as_of, recompute)
        return
    _ENGINES = tuple(Engine(c, NoHistory()) for c in catalogs)
    _COUNTED = counted
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=start_worker) as pool:
        _ENGINES, _COUNTED = (), ()
        _slice_lines.cache_clear()  # a file read before may have changed since
        parts = file_parts(lines, block, chunk) if isinstance(lines, Path) else None
        for first, part, worked in in_order(pool, lines, chunk, workers, _decide_part, as_of, recompute,
                                            parts=parts):
            for number, sides in worked:
                yield number, [None if side is None else parents[i].take(number, part, number - first, side, as_of)
                               for i, side in enumerate(sides)]


def _serial(parents: list[_Parent], first: int, part: list[str], as_of: dt.date | None,
            recompute: frozenset[str] | None) -> Iterator[tuple[int, list[Outcome | None]]]:
    for offset, line in enumerate(part):
        if not line.strip():
            continue
        number = first + offset
        try:
            application = parse_application(line)  # once, for every side
        except ValidationError as exc:
            yield number, [(number, None, parse_error(number, exc))] * len(parents)
            continue
        outcomes: list[Outcome | None] = [parents[0].redecide(number, line, as_of, application)]
        for side in range(1, len(parents)):
            take = _wanted(recompute, outcomes[0][1])  # type: ignore[index]
            outcomes.append(parents[side].redecide(number, line, as_of, application) if take else None)
        yield number, outcomes
