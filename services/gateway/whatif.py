"""What-if through the gateway: ``POST /whatif``, ``GET /whatif/{job}``, the XLSX and CSV downloads.

A job is ``dopomoga whatif`` run for a budget admin or an approver (the roles that plan and sign
off money; a viewer may read the jobs and their results, a registry may not):

- the **scenario** is YAML text (``scenario``) or a shipped example (``example``:
  ``examples/whatif/<name>.yaml``), checked at once with ``dopomoga.whatif.scenario.load_scenario``:
  a mistake is answered 422 with the file, line and column. A pasted scenario may not name
  replacement program files (``programs:``): a path would reach the gateway's disk; use a shipped
  example or the CLI;
- the **source** is ``{"from_ledger": YEAR}`` (the gateway's ledger, read by the job's process with
  ``dopomoga.whatif.sources.from_ledger`` - SELECTs only - on a read-only connection: its claims'
  applications and its allocation history) or
  ``{"applications": "<JSONL>", "allocations": [AllocationSet, ...]}`` (an upload, within the
  gateway's body limit).

One job runs at a time: a second ``POST`` while one runs is answered **409** with the running
job's id (a what-if takes both cores; queueing them would only hide the wait). The run is a child
process (``services.gateway.whatif_job``: it forks its own workers, which a gateway thread must
not), niced, killed if the gateway dies or after ``DOPOMOGA_WHATIF_TIMEOUT`` seconds (default
3600). Jobs, their temporary ledgers and results live in a temporary directory under the
gateway's var dir (``<var>/gateway-whatif/<random>/<job>``), deleted when the gateway stops; the
last ``KEEP`` jobs are kept. Nothing is written to the production ledger. Per-person rows carry the
report's masked ids (``12******90``) for every role: the run never keeps a full id.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.gateway.auth import Principal, api_key_check
from services.gateway.models import ERRORS, ErrorBody

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "whatif"
KEEP = 10  # finished jobs kept (with their files); older ones are deleted when a new job starts
TIMEOUT_S = float(os.environ.get("DOPOMOGA_WHATIF_TIMEOUT", "3600"))
RUN_ROLES = ("budget_admin", "approver")
JOB_ID = r"^[0-9a-f]{16}$"
TABLES = ("programs", "months", "people")
JobPath = Annotated[str, PathParam(pattern=JOB_ID, description="the job's id (16 hex digits)")]
POSITION = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+):(?P<column>\d+): ")


class WhatifSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_ledger: int | None = Field(default=None, ge=2000, le=2100, description="a budget year of the gateway's ledger")
    applications: str | None = Field(default=None, description="applications, one JSON event per line (JSONL)")
    allocations: list[dict[str, Any]] = Field(default=[], description="allocation commands (AllocationSet) for "
                                              "uploaded applications, as examples/allocations.json")

    @model_validator(mode="after")
    def _one(self) -> WhatifSource:
        if (self.from_ledger is None) == (self.applications is None):
            raise ValueError("give exactly one of from_ledger, applications")
        if self.from_ledger is not None and self.allocations:
            raise ValueError("allocations come from the ledger with from_ledger")
        return self


class WhatifRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenario: str | None = Field(default=None, max_length=65536, description="the scenario file's YAML text")
    example: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9\-_.]*$",
                                description="a shipped scenario instead: examples/whatif/<example>.yaml")
    source: WhatifSource
    top: int = Field(default=20, ge=1, le=1000, description="how many per-person changes to list")

    @model_validator(mode="after")
    def _one(self) -> WhatifRequest:
        if (self.scenario is None) == (self.example is None):
            raise ValueError("give exactly one of scenario, example")
        return self


class ScenarioRefused(Exception):
    """A scenario that does not load: ``body`` is the 422 answer (message with file:line:column)."""

    def __init__(self, message: str):
        super().__init__(message)
        found = POSITION.match(message)
        self.body: dict[str, Any] = {"error": "invalid_scenario", "message": message}
        if found:
            self.body.update(file=found["file"], line=int(found["line"]), column=int(found["column"]))


class Busy(Exception):
    def __init__(self, job: str):
        super().__init__(job)
        self.job = job


def examples() -> list[str]:
    return sorted(p.stem for p in EXAMPLES.glob("*.yaml"))


@dataclass
class Job:
    id: str
    folder: Path
    scenario: str
    title_uk: str
    source: dict[str, Any]
    by: str
    started_at: str
    state: str = "running"  # running | done | failed
    finished_at: str | None = None
    error: dict[str, Any] | None = None
    process: Any = field(default=None, repr=False)

    def progress(self) -> dict[str, Any]:
        try:
            return json.loads((self.folder / "progress.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"stage": "starting"}

    def percent(self, progress: dict[str, Any]) -> int:
        """An estimate: deciding the baseline 35 %, the scenario 15 %, both ledgers 50 %."""
        if self.state != "running":
            return 100
        lines = max(1, int(progress.get("lines") or 0))
        stage = progress.get("stage")
        done = 35 * min(1.0, progress.get("baseline", 0) / lines)
        done += 15 * (1.0 if stage in ("budget", "report") else min(1.0, progress.get("scenario", 0) / lines))
        done += 50 * min(1.0, progress.get("budget", 0) / (2 * lines))
        return min(99, int(done))

    def result(self) -> dict[str, Any] | None:
        if self.state != "done":
            return None
        return json.loads((self.folder / "result.json").read_text(encoding="utf-8"))

    def view(self, *, with_result: bool = True) -> dict[str, Any]:
        progress = self.progress()
        body: dict[str, Any] = {
            "job": self.id, "state": self.state, "scenario": self.scenario, "title_uk": self.title_uk,
            "source": self.source, "by": self.by, "started_at": self.started_at, "finished_at": self.finished_at,
            "progress": progress, "percent": self.percent(progress),
        }
        if self.error:
            body["error"] = self.error
        if self.state == "done":
            body["downloads"] = {"xlsx": f"/whatif/{self.id}/whatif.xlsx",
                                 **{f"{t}.csv": f"/whatif/{self.id}/{t}.csv" for t in TABLES}}
            if with_result:
                body["result"] = self.result()  # per-person ids are masked by the run (run.mask) for everyone
        return body


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class WhatifJobs:
    """The gateway's what-if jobs: one running at a time, the last ``KEEP`` kept, all in ``root``."""

    def __init__(self, var: Path, catalog: Any, ledger_url: Callable[[], str], *, workers: int | None = None):
        self.var = var
        self.catalog = catalog
        self.ledger_url = ledger_url
        env_workers = os.environ.get("DOPOMOGA_WHATIF_WORKERS")
        self.workers = workers or (int(env_workers) if env_workers else None)
        self._root: Path | None = None
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    @property
    def root(self) -> Path:
        if self._root is None:
            parent = self.var.resolve() / "gateway-whatif"  # absolute: the job's process runs in the repo root
            parent.mkdir(parents=True, exist_ok=True)
            for stale in parent.iterdir():  # left by a gateway that was killed (a day old at least)
                if stale.is_dir() and time.time() - stale.stat().st_mtime > 86400:
                    shutil.rmtree(stale, ignore_errors=True)
            self._root = Path(tempfile.mkdtemp(prefix="jobs-", dir=parent))
            atexit.register(shutil.rmtree, self._root, True)
        return self._root

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def recent(self) -> list[Job]:
        return sorted(list(self._jobs.values()), key=lambda j: j.started_at, reverse=True)  # a snapshot

    def running(self) -> Job | None:
        return next((j for j in list(self._jobs.values()) if j.state == "running"), None)

    def start(self, request: WhatifRequest, by: str) -> Job:
        """Check the scenario and the source, then run the job in the background (``Busy`` if one runs)."""
        from dopomoga.whatif.scenario import ScenarioError, load_scenario

        with self._lock:
            if (busy := self.running()) is not None:
                raise Busy(busy.id)
            job_id = secrets.token_hex(8)
            folder = self.root / job_id
            folder.mkdir()
            try:
                if request.example is not None:
                    path = EXAMPLES / f"{request.example}.yaml"
                    if not path.is_file():
                        raise HTTPException(404, f"no shipped scenario {request.example!r}; "
                                            f"examples: {', '.join(examples())}")
                    shown = str(path.relative_to(ROOT))
                else:
                    path, shown = folder / "scenario.yaml", "scenario.yaml"
                    path.write_text(request.scenario or "", encoding="utf-8")
                    _no_program_files(path)
                try:
                    scenario = load_scenario(path, self.catalog)
                except ScenarioError as exc:
                    raise ScenarioRefused(str(exc).replace(str(path), shown, 1)) from None
                source, url = self._source(request.source, folder)
                (folder / "job.json").write_text(json.dumps({
                    "catalog_root": str(Path(self.catalog.root).resolve()), "scenario_path": str(path.resolve()),
                    "scenario_name": shown,
                    "applications": "applications.jsonl", "top": request.top, "workers": self.workers,
                    "from_ledger": request.source.from_ledger, "lines": source.get("applications", 0),
                }), encoding="utf-8")
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            job = Job(job_id, folder, scenario.id, scenario.spec.title_uk, source, by, _now())
            self._jobs[job_id] = job
            self._forget_old()
            threading.Thread(target=self._work, args=(job, url), daemon=True,
                             name=f"whatif-{job_id}").start()
            return job

    def _source(self, source: WhatifSource, folder: Path) -> tuple[dict[str, Any], str | None]:
        """What the job reads (for its view) and the ledger's URL for a ledger year (handed to the job's
        process in its environment, never written to disk)."""
        from schemas.events import AllocationSet

        if source.from_ledger is not None:
            from services.gateway.whatif_job import read_only

            try:  # resolved here: a relative SQLite path is relative to the gateway's directory
                url = read_only(self.ledger_url())
            except ValueError:
                raise HTTPException(503, "the gateway's ledger is in memory: upload applications instead") from None
            return {"from_ledger": source.from_ledger}, url
        text = source.applications or ""
        if not text.strip():
            raise HTTPException(422, "applications: no application given")
        try:
            allocations = [AllocationSet.model_validate(a) for a in source.allocations]
        except ValidationError as exc:
            first = exc.errors()[0]
            raise HTTPException(422, f"allocations.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
        (folder / "applications.jsonl").write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        _write_allocations(folder, allocations)
        return {"applications": sum(1 for line in text.splitlines() if line.strip()),
                "allocations": len(allocations)}, None

    def _work(self, job: Job, url: str | None) -> None:
        state = "failed"
        try:
            state = self._run_child(job, url)
        except Exception as exc:
            job.error = {"error": "failed", "message": f"the what-if failed: {type(exc).__name__}"}
        finally:
            progress = job.progress()
            if "from_ledger" in job.source and progress.get("lines"):
                job.source.update(applications=progress["lines"], allocations=progress.get("allocations", 0))
            job.finished_at = _now()
            job.state = state  # last: a reader that sees the state sees the rest

    def _run_child(self, job: Job, url: str | None) -> str:
        from services.gateway.whatif_job import LEDGER_URL_ENV
        from services.platform.lifecycle import die_with_parent

        parent = die_with_parent()

        def preexec() -> None:
            parent()
            os.nice(5)  # the gateway and the services keep their priority

        with (job.folder / "stderr.log").open("wb") as log:
            env = {**os.environ, **({LEDGER_URL_ENV: url} if url else {})}
            job.process = subprocess.Popen([sys.executable, "-m", "services.gateway.whatif_job", str(job.folder)],
                                           cwd=ROOT, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                           preexec_fn=preexec, env=env)
            try:
                code = job.process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                job.process.kill()
                job.process.wait()
                job.error = {"error": "timeout", "message": f"the what-if ran longer than {TIMEOUT_S:.0f} s"}
                return "failed"
        if code == 0 and (job.folder / "result.json").exists():
            return "done"
        try:
            job.error = json.loads((job.folder / "error.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            job.error = {"error": "failed", "message": f"the what-if process ended with code {code}"}
        return "failed"

    def _forget_old(self) -> None:
        finished = [j for j in self.recent() if j.state != "running"]
        for old in finished[KEEP:]:
            self._jobs.pop(old.id, None)
            shutil.rmtree(old.folder, ignore_errors=True)

    def file(self, job_id: str, name: str) -> Path:
        job = self._jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such what-if job (jobs do not survive a gateway restart)")
        if job.state != "done":
            raise HTTPException(409, f"the job is {job.state}")
        if name not in ("whatif.xlsx", *(f"{t}.csv" for t in TABLES)):
            raise HTTPException(404, "no such file")
        return job.folder / "out" / name


def _write_allocations(folder: Path, allocations: list[Any]) -> None:
    (folder / "allocations.json").write_text(
        json.dumps([a.model_dump(mode="json") for a in allocations], ensure_ascii=False), encoding="utf-8")


def _no_program_files(path: Path) -> None:
    """A pasted scenario's ``programs:`` would name files on the gateway's disk: refused at its position."""
    from dopomoga.whatif.positions import Located
    from dopomoga.whatif.scenario import ScenarioError

    try:
        located = Located.load(path, ScenarioError)
    except ScenarioError as exc:
        raise ScenarioRefused(str(exc).replace(str(path), "scenario.yaml", 1)) from None
    if isinstance(located.data, dict) and located.data.get("programs"):
        error = located.error(("programs",), "replacement program files are not accepted through the gateway "
                              "(use a shipped example or `dopomoga whatif`)", ScenarioError)
        raise ScenarioRefused(str(error).replace(str(path), "scenario.yaml", 1))


def jobs_of(g: Any) -> WhatifJobs:
    """The gateway's job store (made on first use; tests may set ``gateway.whatif`` before)."""
    if getattr(g, "whatif", None) is None:
        from services.platform.config import settings

        def url() -> str:
            return g.ledger().store.engine.url.render_as_string(hide_password=False)

        g.whatif = WhatifJobs(settings("gateway").var_dir, g.catalog, url)
    return g.whatif


def download(jobs: WhatifJobs, job_id: str, name: str) -> FileResponse:
    path = jobs.file(job_id, name)
    kind = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if name.endswith(".xlsx")
            else "text/csv; charset=utf-8")
    return FileResponse(path, media_type=kind, filename=name)


def install(app: FastAPI, gw: Callable[[], Any]) -> None:
    runner = Depends(api_key_check(gw, *RUN_ROLES))
    reader = Depends(api_key_check(gw, "viewer"))

    @app.post("/whatif", status_code=202, tags=["budget"],
              responses={**ERRORS, 409: {"model": ErrorBody, "description": "a what-if is already running"},
                         422: {"description": "the scenario does not load (message with file:line:column)"}})
    def start_whatif(request: WhatifRequest, principal: Principal = runner) -> Any:
        """Run a what-if (baseline and scenario, decisions and budgets, on temporary ledgers) in the
        background; roles budget_admin or approver. Poll `GET /whatif/{job}`."""
        try:
            job = jobs_of(gw()).start(request, principal.name)
        except ScenarioRefused as exc:
            return JSONResponse(status_code=422, content=exc.body)
        except Busy as exc:
            return JSONResponse(status_code=409, content={
                "error": "conflict", "job": exc.job,
                "message": f"a what-if is already running (job {exc.job}); one runs at a time: retry when it ends"})
        return JSONResponse(status_code=202, content=job.view(with_result=False),
                            headers={"Location": f"/whatif/{job.id}"})

    @app.get("/whatif", tags=["operators"], responses=ERRORS)
    def list_whatif(principal: Principal = reader) -> dict[str, Any]:
        """The gateway's recent what-if jobs (newest first), without their results."""
        jobs = jobs_of(gw())
        return {"examples": examples(), "jobs": [j.view(with_result=False) for j in jobs.recent()]}

    @app.get("/whatif/{job_id}", tags=["operators"], responses={**ERRORS, 404: {"model": ErrorBody}})
    def get_whatif(job_id: JobPath, principal: Principal = reader) -> dict[str, Any]:
        """A job's state and progress; once done, the comparison (kopiyky and formatted hryvnias)."""
        job = jobs_of(gw()).get(job_id)
        if job is None:
            raise HTTPException(404, "no such what-if job (jobs do not survive a gateway restart)")
        return job.view()

    @app.get("/whatif/{job_id}/whatif.xlsx", tags=["operators"], response_class=FileResponse,
             responses={**ERRORS, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
    def whatif_xlsx(job_id: JobPath, principal: Principal = reader) -> FileResponse:
        """The comparison as a workbook (programs, months, people; exact amounts)."""
        return download(jobs_of(gw()), job_id, "whatif.xlsx")

    @app.get("/whatif/{job_id}/{table}.csv", tags=["operators"], response_class=FileResponse,
             responses={**ERRORS, 404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
    def whatif_csv(job_id: JobPath, table: Annotated[str, PathParam(pattern=r"^(programs|months|people)$")],
                   principal: Principal = reader) -> FileResponse:
        """One table as CSV (UTF-8, amounts in exact hryvnias), as `dopomoga whatif --out` writes it."""
        return download(jobs_of(gw()), job_id, f"{table}.csv")
