"""The pipeline with 1, 2 and 4 replicas per service: does the work spread, does CPU per application stay flat?

    .venv/bin/python bench/scale.py [--n 3000] [--replicas 1 2 4] [--pg URL] [--even] [--today 1061]

For each replica count R: an embedded Tansu broker (memory storage: this measures the services,
not the broker's storage), R replicas each of eligibility, calculation and budget (one consumer
group per service; 4 partitions per topic, so 4 replicas is one partition each), the ledger and
the grant history on one fresh PostgreSQL database (``--pg`` or ``$DOPOMOGA_TEST_PG``: a server the
bench may create databases on; ``deploy/test-postgres.sh`` starts one). N applications of the
first-come programs of ``PROGRAMS`` (never rationed; eight budget keys; mixed as the seed's
recipient counts, so about 80 % go to one program and one budget key, or ``--even``: each
program equally often) are published at once; the bench waits for every final decision and
prints, per R:

- applications/s from the first publish to the last final decision;
- CPU ms per application of every process: each replica, the broker, the PostgreSQL backends
  serving the services' connections (``pg_stat_activity``), the bench itself, and the total;
- the share of each service's input events each replica consumed (its
  ``dopomoga_events_consumed_total``, scraped from its /metrics).

Then the projection, from the run at the largest R (printed with the model):

- **CPU per application** c_app (ms, every process above) - checked flat across R by the table.
- **The machine's CPU during the run**, from /proc/stat: of the cores x wall seconds available, how
  many the pipeline used, how many other processes used (other sessions on a shared machine), and
  how many stayed idle. The pipeline's **utilisation** u = pipeline / (pipeline + idle): the share
  of the CPU it could have had that it did use (what other load took is not counted against it;
  what it left idle is - waiting on the broker, PostgreSQL's locks, batching).
- The serial stage: one budget year is one partition, decided by one replica on one core at most,
  so the largest budget key bounds the pipeline at S = 1000 / ((budget CPU + its PostgreSQL backends'
  CPU) ms per application x that key's share of the applications), whatever the cores (with the default mix one key has
  about 80 %; also printed: the bound the 4 partitions gave here, keys colliding on one).
- T(c) = min(c x 1000 / c_app x u, S).

The model assumes: CPU per application stays flat as replicas and cores grow (checked: the
table's rows; on a machine shared with other work it rises with the load), eligibility's and
calculation's work spreads evenly over replicas (checked: the shares; the budget's follows its
keys, hence S), the broker and PostgreSQL scale with the cores as they did here (they ran on the
same 2 cores; not checked beyond), and u holds at 16 cores (not checked: 2 cores cannot show it).
S counts the budget process's CPU and its PostgreSQL backends' (each replica connects with its label
as ``application_name``, so ``pg_stat_activity`` says which backend serves it): their work on a
budget transaction happens under the budget's lock, so it is serial too. Adding them is pessimistic
where the two overlap (psycopg sends a COPY while the server still works on the previous one).
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

from bench.pipeline import cpu_seconds
from dopomoga.rules.programs import Catalog
from schemas.events import AllocationSet
from services.devstack.broker import free_port, start_broker
from services.devstack.registry import Registry
from services.devstack.supervisor import ServiceProcess, Supervisor
from services.devstack.synthetic import SyntheticRegistry
from services.devstack.watch import Watcher
from services.platform.topology import PIPELINE, SERVICE_BY_NAME, create_topics

# first-come programs that pay at once in 2024 (visual-disability-utilities and honoured-donors are held
# for a parameter confirmation since issue 13): eight budget keys, so the budget's partitions all have work
PROGRAMS = ["zhytomyr.honorary-citizens", "zhytomyr.chornobyl-travel", "zhytomyr.centenarians",
            "zhytomyr.fuel-compensation-labour-merits", "zhytomyr.children-of-fallen", "zhytomyr.triplets",
            "zhytomyr.burial-executor", "zhytomyr.fallen-defenders-families"]


def consumed(port: int, metric: str = "dopomoga_events_consumed_total") -> float:
    """Sum of dopomoga_events_consumed_total (or another counter) of one replica."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return float("nan")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(metric + "{"))


def postgres_backends(url: str) -> dict[int, str]:
    """The server processes of the services' connections to the bench's database (their CPU counts
    too), each with the replica it serves: every replica connects with its label as
    ``application_name`` (``pg_stat_activity``)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT pid, application_name FROM pg_stat_activity "
                                     "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": make_url(url).database})
            return {pid: name for pid, name in rows}
    finally:
        engine.dispose()


def labelled(url: str, label: str) -> str:
    """``url`` with ``application_name=<label>``: which replica a PostgreSQL backend serves."""
    from sqlalchemy.engine import make_url

    return make_url(url).update_query_dict({"application_name": label}).render_as_string(hide_password=False)


def machine_cpu() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot, all cores (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is inside user)
    return busy / hz, idle / hz


def run(replicas: int, n: int, server: str, catalog: Catalog, even: bool = False, profile: str | None = None) -> dict:
    from services.eligibility.adapters.sql_history import ensure_schema
    from services.migrate import migrate_ledger
    from tests.databases import create_database, drop_database

    url = create_database(server, f"scale{replicas}")
    registry_ = SyntheticRegistry(catalog, seed=20 + replicas, submitted_on="2024-05-06", eligible_share=1.0,
                                  programs=PROGRAMS)
    if even:  # each program equally often (by default: as the seed's recipient counts, 80 % one program)
        registry_.weights = [1.0] * len(registry_.programs)
    apps = list(registry_.generate(n))
    ids = {a.application_id for a in apps}
    from collections import Counter

    from dopomoga.budget.lines import BudgetLines

    holder = BudgetLines.load(catalog.root).holder
    keys = Counter(holder(a.program_id) for a in apps)  # one year (2024): a budget key is a budget year
    try:
        migrate_ledger(url)
        ensure_schema(url)
        with tempfile.TemporaryDirectory() as tmp, start_broker() as broker:
            create_topics(broker.bootstrap)
            supervisor = Supervisor()
            ports: dict[str, int] = {}
            prefix = f"scale{os.getpid()}r{replicas}-"
            for name in PIPELINE:
                for r in range(1, replicas + 1):
                    label = f"{name}-{r}"
                    ports[label] = free_port()
                    env = {"DOPOMOGA_BROKER": broker.url, "DOPOMOGA_VAR": tmp, "DOPOMOGA_APP_PREFIX": prefix,
                           "PYTHONUNBUFFERED": "1", "DOPOMOGA_DB": labelled(url, label),
                           "DOPOMOGA_HISTORY_DB": labelled(url, label),
                           f"DOPOMOGA_METRICS_PORT_{name.upper()}": str(ports[label])}
                    if profile and name == "budget":
                        env["DOPOMOGA_PROFILE"] = str(Path(profile) / f"r{replicas}-{label}.prof")
                    supervisor.add(ServiceProcess(label, SERVICE_BY_NAME[name].module, env, Path(tmp) / f"{label}.log"))
            with supervisor, Registry(broker.bootstrap) as registry, Watcher(broker.bootstrap) as watcher:
                for program in PROGRAMS:
                    registry.command(AllocationSet(
                        event_id=f"scale-alloc-{program}", occurred_at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
                        program_id=program, year=2024, annual_kop=10**13, plan={"kind": "even"}, amendment_id="scale",
                        legal_reference="bench"))
                warm = list(SyntheticRegistry(catalog, seed=99, submitted_on="2024-05-06", eligible_share=1.0,
                                              programs=PROGRAMS).generate(8 * replicas))
                registry.publish(warm)
                assert watcher.wait(lambda o: all(o.seen(a.application_id) for a in warm), 180), "no start"
                time.sleep(3)  # every replica joined and got its partitions
                processes = {s.name: s.pid for s in supervisor.services} | {"broker": broker.process.pid, "bench": None}
                backends = postgres_backends(url)
                cpu0 = {k: cpu_seconds(pid) for k, pid in processes.items()}
                pg0 = {pid: cpu_seconds(pid) for pid in backends}
                seen0 = {k: consumed(p) for k, p in ports.items()}
                batches0 = {k: consumed(p, "dopomoga_batches_total") for k, p in ports.items()}
                busy0, idle0 = machine_cpu()
                load0 = os.getloadavg()[0]
                started = time.time()
                registry.publish(apps)
                ok = watcher.wait(lambda o: all(o.final(i) is not None for i in ids), 600)
                elapsed = time.time() - started
                busy1, idle1 = machine_cpu()
                load1 = os.getloadavg()[0]
                cpu = {k: cpu_seconds(pid) - cpu0[k] for k, pid in processes.items()}
                pg = {pid: cpu_seconds(pid) - pg0[pid] for pid in backends}
                cpu["postgres"] = sum(pg.values())
                # the budget replicas' own backends: their work is done under the budget's lock, serially
                pg_budget = {label: sum(v for pid, v in pg.items() if backends[pid] == label)
                             for label in ports if label.startswith("budget")}
                work = {k: consumed(p) - seen0[k] for k, p in ports.items()}
                batches = {k: consumed(p, "dopomoga_batches_total") - batches0[k] for k, p in ports.items()}
                restarts = sum(s.restarts for s in supervisor.services)
                if profile:
                    time.sleep(2.5)  # the budget replicas' profiles are written every second
    finally:
        drop_database(server, url)
    return {"replicas": replicas, "ok": ok, "rate": len(ids) / elapsed, "cpu": cpu, "work": work, "n": len(ids),
            "pg_budget": pg_budget, "batches": batches,
            "restarts": restarts, "key_share": max(keys.values()) / len(apps), "wall": elapsed, "busy": busy1 - busy0, "idle": idle1 - idle0, "load": (load0, load1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--pg", default=os.environ.get("DOPOMOGA_TEST_PG"))
    parser.add_argument("--even", action="store_true",
                        help="each program equally often (default: the seed's recipient counts: one budget key "
                             "gets about 80 %% of the applications, and is the serial stage)")
    parser.add_argument("--profile", metavar="DIR",
                        help="profile every budget replica (cProfile, CPU time) into DIR/r<R>-budget-<i>.prof "
                             "(DOPOMOGA_PROFILE): where the serial stage's CPU goes; the profiler inflates it")
    parser.add_argument("--today", type=float, default=1061.0,
                        help="today's throughput to compare with (README: bench/pipeline.py, one replica on local "
                             "SQLite, median of five runs: 1 061/s)")
    args = parser.parse_args()
    if not args.pg:
        sys.exit("give --pg URL or DOPOMOGA_TEST_PG (deploy/test-postgres.sh prints one)")
    catalog = Catalog.load()
    results = [run(r, args.n, args.pg, catalog, args.even, args.profile) for r in args.replicas]
    cores = os.cpu_count() or 1
    mix = "equally often" if args.even else "mixed as the seed's recipient counts"
    print(f"\n## Scale-out benchmark ({args.n} applications of {len(PROGRAMS)} first-come programs {mix}, {cores} cores, "
          "Tansu memory broker, ledger and grant history on PostgreSQL)\n")
    print("| replicas per service | applications/s | CPU ms/application: eligibility · calculation · budget · "
          "broker · PostgreSQL · bench · total | of PostgreSQL: the budget's backends | share of each service's "
          "events per replica | machine CPU: pipeline · others · idle | load avg | restarts |")
    print("|---|---|---|---|---|---|---|---|")
    for res in results:
        by_service = {name: sum(v for k, v in res["cpu"].items() if k.startswith(name)) for name in PIPELINE}
        ms = [by_service[name] / res["n"] * 1000 for name in PIPELINE]
        ms += [res["cpu"][k] / res["n"] * 1000 for k in ("broker", "postgres", "bench")]
        res["budget_ms"] = ms[2]
        res["budget_pg_ms"] = sum(res["pg_budget"].values()) / res["n"] * 1000
        shares = []
        for name in PIPELINE:
            parts = [res["work"][f"{name}-{r}"] for r in range(1, res["replicas"] + 1)]
            total = sum(parts) or 1
            shares.append(f"{name[:4]} " + "/".join(f"{p / total:.0%}" for p in parts))
            if name == "budget":
                res["budget_max_share"] = max(parts) / total
        available = cores * res["wall"]
        mine = sum(res["cpu"].values())
        others = max(0.0, res["busy"] - mine)
        res["utilisation"] = mine / max(mine + res["idle"], 1e-9)
        flag = "" if res["ok"] else " (incomplete)"
        print(f"| {res['replicas']} | {res['rate']:,.0f}{flag} | {' · '.join(f'{m:.2f}' for m in ms)} · "
              f"**{sum(ms):.2f}** | {res['budget_pg_ms']:.2f} | {'; '.join(shares)} | {mine / available:.0%} · {others / available:.0%} · "
              f"{res['idle'] / available:.0%} | {res['load'][0]:.1f}→{res['load'][1]:.1f} | {res['restarts']} |")
    last = results[-1]
    cpu_ms = sum(last["cpu"].values()) / last["n"] * 1000
    u = last["utilisation"]
    budget_ms = last["budget_ms"]
    # The serial stage per claim, measured on the replica that took the most budget events (the hot
    # key's): its CPU and its PostgreSQL backends' (their work is under the budget's lock: serial
    # too) over the events it consumed. Averaged over every replica and application instead, the
    # idle replicas' own upkeep (timers, metrics) would be counted against the hot key.
    budget_labels = [k for k in last["work"] if k.startswith("budget")]
    hot = max(budget_labels, key=lambda k: last["work"][k])
    hot_cpu_ms = last["cpu"][hot] / last["work"][hot] * 1000
    hot_pg_ms = last["pg_budget"][hot] / last["work"][hot] * 1000
    serial_ms = hot_cpu_ms + hot_pg_ms
    average_ms = budget_ms + last["budget_pg_ms"]
    partition_cap = 1000 / (serial_ms * last["budget_max_share"])
    key_cap = 1000 / (serial_ms * last["key_share"])
    print(f"\nModel: T(c) = min(c x 1000 / {cpu_ms:.2f} ms x {u:.2f}, S). CPU per application and u (the pipeline's "
          f"utilisation of the CPU other processes left it) measured at {last['replicas']} replicas. S, the serial "
          f"stage: one budget year is decided on one partition by one replica, one core at most, and its "
          f"PostgreSQL backend works under the budget's lock. The replica with the most budget events ({hot}, "
          f"{last['work'][hot]:,.0f} events in batches of {last['work'][hot] / max(last['batches'][hot], 1):.0f} on average) spent {hot_cpu_ms:.2f} ms of CPU per event + {hot_pg_ms:.2f} ms in its "
          f"backends = {serial_ms:.2f} ms (every budget replica and backend over every application: "
          f"{average_ms:.2f} ms); the largest budget key of this mix has {last['key_share']:.0%} of the "
          f"applications, so S = 1000 / ({serial_ms:.2f} x {last['key_share']:.2f}) = {key_cap:,.0f}/s with a "
          f"partition per key (the budget process alone: {1000 / (hot_cpu_ms * last['key_share']):,.0f}/s; here, "
          f"{last['budget_max_share']:.0%} of the budget's events on one of 4 partitions: {partition_cap:,.0f}/s). "
          f"Today = {args.today:,.0f}/s (--today); the 1-replica run here: {results[0]['rate']:,.0f}/s.\n")
    print("| cores | c x 1000 / CPU x u | x today | T(c), serial stage included | x today |")
    print("|---|---|---|---|---|")
    for c in (4, 8, 16):
        spread = c * 1000 / cpu_ms * u
        projected = min(spread, key_cap)
        print(f"| {c} | {spread:,.0f} | {spread / args.today:.1f} | {projected:,.0f} | {projected / args.today:.1f} |")


if __name__ == "__main__":
    main()
