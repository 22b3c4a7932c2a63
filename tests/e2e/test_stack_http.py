"""Against the running stack over HTTP (no browser): a viewer walks every route and never receives a
full РНОКПП or IBAN; a 1 000-application registry batch is published within a second."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from tests.e2e.conftest import APPS, CENT, PASSWORD, invalid_application
from tests.e2e.test_whatif_browser import finished_whatif

pytestmark = pytest.mark.browser

#: Console pages a viewer can open (every GET route of the console, with its parameters filled in).
CONSOLE = ["/", "/?period=2023-04", f"/?period=2023-04&chart={CENT}", "/console/applications",
           "/console/applications?status=decided", "/console/applications?status=dead_lettered",
           "/console/applications?q=e2e", "/console/decisions/e2e-cent-0", "/console/decisions/e2e-cent-1",
           "/console/dead-letters", "/console/programs",
           f"/console/programs/{CENT}", f"/console/budget?program_id={CENT}&year=2023", "/console/reports?year=2023",
           "/console/reports/need-2023.csv", "/console/registers", "/login", "/docs", "/redoc"]


def secrets() -> set[str]:
    bad = json.loads(invalid_application())
    values = {a.applicant.id for a in APPS} | {a.payment.iban for a in APPS if a.payment.iban}
    values |= {bad["applicant"]["id"], bad["payment"]["iban"]} - {None}
    return values


def api_routes(client: httpx.Client, **more: str) -> list[str]:
    """Every GET path of the OpenAPI document, with example values for its parameters."""
    fill = {"application_id": "e2e-cent-0", "program_id": CENT, "period": "2023-04", **more}
    paths = []
    for path, ops in client.get("/openapi.json").json()["paths"].items():
        if "get" in ops:
            paths.append(re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], path))
    return paths


def test_a_viewer_never_receives_a_full_identifier_or_iban(stack):
    hidden = secrets()
    assert len(hidden) >= 4
    job = finished_whatif(stack["base"], "pm-plus-10")["job"]  # a what-if's pages and downloads are walked too
    with httpx.Client(base_url=stack["base"], timeout=20, follow_redirects=True) as web:
        signed = web.post("/login", data={"login": "viewer", "password": PASSWORD, "next": "/"})
        assert signed.status_code == 200 and 'id="who"' in signed.text
        dead = web.get("/console/dead-letters").text
        listed = web.get("/console/applications?q=e2e").text
        pages = CONSOLE + sorted(set(re.findall(r'href="(/console/dead-letters/[^"]+)"', dead)))
        pages += ["/console/whatif", f"/console/whatif/{job}", f"/console/whatif/{job}/people.csv"]
        pages += sorted(set(re.findall(r'href="(/console/decisions/[^"]+)"', listed)))
        for path in pages:
            response = web.get(path)
            assert response.status_code == 200, path
            assert not any(v in response.text for v in hidden), path
        assert web.get("/console/registers/x/2023-04/bank.utf-8.csv").status_code == 403  # full data: admins only
    api = stack["api"]
    extra = ["/dead-letters?per_page=200", "/applications/e2e-missing-fact", "/budget/need-report?year=2023",
             "/parameters?as_of=2023-04-01"]
    for path in api_routes(api, job_id=job, table="people") + extra:
        if path == "/budget/need-report":
            continue  # needs ?year, walked in extra
        response = api.get(path)
        assert response.status_code == 200, (path, response.text[:200])
        assert not any(v in response.text for v in hidden), path


def test_a_thousand_application_batch_is_published_within_a_second(stack):
    from dopomoga.rules.programs import Catalog
    from services.devstack.synthetic import SyntheticRegistry

    known = {p["id"] for p in stack["api"].get("/programs").json()}  # the gateway's catalog, as it loaded it
    apps = [a for a in SyntheticRegistry(Catalog.load(), seed=17, submitted_on="2023-06-05").generate(1600)
            if a.program_id != CENT and a.program_id in known][:1000]
    assert len(apps) == 1000
    body = "[" + ",".join(a.model_dump_json() for a in apps) + "]"
    with httpx.Client(base_url=stack["base"], headers={"X-API-Key": "dev-registry",
                                                       "Content-Type": "application/json"}, timeout=30) as api:
        api.post("/applications", content=body[:0] + "[" + apps[0].model_dump_json().replace(
            apps[0].application_id, "warm-up-1") + "]")  # the producer's connection is made once
        started = time.perf_counter()
        response = api.post("/applications", content=body)
        took = time.perf_counter() - started
    assert response.status_code == 202, response.text[:500]
    assert response.json()["accepted"] == 1000
    print(f"\n1 000-application batch: {took:.3f} s")
    # The target is 1 s on the 2-core machine; the bound leaves room for a loaded CI machine.
    assert took < 2.5, f"{took:.2f} s"
