"""Engine benchmark: decisions per second on one core, and the latency of one traced decision.

    .venv/bin/python bench/engine.py [--n 100000] [--single 5000] [--chunk 2000]

The batch is built from every valid application in ``examples/applications.jsonl`` (all three
cities, every program), re-keyed to unique application ids and people until it has
``--n`` applications. One process, one core. The batch measures are interleaved chunk by chunk
(``--chunk``), so that load on a shared machine falls on each of them alike:

- batch: ``Engine.decide_encoded`` on already-parsed applications: rules, trace,
  explanation and the decision event's JSON bytes (what the batch CLI writes and the
  services send), and ``Engine.decide`` (the same decision as a validated pydantic model);
- end to end: JSON line in -> validated event (identifiers checked; ``dopomoga.rules.intake``, what the
  CLI and the batch path read lines with) -> decision JSON line out, as the CLI's serial path does it
  (``dopomoga.rules.batch.decide_lines``: a few dozen lines parsed, then decided);
- one traced decision (``decide_encoded``), timed individually (wall clock): p50 and p99;
- the orjson floor: parse the input line and write the same output bytes with orjson
  (``orjson.loads(line)`` + ``orjson.dumps`` of the parsed decision), the least any Python
  JSON-line -> JSON-line tool can do. ``decide_encoded`` and the JSON-line path are shown as
  multiples of it, measured in the same run (issue 16's targets: 1.5x and 2.5x).

Throughput is decisions per CPU-second of the benchmark process (``time.process_time``),
i.e. per core, so other work on the machine does not distort it.

Also the JSON-line intake alone (``parse_application``), so the end-to-end row can be read as intake +
decision. Prints a markdown table (pasted into the README) and the load average. Asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dopomoga.errors import ApplicationError  # noqa: E402
from dopomoga.rules.batch import decide_lines  # noqa: E402
from dopomoga.rules.engine import Engine  # noqa: E402
from dopomoga.rules.intake import parse_application  # noqa: E402
from dopomoga.rules.programs import Catalog  # noqa: E402
from schemas.events import ApplicationSubmitted  # noqa: E402


def load_templates(catalog: Catalog) -> list[ApplicationSubmitted]:
    templates = []
    combined = ROOT / "examples" / "applications.jsonl"  # all three cities (build_applications.py)
    for path in [combined] if combined.exists() else sorted((ROOT / "examples").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                application = ApplicationSubmitted.model_validate_json(line)
                Engine(catalog).decide(application)
            except (ValueError, ApplicationError):
                continue  # the examples include invalid lines on purpose
            templates.append(application)
    if not templates:
        raise SystemExit("no valid applications in examples/*.jsonl")
    return templates


def build_batch(templates: list[ApplicationSubmitted], n: int) -> list[ApplicationSubmitted]:
    batch = []
    for i in range(n):
        template = templates[i % len(templates)]
        applicant = template.applicant.model_copy(update={"household_id": None})
        # A new application id per copy. The engine runs with record=False (no history writes),
        # so no copy is refused as a repeat of another: every decision is a full evaluation.
        batch.append(template.model_copy(update={"application_id": f"bench-{i}", "applicant": applicant}))
    return batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=5_000)
    parser.add_argument("--chunk", type=int, default=2_000, help="applications per interleaved chunk")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, honestly

    catalog = Catalog.load()
    templates = load_templates(catalog)
    batch = build_batch(templates, args.n)
    lines = [a.model_dump_json() for a in batch]
    programs = len({a.program_id for a in batch})
    engine = Engine(catalog)

    for application in batch[:2000]:  # warm caches
        engine.decide(application, record=False)
    decisions = [orjson.loads(engine.decide_encoded(a, record=False).json) for a in batch]
    gc.collect()
    gc.freeze()  # the catalog and the input batch live for the whole run: keep them out of GC scans

    # Throughput per core = decisions per CPU-second of this process (process_time), which other
    # processes on the machine do not inflate; latency below is wall-clock. The measures are
    # interleaved in chunks of ``--chunk`` applications (each measure runs a chunk, then the next
    # measure the same chunk), so that a change of load on a shared machine falls on all of them
    # alike and the ratios to the floor compare like with like.
    def encoded(chunk: range) -> None:
        for i in chunk:
            engine.decide_encoded(batch[i], record=False)

    def model(chunk: range) -> None:
        for i in chunk:
            engine.decide(batch[i], record=False)

    def e2e(chunk: range) -> None:  # the CLI's serial path: lines parsed a few dozen at a time, then decided
        for _ in decide_lines(engine, chunk.start + 1, lines[chunk.start:chunk.stop], record=False):
            pass

    def intake(chunk: range) -> None:
        for i in chunk:
            parse_application(lines[i])

    def floor(chunk: range) -> None:
        for i in chunk:
            orjson.loads(lines[i])
            orjson.dumps(decisions[i])

    measures = (floor, encoded, e2e, intake, model)
    spent = dict.fromkeys(measures, 0.0)
    for start in range(0, args.n, args.chunk):
        chunk = range(start, min(start + args.chunk, args.n))
        for measure in measures:
            started = time.process_time()
            measure(chunk)
            spent[measure] += time.process_time() - started
    encoded_s, model_s, e2e_s, intake_s, floor_s = (spent[m] for m in (encoded, model, e2e, intake, floor))

    samples = []
    for application in batch[: args.single]:
        t0 = time.perf_counter_ns()
        engine.decide_encoded(application, record=False)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]

    print(f"Engine benchmark: {args.n} applications, {programs} programs, {len(templates)} distinct templates; "
          f"one core of {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| measure | result |")
    print("|---|---|")
    print(f"| batch `decide_encoded` (parsed input → decision event bytes) | {args.n / encoded_s:,.0f} decisions/s per core |")
    print(f"| batch `decide` (parsed input → validated pydantic model) | {args.n / model_s:,.0f} decisions/s per core |")
    print(f"| batch JSON line → decision JSON line (input validated) | {args.n / e2e_s:,.0f} decisions/s per core |")
    print(f"| orjson floor (parse the line + write the same decision bytes) | {floor_s / args.n * 1e6:.1f} µs |")
    print(f"| batch `decide_encoded` ÷ orjson floor | {encoded_s / floor_s:.2f}× ({encoded_s / args.n * 1e6:.1f} µs) |")
    print(f"| batch JSON line → decision JSON line ÷ orjson floor | {e2e_s / floor_s:.2f}× "
          f"({e2e_s / args.n * 1e6:.1f} µs) |")
    print(f"| JSON line → validated `ApplicationSubmitted` alone (`rules.intake`) | {intake_s / args.n * 1e6:.1f} µs "
          f"({intake_s / floor_s:.2f}× the floor) |")
    print(f"| one traced decision, p50 | {p50:.3f} ms |")
    print(f"| one traced decision, p99 | {p99:.3f} ms |")


if __name__ == "__main__":
    main()
