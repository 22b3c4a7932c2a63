"""Console page «Що якби» / "What if": start a what-if, watch it, read the comparison.

The form (budget admins and approvers): a shipped scenario (``examples/whatif/*.yaml``) or pasted
YAML; the data: a ledger year, or an uploaded applications file (JSONL) with its allocations
(JSON, as ``examples/allocations.json``). The job runs in the gateway's job store
(``services.gateway.whatif``, the same as ``POST /whatif``): while it runs the page reloads itself
every two seconds (a ``<meta refresh>``, no script); when it is done it shows the programs that
changed, the months, the largest per-person changes (masked ids) and paid by month, baseline vs
scenario, drawn by the console's own chart. Every signed-in viewer may read; starting is audited.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from services.gateway.console.chart import plan_vs_paid
from services.gateway.console.i18n import translate
from services.gateway.console.pages import titles
from services.gateway.console.web import check_csrf, current_user, lang_of, need, redirect, render
from services.gateway.whatif import (
    JOB_ID,
    RUN_ROLES,
    TABLES,
    Busy,
    ScenarioRefused,
    WhatifRequest,
    download,
    examples,
    jobs_of,
)

UPLOAD_LIMIT = 8 * 1024 * 1024  # the gateway's body limit refuses more before this is read


def _changed_month(m: dict[str, Any]) -> bool:
    return bool(m["paid_change_kop"] or m["coefficient_baseline"] != m["coefficient_scenario"]
                or m["allocation_baseline_kop"] != m["allocation_scenario_kop"]
                or m["need_baseline_kop"] != m["need_scenario_kop"])


def _changed_program(p: dict[str, Any]) -> bool:
    return bool(p["payable_change_kop"] or p["gained"] or p["lost"] or p["coefficient_changes"]
                or p["entitled_baseline_kop"] != p["entitled_scenario_kop"])


def _cost_by_month(months: list[dict[str, Any]], changed: set[str], kind: str,
                   year: str) -> tuple[Any, list[str]]:
    """Paid by month of one year, baseline and scenario: the programs that changed (``changed``) or all.

    The year is the one asked for, else the year whose paid total changed most (then the latest).
    Returns ``("YYYY", {period: (baseline kop, scenario kop)})`` (or ``()`` without months) and the years.
    """
    by_year: dict[str, dict[str, list[int]]] = {}
    for m in months:
        if kind == "changed" and m["program_id"] not in changed:
            continue
        cell = by_year.setdefault(m["period"][:4], {}).setdefault(m["period"], [0, 0])
        cell[0] += m["paid_baseline_kop"]
        cell[1] += m["paid_scenario_kop"]
    years = sorted(by_year)
    if not years:
        return (), years
    if year not in by_year:
        year = max(years, key=lambda y: (abs(sum(s - b for b, s in by_year[y].values())), y))
    series = {f"{year}-{n:02d}": tuple(by_year[year].get(f"{year}-{n:02d}", (0, 0))) for n in range(1, 13)}
    return (year, series), years


def router(gw, route_class: type[APIRoute] = APIRoute) -> APIRouter:
    r = APIRouter(include_in_schema=False, route_class=route_class)

    def form_page(request: Request, user: Any, status_code: int = 200, **values: Any) -> HTMLResponse:
        g = gw()
        jobs = jobs_of(g)
        try:  # the year of the latest decided month, as the overview's default month
            latest = (g.status.latest_period() or "")[:4]
        except Exception:  # the status store is a convenience here
            latest = ""
        context = {"example": "pm-plus-10", "yaml": "", "source": "ledger",
                   "year": latest or str(dt.date.today().year), **values}
        return render(request, g, "whatif.html", user, status_code=status_code, examples=examples(),
                      jobs=[j.view(with_result=False) for j in jobs.recent()], can_run=user.has(*RUN_ROLES),
                      **context)

    @r.get("/console/whatif", response_class=HTMLResponse)
    def whatif_form(request: Request) -> HTMLResponse:
        user = current_user(request, gw())
        need(user, "viewer", *RUN_ROLES)
        return form_page(request, user)

    @r.post("/console/whatif", response_class=HTMLResponse)
    async def whatif_start(request: Request, csrf: str = Form(""), example: str = Form(""), yaml: str = Form(""),
                           source: str = Form("ledger"), year: str = Form(""),
                           applications: UploadFile | None = File(None),
                           allocations: UploadFile | None = File(None)) -> Any:
        g = gw()
        user = current_user(request, g)
        check_csrf(user, csrf)
        need(user, *RUN_ROLES)
        lang = lang_of(request)
        kept = {"example": example, "yaml": yaml, "source": source, "year": year}
        body: dict[str, Any] = {"example": example} if example else {"scenario": yaml}
        try:
            if source == "upload":
                apps = (await applications.read(UPLOAD_LIMIT)).decode("utf-8") if applications else ""
                raw = (await allocations.read(UPLOAD_LIMIT)) if allocations else b""
                given = json.loads(raw) if raw.strip() else []
                commands = given.get("allocations", []) if isinstance(given, dict) else given
                body["source"] = {"applications": apps, "allocations": commands}
            elif year.strip().isdigit():
                body["source"] = {"from_ledger": int(year)}
            else:
                return form_page(request, user, 422, error=translate("invalid", lang, x=translate("year", lang)),
                                 **kept)
            wanted = WhatifRequest.model_validate(body)
        except (ValueError, UnicodeDecodeError) as exc:  # a bad year, file or JSON; pydantic's errors too
            text = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]) \
                if isinstance(exc, ValidationError) else type(exc).__name__
            return form_page(request, user, 422, error=translate("invalid", lang, x=text), **kept)
        try:  # checking the scenario and writing the upload take a moment: not on the event loop
            job = await run_in_threadpool(jobs_of(g).start, wanted, user.login)
        except ScenarioRefused as exc:
            return form_page(request, user, 422, error=exc.body["message"], **kept)
        except Busy as exc:
            return form_page(request, user, 409, error=translate("whatif_busy", lang, x=exc.job), running=exc.job,
                             **kept)
        except HTTPException as exc:
            return form_page(request, user, exc.status_code, error=str(exc.detail), **kept)
        await run_in_threadpool(g.users.record, user.login, "whatif_started", job.id,
                                f"{job.scenario}; {json.dumps(job.source)}")
        return redirect(f"/console/whatif/{job.id}")

    @r.get("/console/whatif/{job_id}", response_class=HTMLResponse)
    def whatif_job(request: Request, job_id: str, year: str = "", chart: str = "changed") -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        need(user, "viewer", *RUN_ROLES)
        job = jobs_of(g).get(job_id[:16])
        if job is None:
            raise HTTPException(404, "not found")
        view = job.view()
        result = view.get("result")
        context: dict[str, Any] = {"job": view, "names": {}}
        if result is not None:
            lang = lang_of(request)
            context["names"] = titles(g, lang)  # a program's title beside its id, as on the overview
            changed = [p for p in result["programs"] if _changed_program(p)]
            chart = chart if chart in ("changed", "all") and changed else "all"
            shown, years = _cost_by_month(result["months"], {p["program_id"] for p in changed}, chart, year)
            series = [(p, b, s) for p, (b, s) in shown[1].items()] if shown else []
            context.update(
                result=result, programs=changed, unchanged=len(result["programs"]) - len(changed),
                months=[m for m in result["months"] if _changed_month(m)], chart_kind=chart,
                chart_year=shown[0] if shown else "", years=years, can_narrow=bool(changed),
                chart=plan_vs_paid(series, translate("baseline", lang), translate("scenario", lang),
                                   chart_id="whatif-chart"),
                tables=TABLES)
        return render(request, g, "whatif_job.html", user, **context)

    @r.get("/console/whatif/{job_id}/{name}")
    def whatif_file(request: Request, job_id: str, name: str) -> FileResponse:
        g = gw()
        user = current_user(request, g)
        need(user, "viewer", *RUN_ROLES)
        if not re.match(JOB_ID, job_id):
            raise HTTPException(404, "not found")
        return download(jobs_of(g), job_id, name)

    return r
