"""Console pages that read: overview, applications, a decision, programs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from services.gateway.console.chart import plan_vs_paid
from services.gateway.console.i18n import translate
from services.gateway.console.web import check_csrf, current_user, lang_of, render, share, uah
from services.gateway.masking import REVEAL_ROLES, mask, mask_iban, mask_id, mask_name

PER_PAGE = 50
LAG_ALERT = 1000  # records a service may be behind before the overview warns (as the Prometheus alert)


def hryvnias(value: Any) -> Any:
    """A program file's amount in hryvnias ("10000", "25.50") in the Ukrainian format."""
    try:
        return uah(int((Decimal(str(value)) * 100).to_integral_value()))
    except (InvalidOperation, ValueError):
        return value


def ledger(g: Any) -> Any:
    """The budget ledger, or an HTTPException (503) the console shows as a page."""
    return g.ledger()


def plain(row: Any) -> dict[str, Any]:
    return dataclasses.asdict(row) if dataclasses.is_dataclass(row) else dict(row)


def titles(g: Any, lang: str) -> dict[str, str]:
    return {p.id: (p.spec.title.en if lang == "en" else p.spec.title.uk) for p in g.catalog.programs.values()}


def program_list(g: Any) -> list[dict[str, str]]:
    return [{"id": pid} for pid in sorted(g.catalog.programs)]


