"""The batch path: many applications decided on every core, with the traced path's exact bytes.

``decide_batch(catalog, lines)`` yields, for each JSON line, what ``dopomoga.cli.decide_lines``
yields for it with one ``Engine`` deciding them in order (``record=True``: an eligible application
enters the grant history, so a repeat one-off claim is refused): ``(line_no, Encoded, None)`` or
``(line_no, None, error)``. The bytes are ``Engine.decide_encoded``'s, byte for byte
(tests/whatif/test_batch.py checks every example application and generated ones).

How, with the grant history in the loop:

- worker processes (forked, so the compiled catalog is shared, never pickled) decide chunks of
  lines with an **empty** history: every history count and frequency limit reads 0;
- the parent takes the chunks back in order and keeps the real history. An application whose
  program reads no history is final as the worker decided it. One whose program does (a
  frequency limit, a history count) is final only if none of the subject keys it would count by
  (person, household, the fact a limit names) has a grant yet - then its true counts are 0, the
  worker's scope was the true one, and so are its bytes. Otherwise (a repeat applicant, a second
  claim for the same household or deceased) the parent decides it again itself, traced, with the
  real history. Each eligible decision's grant is recorded in the parent, in input order;
- at most ``workers * 3`` chunks are in flight, so memory stays bounded however long the input.

The speed-up is the number of cores less the parent's share (taking results back in order and
the history bookkeeping, a few µs per application); repeats are decided twice.
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from dopomoga.errors import ApplicationError
from dopomoga.rules.engine import Encoded, Engine
from dopomoga.rules.history import Grant, InMemoryHistory
from dopomoga.rules.intake import parse_application
from dopomoga.rules.programs import Catalog
from dopomoga.rules.windows import counted_keys
from schemas.events import ApplicationSubmitted

Outcome = tuple[int, Encoded | None, dict[str, Any] | None]
#: (line_no, decision, error, grant if eligible, the subject keys its history counts would read)
_Worked = tuple[int, Encoded | None, dict[str, Any] | None, Grant | None, tuple[str, ...]]

_ENGINE: Engine | None = None  # the catalog a forked worker decides with (set before the fork)


def parse_error(number: int, exc: ValidationError) -> dict[str, Any]:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(line)"
    return {"line": number, "reason_code": "invalid_event", "message": f"{where}: {first['msg']}"}


def rule_error(number: int, application: ApplicationSubmitted, exc: ApplicationError) -> dict[str, Any]:
    return {
        "line": number,
        "application_id": application.application_id,
        "reason_code": exc.reason_code,
        "message": str(exc),
    }


def history_keys(engine: Engine, application: ApplicationSubmitted) -> tuple[str, ...]:
    """Every subject key the application's history counts and frequency limit would count by."""
    return counted_keys(engine.scopes.plan(application.program_id).program, application)


def parsed_lines(first: int, lines: list[str]) -> Iterator[tuple[int, ApplicationSubmitted | None, dict[str, Any] | None]]:
    """Each non-blank line's number with its application, or the error that it does not parse.

    Read ``AHEAD`` lines at a time before any of them is decided: the intake's code and then the
    engine's, each over a few dozen lines, cost less CPU than the two alternating line by line
    (measured on the peer programs: 10-17 % less per decision; docs/architecture.md, "Where the
    time goes")."""
    for start in range(0, len(lines), AHEAD):
        yield from _parse_part(first + start, lines[start:start + AHEAD])


AHEAD = 32  # lines parsed before they are decided (``parsed_lines``)


def _parse_part(first: int, lines: list[str]) -> list[tuple[int, ApplicationSubmitted | None, dict[str, Any] | None]]:
    parsed = []
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        number = first + offset
        try:
            parsed.append((number, parse_application(line), None))
        except ValidationError as exc:
            parsed.append((number, None, parse_error(number, exc)))
    return parsed


def decide_lines(engine: Engine, first: int, lines: list[str], as_of: dt.date | None = None,
                 record: bool = True) -> Iterator[Outcome]:
    """A chunk of JSON lines decided by ``engine`` in this process, in order: what the batch path yields
    for each (``(line_no, Encoded, None)`` or ``(line_no, None, error)``); ``first``: the first line's
    number. Lines are parsed ``AHEAD`` at a time, then decided (``parsed_lines``)."""
    for number, application, error in parsed_lines(first, lines):
        if application is None:
            yield number, None, error
            continue
        try:
            yield number, engine.decide_encoded(application, as_of=as_of, record=record), None
        except ApplicationError as exc:
            yield number, None, rule_error(number, application, exc)


