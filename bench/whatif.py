"""What-if benchmark: a year of mixed synthetic applications, baseline + scenario, budgets included.

    .venv/bin/python bench/whatif.py [--n 20000] [--year 2023] [--scenario examples/whatif/pm-plus-10.yaml]
                                     [--full] [--workers 2]

The applications come from ``services/devstack/synthetic.py`` (never real people): twelve monthly
registries (submitted on the 3rd of each month of ``--year``, each its own seed), ``--n`` in all,
programs drawn by the Zhytomyr report's recipient counts. ``--generated-months K`` generates only
the first K months and makes the others as copies of them with new application ids, people,
households and fact ids, submitted in their own month (the generator checks every candidate with
the engine, about 3 000 applications per core-second; a copy is much cheaper). They are generated once into
``var/bench/`` (the generation is not timed). Allocations (not timed): each program's year gets
95 % of its estimated need - its applications × the mean eligible amount in a sample of the first
3 000 decisions - spread evenly, so some months run short and the rationing (deferrals, pro rata)
is exercised without deferring most of the year.

Timed: ``dopomoga.whatif.run.run_whatif`` - with ``--budget memory`` (the default) one pass over
the applications: each line parsed once and decided on the lean path (``dopomoga.rules.lean``,
``--workers`` processes) under the baseline, and under the scenario for the programs it can
change (``--full``: every program), each side's claims fed in input order to its in-memory
budget (``dopomoga.budget.memory``), then every month closed - then the comparison. With
``--budget sql``: the earlier what-if (traced batch path, temporary SQLite ledgers). Wall clock;
CPU of all processes; peak RSS of this process and of the largest child (getrusage), and the
peak of all processes together, RSS and PSS, sampled from /proc. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import platform
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dopomoga.budget.commands import allocation_set  # noqa: E402
from dopomoga.money import kop_to_decimal_str  # noqa: E402
from dopomoga.rules.engine import Engine  # noqa: E402
from dopomoga.rules.programs import Catalog  # noqa: E402
from dopomoga.whatif.report import compare  # noqa: E402
from dopomoga.whatif.run import run_whatif  # noqa: E402
from dopomoga.whatif.scenario import load_scenario  # noqa: E402
from schemas.events import ApplicationSubmitted, MonthlyPlan  # noqa: E402

PER_APPLICATION_UAH = 3000


_CATALOG: Catalog | None = None  # loaded once in the parent, shared with the generators by fork


def _rekeyed(year: int, month: int, source_month: int, count: int, source: Path, out: Path) -> Counter[str]:
    """Month ``month`` as a copy of a generated month: new application ids, people, households and
    fact ids (so no grant history links the copies), submitted and occurring in ``month``."""
    from services.devstack.synthetic import _edrpou, rnokpp, ua_iban  # bench only

    old, new = f"-{year * 100 + source_month}-", f"-{year * 100 + month}-"
    old_day, new_day = f"{year}-{source_month:02d}-03", f"{year}-{month:02d}-03"
    programs: Counter[str] = Counter()
    partial = out.with_name(out.name + ".partial")
    with source.open(encoding="utf-8") as lines, partial.open("wb") as sink:
        for line, _ in zip(lines, range(count), strict=False):
            app = orjson.loads(line.replace(old, new).replace(old_day, new_day))
            person = (year * 100 + month) * 10_000_000 + int(app["application_id"].rsplit("-", 1)[1])
            applicant = app["applicant"]
            applicant["id"] = rnokpp(person) if applicant["id_kind"] == "rnokpp" else _edrpou(person)
            if app["payment"]["iban"]:
                app["payment"]["iban"] = ua_iban(person)
            sink.write(orjson.dumps(app) + b"\n")
            programs[app["program_id"]] += 1
    partial.rename(out)
    return programs


def _month(job: tuple[int, int, int, str, int]) -> tuple[str, Counter[str]]:
    from services.devstack.synthetic import SyntheticRegistry  # bench only: the core never imports services

    year, month, count, out, generated = job
    programs: Counter[str] = Counter()
    done = Path(out)
    if done.exists():  # a month finished by an earlier, interrupted generation
        with done.open("rb") as source:
            for line in source:
                programs[orjson.loads(line)["program_id"]] += 1
        if sum(programs.values()) == count:
            return out, programs
        programs.clear()
    if month > generated:  # a copy of month 1, 2, ... (--generated-months)
        source = (month - 1) % generated + 1
        return out, _rekeyed(year, month, source, count, Path(out[:-2] + f"{source:02d}"), done)
    assert _CATALOG is not None
    registry = SyntheticRegistry(_CATALOG, seed=year * 100 + month, submitted_on=dt.date(year, month, 3))
    partial = Path(out + ".partial")
    with partial.open("w", encoding="utf-8") as sink:
        for application in registry.generate(count):
            sink.write(application.model_dump_json() + "\n")
            programs[application.program_id] += 1
    partial.rename(out)
    return out, programs


def applications(n: int, year: int, workers: int, generated: int = 12) -> tuple[Path, Counter[str]]:
    global _CATALOG
    folder = ROOT / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"whatif-{year}-{n}.jsonl"
    counts_file = target.with_suffix(".counts")
    if target.exists() and counts_file.exists():
        counts = Counter(dict(line.split("\t") for line in counts_file.read_text().split("\n") if line))
        return target, Counter({k: int(v) for k, v in counts.items()})
    started = time.perf_counter()
    jobs = [(year, m, n // 12 + (1 if m <= n % 12 else 0), str(target) + f".{m:02d}", generated)
            for m in range(1, 13)]
    _CATALOG = Catalog.load()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_month, jobs[:generated], chunksize=1)
        parts += pool.map(_month, jobs[generated:], chunksize=1)  # copies, once their sources exist
    _CATALOG = None
    counts: Counter[str] = Counter()
    with target.open("wb") as sink:
        for part, programs in parts:
            sink.write(Path(part).read_bytes())
            Path(part).unlink()
            counts.update(programs)
    counts_file.write_text("".join(f"{k}\t{v}\n" for k, v in sorted(counts.items())))
    print(f"(generated {n} applications into {target} in {time.perf_counter() - started:.0f} s, not timed)",
          file=sys.stderr)
    return target, counts


def estimated_allocations(catalog: Catalog, path: Path, counts: Counter[str], year: int) -> list:
    engine = Engine(catalog)
    sampled: Counter[str] = Counter()
    amounts: Counter[str] = Counter()
    with path.open(encoding="utf-8") as source:
        for _, line in zip(range(3000), source, strict=False):
            try:
                decision = engine.decide_encoded(ApplicationSubmitted.model_validate_json(line), record=False)
            except ValueError:
                continue
            sampled[decision.program_id] += 1
            amounts[decision.program_id] += decision.amount_kop or 0
    allocations = []
    for program, count in sorted(counts.items()):
        need = count * amounts[program] // sampled[program] if sampled[program] else count * PER_APPLICATION_UAH * 100
        allocations.append(allocation_set(
            program_id=program, year=year, annual_kop=need * 95 // 100, plan=MonthlyPlan(kind="even"),
            amendment_id=f"bench-{program}-{year}", legal_reference="bench allocation: 95 % of the estimated need"))
    return allocations


class MemorySampler(threading.Thread):
    """Peak memory of this process and its children (workers), summed, sampled from /proc every 0.5 s.

    RSS counts a page shared by forked processes once per process (an upper bound); PSS shares it out."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_rss = self.peak_pss = 0.0  # MiB, all processes together
        self.peak_one = 0.0  # MiB, the largest single process
        self.stop = threading.Event()

    @staticmethod
    def _pids() -> list[int]:
        me = os.getpid()
        pids = [me]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                        if int(stat.read().rsplit(")", 1)[1].split()[1]) == me:
                            pids.append(int(entry))
                except (OSError, ValueError, IndexError):
                    continue
        return pids

    def run(self) -> None:
        while not self.stop.wait(0.5):
            rss = pss = 0.0
            for pid in self._pids():
                try:
                    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
                        fields = dict(line.split(":", 1) for line in rollup.read().splitlines()[1:] if ":" in line)
                except OSError:
                    continue
                one = int(fields.get("Rss", "0 kB").split()[0]) / 1024
                rss += one
                pss += int(fields.get("Pss", "0 kB").split()[0]) / 1024
                self.peak_one = max(self.peak_one, one)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--year", type=int, default=2023)
    parser.add_argument("--scenario", type=Path, default=ROOT / "examples" / "whatif" / "pm-plus-10.yaml")
    parser.add_argument("--full", action="store_true", help="recompute every program for the scenario")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--budget", choices=("memory", "sql"), default="memory",
                        help="memory: lean decisions into in-memory budgets (default); sql: the traced path "
                             "into temporary SQLite ledgers (the earlier what-if)")
    parser.add_argument("--generated-months", type=int, default=12,
                        help="generate this many months; the others are copies of them, re-keyed (faster)")
    args = parser.parse_args()
    workers = args.workers or len(os.sched_getaffinity(0))

    path, counts = applications(args.n, args.year, workers, args.generated_months)
    catalog = Catalog.load()
    scenario = load_scenario(args.scenario, catalog)
    allocations = estimated_allocations(catalog, path, counts, args.year)
    stages: dict[str, list[float]] = {}

    done: Counter[str] = Counter()

    def progress(stage: str, count: int) -> None:  # also a running log on stderr, for long runs
        now = time.perf_counter()
        if stage not in stages:
            print(f"[{now - started:7.1f} s] {stage} started", file=sys.stderr, flush=True)
        stages.setdefault(stage, [now, now])[1] = now
        before = done[stage]
        done[stage] += count
        if done[stage] // 100_000 > before // 100_000:
            print(f"[{now - started:7.1f} s] {stage}: {done[stage]:,}", file=sys.stderr, flush=True)

    cpu_before = sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                          resource.getrusage(resource.RUSAGE_CHILDREN)))
    parent_usage = resource.getrusage(resource.RUSAGE_SELF)
    parent_before = parent_usage.ru_utime + parent_usage.ru_stime
    load = os.getloadavg()[0]
    sampler = MemorySampler()
    sampler.start()
    started = time.perf_counter()
    baseline, side, recomputed = run_whatif(catalog, scenario, path, allocations, full=args.full, workers=workers,
                                            progress=progress, workdir=ROOT / "var" / "bench", budget=args.budget)
    report = compare(baseline, side)
    wall = time.perf_counter() - started
    sampler.stop.set()
    load_after = os.getloadavg()[0]
    own_usage = resource.getrusage(resource.RUSAGE_SELF)
    child_usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own, child = own_usage.ru_maxrss / 1024, child_usage.ru_maxrss / 1024
    cpu = sum(u.ru_utime + u.ru_stime for u in (own_usage, child_usage)) - cpu_before
    cpu_parent = own_usage.ru_utime + own_usage.ru_stime - parent_before
    cpu_children = cpu - cpu_parent
    recomputed_apps = sum(c for p, c in counts.items() if p in recomputed)

    print(f"What-if benchmark: {args.n} synthetic applications in {args.year}, {len(counts)} programs; scenario "
          f"{scenario.id} ({len(recomputed)} programs recomputed, {recomputed_apps} applications"
          f"{', --full' if args.full else ''}); budget: {args.budget}; {workers} workers; {platform.machine()}, "
          f"Python {platform.python_version()}\n")
    print("| measure | result |")
    print("|---|---|")
    print(f"| wall time, baseline + scenario, decisions + budgets + comparison | **{wall:.1f} s** |")
    labels = ((("baseline", "one pass: both sides decided (lean path) and their claims budgeted"),
               ("budget", "month closes and read-out, both sides")) if args.budget == "memory" else
              (("baseline", "baseline decisions (batch path)"),
               ("scenario", "scenario decisions (recomputed programs)"),
               ("budget", "both ledgers (in parallel), claims fed")))
    for stage, label in labels:
        if stage in stages:
            first, last = stages[stage]
            print(f"| … {label}, first to last progress report | {last - first:.1f} s |")
    print(f"| baseline decisions per second (wall, {workers} workers) | "
          f"{baseline.decided / max(stages.get('baseline', [0, 1])[1] - stages.get('baseline', [0, 0])[0], 1e-9):,.0f} |")
    print(f"| CPU time, all processes (user + system) | {cpu:.1f} s (load average before / after the run: "
          f"{load:.1f} / {load_after:.1f}) |")
    print(f"| … of which this process (reads the lines, takes results back in order, budgets, compares) / "
          f"the workers | {cpu_parent:.1f} s / {cpu_children:.1f} s ({cpu_parent / max(baseline.decided, 1) * 1e6:.0f}"
          f" / {cpu_children / max(baseline.decided, 1) * 1e6:.0f} µs per application) |")
    print(f"| peak RSS: this process / largest child (getrusage) | {own:,.0f} MiB / {child:,.0f} MiB |")
    print(f"| peak memory, all processes together (sampled every 0.5 s): RSS / PSS; largest process | "
          f"{sampler.peak_rss:,.0f} MiB / {sampler.peak_pss:,.0f} MiB; {sampler.peak_one:,.0f} MiB |")
    print(f"| payable, baseline → scenario | {kop_to_decimal_str(report.totals.payable_baseline_kop)} → "
          f"{kop_to_decimal_str(report.totals.payable_scenario_kop)} UAH |")
    print(f"| recipients gained / lost; applications with a changed coefficient | {report.totals.gained} / "
          f"{report.totals.lost}; {report.totals.coefficient_changes} |")


if __name__ == "__main__":
    main()
