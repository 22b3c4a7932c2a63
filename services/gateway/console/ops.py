"""Console pages that act: sign-in, dead letters (correct and resubmit), budget (maker-checker,
month close), reports and registers (downloads). Every action is in the audit trail."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError

from dopomoga.budget.commands import allocation_set, period_closed
from dopomoga.ids import decision_id
from schemas.events import ApplicationSubmitted
from services.gateway.console.i18n import translate
from services.gateway.console.pages import PER_PAGE, ledger, plain, program_list
from services.gateway.console.web import COOKIE, check_csrf, current_user, lang_of, need, redirect, render
from services.gateway.masking import mask, mask_text
from services.platform.topology import APPLICATIONS, BUDGET_COMMANDS, command_key

ADMIN, APPROVER, REGISTRY = "budget_admin", "approver", "registry"


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()[:5])


def _registers_root() -> Path:
    return Path(os.environ.get("DOPOMOGA_REGISTERS") or Path(os.environ.get("DOPOMOGA_VAR", "var")) / "registers")


def _reports_root() -> Path:
    return Path(os.environ.get("DOPOMOGA_VAR", "var")) / "reports"


def router(gw, route_class: type[APIRoute] = APIRoute) -> APIRouter:
    r = APIRouter(include_in_schema=False, route_class=route_class)

    def acting(request: Request, csrf: str, role: str) -> tuple[Any, Any, str]:
        """The gateway, the signed-in user (who must hold ``role``; the form's CSRF token checked), the language."""
        g = gw()
        user = current_user(request, g)
        check_csrf(user, csrf)
        need(user, role)
        return g, user, lang_of(request)

    # -- sign in ----------------------------------------------------------------------------------
    @r.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, gw(), "login.html", None, next=next if next.startswith("/") else "/")

    @r.post("/login", response_class=HTMLResponse)
    def login(request: Request, login: str = Form(""), password: str = Form(""), next: str = Form("/")) -> Any:
        g = gw()
        lang = lang_of(request)
        client = request.client.host if request.client else "-"
        keys = (f"ip:{client}", f"login:{login[:64].lower()}")
        waits = [w for w in (g.login_limiter.retry_after(k) for k in keys) if w]
        if waits:
            return render(request, g, "login.html", None, status_code=429, next=next,
                          error=translate("locked", lang, s=max(waits)))
        user = g.users.authenticate(login[:64], password)
        if user is None:
            for key in keys:
                g.login_limiter.failure(key)
            g.users.record(login[:64] or "-", "sign_in_failed", client)
            return render(request, g, "login.html", None, status_code=401, next=next, error=translate("bad_login", lang))
        for key in keys:
            g.login_limiter.success(key)
        g.users.record(user.login, "sign_in", client)
        response = redirect(next if next.startswith("/") and not next.startswith("//") else "/")
        response.set_cookie(COOKIE, g.users.open_session(user), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", max_age=8 * 3600)
        return response

    @r.post("/logout")
    def logout(request: Request) -> Response:
        g = gw()
        g.users.close_session(request.cookies.get(COOKIE))
        response = redirect("/login")
        response.delete_cookie(COOKIE)
        return response

    # -- dead letters -----------------------------------------------------------------------------
    @r.get("/console/dead-letters", response_class=HTMLResponse)
    def dead_letters(request: Request, service: str = "", reason_code: str = "", open_only: str = "",
                     page: int = 1) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        page = max(1, min(page, 100_000))
        total, rows = g.status.dead_letters(service=service[:32] or None, reason_code=reason_code[:96] or None,
                                            open_only=bool(open_only), limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
        for row in rows:
            row["reason"] = mask_text(row.get("reason") or "")
        query = urlencode({"service": service, "reason_code": reason_code, "open_only": open_only})
        return render(request, g, "dead_letters.html", user, rows=rows, total=total, service=service,
                      reason_code=reason_code, open_only=bool(open_only), page=page,
                      pages=math.ceil(total / PER_PAGE), pager_query=query)

    def dead_letter_page(request: Request, event_id: str, error: str | None = None, body: str | None = None,
                         message: str | None = None) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        dl = g.status.dead_letter(event_id[:96])
        if dl is None:
            raise HTTPException(404, "not found")
        dl["reason"] = mask_text(dl.get("reason") or "")
        original = dl.get("original")
        masked = json.dumps(mask(original), ensure_ascii=False, indent=2) if original is not None \
            else mask_text((dl.get("original_text") or "")[:20000])
        can = user.has(REGISTRY)
        editable = body if body is not None else (
            (json.dumps(original, ensure_ascii=False, indent=2) if original is not None else dl.get("original_text"))
            if can else "")
        return render(request, g, "dead_letter.html", user, dl=dl, masked=masked, editable=editable,
                      can_resubmit=can, error=error, message=message,
                      status_code=422 if error else 200)

    @r.get("/console/dead-letters/{event_id}", response_class=HTMLResponse)
    def dead_letter(request: Request, event_id: str) -> HTMLResponse:
        return dead_letter_page(request, event_id)

    @r.post("/console/dead-letters/{event_id}/resubmit", response_class=HTMLResponse)
    def resubmit(request: Request, event_id: str, body: str = Form(""), csrf: str = Form("")) -> Any:
        g, user, lang = acting(request, csrf, REGISTRY)
        dl = g.status.dead_letter(event_id[:96])
        if dl is None:
            raise HTTPException(404, "not found")
        if dl.get("resubmitted_as"):
            return dead_letter_page(request, event_id, error=translate("resubmit_note", lang))
        try:
            data = json.loads(body)
        except ValueError as exc:
            return dead_letter_page(request, event_id, body=body, error=translate("invalid", lang, x=f"JSON: {exc.msg}"))
        if not isinstance(data, dict):
            return dead_letter_page(request, event_id, body=body, error=translate("invalid", lang, x="JSON object"))
        original_id = dl.get("application_id")
        if not data.get("application_id") or data.get("application_id") == original_id:
            data["application_id"] = f"{(original_id or 'dl-' + event_id[:8])[:90]}-r1"
        data["event_id"] = decision_id("resubmitted", event_id)  # the same correction is the same event
        data["occurred_at"] = dt.datetime.now(dt.UTC).isoformat()
        try:
            app = ApplicationSubmitted.model_validate(data)
        except ValidationError as exc:
            return dead_letter_page(request, event_id, body=body, error=translate("invalid", lang, x=_errors(exc)))
        if app.program_id not in g.catalog.programs:
            return dead_letter_page(request, event_id, body=body, error=translate("invalid", lang, x=app.program_id))
        if g.status.application(app.application_id) is not None or g.ingest.seen(app.application_id) is not None:
            return dead_letter_page(request, event_id, body=body,
                                    error=translate("invalid", lang, x=f"{app.application_id}: exists"))
        now = dt.datetime.now(dt.UTC)
        if not g.status.mark_resubmitted(event_id, app.application_id, user.login, now):
            return dead_letter_page(request, event_id, error=translate("resubmit_note", lang))
        value = app.model_dump_json().encode("utf-8")
        try:
            g.publish(APPLICATIONS, app.application_id, value)
        except HTTPException:
            g.status.unmark_resubmitted(event_id)
            raise
        from services.gateway.ingest import fingerprint

        g.ingest.record(app.application_id, fingerprint(value))
        g.status.record_accepted([{"application_id": app.application_id, "program_id": app.program_id,
                                   "period": app.effective_period, "registry": app.registry}], now)
        g.users.record(user.login, "dead_letter_resubmitted", event_id, f"as {app.application_id}")
        return redirect(f"/console/dead-letters/{event_id}")

    # -- budget -----------------------------------------------------------------------------------
    def budget_page(request: Request, program_id: str, year: int, message: str | None = None,
                    error: str | None = None, status_code: int = 200) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        if program_id not in g.catalog.programs:
            program_id = sorted(g.catalog.programs)[0]
        months = [plain(x) for x in ledger(g).need_report(year, program_id)]
        return render(request, g, "budget.html", user, programs=program_list(g), program_id=program_id, year=year,
                      months=months, amendments=g.users.amendments(), trail=g.users.trail(60),
                      can_admin=user.has(ADMIN), can_approve=user.has(APPROVER), message=message, error=error,
                      status_code=status_code)

    @r.get("/console/budget", response_class=HTMLResponse)
    def budget(request: Request, program_id: str = "", year: int | None = None) -> HTMLResponse:
        g = gw()
        latest = g.status.latest_period()
        return budget_page(request, program_id, year or int((latest or dt.date.today().isoformat())[:4]))

    @r.post("/console/budget/propose", response_class=HTMLResponse)
    def propose(request: Request, csrf: str = Form(""), program_id: str = Form(""), year: int = Form(0),
                annual_uah: str = Form(""), plan: str = Form("even"), amendment_id: str = Form(""),
                legal_reference: str = Form("")) -> HTMLResponse:
        g, user, lang = acting(request, csrf, ADMIN)
        try:
            kop = int((Decimal(annual_uah.replace(" ", "").replace("\u00a0", "").replace(",", ".")) * 100)
                      .to_integral_exact())
            event = allocation_set(program_id=program_id, district=None, year=year, annual_kop=kop,
                                   plan={"kind": plan}, amendment_id=amendment_id, legal_reference=legal_reference,
                                   occurred_at=dt.datetime.now(dt.UTC))
        except (InvalidOperation, ValueError) as exc:
            text = _errors(exc) if isinstance(exc, ValidationError) else translate("annual", lang)
            return budget_page(request, program_id, year, error=translate("invalid", lang, x=text), status_code=422)
        if program_id not in g.catalog.programs:
            raise HTTPException(404, "not found")
        request_body = {"program_id": program_id, "district": None, "year": year, "annual_kop": event.annual_kop,
                        "plan": {"kind": plan}, "amendment_id": amendment_id, "legal_reference": legal_reference}
        ident = g.users.propose(request_body, user)
        g.users.record(user.login, "allocation_proposed", f"{program_id} {year}", f"#{ident} {amendment_id}")
        return budget_page(request, program_id, year, message=translate("proposed", lang, x=ident))

    @r.post("/console/budget/amendments/{ident}", response_class=HTMLResponse)
    def decide(request: Request, ident: int, csrf: str = Form(""), decision: str = Form("")) -> HTMLResponse:
        g, user, lang = acting(request, csrf, APPROVER)
        amendment = g.users.amendment(ident)
        if amendment is None:
            raise HTTPException(404, "not found")
        body = amendment["request"]
        year = int(body["year"])
        if amendment["proposed_by"] == user.login:
            return budget_page(request, body["program_id"], year, error=translate("own_amendment", lang), status_code=403)
        approve = decision == "approve"
        event = allocation_set(occurred_at=dt.datetime.now(dt.UTC), **body) if approve else None
        if not g.users.decide(ident, user, approve, event.event_id if event else None):
            return budget_page(request, body["program_id"], year, error=translate("not_found", lang), status_code=409)
        if event is not None:
            key = command_key(event.program_id, event.year, event.district)
            g.publish(BUDGET_COMMANDS, key, event.model_dump_json().encode("utf-8"))
        g.users.record(user.login, "allocation_approved" if approve else "allocation_rejected",
                       f"{body['program_id']} {year}", f"#{ident} {body['amendment_id']}")
        return budget_page(request, body["program_id"], year,
                           message=translate("approved" if approve else "rejected", lang, x=ident))

    @r.get("/console/budget/close", response_class=HTMLResponse)
    def close_confirm(request: Request, program_id: str, period: str) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        need(user, ADMIN)
        if program_id not in g.catalog.programs or len(period) != 7:
            raise HTTPException(404, "not found")
        return render(request, g, "close.html", user, program_id=program_id, period=period)

    @r.post("/console/budget/close", response_class=HTMLResponse)
    def close(request: Request, csrf: str = Form(""), program_id: str = Form(""), period: str = Form(""),
              confirm: str = Form("")) -> HTMLResponse:
        g, user, lang = acting(request, csrf, ADMIN)
        if program_id not in g.catalog.programs:
            raise HTTPException(404, "not found")
        if confirm != "yes":
            return render(request, g, "close.html", user, program_id=program_id, period=period,
                          error=translate("confirm_close", lang), status_code=422)
        closed_by = "".join(c if c.isalnum() or c in "._:-" else "-" for c in user.login)[:96] or "operator"
        try:
            event = period_closed(program_id, period, None, closed_by=closed_by, occurred_at=dt.datetime.now(dt.UTC))
        except ValidationError as exc:
            return budget_page(request, program_id, int(period[:4]) if period[:4].isdigit() else 2000,
                               error=translate("invalid", lang, x=_errors(exc)), status_code=422)
        g.publish(BUDGET_COMMANDS, command_key(program_id, period, None), event.model_dump_json().encode("utf-8"))
        g.users.record(user.login, "month_closed", f"{program_id} {period}", event.event_id)
        return budget_page(request, program_id, int(period[:4]), message=translate("sent", lang, x=event.event_id))

    # -- reports and registers --------------------------------------------------------------------
    @r.get("/console/reports", response_class=HTMLResponse)
    def reports(request: Request, year: int | None = None) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        year = year or int((g.status.latest_period() or dt.date.today().isoformat())[:4])
        rows = [x for x in (plain(y) for y in ledger(g).need_report(year))
                if x["need_kop"] or x["allocation_kop"] or x["paid_kop"]]
        totals = {k: sum(x[k] for x in rows) for k in ("need_kop", "allocation_kop", "paid_kop")}
        root = _reports_root()
        files = sorted(p.name for p in root.iterdir() if p.is_file()) if root.is_dir() else []
        with_lines = getattr(getattr(ledger(g), "lines", None), "cities", {})  # cities with budget-lines.yaml
        return render(request, g, "reports.html", user, year=year, rows=rows, totals=totals, files=files,
                      cities=sorted((c, g.catalog.cities[c]) for c in with_lines if c in g.catalog.cities))

    @r.get("/console/reports/need-{year}.csv")
    def need_csv(request: Request, year: int) -> Response:
        g = gw()
        user = current_user(request, g)
        rows = [plain(y) for y in ledger(g).need_report(year)]
        out = io.StringIO()
        columns = ["program_id", "district", "period", "claims", "need_kop", "allocation_kop", "paid_kop",
                   "reserved_kop", "shortfall_kop", "coefficient", "closed"]
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c) for c in columns])
        writer.writerow(["TOTAL", "", "", sum(r["claims"] for r in rows),
                         *(sum(r[c] for r in rows) for c in ("need_kop", "allocation_kop", "paid_kop",
                                                               "reserved_kop", "shortfall_kop")), "", ""])
        g.users.record(user.login, "report_downloaded", f"need-{year}.csv")
        return Response(out.getvalue().encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="need-{year}.csv"'})

    @r.get("/console/reports/{kind}-{year}.xlsx")
    def document(request: Request, kind: str, year: int, city: str = "") -> Response:
        """The department's documents as `dopomoga budget report KIND --out FILE.xlsx` writes them."""
        import tempfile

        from dopomoga import explain_uk as uk
        from dopomoga.budget import documents as d

        g = gw()
        user = current_user(request, g)
        book = ledger(g)
        if kind == "execution" and city in getattr(getattr(book, "lines", None), "cities", {}):
            found = book.execution_report(city, str(year))
            title, columns, rows, thousands = d.execution_title(found), d.EXECUTION_COLUMNS, d.execution_rows(found), True
        elif kind == "funding":
            title, columns, rows, thousands = (uk.funding_title_uk(year), d.FUNDING_COLUMNS,
                                               d.funding_rows(book.funding.report(year)), False)
        elif kind == "payables":
            title, columns, rows, thousands = (uk.payables_title_uk(year), d.PAYABLE_COLUMNS,
                                               d.payable_rows(book.payables(year)), False)
        else:
            raise HTTPException(404, "not found")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{kind}-{year}.xlsx"
            d.write(path, title, columns, rows, thousands_format=thousands)
            data = path.read_bytes()
        name = f"{kind}-{city + '-' if city else ''}{year}.xlsx"
        g.users.record(user.login, "report_downloaded", name)
        return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @r.get("/console/reports/files/{name}")
    def report_file(request: Request, name: str) -> FileResponse:
        g = gw()
        user = current_user(request, g)
        path = _reports_root() / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise HTTPException(404, "not found")
        g.users.record(user.login, "report_downloaded", name[:200])
        return FileResponse(path, filename=name)

    @r.get("/console/registers", response_class=HTMLResponse)
    def registers(request: Request) -> HTMLResponse:
        from dopomoga.treasury.reconcile import reconcile_dir

        g = gw()
        user = current_user(request, g)
        root = _registers_root()
        found = sorted(root.glob("*/*/control.json"), key=lambda p: (p.parent.name, p.parent.parent.name),
                       reverse=True) if root.is_dir() else []
        shown = []
        for control in found[:60]:
            directory = control.parent
            program_id, period = directory.parent.name, directory.name
            try:
                summary = json.loads(control.read_text(encoding="utf-8"))
                report = reconcile_dir(directory, ledger(g).final_payouts(program_id, period))
                ok, differences = report.ok, len(report.differences)
            except (OSError, ValueError) as exc:
                summary, ok, differences = {}, False, 1
                g.users.record(user.login, "register_unreadable", f"{program_id} {period}", type(exc).__name__)
            shown.append({"program_id": program_id, "period": period, "ok": ok, "differences": differences,
                          "count": summary.get("count", summary.get("total_count")),
                          "sum_kop": summary.get("sum_kop", summary.get("total_sum_kop")),
                          "files": sorted(p.name for p in directory.iterdir() if p.is_file())})
        return render(request, g, "registers.html", user, registers=shown, more=max(0, len(found) - 60))

    @r.get("/console/registers/{program_id}/{period}/{name}")
    def register_file(request: Request, program_id: str, period: str, name: str) -> FileResponse:
        g = gw()
        user = current_user(request, g)
        need(user, ADMIN)  # registers carry names and IBANs in full
        root = _registers_root().resolve()
        path = (root / program_id / period / name).resolve()
        if root not in path.parents or not path.is_file():
            raise HTTPException(404, "not found")
        g.users.record(user.login, "register_downloaded", f"{program_id}/{period}/{name}"[:200])
        return FileResponse(path, filename=name)

    return r
