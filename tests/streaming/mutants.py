"""Mutants the crash suite must kill: ``python tests/streaming/mutants.py [--apps N] [--baseline]``.

Each mutant is a small, realistic defect applied to a copy of the committed tree (``git archive
HEAD``, so nobody's working files are touched); ``tests/streaming/test_crash.py`` then runs in that
copy (its services are started from the copy: ``python -m services.<name>`` with the copy as the
working directory) and must FAIL. ``--baseline`` also runs the unmutated copy, which must PASS.

- ``at_most_once``: the batch loop acknowledges each event when it arrives instead of after its
  batch's outputs are on the broker, so offsets can be committed before the work is done and a
  kill loses what was acknowledged but not processed;
- ``at_most_once_lean``: the same defect in the lean path the budget service takes its
  entitlements by (``services/platform/lean.py``): each record acknowledged when the drain loop
  delivers it. Run against ``tests/streaming/test_lean_kill.py`` (``SUITES``), not the crash
  suite: the crash suite's budget kills did not land while a batch filled (it PASSED with this
  mutant once, 2026-11-30); the directed test kills the budget while 200 records wait in a 3 s
  batch window and lost 200 of 200 with the mutant;
- ``no_limit``: the ledger finds money in every month (``available_in`` answers 10^15), so claims
  are paid regardless of the allocation.

Exit status 0 when every mutant failed the suite (and the baseline passed), 1 otherwise. Prints
one line per run with the suite's first failing assertion. Takes a few minutes per run.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE = "tests/streaming/test_crash.py"
#: a mutant's own suite, when not the crash suite
SUITES = {"at_most_once_lean": "tests/streaming/test_lean_kill.py"}

MUTANTS: dict[str, list[tuple[str, str, str]]] = {
    "at_most_once": [
        ("services/platform/runtime.py",
         "        pending.append(event)\n",
         "        pending.append(event)\n        await stream.ack(event)  # MUTANT: acknowledged on receipt\n"),
        ("services/platform/runtime.py",
         "            for event in batch:\n                await stream.ack(event)\n",
         "            pass  # MUTANT: nothing acknowledged after the batch\n"),
    ],
    "at_most_once_lean": [
        ("services/platform/lean.py",
         "        pending.append(message)\n",
         "        pending.append(message)\n        consumer.ack(message)  # MUTANT: acknowledged on receipt\n"),
        ("services/platform/runtime.py",
         "                        for message in messages:  # only now: their outputs are acknowledged\n"
         "                            consumer.ack(message)\n",
         "                        pass  # MUTANT: nothing acknowledged after the batch\n"),
    ],
    "no_limit": [
        ("dopomoga/budget/allocation.py",
         "    if not 1 <= month <= 12:\n        raise ValueError(\"month must be 1-12\")\n",
         "    if not 1 <= month <= 12:\n        raise ValueError(\"month must be 1-12\")\n"
         "    return 10**15  # MUTANT: money in every month\n"),
    ],
}


def copy_tree(target: Path) -> None:
    """The committed tree (HEAD) into ``target``."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


def apply(tree: Path, edits: list[tuple[str, str, str]]) -> None:
    for path, old, new in edits:
        file = tree / path
        text = file.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise SystemExit(f"mutant does not apply: {path} no longer contains the expected code")
        file.write_text(text.replace(old, new), encoding="utf-8")


def run_suite(tree: Path, apps: int, suite: str = SUITE) -> tuple[bool, str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "DOPOMOGA_CRASH_APPS": str(apps)}
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", suite, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - began
    out = result.stdout + result.stderr
    first = next((line[2:].strip() for line in out.splitlines() if line.startswith("E ")), "")
    summary = next((line.strip() for line in reversed(out.splitlines()) if re.search(r"\b(passed|failed|error)", line)),
                   "")
    return result.returncode == 0, f"{summary} | {first}"[:400], seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=int(os.environ.get("DOPOMOGA_CRASH_APPS", "240")))
    parser.add_argument("--baseline", action="store_true", help="also run the unmutated tree (must pass)")
    parser.add_argument("--only", choices=sorted(MUTANTS), action="append")
    args = parser.parse_args()
    runs = ([("baseline", [])] if args.baseline else []) + [(n, MUTANTS[n]) for n in (args.only or sorted(MUTANTS))]
    ok = True
    for name, edits in runs:
        with tempfile.TemporaryDirectory(prefix=f"dopomoga-mutant-{name}-") as tmp:
            tree = Path(tmp)
            copy_tree(tree)
            apply(tree, edits)
            passed, detail, seconds = run_suite(tree, args.apps, SUITES.get(name, SUITE))
        expected = name == "baseline"
        verdict = "as expected" if passed == expected else "UNEXPECTED"
        ok &= passed == expected
        print(f"{name:13s} suite {'PASSED' if passed else 'FAILED'} ({verdict}, {seconds:.0f} s): {detail}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