def _decide_chunk(first: int, lines: list[str], as_of: dt.date | None) -> list[_Worked]:
    engine = _ENGINE
    assert engine is not None, "the batch worker was not forked from decide_batch"
    out: list[_Worked] = []
    for number, application, error in parsed_lines(first, lines):
        if application is None:
            out.append((number, None, error, None, ()))
            continue
        try:
            keys = history_keys(engine, application)
            decision = engine.decide_encoded(application, as_of=as_of, record=False)
        except ApplicationError as exc:
            out.append((number, None, rule_error(number, application, exc), None, ()))
            continue
        grant = engine.grant_for(application) if decision.eligible else None
        out.append((number, decision, None, grant, keys))
    return out


def start_worker() -> None:
    """A worker's first step: the catalog came with the fork, keep it out of the collector's scans."""
    gc.freeze()


def in_order(pool: Any, lines: Iterable[str], size: int, workers: int, task: Any, *args: Any,
             parts: Iterator[tuple[int, Any]] | None = None) -> Iterator[tuple[int, Any, Any]]:
    """``task(first, part, *args)`` on the pool for each chunk of ``size`` lines, results taken back
    in input order, at most ``workers * 3`` chunks in flight (memory stays bounded). ``parts``: the
    chunks ready-made, ``(first line number, part)`` (then ``lines`` and ``size`` are not read)."""
    pending: deque[tuple[int, Any, Any]] = deque()
    source = parts if parts is not None else chunks(lines, size)
    exhausted = False
    while True:
        while not exhausted and len(pending) < workers * 3:
            try:
                first, part = next(source)
            except StopIteration:
                exhausted = True
                break
            pending.append((first, part, pool.apply_async(task, (first, part, *args))))
        if not pending:
            return
        first, part, result = pending.popleft()
        yield first, part, result.get()


def chunks(lines: Iterable[str], size: int) -> Iterator[tuple[int, list[str]]]:
    """Lines in lists of ``size``, each with its first line's number (from 1)."""
    chunk: list[str] = []
    first = 1
    for number, line in enumerate(lines, start=1):
        if not chunk:
            first = number
        chunk.append(line)
        if len(chunk) >= size:
            yield first, chunk
            chunk = []
    if chunk:
        yield first, chunk


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def decide_batch(
    catalog: Catalog,
    lines: Iterable[str],
    *,
    as_of: dt.date | None = None,
    workers: int | None = None,
    chunk: int = 500,
) -> Iterator[Outcome]:
    """Decide JSON lines on ``workers`` processes; yields exactly what the traced loop yields.

    ``lines`` may be a file object (read lazily). With ``workers=1`` (or no ``fork``) the lines
    are decided in this process by the traced path itself.
    """
    global _ENGINE
    workers = default_workers() if workers is None else workers
    engine = Engine(catalog)  # the parent's: the real grant history, and repeats decided again
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        for first, part in chunks(lines, chunk):
            yield from _serial(engine, first, part, as_of)
        return
    _ENGINE = Engine(catalog, InMemoryHistory())
    context = multiprocessing.get_context("fork")
    granted: set[str] = set()
    history = engine.history
    with context.Pool(workers, initializer=start_worker) as pool:
        _ENGINE = None
        for first, part, worked in in_order(pool, lines, chunk, workers, _decide_chunk, as_of):
            for number, decision, error, grant, keys in worked:
                if keys and not granted.isdisjoint(keys):
                    # a history count may not be 0: decide it again, traced, with the real history
                    yield _traced(engine, number, part[number - first], as_of, granted)
                    continue
                if grant is not None:
                    history.record(grant)
                    granted.update(grant.keys)
                yield number, decision, error


def _traced(engine: Engine, number: int, line: str, as_of: dt.date | None, granted: set[str]) -> Outcome:
    """One line through the traced path, with the real grant history (its grant recorded)."""
    application = parse_application(line)  # it parsed in the worker
    try:
        decision = engine.decide_encoded(application, as_of=as_of, record=True)
    except ApplicationError as exc:
        return number, None, rule_error(number, application, exc)
    if decision.eligible:
        granted.update(engine.grant_for(application).keys)
    return number, decision, None


def _serial(engine: Engine, first: int, part: list[str], as_of: dt.date | None) -> Iterator[Outcome]:
    return decide_lines(engine, first, part, as_of, record=True)
