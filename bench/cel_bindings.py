"""What CEL costs the engine: binding shapes, and CEL's share of the engine's mixed batch.

    .venv/bin/python bench/cel_bindings.py [--n 30000]

1. The cost of one ``Program.execute`` of ``common-expression-language`` (cel-rust, what the
   engine uses) for the binding shapes programs have: flat integers and strings, the combined
   list of a flat program, a list of rows (a carrier's routes, a family's children), and a
   Python helper function. If ``cel_expr_python`` (Google's cel-cpp bindings) is importable,
   the same expressions with typed variables are timed beside it; it is not a dependency
   (``pip install cel-expr-python==0.1.3`` in a scratch venv to compare).
2. The engine's mixed batch (as in ``bench/engine.py``) with every CEL call timed: the share of
   all decision time spent in CEL calls, and in programs whose facts include item lists. Item
   rows and their flags go through one ``cel.Context`` per decision (``engine._RowsCel``: the
   values rows share converted once, each row's own fields per row); its calls, and converting
   the shared values into it, count as CEL time.

Per-call times are wall-clock means over many calls on one core (µs). Prints markdown tables;
asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cel  # noqa: E402

from dopomoga.rules import engine as engine_module  # noqa: E402
from dopomoga.rules import expressions  # noqa: E402
from dopomoga.rules.engine import Engine  # noqa: E402
from dopomoga.rules.expressions import FUNCTIONS  # noqa: E402
from dopomoga.rules.programs import Catalog  # noqa: E402

ROUTE = {
    "route": "12", "vehicle_make": "Bogdan", "plate": "AP1234AA", "vehicle_class": "II", "contract_class": "II",
    "trips": 300, "seats": 40, "fare": 800, "route_length_m": 12000,
}  # one row of the bus carriers' form (programs/zaporizhzhia/bus-carrier-compensation.yaml)

#: (what, expression, variables, variable types for cel-expr-python)
CASES: list[tuple[str, str, dict[str, Any], dict[str, str]]] = [
    ("one integer", "x", {"x": 1}, {"x": "int"}),
    ("one string", "s", {"s": "II"}, {"s": "string"}),
    ("ten integers summed", "+".join(f"a{i}" for i in range(10)), {f"a{i}": i for i in range(10)},
     {f"a{i}": "int" for i in range(10)}),
    ("a flat program's combined list (centenarians, age inlined)",
     "[(submitted_on - birth_date) / 10000 >= 100, resident_of_community, centenarian_payment]",
     {"birth_date": 19230101, "submitted_on": 20230601, "resident_of_community": True, "centenarian_payment": 1000000},
     {"birth_date": "int", "submitted_on": "int", "resident_of_community": "bool", "centenarian_payment": "int"}),
    ("the same with the age_on helper (a Python function)",
     "[age_on(birth_date, submitted_on) >= 100, resident_of_community, centenarian_payment]",
     {"birth_date": 19230101, "submitted_on": 20230601, "resident_of_community": True, "centenarian_payment": 1000000},
     {}),
    ("list of 36 integers, size()", "size(rows)", {"rows": list(range(36))}, {"rows": "list_int"}),
    ("4 route rows × 9 fields, size()", "size(rows)", {"rows": [dict(ROUTE) for _ in range(4)]}, {"rows": "rows"}),
    ("4 route rows, exists(class A/I/II matches contract)",
     'rows.exists(r, r.vehicle_class in ["A", "I", "II"] && r.vehicle_class == r.contract_class)',
     {"rows": [dict(ROUTE) for _ in range(4)]}, {"rows": "rows"}),
    ("9 children rows × 1 date field, size()", "size(rows)", {"rows": [{"born_on": 20100101}] * 9}, {"rows": "rows"}),
]


def per_call(run: Callable[[], Any], n: int) -> float:
    for _ in range(min(500, n)):
        run()
    started = time.perf_counter()
    for _ in range(n):
        run()
    return (time.perf_counter() - started) / n * 1e6


def cel_cpp() -> Any:
    try:
        from cel_expr_python import cel as cpp  # type: ignore[import-not-found]
    except ImportError:
        return None
    return cpp


def bindings_table(n: int) -> None:
    cpp = cel_cpp()
    print("\n## One CEL call by binding shape (µs per call)\n")
    print("| binding | expression | cel-rust (`common-expression-language`, used) | cel-cpp (`cel-expr-python`) |")
    print("|---|---|---|---|")
    for what, source, variables, types in CASES:
        program = cel.compile(source)
        binding = dict(variables)
        binding.update({name: FUNCTIONS[name] for name in program.functions() if name in FUNCTIONS})
        rust = per_call(lambda p=program, b=binding: p.execute(b), n)
        other = "not installed" if cpp is None else "—"
        if cpp is not None and types:
            t = cpp.Type
            kinds = {"int": t.INT, "string": t.STRING, "bool": t.BOOL, "list_int": t.List(t.INT),
                     "rows": t.List(t.Map(t.STRING, t.DYN))}
            expression = cpp.NewEnv(variables={k: kinds[v] for k, v in types.items()}).compile(source)
            other = f"{per_call(lambda e=expression, d=variables: e.eval(data=d).plain_value(), n):.1f}"
        shown = source if len(source) < 60 else source[:57] + "…"
        print(f"| {what} | `{shown}` | {rust:.1f} | {other} |")


def mix_table(n: int) -> None:
    from engine import build_batch, load_templates  # bench/engine.py

    catalog = Catalog.load()
    batch = build_batch(load_templates(catalog), n)
    engine = Engine(catalog)
    for application in batch[:2000]:
        engine.decide_encoded(application, record=False)
    with_items = {
        p.id for p in (catalog.get(a.program_id) for a in batch) if any(i.type == "items" for i in p.spec.inputs.values())
    }
    cel_time: collections.Counter[str] = collections.Counter()
    total_time: collections.Counter[str] = collections.Counter()
    counts: collections.Counter[str] = collections.Counter()
    current = [""]
    original = expressions.Expression.run

    def timed(self: expressions.Expression, scope: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return original(self, scope)
        finally:
            cel_time[current[0]] += time.perf_counter() - started

    expressions.Expression.run = timed  # type: ignore[method-assign]
    # item rows go through one cel.Context per decision (engine._RowsCel): time it too
    rows_cel = engine_module._RowsCel
    originals = {name: getattr(rows_cel, name) for name in ("__init__", "row", "flag")}

    def timer(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args)
            finally:
                cel_time[current[0]] += time.perf_counter() - started
        return wrapped

    for name, method in originals.items():
        setattr(rows_cel, name, timer(method))
    gc.collect()
    gc.freeze()
    try:
        for application in batch:
            kind = "programs with item lists" if application.program_id in with_items else "flat programs"
            current[0] = kind
            started = time.perf_counter()
            engine.decide_encoded(application, record=False)
            total_time[kind] += time.perf_counter() - started
            counts[kind] += 1
    finally:
        expressions.Expression.run = original  # type: ignore[method-assign]
        for name, method in originals.items():
            setattr(rows_cel, name, method)
    everything = sum(total_time.values())
    print(f"\n## CEL's share of the engine's mixed batch ({n:,} applications, every CEL call timed)\n")
    print("| programs | share of decisions | µs per decision | of which CEL calls | share of all decision time |")
    print("|---|---|---|---|---|")
    for kind in ("flat programs", "programs with item lists"):
        k = counts[kind] or 1
        print(f"| {kind} | {counts[kind] / n:.1%} | {total_time[kind] / k * 1e6:.1f} | "
              f"{cel_time[kind] / k * 1e6:.1f} | {total_time[kind] / everything:.1%} |")
    print(f"| all | 100% | {everything / n * 1e6:.1f} | {sum(cel_time.values()) / n * 1e6:.1f} "
          f"({sum(cel_time.values()) / everything:.0%}) | 100% |")
    print("\nThe timers themselves add to both columns; the batch without them is `bench/engine.py`. "
          "20 000 decisions/s per core is 50 µs per decision.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30_000, help="applications in the mixed batch")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per binding shape")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    bindings_table(args.calls)
    mix_table(args.n)


if __name__ == "__main__":
    main()
