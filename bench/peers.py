"""Dopomoga beside OpenFisca and GoRules ZEN on two equivalent programs, in one run.

    .venv/bin/python bench/peers.py [--n 2000] [--rounds 5]

Programs: Zhytomyr centenarians (aged 100 or more on the application date, resident: 10 000 UAH)
and Kamianske's fallen ATO families (resident, family member, from May 2021: the subsistence
minimum on the first day of the month + 25 %, half up to the kopiyka). The cases are synthetic
applications of both (``services/devstack/synthetic.py``, June to December 2021), as JSON
lines; every mode starts from the line.

Peers are installed by this script into their own venv, ``var/peers-venv`` (pinned below), never
into the project; ``bench/peers_worker.py`` runs there. If they cannot be installed, the table
says so. Before timing, every mode's eligibility and amount are checked against Dopomoga's on
every case (a mismatch stops the bench). Rounds are interleaved (Dopomoga's modes, then the
peers'); ratios are min / median / max over the rounds. Each one-process mode is timed in CPU
seconds of its own process (``time.process_time``), so other work on a shared machine does not
distort the ratios; ``dopomoga_batch_2_workers`` (three processes) in CPU seconds of the parent and
its workers together (``resource.getrusage``), its wall time printed beside.

``dopomoga_json_traced`` is the CLI's serial path (``dopomoga.rules.batch.decide_lines``: lines read a
few dozen at a time, then decided with trace, explanation and the event's bytes); like the peers'
modes, which keep no response, each decision's bytes are handed on and let go (eligibility and amount
kept for the check). As in the CLI, the collector is kept off the rules and the input
(``gc.freeze()`` after the setup).

``dopomoga_lean_json`` is the what-if's lean path (``dopomoga.rules.lean.lean_decide``: the same
compiled CEL and amounts, no trace, explanation or event bytes) from the JSON line, validated as
every Dopomoga mode is (the identifiers' checksums, the IBAN; JSON lines are read by
``dopomoga.rules.intake.parse_application`` a few dozen at a time, as the what-if's workers read them,
``batch.parsed_lines``); ``dopomoga_lean_parsed`` the same
from the parsed application (the validation left out, as OpenFisca's modes have none). Both are
checked to give the traced path's eligibility and amount on every case.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dopomoga.errors import ApplicationError  # noqa: E402
from dopomoga.rules.batch import chunks, decide_batch, decide_lines, parsed_lines  # noqa: E402
from dopomoga.rules.engine import Engine  # noqa: E402
from dopomoga.rules.lean import lean_decide  # noqa: E402
from dopomoga.rules.programs import Catalog  # noqa: E402
from schemas.events import ApplicationSubmitted  # noqa: E402

PEERS = ["openfisca-core==46.0.1", "openfisca-country-template==8.2.0", "zen-engine==2.1.3"]
VENV = ROOT / "var" / "peers-venv"
PROGRAMS = ["zhytomyr.centenarians", "kamianske.fallen-ato-family-monthly"]


def peers_python() -> tuple[Path | None, str]:
    python = VENV / "bin" / "python"
    probe = "import openfisca_core, openfisca_country_template, openfisca_web_api, zen"
    if python.exists() and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0:
        return python, "already installed"
    try:
        if not python.exists():
            venv.create(VENV, with_pip=True)
        done = subprocess.run([python, "-m", "pip", "install", "-q", *PEERS], capture_output=True, text=True)
    except OSError as exc:
        return None, f"could not create {VENV}: {exc}"
    if done.returncode != 0:
        return None, f"pip could not install {', '.join(PEERS)} here: {done.stderr.strip().splitlines()[-1:]}"
    return python, "installed now"


def cases(catalog: Catalog, n: int) -> list[str]:
    from services.devstack.synthetic import SyntheticRegistry  # bench only

    lines: list[str] = []
    engine = Engine(catalog)
    for month in range(6, 13):  # June-December 2021: inside both programmes' terms, after May 2021
        registry = SyntheticRegistry(catalog, seed=900 + month, submitted_on=dt.date(2021, month, 3),
                                     eligible_share=0.7, programs=PROGRAMS)
        for application in registry.generate(n // 7):
            try:
                engine.decide_encoded(application, record=False)
            except ApplicationError:
                continue
            lines.append(application.model_dump_json())
    return lines


def _handed_on(decisions) -> list[tuple[bool, int]]:
    """Each decision's bytes handed on, as the CLI writes them and moves to the next line (the peers' modes
    keep no response either): eligibility and amount kept for the check, the bytes let go."""
    return [(decision.eligible, decision.amount_kop) for decision in decisions if decision.json]


def dopomoga_modes(catalog: Catalog, lines: list[str]):
    engine = Engine(catalog)
    parsed = [ApplicationSubmitted.model_validate_json(line) for line in lines]

    def json_traced():  # the CLI's serial path: lines parsed a few dozen at a time, then decided (batch.decide_lines)
        return _handed_on(decision for first, part in chunks(lines, 500)
                          for _, decision, _ in decide_lines(engine, first, part, record=False))

    def encoded():
        return _handed_on(engine.decide_encoded(application, record=False) for application in parsed)

    def batch():
        return _handed_on(d for _, d, _ in decide_batch(catalog, lines, workers=2))

    def lean_json():  # the what-if's lean path: the same CEL and amounts, no trace, explanation or bytes;
        # its workers read a few dozen lines, then decide them (batch.parsed_lines), as below
        return [lean_decide(engine, application) for first, part in chunks(lines, 500)
                for _, application, _ in parsed_lines(first, part)]

    def lean_parsed():
        return [lean_decide(engine, application) for application in parsed]

    return {"dopomoga_json_traced": json_traced, "dopomoga_decide_encoded": encoded, "dopomoga_batch_2_workers": batch,
            "dopomoga_lean_json": lean_json, "dopomoga_lean_parsed": lean_parsed}


def _all_cpu() -> float:
    """CPU seconds of this process and its finished children (the batch's workers)."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    catalog = Catalog.load()
    lines = cases(catalog, args.n)
    modes = dopomoga_modes(catalog, lines)
    expected = modes["dopomoga_json_traced"]()
    if modes["dopomoga_decide_encoded"]() != expected:
        raise SystemExit("decide_encoded on the parsed applications disagrees with the JSON-line path")
    gc.collect()
    gc.freeze()  # as the CLI does: the rules and the input live for the whole run, out of the collector's scans
    for lean_mode in ("dopomoga_lean_json", "dopomoga_lean_parsed"):
        if [(d.eligible, d.amount_kop) for d in modes[lean_mode]()] != expected:
            raise SystemExit(f"{lean_mode} disagrees with the traced path")
    python, how = peers_python()
    print(f"Peers benchmark: {len(lines)} applications of {', '.join(PROGRAMS)} "
          f"({sum(e for e, _ in expected)} eligible); peers ({', '.join(PEERS)}) in {VENV}: {how}; "
          f"{args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.1f}\n")
    worker = None
    if python is not None:
        case_file = ROOT / "var" / "bench" / "peers-cases.json"
        case_file.parent.mkdir(parents=True, exist_ok=True)
        pm = {str(v.effective_from): v.value for v in catalog.parameters["pm_general"].values}
        case_file.write_text(json.dumps({"lines": lines, "pm_general": pm}), encoding="utf-8")
        worker = subprocess.Popen([python, str(ROOT / "bench" / "peers_worker.py"), str(case_file)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert json.loads(worker.stdout.readline())["ready"]

        def ask(command: str) -> dict:
            worker.stdin.write(json.dumps({"cmd": command}) + "\n")
            worker.stdin.flush()
            return json.loads(worker.stdout.readline())

        checked = ask("check")
        for mode, outcomes in checked.items():
            wrong = [i for i, (got, want) in enumerate(zip(outcomes, expected, strict=True)) if tuple(got) != want]
            if wrong:
                raise SystemExit(f"{mode} disagrees with Dopomoga on {len(wrong)} cases, first: {lines[wrong[0]]}")
        print(f"Checked: every peer mode gives Dopomoga's eligibility and amount on all {len(lines)} cases.\n")
    seconds: dict[str, list[float]] = {}
    walls: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, run in modes.items():
            clock = _all_cpu if name == "dopomoga_batch_2_workers" else time.process_time
            started, wall = clock(), time.perf_counter()
            run()
            seconds.setdefault(name, []).append(clock() - started)
            walls.setdefault(name, []).append(time.perf_counter() - wall)
        if worker is not None:
            for name, value in ask("round").items():
                seconds.setdefault(name, []).append(value)
    if worker is not None:
        worker.stdin.close()
        worker.wait(30)

    n = len(lines)
    print("| mode | CPU µs per decision (median) | decisions per CPU-second | wall µs per decision (median) |")
    print("|---|---|---|---|")
    for name, values in seconds.items():
        median = statistics.median(values)
        wall = f"{statistics.median(walls[name]) / n * 1e6:,.1f}" if name in walls else "—"
        print(f"| {name} | {median / n * 1e6:,.1f} | {n / median:,.0f} | {wall} |")
    if worker is None:
        print(f"\nPeers not measured: {how}")
        return
    print("\n| ratio (peer time / Dopomoga time; > 1: Dopomoga faster) | min | median | max |")
    print("|---|---|---|---|")
    pairs = [
        ("openfisca_web_untraced", "dopomoga_json_traced"),
        ("openfisca_web_traced", "dopomoga_json_traced"),
        ("zen_traced_json", "dopomoga_json_traced"),
        ("openfisca_vectorised", "dopomoga_json_traced"),
        ("openfisca_vectorised", "dopomoga_batch_2_workers"),
        ("openfisca_vectorised", "dopomoga_lean_json"),
        ("openfisca_vectorised", "dopomoga_lean_parsed"),
    ]
    for peer, ours in pairs:
        ratios = [p / o for p, o in zip(seconds[peer], seconds[ours], strict=True)]
        print(f"| {peer} / {ours} | {min(ratios):.2f} | {statistics.median(ratios):.2f} | {max(ratios):.2f} |")


if __name__ == "__main__":
    main()
