"""One what-if job, run in its own process by the gateway: ``python -m services.gateway.whatif_job JOBDIR``.

``JOBDIR/job.json`` names the scenario file, the applications (JSONL) and the allocation commands
(``allocations.json``) the gateway prepared; the run itself is ``dopomoga.whatif.run.run_whatif``
(its temporary ledgers under ``JOBDIR``), the comparison ``dopomoga.whatif.report.compare``, the
files ``report.write_csv`` / ``write_xlsx`` into ``JOBDIR/out``: the same code as ``dopomoga whatif``.

For a ledger year the child reads the gateway's ledger itself (``from_ledger`` on a read-only
connection, the URL passed in the environment, never written to disk), so a year's claims are
never held by the gateway. While it runs it rewrites ``progress.json`` (counts per stage, at most every 0.3 s); at the end it
writes ``result.json`` (the comparison: kopiyky as integers beside formatted hryvnias) or
``error.json`` (a scenario's positioned message, else only the exception's type: a message could
quote an application). Files are replaced atomically, so the gateway never reads half of one.
A separate process, not a thread of the gateway: the run forks workers, and a fork from the
gateway's threads could inherit a lock another thread holds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

STAGES = ("baseline", "scenario", "budget")
LEDGER_URL_ENV = "DOPOMOGA_WHATIF_LEDGER_URL"  # the gateway's ledger, for a ledger year (never on disk)


def read_only(url: str) -> str:
    """The ledger's URL opened so that it cannot be written: SQLite ``mode=ro``, PostgreSQL
    ``default_transaction_read_only`` (idempotent). ``from_ledger`` only SELECTs; this makes a write fail,
    not happen. A relative SQLite path is resolved against the current directory."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.query.get("mode") == "ro":
            return url
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise ValueError("an in-memory ledger cannot be read by another process")
        return f"sqlite:///file:{Path(database).resolve()}?mode=ro&uri=true"
    if parsed.get_backend_name() == "postgresql":
        if "default_transaction_read_only=on" in str(parsed.query.get("options", "")):
            return url
        options = " ".join(x for x in (parsed.query.get("options"), "-c default_transaction_read_only=on") if x)
        return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
    return url


def write_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _money(row: dict[str, Any]) -> dict[str, Any]:
    """Every ``*_kop`` integer kept, and beside it ``*_uah`` (exact decimal) and ``*_text`` (Ukrainian format)."""
    from dopomoga.money import format_uah, kop_to_decimal_str

    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = value
        if key.endswith("_kop") and isinstance(value, int):
            out[key[:-4] + "_uah"] = kop_to_decimal_str(value)
            out[key[:-4] + "_text"] = format_uah(value)
    return out


def result_of(comparison: Any, scenario: Any, recomputed: frozenset[str]) -> dict[str, Any]:
    """The comparison as JSON: programs (and the total row), months, people, cost by month."""
    by_month: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in comparison.months:
        by_month[row.period][0] += row.paid_baseline_kop
        by_month[row.period][1] += row.paid_scenario_kop
    return {
        "scenario": scenario.id,
        "title_uk": scenario.spec.title_uk,
        "recomputed_programs": sorted(recomputed),
        "decided_baseline": comparison.decided_baseline,
        "decided_scenario": comparison.decided_scenario,
        "rejected_baseline": comparison.rejected_baseline,
        "rejected_scenario": comparison.rejected_scenario,
        "programs": [_money(dataclasses.asdict(r)) for r in comparison.programs],
        "totals": _money(dataclasses.asdict(comparison.totals)),
        "months": [_money(dataclasses.asdict(r)) for r in comparison.months],
        "people": [_money(dataclasses.asdict(r)) for r in comparison.people],
        "cost_by_month": [_money({"period": p, "paid_baseline_kop": b, "paid_scenario_kop": s,
                                  "paid_change_kop": s - b}) for p, (b, s) in sorted(by_month.items())],
    }


def run(folder: Path) -> int:
    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    shown = job.get("scenario_name", "scenario.yaml")
    counts = dict.fromkeys(STAGES, 0)
    state = {"stage": "starting", "lines": job.get("lines", 0), **counts}
    last = [0.0]

    def report(force: bool = False) -> None:
        now = time.monotonic()
        if force or now - last[0] >= 0.3:
            last[0] = now
            write_atomic(folder / "progress.json", {**state, **counts})

    report(force=True)
    from dopomoga.rules.programs import Catalog
    from dopomoga.whatif.report import compare, write_csv, write_xlsx
    from dopomoga.whatif.run import run_whatif
    from dopomoga.whatif.scenario import ScenarioError, load_scenario
    from schemas.events import AllocationSet

    url = os.environ.pop(LEDGER_URL_ENV, None)
    try:
        base = Catalog.load(Path(job["catalog_root"]))
        scenario = load_scenario(Path(job["scenario_path"]), base)
        if job.get("from_ledger") is not None:  # SELECTs on a read-only connection; the run gets files
            from dopomoga.whatif.sources import from_ledger

            state["stage"] = "ledger"
            report(force=True)
            if not url:
                raise RuntimeError("no ledger URL given")
            applications, commands = from_ledger(read_only(url), int(job["from_ledger"]), folder)  # idempotent
            applications.rename(folder / job["applications"])
            (folder / "allocations.json").write_text(
                json.dumps([a.model_dump(mode="json") for a in commands], ensure_ascii=False), encoding="utf-8")
            with (folder / job["applications"]).open("rb") as counted:
                state["lines"] = sum(1 for _ in counted)
            state["allocations"] = len(commands)
        allocations = [AllocationSet.model_validate(a)
                       for a in json.loads((folder / "allocations.json").read_text(encoding="utf-8"))]

        def progress(stage: str, count: int) -> None:
            counts[stage] = counts.get(stage, 0) + count
            state["stage"] = stage
            report()

        baseline, side, recomputed = run_whatif(base, scenario, folder / job["applications"], allocations,
                                                workers=job.get("workers"), workdir=folder, progress=progress)
        state["stage"] = "report"
        report(force=True)
        comparison = compare(baseline, side, int(job.get("top", 20)))
        out = folder / "out"
        write_csv(comparison, out)
        write_xlsx(comparison, out / "whatif.xlsx")
        write_atomic(folder / "result.json", result_of(comparison, scenario, recomputed))
        state["stage"] = "done"
        report(force=True)
        return 0
    except ScenarioError as exc:
        message = str(exc).replace(str(job["scenario_path"]), shown, 1)
        write_atomic(folder / "error.json", {"error": "invalid_scenario", "message": message})
        return 2
    except Exception as exc:  # where it failed goes to the job's stderr.log: frames and type, no message
        import traceback  # (a message could quote an application's personal data)

        sys.stderr.write("".join(traceback.format_tb(exc.__traceback__)) + type(exc).__name__ + "\n")
        write_atomic(folder / "error.json", {"error": "failed", "message": f"the what-if failed: {type(exc).__name__}"})
        return 1


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1])))
