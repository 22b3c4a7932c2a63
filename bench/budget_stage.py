"""The serial stage alone, saturated: one budget replica deciding one hot budget key from the broker.

    DOPOMOGA_TEST_PG=$(bash deploy/test-postgres.sh) .venv/bin/python bench/budget_stage.py \
        [--n 3000] [--rounds 2] [--modes lean stream] [--program zhytomyr.fallen-defenders-families]

``bench/scale.py`` measures the hot budget replica inside the whole pipeline on a 2-core machine:
there the budget is never the bottleneck (eligibility and calculation take most of the CPU), so
its batches are as small as the trickle it is fed, and its CPU per claim is that of a stage with
room to spare. The serial bound S of the model is about the stage when it *is* the bottleneck.
This bench feeds it as such a stage is fed: an embedded Tansu broker, the budget service as a
subprocess (the module ``dopomoga up`` runs, ledger on a fresh PostgreSQL database), an
allocation, a warm-up, then ``--n`` ``EntitlementCalculated`` events of one first-come program
(one budget key and year: the engine's ``decide_encoded`` of synthetic applications, 4.5 KiB
each) published at once, and the time until the last ``PayoutDecided`` is out. Printed per run:
claims/s, CPU ms per claim of the budget process and of its PostgreSQL backends (``pg_stat_activity``
by ``application_name``), the mean batch size (claims per ``dopomoga_batches_total``), and the load average. ``--modes``: ``lean`` (the default path,
``services/platform/lean.py``) and ``stream`` (``DOPOMOGA_LEAN=0``: Faust's stream and
``take_batches``), run alternately ``--rounds`` times so both see the same machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.budget_service import HOT, entitlements
from bench.pipeline import cpu_seconds
from bench.scale import labelled, postgres_backends
from dopomoga.rules.programs import Catalog
from schemas.events import AllocationSet
from services.devstack.broker import free_port, start_broker
from services.devstack.registry import Registry, producer
from services.devstack.supervisor import ServiceProcess, Supervisor
from services.devstack.watch import Watcher
from services.platform.topology import ENTITLEMENTS, SERVICE_BY_NAME, budget_partition_key, create_topics


def metric(port: int, name: str) -> float:
    """Sum of one metric's samples on a service's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def run(mode: str, raws: list[bytes], warm: list[bytes], ids: list[str], warm_ids: list[str], program: str,
        server: str, profile: str | None = None) -> dict:
    from services.migrate import migrate_ledger
    from tests.databases import create_database, drop_database

    url = create_database(server, "budgetstage")
    key = budget_partition_key(program, 2024).encode()
    try:
        migrate_ledger(url)
        with tempfile.TemporaryDirectory() as tmp, start_broker() as broker:
            create_topics(broker.bootstrap)
            port = free_port()
            env = {"DOPOMOGA_BROKER": broker.url, "DOPOMOGA_VAR": tmp, "PYTHONUNBUFFERED": "1",
                   "DOPOMOGA_APP_PREFIX": f"stage{os.getpid()}{mode}{time.monotonic_ns()}-",
                   "DOPOMOGA_DB": labelled(url, "budget-1"), "DOPOMOGA_METRICS_PORT_BUDGET": str(port),
                   "DOPOMOGA_LEAN": "1" if mode == "lean" else "0"}
            if profile:  # cProfile of the service, CPU time (services.platform.runtime: DOPOMOGA_PROFILE)
                env["DOPOMOGA_PROFILE"] = str(Path(profile) / f"budget-stage-{mode}-{time.time_ns()}.prof")
            supervisor = Supervisor()
            supervisor.add(ServiceProcess("budget-1", SERVICE_BY_NAME["budget"].module, env, Path(tmp) / "budget.log"))
            send = producer(broker.bootstrap)
            with supervisor, Registry(broker.bootstrap) as registry, Watcher(broker.bootstrap) as watcher:
                registry.command(AllocationSet(
                    event_id=f"stage-alloc-{program}", occurred_at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
                    program_id=program, year=2024, annual_kop=10**13, plan={"kind": "even"}, amendment_id="stage",
                    legal_reference="bench"))
                for raw in warm:
                    send.send(ENTITLEMENTS, key=key, value=raw)
                send.flush()
                assert watcher.wait(lambda o: all(o.final(i) is not None for i in warm_ids), 180), "no start"
                time.sleep(1)
                pid = supervisor.services[0].pid
                backends = [b for b, label in postgres_backends(url).items() if label == "budget-1"]
                cpu0, pg0 = cpu_seconds(pid), sum(cpu_seconds(b) for b in backends)
                flushes0 = metric(port, "dopomoga_batches_total")
                load0 = os.getloadavg()[0]
                started = time.time()
                for raw in raws:
                    send.send(ENTITLEMENTS, key=key, value=raw)
                send.flush()
                ok = watcher.wait(lambda o: all(o.final(i) is not None for i in ids), 600)
                elapsed = time.time() - started
                cpu, pg = cpu_seconds(pid) - cpu0, sum(cpu_seconds(b) for b in backends) - pg0
                batches = metric(port, "dopomoga_batches_total") - flushes0
                load1 = os.getloadavg()[0]
                restarts = supervisor.services[0].restarts
                if profile:
                    time.sleep(2.5)  # the profile is written every second
            send.close()
            if restarts or not ok:
                kept = Path(tempfile.gettempdir()) / f"budget-stage-{mode}-{int(time.time())}.log"
                kept.write_bytes((Path(tmp) / "budget.log").read_bytes())
                print(f"({mode}: {restarts} restarts; the service's log: {kept})")
    finally:
        drop_database(server, url)
    n = len(raws)
    return {"mode": mode, "ok": ok, "rate": n / elapsed, "cpu": cpu / n * 1000, "pg": pg / n * 1000,
            "batch": n / batches if batches else float("nan"), "load": (load0, load1), "restarts": restarts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["lean", "stream"], choices=["lean", "stream"])
    parser.add_argument("--program", default=HOT)
    parser.add_argument("--pg", default=os.environ.get("DOPOMOGA_TEST_PG"))
    parser.add_argument("--profile", metavar="DIR", help="profile the service (cProfile, CPU time) into DIR")
    args = parser.parse_args()
    if not args.pg:
        sys.exit("give --pg URL or DOPOMOGA_TEST_PG (deploy/test-postgres.sh prints one)")
    import json

    catalog = Catalog.load()
    raws = entitlements(catalog, args.program, args.n + 100, seed=11)
    warm, raws = raws[:100], raws[100:]
    ids_of = [json.loads(r)["application_id"] for r in warm + raws]
    warm_ids, ids = ids_of[:100], ids_of[100:]
    print(f"{args.n} claims of {args.program} (one budget key and year), published at once to one budget "
          f"replica; ledger on PostgreSQL; Tansu memory broker\n")
    print("| path | claims/s | CPU ms/claim: budget process · its PostgreSQL backends · **serial total** | "
          "claims per batch | load avg |")
    print("|---|---|---|---|---|")
    for _ in range(args.rounds):
        for mode in args.modes:
            r = run(mode, raws, warm, ids, warm_ids, args.program, args.pg, args.profile)
            flag = ("" if r["ok"] else " (incomplete)") + (f" ({r['restarts']} restarts)" if r["restarts"] else "")
            print(f"| {r['mode']} | {r['rate']:,.0f}{flag} | {r['cpu']:.3f} · {r['pg']:.3f} · "
                  f"**{r['cpu'] + r['pg']:.3f}** | {r['batch']:.0f} | {r['load'][0]:.1f}→{r['load'][1]:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
