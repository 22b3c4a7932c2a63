"""Where a what-if's time goes, parent vs workers, on a small run (default 200 000 lines).

    .venv/bin/python bench/whatif_split.py [--n 200000] [--rounds 3]

Uses the file ``bench/whatif.py --n N`` generates (``var/bench/whatif-2023-N.jsonl``; run that first)
and its allocations. One process, no pool, so the numbers are CPU per application of each step:

- **workers**: a worker's steps on the first chunks of the file (``lean.file_parts``): reading and
  splitting a chunk, parsing (``rules.intake``), the baseline's lean decision, the whole chunk as a
  worker decides it (both sides), pickling its results and unpickling them (the parent's part);
- **parent**: every chunk's results, decided beforehand, replayed through ``run_whatif``'s parent
  side (``lean_batch`` replaced by the replay): taking them back and budgeting them, the month
  closes, the read-out, the two sides merged, the comparison.

Best of ``--rounds`` (the machine is shared: the load average is printed).
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.whatif as bench  # noqa: E402
from dopomoga.budget.lines import BudgetLines  # noqa: E402
from dopomoga.budget.memory import MemoryBudget  # noqa: E402
from dopomoga.rules import lean  # noqa: E402
from dopomoga.rules.engine import Engine  # noqa: E402
from dopomoga.rules.intake import parse_application  # noqa: E402
from dopomoga.rules.programs import Catalog  # noqa: E402
from dopomoga.whatif import run  # noqa: E402
from dopomoga.whatif.report import compare  # noqa: E402
from dopomoga.whatif.scenario import load_scenario  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker-chunks", type=int, default=30, help="chunks (~1 MiB each) for the worker steps")
    parser.add_argument("--scenario", type=Path, default=ROOT / "examples" / "whatif" / "pm-plus-10.yaml")
    args = parser.parse_args()
    path, counts = bench.applications(args.n, 2023, 2)
    catalog = Catalog.load()
    scenario = load_scenario(args.scenario, catalog)
    scen_catalog = scenario.catalog()
    lines = BudgetLines.load(catalog.root)
    recomputed = run.recomputed_programs(scenario, catalog, lines)
    allocations = bench.estimated_allocations(catalog, path, counts, 2023)
    lean._ENGINES = (Engine(catalog, lean.NoHistory()), Engine(scen_catalog, lean.NoHistory()))
    lean._COUNTED = (lean.counted_programs(catalog), lean.counted_programs(scen_catalog))
    print(f"load average {os.getloadavg()[0]:.1f}; {args.n} lines, scenario {scenario.id}", file=sys.stderr)

    parts = list(lean.file_parts(path))
    some = parts[: args.worker_chunks]
    n_some = sum(len(p.lines()) for _, p in some)
    best: dict[str, float] = {}

    def timed(name: str, per: int, step) -> object:
        start = time.process_time()
        out = step()
        spent = (time.process_time() - start) / per * 1e6
        best[name] = min(best.get(name, spent), spent)
        return out

    gc.freeze()
    gc.disable()
    for _ in range(args.rounds):
        texts = timed("worker: read and split the chunk", n_some, lambda: [p.lines() for _, p in some])
        apps = timed("worker: parse the line (rules.intake)", n_some,
                     lambda texts=texts: [parse_application(line) for part in texts for line in part])
        timed("worker: the baseline's lean decision", n_some,
              lambda apps=apps: [lean._decide_one(lean._ENGINES[0], lean._COUNTED[0], 0, a, None) for a in apps])
        worked = timed("worker: a whole chunk, both sides", n_some,
                       lambda: [lean._decide_part(f, p, None, recomputed) for f, p in some])
        blobs = timed("worker: pickle the results", n_some, lambda worked=worked: [pickle.dumps(w, protocol=5) for w in worked])
        timed("parent: unpickle the results", n_some, lambda blobs=blobs: [pickle.loads(b) for b in blobs])
    gc.enable()

    results = [(first, part, pickle.dumps(lean._decide_part(first, part, None, recomputed), protocol=5))
               for first, part in parts]

    def replay(catalogs, _lines, workers=None, recompute=None):
        parents = [lean._Parent(c) for c in catalogs]
        for first, part, blob in results:
            for number, sides in pickle.loads(blob):
                yield number, [None if side is None else parents[i].take(number, part, number - first, side, None)
                               for i, side in enumerate(sides)]

    originals = (run.lean_batch, run._feed, MemoryBudget.close_year, run._memory_side, run._sides)
    n = args.n

    def wrap(name: str, function):
        def timed_call(*a, **k):
            start = time.process_time()
            out = function(*a, **k)
            spent = (time.process_time() - start) / n * 1e6
            found[name] = found.get(name, 0.0) + spent
            return out
        return timed_call

    try:
        run.lean_batch = replay
        run._feed = wrap("parent: take back in order and budget (one pass)", originals[1])
        MemoryBudget.close_year = wrap("parent: month closes, both sides", originals[2])
        run._memory_side = wrap("parent: closes and read-out, both sides", originals[3])
        run._sides = wrap("parent: the two sides merged", originals[4])
        for _ in range(args.rounds):
            found: dict[str, float] = {}
            start = time.process_time()
            baseline, side, _ = run.run_whatif(catalog, scenario, path, allocations, workers=2)
            compare_start = time.process_time()
            compare(baseline, side)
            found["parent: the comparison"] = (time.process_time() - compare_start) / n * 1e6
            found["parent: all of run_whatif + compare"] = (time.process_time() - start) / n * 1e6
            found["parent: read-out, both sides"] = (found.pop("parent: closes and read-out, both sides")
                                                    - found["parent: month closes, both sides"])
            for name, spent in found.items():
                best[name] = min(best.get(name, spent), spent)
    finally:
        run.lean_batch, run._feed, MemoryBudget.close_year, run._memory_side, run._sides = originals
    print(f"| step | µs per application (best of {args.rounds}; load {os.getloadavg()[0]:.1f}) |")
    print("|---|---|")
    for name, spent in best.items():
        print(f"| {name} | {spent:.1f} |")


if __name__ == "__main__":
    main()
