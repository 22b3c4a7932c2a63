"""Eligibility's CPU per application on the shared grant history: a batch prefetched vs one by one.

    DOPOMOGA_TEST_PG=$(bash deploy/test-postgres.sh) .venv/bin/python bench/grant_history.py [--n 2000] [--batch 200]

The eligibility service's own handlers (``services.eligibility.app``) on synthetic applications, in
batches as the stream gives them: ``decide_batch`` (one prefetch per batch: the subjects' locks in
one statement, their grants and the known ids in one query) against ``decide`` per message (the
round trips per application before: known id, locks, count), each on a fresh PostgreSQL database,
and ``decide`` on the local SQLite file for reference. Prints wall ms and CPU ms per application
of this process and of the PostgreSQL backend serving it (/proc), and the ratio.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pipeline import cpu_seconds
from dopomoga.rules.programs import Catalog
from services.devstack.synthetic import SyntheticRegistry
from services.platform.rejections import Source


def _service(var: str, history_db: str):
    os.environ.update({"DOPOMOGA_VAR": var, "DOPOMOGA_APP_PREFIX": f"bench-{time.monotonic_ns()}-",
                       "DOPOMOGA_METRICS_PORT_ELIGIBILITY": "0", "DOPOMOGA_HISTORY_DB": history_db})
    sys.modules.pop("services.eligibility.app", None)
    return importlib.import_module("services.eligibility.app")


def measure(module, messages: list, batch: int, batched: bool) -> tuple[float, float, float]:
    history = module.history
    backend = None
    if getattr(history, "postgres", False):
        from sqlalchemy import text

        backend = history._conn.execute(text("SELECT pg_backend_pid()")).scalar()
    cpu0, pg0, t0 = cpu_seconds(None), cpu_seconds(backend) if backend else 0.0, time.perf_counter()
    for start in range(0, len(messages), batch):
        chunk = messages[start:start + batch]
        if batched:
            module.decide_batch(chunk)
        else:
            for raw, source in chunk:
                module.service._handle(module.decide, raw, source)
        history.commit()
    n = len(messages)
    wall = (time.perf_counter() - t0) / n * 1000
    cpu = (cpu_seconds(None) - cpu0) / n * 1000
    pg = ((cpu_seconds(backend) - pg0) if backend else 0.0) / n * 1000
    return wall, cpu, pg


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--pg", default=os.environ.get("DOPOMOGA_TEST_PG"))
    args = parser.parse_args()
    if not args.pg:
        sys.exit("give --pg URL or DOPOMOGA_TEST_PG (deploy/test-postgres.sh prints one)")
    from tests.databases import create_database, drop_database

    catalog = Catalog.load()
    apps = list(SyntheticRegistry(catalog, seed=5, submitted_on="2024-05-06").generate(args.n))
    messages = [(a.model_dump_json().encode(), Source("applications", 0, i, 0)) for i, a in enumerate(apps)]
    print(f"load average {os.getloadavg()[0]:.1f}; {args.n} applications in batches of {args.batch}\n")
    print("| history | path | wall ms/application | CPU ms/application: eligibility · PostgreSQL backend · total |")
    print("|---|---|---|---|")
    rows = {}
    for label, batched in (("one by one", False), ("prefetched batch", True)):
        url = create_database(args.pg, "hist")
        try:
            with tempfile.TemporaryDirectory() as var:
                module = _service(var, url)
                rows[label] = measure(module, messages, args.batch, batched)
                module.history.close()
        finally:
            drop_database(args.pg, url)
        wall, cpu, pg = rows[label]
        print(f"| PostgreSQL | {label} | {wall:.2f} | {cpu:.2f} · {pg:.2f} · **{cpu + pg:.2f}** |")
    with tempfile.TemporaryDirectory() as var:
        module = _service(var, "local")
        wall, cpu, _ = measure(module, messages, args.batch, False)
        module.history.close()
    print(f"| local SQLite | one by one | {wall:.2f} | {cpu:.2f} · - · **{cpu:.2f}** |")
    before, after = (sum(rows[k][1:]) for k in ("one by one", "prefetched batch"))
    print(f"\nprefetched / one by one, CPU: {after / before:.2f}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
