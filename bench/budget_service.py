"""The budget service's own CPU per claim, in-process: where a claim's budget decision goes.

    DOPOMOGA_TEST_PG=$(bash deploy/test-postgres.sh) .venv/bin/python bench/budget_service.py \
        [--n 3000] [--batch 500] [--program zhytomyr.fallen-defenders-families] [--profile]

The budget service's batch handler (``services.budget.app.decide_entitlements``) on the bytes of
real ``EntitlementCalculated`` events (the engine's ``decide_encoded`` of synthetic applications
of one first-come program: one budget key and year, the serial stage of ``bench/scale.py``), in
batches as the service takes them, on a fresh PostgreSQL database (``--pg`` or
``$DOPOMOGA_TEST_PG``) with an allocation large enough to pay every claim. Prints CPU ms per claim
of this process and of the PostgreSQL backend serving the ledger's connection (/proc/<pid>/stat of
its ``pg_backend_pid``), wall ms per claim, and with ``--profile`` a second run under cProfile
(CPU time: waiting on the server is not in it; the backend's CPU is the plain run's) split into:
decoding the entitlement, the policy's Python and the transaction's bookkeeping, building and
writing the PayoutDecided, SQL on the client side (SQLAlchemy, psycopg) and the rest (the handler,
publishing). The profiler's own overhead inflates every part; the split is a share, the plain run
the cost. Faust/aiokafka plumbing is not in this process: ``bench/scale.py`` measures the whole
service (the replica's CPU per event there, minus this, is the plumbing's).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import importlib
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pipeline import cpu_seconds
from dopomoga.rules.engine import Engine
from dopomoga.rules.programs import Catalog
from schemas.events import AllocationSet
from services.devstack.synthetic import SyntheticRegistry
from services.platform.rejections import Source

HOT = "zhytomyr.fallen-defenders-families"  # 81 % of the seeds' mix (bench/scale.py)


def _service(var: str, db: str):
    os.environ.update({"DOPOMOGA_VAR": var, "DOPOMOGA_APP_PREFIX": f"bench-{time.monotonic_ns()}-",
                       "DOPOMOGA_METRICS_PORT_BUDGET": "0", "DOPOMOGA_DB": db})
    sys.modules.pop("services.budget.app", None)
    return importlib.import_module("services.budget.app")


def entitlements(catalog: Catalog, program: str, n: int, seed: int) -> list[bytes]:
    apps = SyntheticRegistry(catalog, seed=seed, submitted_on="2024-05-06", eligible_share=1.0,
                             programs=[program]).generate(n)
    engine = Engine(catalog)
    return [engine.decide_encoded(a, record=False).json for a in apps]


def backend_pid(ledger) -> int | None:
    if not ledger.store.postgres:
        return None
    from sqlalchemy import text

    with ledger.engine.connect() as conn:  # one connection in the pool: the one the batches use
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


def run(module, raws: list[bytes], batch: int, profiler: cProfile.Profile | None = None) -> tuple[float, float, float]:
    messages = [(raw, Source("entitlements", 0, i, 0)) for i, raw in enumerate(raws)]
    pid = backend_pid(module.ledger)
    cpu0, pg0, t0 = cpu_seconds(None), cpu_seconds(pid) if pid else 0.0, time.perf_counter()
    if profiler is not None:
        profiler.enable()
    out = 0
    for start in range(0, len(messages), batch):
        gc.disable()  # as the service's batch loop does (services.platform.runtime)
        try:
            decided = module.decide_entitlements(messages[start:start + batch])
        finally:
            gc.enable()
        out += sum(len(outputs) for outputs in decided)
    if profiler is not None:
        profiler.disable()
    n = len(messages)
    assert out == n, f"{out} outputs for {n} claims"
    wall = (time.perf_counter() - t0) / n * 1000
    cpu = (cpu_seconds(None) - cpu0) / n * 1000
    pg = ((cpu_seconds(pid) - pg0) if pid else 0.0) / n * 1000
    return wall, cpu, pg


#: (part, what a function's own time is counted under): the first that matches its file or name.
PARTS = [
    ("decoding the entitlement (pydantic)", ("rejections.py", "validate_json", "_slim")),
    ("SQL, client side: SQLAlchemy, psycopg", ("sqlalchemy", "psycopg", "socket", "select.", "poll")),
    ("PayoutDecided: building and writing its JSON", ("PayoutDecided", "model_dump_json", "to_json", "__init__' of 'pydantic")),
    ("the explanation's sentences", ("explain_uk",)),
    ("the policy and the Tx's bookkeeping", ("dopomoga/budget", "fractions", "periods.py", "money.py", "ids.py")),
]


def split(profile: pstats.Stats) -> list[tuple[str, float]]:
    """Each function's own time (tottime, so nothing counted twice), summed by part."""
    sums: dict[str, float] = {}
    for (file, _line, name), (_cc, _nc, tt, _ct, _callers) in profile.stats.items():  # type: ignore[attr-defined]
        where = f"{file}:{name}"
        part = next((p for p, marks in PARTS if any(m in where for m in marks)), "the rest (the handler, publishing)")
        sums[part] = sums.get(part, 0.0) + tt
    return sorted(sums.items(), key=lambda kv: -kv[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--program", default=HOT)
    parser.add_argument("--pg", default=os.environ.get("DOPOMOGA_TEST_PG"))
    parser.add_argument("--sqlite", action="store_true", help="also run on a local SQLite file")
    parser.add_argument("--profile", action="store_true", help="a second run under cProfile, split by part")
    args = parser.parse_args()
    if not args.pg:
        sys.exit("give --pg URL or DOPOMOGA_TEST_PG (deploy/test-postgres.sh prints one)")
    from tests.databases import create_database, drop_database

    catalog = Catalog.load()
    raws = entitlements(catalog, args.program, args.n + 200, seed=7)
    warm, raws = raws[:200], raws[200:]
    size = sum(len(r) for r in raws) / len(raws)
    print(f"load average {os.getloadavg()[0]:.1f}; {args.n} claims of {args.program} (one budget key and year), "
          f"{size / 1024:.1f} KiB each, in batches of {args.batch}\n")
    print("| ledger | wall ms/claim | CPU ms/claim: budget process · PostgreSQL backend · **total** |")
    print("|---|---|---|")
    stores = [("PostgreSQL", None)] + ([("SQLite file", "sqlite")] if args.sqlite else [])
    profiled = None
    for label, kind in stores:
        with tempfile.TemporaryDirectory() as var:
            url = f"sqlite:///{var}/budget.db" if kind else create_database(args.pg, "budgetsvc")
            try:
                module = _service(var, url)
                module.ledger.apply(AllocationSet(
                    event_id="bench-alloc", occurred_at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
                    program_id=args.program, year=2024, annual_kop=10**13, plan={"kind": "even"},
                    amendment_id="bench", legal_reference="bench"))
                gc.collect()
                gc.freeze()  # as the service does once loaded (services.platform.runtime)
                run(module, warm, args.batch)
                wall, cpu, pg = run(module, raws, args.batch)
                print(f"| {label} | {wall:.3f} | {cpu:.3f} · {pg:.3f} · **{cpu + pg:.3f}** |")
                if args.profile and kind is None:
                    module.ledger.store.engine.dispose()
                    module = _service(var, url)  # same ledger; a fresh key range of claims
                    profiler = cProfile.Profile(time.process_time)  # CPU: waiting on the server not counted
                    more = entitlements(catalog, args.program, args.n, seed=8)
                    run(module, more, args.batch, profiler)
                    profiled = pstats.Stats(profiler)
                module.ledger.close()
            finally:
                if not kind:
                    drop_database(args.pg, url)
    if profiled is not None:
        total = profiled.total_tt  # type: ignore[attr-defined]
        if os.environ.get("BENCH_TOP"):
            profiled.sort_stats("tottime").print_stats(int(os.environ["BENCH_TOP"]))
        print(f"\nUnder cProfile, CPU time (PostgreSQL; {total / args.n * 1000:.3f} ms/claim with the profiler's "
              "overhead; the backend's CPU is not in it):\n")
        print("| part | share of the handler's CPU |")
        print("|---|---|")
        for part, seconds in split(profiled):
            print(f"| {part} | {seconds / total:.0%} |")
    print(f"\nload average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