def router(gw, route_class: type[APIRoute] = APIRoute) -> APIRouter:
    r = APIRouter(include_in_schema=False, route_class=route_class)

    @r.get("/", response_class=HTMLResponse)
    def overview(request: Request, period: str | None = None, chart: str | None = None) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        lang = lang_of(request)
        period = period if period and len(period) == 7 and period[4] == "-" else None
        period = period or g.status.latest_period() or dt.date.today().strftime("%Y-%m")
        year = int(period[:4])
        report = [plain(x) for x in ledger(g).need_report(year)]
        payables: dict[str, int] = {}
        try:
            for row in ledger(g).payables(year):
                item = plain(row)
                payables[item.get("program_id", "")] = payables.get(item.get("program_id", ""), 0) + int(
                    item.get("owed_kop", item.get("amount_kop", 0)) or 0)
        except Exception:  # payables are newer than some ledgers: the column shows a dash
            payables = {}
        tally = g.status.tally(period)
        names = titles(g, lang)
        rows, alerts = [], []
        for row in report:
            if row["period"] != period or not (row["allocation_kop"] or row["need_kop"] or row["paid_kop"]):
                continue
            counts = tally.get(row["program_id"], {})
            used = row["paid_kop"] + row["reserved_kop"]
            # what the month could spend: committed plus what is still available (year to date, carry-over)
            try:
                can_spend = used + ledger(g).status(row["program_id"], period, row.get("district")).available_kop
            except Exception:  # a district the ledger does not know: fall back to the month's plan
                can_spend = row["allocation_kop"]
            rows.append({**row, "title": names.get(row["program_id"], row["program_id"]),
                         "queue": counts.get("pending", 0) + counts.get("accepted", 0),
                         "deferred": counts.get("deferred", 0),
                         "payables_kop": payables.get(row["program_id"]) if payables else None})
            if can_spend and used * 10 >= can_spend * 9:
                alerts.append({"level": "warn", "text": translate(
                    "alert_used", lang, p=row["program_id"], m=period, x=share(used, can_spend))})
        for program, counts in sorted(tally.items()):
            if counts.get("deferred"):
                alerts.append({"level": "warn", "text": translate("alert_deferred", lang, p=program, n=counts["deferred"])})
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=24)).isoformat(timespec="seconds")
        fresh = g.status.dead_letters_since(since)
        if fresh:
            alerts.append({"level": "bad", "text": translate("alert_dead", lang, n=fresh)})
        follower = getattr(g, "follower", None)
        if follower is not None and not follower.connected and follower.last_error:
            alerts.append({"level": "bad", "text": translate("alert_follower", lang, e=follower.last_error)})
        lag = dict(getattr(follower, "lag", None) or {})
        for service, behind in sorted(lag.items()):
            if behind > LAG_ALERT:
                alerts.append({"level": "warn", "text": translate("alert_lag", lang, s=service, n=behind)})
        chosen = chart if chart in g.catalog.programs else None
        by_month: dict[str, list[int]] = {f"{year}-{m:02d}": [0, 0] for m in range(1, 13)}
        for row in report:
            if (chosen is None or row["program_id"] == chosen) and row["period"] in by_month:
                by_month[row["period"]][0] += row["allocation_kop"]
                by_month[row["period"]][1] += row["paid_kop"]
        svg = plan_vs_paid([(p, a, b) for p, (a, b) in by_month.items()], translate("plan", lang),
                           translate("paid", lang))
        return render(request, g, "overview.html", user, period=period, rows=rows, alerts=alerts, chart=svg, lag=lag,
                      chart_program=chosen, programs=program_list(g))

    @r.get("/console/applications", response_class=HTMLResponse)
    def applications(request: Request, q: str = "", program_id: str = "", status: str = "", period: str = "",
                     page: int = 1) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        page = max(1, min(page, 100_000))
        total, rows = g.status.search(application_id=q.strip()[:96] or None, program_id=program_id or None,
                                      status=status or None, period=period.strip()[:7] or None,
                                      limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
        query = urlencode({"q": q, "program_id": program_id, "status": status, "period": period})
        return render(request, g, "applications.html", user, rows=rows, total=total, q=q, program_id=program_id,
                      status=status, period=period, page=page, pages=math.ceil(total / PER_PAGE),
                      pager_query=query, programs=program_list(g))

    def decision_page(request: Request, application_id: str, revealed: bool) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        if len(application_id) > 96:
            raise HTTPException(404, "not found")
        book = ledger(g)
        payout = book.payout(application_id)
        entitlement = book.entitlement(application_id)
        if payout is None and entitlement is None:
            row = g.status.application(application_id)
            if row and row.get("status") == "dead_lettered" and row.get("dead_letter_id"):
                from services.gateway.console.web import redirect

                return redirect(f"/console/dead-letters/{row['dead_letter_id']}")
            raise HTTPException(404, "not found")
        sentence = " ".join(x for x in (entitlement.explanation_uk if entitlement else None,
                                        payout.explanation_uk if payout else None) if x)
        payee = (payout.payee if payout else entitlement.application.applicant).model_dump(mode="json")
        payment = (payout.payment if payout else entitlement.application.payment).model_dump(mode="json")
        iban = payment.get("iban")
        if not revealed:
            payee = {**payee, "id": mask_id(payee["id"]), "name": mask_name(payee["name"])}
            iban = mask_iban(iban) if iban else None
        ent = entitlement.model_dump(mode="json", exclude={"application"}) if entitlement else None
        trace = {"entitlement": ent, "payout": payout.model_dump(mode="json") if payout else None}
        operator = ent.pop("operator", None) if ent else None
        return render(request, g, "decision.html", user, application_id=application_id, sentence=mask(sentence),
                      payout=payout, entitlement=entitlement, payee=payee, iban=iban, revealed=revealed,
                      can_reveal=user.has(*REVEAL_ROLES),
                      trace_json=json.dumps(mask(trace), ensure_ascii=False, indent=1)[:200_000],
                      operator_json=json.dumps(operator, ensure_ascii=False, indent=1) if operator else None)

    @r.get("/console/decisions/{application_id}", response_class=HTMLResponse)
    def decision(request: Request, application_id: str) -> HTMLResponse:
        return decision_page(request, application_id, revealed=False)

    @r.post("/console/decisions/{application_id}/reveal", response_class=HTMLResponse)
    def reveal(request: Request, application_id: str, csrf: str = Form("")) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        check_csrf(user, csrf)
        if not user.has(*REVEAL_ROLES):
            raise HTTPException(403, "forbidden")
        g.users.record(user.login, "reveal_personal_data", application_id[:96], "payee id, name and IBAN")
        return decision_page(request, application_id, revealed=True)

    @r.get("/console/programs", response_class=HTMLResponse)
    def programs(request: Request) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        lang = lang_of(request)
        cities: dict[str, list[dict[str, Any]]] = {}
        for p in sorted(g.catalog.programs.values(), key=lambda p: p.id):
            city = g.catalog.cities.get(p.spec.city)
            cities.setdefault(city.name_uk if city else p.spec.city, []).append({
                "id": p.id, "title": p.spec.title.en if lang == "en" else p.spec.title.uk,
                "act": p.spec.legal_basis.act_uk, "clause": p.spec.legal_basis.clause_uk,
                "policy": p.spec.budget.policy, "versions": [v.effective_from.isoformat() for v in p.versions]})
        return render(request, g, "programs.html", user, cities=sorted(cities.items()))

    @r.get("/console/programs/{program_id}", response_class=HTMLResponse)
    def program(request: Request, program_id: str) -> HTMLResponse:
        g = gw()
        user = current_user(request, g)
        found = g.catalog.programs.get(program_id)
        if found is None:
            raise HTTPException(404, "not found")
        spec = found.spec.model_dump(mode="json", by_alias=True)
        names = sorted({n for v in found.versions for n in v.parameter_names})
        timeline = []
        for name in names:
            local = spec.get("parameters", {}).get(name)
            if local:
                unit = local.get("unit")
                rows = [{"date": d, "value": hryvnias(v.get("value")) if unit == "UAH" else v.get("value"),
                         "reference": v.get("reference", "")} for d, v in sorted(local.get("values", {}).items())]
            elif name in g.catalog.parameters.names():
                rows = [{"date": v.effective_from.isoformat(),
                         "value": uah(v.value) if v.unit == "UAH" else v.value, "reference": v.reference}
                        for v in g.catalog.parameters[name].values]
            else:
                continue
            timeline.append((name, rows))
        return render(request, g, "program.html", user, spec=spec, timeline=timeline)

    return r
