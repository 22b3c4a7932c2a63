"""What-if through the gateway (services/gateway/whatif.py): roles, a scenario's mistake answered
with its position, a job's life (409 while one runs, progress, the result, the downloads), the
same kopiyky as `dopomoga whatif` on the same input, a production ledger left untouched (read on a
connection that refuses writes), and the console page."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError

from dopomoga.budget.ledger import BudgetLedger
from dopomoga.rules.engine import Engine
from schemas.events import AllocationSet, ApplicationSubmitted
from services.gateway.app import Gateway, create_app
from services.gateway.auth import KeyStore
from services.gateway.ingest import IngestLog
from services.gateway.whatif import WhatifJobs
from services.gateway.whatif_job import read_only

ROOT = Path(__file__).resolve().parents[2]
APPLICATIONS = ROOT / "examples" / "applications.jsonl"
ALLOCATIONS = ROOT / "examples" / "allocations.json"
PM = ROOT / "examples" / "whatif" / "pm-plus-10.yaml"
KEYS = {"viewer": "k-viewer", "budget_admin": "k-admin", "registry": "k-registry", "approver": "k-approver"}
BAD = """scenario: typo
title_uk: Помилка в назві
parameters:
  - name: pm_genral
    from: 2023-07-01
    change_percent: "10"
    reference: тест
"""


def h(role: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


def allocations() -> list[dict]:
    return json.loads(ALLOCATIONS.read_text(encoding="utf-8"))["allocations"]


def client_for(catalog, tmp_path: Path, ledger=None) -> tuple[TestClient, Gateway]:
    keys = KeyStore.from_env({"DOPOMOGA_API_KEYS": "k-viewer=viewer:ops,k-admin=budget_admin:chief,"
                                                   "k-registry=registry:reg,k-approver=approver:sign"})
    gateway = Gateway(catalog=catalog, keys=keys, producer=object(), ledger=ledger,
                      ledger_factory=lambda: (_ for _ in ()).throw(RuntimeError("no ledger")),
                      ingest_log=IngestLog(":memory:"))
    gateway.whatif = WhatifJobs(tmp_path / "var", catalog,
                                lambda: gateway.ledger().store.engine.url.render_as_string(hide_password=False),
                                workers=1)
    return TestClient(create_app(gateway), raise_server_exceptions=False), gateway


def wait_done(client: TestClient, job: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        body = client.get(f"/whatif/{job}", headers=h("viewer")).json()
        seen.append(body["percent"])
        if body["state"] != "running":
            body["seen_percents"] = seen
            return body
        time.sleep(0.3)
    raise AssertionError(f"the what-if job did not finish in {timeout} s")


def upload(example: str = "pm-plus-10") -> dict:
    return {"example": example, "source": {"applications": APPLICATIONS.read_text(encoding="utf-8"),
                                           "allocations": allocations()}}


def test_only_budget_admins_and_approvers_start_a_whatif_and_registries_cannot_read_one(catalog, tmp_path):
    client, _ = client_for(catalog, tmp_path)
    body = upload()
    assert client.post("/whatif", json=body).status_code == 401
    assert client.post("/whatif", json=body, headers=h("viewer")).status_code == 403
    assert client.post("/whatif", json=body, headers=h("registry")).status_code == 403
    assert client.get("/whatif", headers=h("registry")).status_code == 403
    listed = client.get("/whatif", headers=h("viewer"))
    assert listed.status_code == 200 and listed.json()["jobs"] == []
    assert "pm-plus-10" in listed.json()["examples"]


def test_a_bad_parameter_name_is_refused_with_the_file_line_and_column_and_starts_nothing(catalog, tmp_path):
    client, _ = client_for(catalog, tmp_path)
    answer = client.post("/whatif", headers=h("approver"),
                         json={"scenario": BAD, "source": {"applications": APPLICATIONS.read_text(encoding="utf-8")}})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_scenario"
    assert (body["file"], body["line"], body["column"]) == ("scenario.yaml", 4, 11)
    assert body["message"].startswith("scenario.yaml:4:11: parameters.0.name: unknown parameter 'pm_genral'")
    assert "did you mean pm_general" in body["message"]
    assert str(tmp_path) not in answer.text  # the gateway's disk layout is not shown
    assert client.get("/whatif", headers=h("viewer")).json()["jobs"] == []


def test_a_pasted_scenario_may_not_name_program_files_on_the_gateways_disk(catalog, tmp_path):
    client, _ = client_for(catalog, tmp_path)
    text = ("scenario: sneaky\ntitle_uk: Файл\nprograms:\n  - {file: ../../../../etc/passwd, reference: тест}\n")
    answer = client.post("/whatif", headers=h("budget_admin"),
                         json={"scenario": text, "source": {"applications": APPLICATIONS.read_text(encoding="utf-8")}})
    assert answer.status_code == 422
    assert (answer.json()["file"], answer.json()["line"]) == ("scenario.yaml", 4)
    assert "root:" not in answer.text


def test_the_request_needs_one_scenario_and_one_source(catalog, tmp_path):
    client, _ = client_for(catalog, tmp_path)
    both = {"example": "pm-plus-10", "scenario": "x", "source": {"from_ledger": 2023}}
    assert client.post("/whatif", headers=h("approver"), json=both).status_code == 422
    neither = {"example": "pm-plus-10", "source": {}}
    assert client.post("/whatif", headers=h("approver"), json=neither).status_code == 422
    unknown = {"example": "no-such-scenario", "source": {"from_ledger": 2023}}
    assert client.post("/whatif", headers=h("approver"), json=unknown).status_code == 404
    no_ledger = {"example": "pm-plus-10", "source": {"from_ledger": 2023}}
    assert client.post("/whatif", headers=h("approver"), json=no_ledger).status_code == 503
    in_memory, _ = client_for(catalog, tmp_path, ledger=BudgetLedger("sqlite://", catalog))
    assert in_memory.post("/whatif", headers=h("approver"), json=no_ledger).status_code == 503
    assert client.get("/whatif", headers=h("viewer")).json()["jobs"] == []


def _csv_kop(text: str, column: str) -> list[int]:
    return [int(Decimal(row[column]) * 100) for row in csv.DictReader(io.StringIO(text))]


def test_a_job_runs_alone_reports_progress_and_gives_the_cli_s_exact_kopiyky(catalog, tmp_path):
    client, _ = client_for(catalog, tmp_path)
    started = client.post("/whatif", headers=h("approver"), json=upload())
    assert started.status_code == 202, started.text
    job = started.json()["job"]
    assert started.headers["location"] == f"/whatif/{job}" and started.json()["state"] == "running"
    second = client.post("/whatif", headers=h("budget_admin"), json=upload("no-change"))
    assert second.status_code == 409 and second.json()["job"] == job
    assert client.get(f"/whatif/{job}/whatif.xlsx", headers=h("viewer")).status_code == 409  # not yet

    done = wait_done(client, job)
    assert done["state"] == "done", done.get("error")
    lines = sum(1 for line in APPLICATIONS.read_text(encoding="utf-8").splitlines() if line.strip())
    assert done["percent"] == 100 and done["progress"]["baseline"] == lines  # every line decided or refused
    result = done["result"]
    assert result["scenario"] == "pm-plus-10-from-july-2023"
    assert result["decided_baseline"] + result["rejected_baseline"] == lines and result["rejected_baseline"] > 0

    cli = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "dopomoga.cli", "whatif", str(PM), "--applications", str(APPLICATIONS),
                    "--allocations", str(ALLOCATIONS), "--out", str(cli), "--workers", "1"],
                   cwd=ROOT, check=True, capture_output=True)
    for table in ("programs", "months", "people"):
        got = client.get(f"/whatif/{job}/{table}.csv", headers=h("viewer"))
        assert got.status_code == 200
        assert got.content == (cli / f"{table}.csv").read_bytes(), table  # byte for byte the CLI's tables

    programs_csv = (cli / "programs.csv").read_text(encoding="utf-8")
    totals = result["totals"]
    assert _csv_kop(programs_csv, "payable_scenario_uah")[-1] == totals["payable_scenario_kop"]
    assert _csv_kop(programs_csv, "payable_baseline_uah")[-1] == totals["payable_baseline_kop"]
    assert totals["payable_change_kop"] == totals["payable_scenario_kop"] - totals["payable_baseline_kop"] > 0
    assert isinstance(totals["payable_change_kop"], int) and totals["payable_change_text"].endswith("грн")
    assert sum(r["paid_scenario_kop"] for r in result["cost_by_month"]) == sum(
        r["paid_scenario_kop"] for r in result["months"])
    assert result["people"] and all("*" in p["payee"] for p in result["people"])

    xlsx = client.get(f"/whatif/{job}/whatif.xlsx", headers=h("viewer"))
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    # the second job may start now that the first is done
    again = client.post("/whatif", headers=h("budget_admin"), json=upload("no-change"))
    assert again.status_code == 202
    nothing = wait_done(client, again.json()["job"])["result"]["totals"]
    assert nothing["payable_baseline_kop"] == nothing["payable_scenario_kop"] and nothing["gained"] == 0


def _ledger_file(catalog, path: Path, year: int) -> int:
    """A production-like ledger: the examples' allocations and every example claim; returns the year's claims."""
    ledger = BudgetLedger(f"sqlite:///{path}", catalog)
    engine = Engine(catalog)
    for item in allocations():
        ledger.apply(AllocationSet.model_validate(item))
    claims = 0
    for line in APPLICATIONS.read_text(encoding="utf-8").splitlines():
        try:
            entitlement = engine.decide(ApplicationSubmitted.model_validate_json(line))
        except Exception:
            continue  # the examples' invalid lines
        ledger.submit(entitlement)
        claims += entitlement.period.startswith(str(year))
    ledger.close()
    return claims


def _state(path: Path) -> dict[str, str]:
    """The ledger's bytes: the database file and its write-ahead log (-shm is only readers' shared memory)."""
    files = [path, path.with_name(path.name + "-wal")]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "" for p in files}


def test_a_whatif_from_the_ledger_leaves_it_byte_for_byte_unchanged(catalog, tmp_path):
    db = tmp_path / "production-ledger.sqlite"
    claims = _ledger_file(catalog, db, 2023)
    ledger = BudgetLedger(f"sqlite:///{db}", catalog)  # the gateway's own connection, as in production
    before = _state(db)
    client, _ = client_for(catalog, tmp_path, ledger=ledger)
    started = client.post("/whatif", headers=h("approver"),
                          json={"example": "pm-plus-10", "source": {"from_ledger": 2023}})
    assert started.status_code == 202, started.text
    done = wait_done(client, started.json()["job"])
    assert done["state"] == "done", done.get("error")
    assert done["source"]["applications"] == claims > 0 and done["source"]["allocations"] > 0
    assert done["result"]["decided_baseline"] == claims
    assert done["result"]["totals"]["payable_change_kop"] > 0
    assert _state(db) == before  # every byte of the ledger and of its write-ahead log as before
    ledger.close()
    assert str(db) not in (done_dir := next((tmp_path / "var" / "gateway-whatif").rglob("job.json"))).read_text()
    assert "sqlite" not in done_dir.read_text()  # the ledger's URL is handed over in the environment only


def test_the_job_reads_the_ledger_on_a_connection_that_refuses_writes(catalog, tmp_path):
    db = tmp_path / "ledger.sqlite"
    BudgetLedger(f"sqlite:///{db}", catalog).close()
    engine = create_engine(read_only(f"sqlite:///{db}"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM budget_claims")).scalar() == 0
        with pytest.raises(OperationalError, match="readonly"):
            conn.execute(text("DELETE FROM budget_claims"))
    engine.dispose()
    assert read_only(read_only(f"sqlite:///{db}")) == read_only(f"sqlite:///{db}")  # the job applies it again
    url = read_only("postgresql+psycopg://u:secret@db/ledger?options=-c%20statement_timeout%3D5000")
    assert read_only(url) == url
    parsed = make_url(url)
    assert parsed.query["options"] == "-c statement_timeout=5000 -c default_transaction_read_only=on"
    assert parsed.password == "secret" and parsed.database == "ledger"


def test_on_postgresql_the_job_s_ledger_connection_refuses_writes(catalog, pg_url):
    BudgetLedger(pg_url, catalog).close()
    engine = create_engine(read_only(pg_url))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM budget_claims")).scalar() == 0
            with pytest.raises(DBAPIError, match="read-only transaction"):
                conn.execute(text("DELETE FROM budget_claims"))
    finally:
        engine.dispose()


def _console(catalog, tmp_path: Path) -> TestClient:
    from services.gateway.status import StatusStore, engine_for
    from services.gateway.users import UserStore

    client, gateway = client_for(catalog, tmp_path)
    db = engine_for(f"sqlite:///{tmp_path / 'console.sqlite'}")
    gateway.status = StatusStore(db)
    gateway.users = UserStore(db, environ={"DOPOMOGA_DEV": "1"})
    return client


def _sign_in(client: TestClient, who: str) -> str:
    from tests.gateway.test_console import csrf, login

    login(client, who)
    page = client.get("/console/whatif")
    assert page.status_code == 200
    return csrf(page.text)


def test_the_console_page_runs_the_pm_scenario_on_an_upload_and_shows_tables_and_chart(catalog, tmp_path):
    client = _console(catalog, tmp_path)
    token = _sign_in(client, "viewer")
    assert 'id="nav-whatif"' in client.get("/").text  # in the navigation, one click from the start page
    assert 'id="whatif-form"' not in client.get("/console/whatif").text  # a viewer reads, does not run
    files = {"applications": ("applications.jsonl", APPLICATIONS.read_bytes(), "application/x-ndjson"),
             "allocations": ("allocations.json", ALLOCATIONS.read_bytes(), "application/json")}
    form = {"csrf": token, "example": "pm-plus-10", "source": "upload"}
    assert client.post("/console/whatif", data=form, files=files, follow_redirects=False).status_code == 403

    token = _sign_in(client, "admin")
    bad = client.post("/console/whatif", data={"csrf": token, "example": "", "yaml": BAD, "source": "upload"},
                      files=files)
    assert bad.status_code == 422 and "scenario.yaml:4:11: parameters.0.name: unknown parameter" in bad.text
    assert "pm_genral" in bad.text  # the pasted text is kept in the form to correct it
    no_year = client.post("/console/whatif", data={"csrf": token, "example": "pm-plus-10", "source": "ledger",
                                                   "year": "двадцять"})
    assert no_year.status_code == 422 and 'id="error"' in no_year.text and 'id="whatif-form"' in no_year.text
    started = client.post("/console/whatif", data={**form, "csrf": token}, files=files, follow_redirects=False)
    assert started.status_code == 303, started.text
    page_url = started.headers["location"]
    running = client.get(page_url).text
    assert 'http-equiv="refresh"' in running or 'id="whatif-programs"' in running
    deadline = time.monotonic() + 180
    while 'id="whatif-programs"' not in (page := client.get(page_url).text):
        assert 'id="whatif-error"' not in page and time.monotonic() < deadline
        time.sleep(0.5)
    assert 'http-equiv="refresh"' not in page
    assert 'id="whatif-chart"' in page and "<svg" in page and "cdn" not in page.lower()
    assert "zhytomyr." in page and 'id="whatif-people"' in page and 'id="whatif-total"' in page
    assert "грн" in page
    # staff read a program by its title, the id beside it (as on the overview), in the page's language
    assert catalog.get("zhytomyr.triplets").spec.title.uk[:40] in page
    english = client.get(page_url, params={"lang": "en"}).text
    assert "What if" in english and "Baseline" in english and "Programs (changed)" in english
    assert catalog.get("zhytomyr.triplets").spec.title.en[:40] in english
    client.cookies.set("dopomoga_lang", "uk")
    everything = client.get(page_url, params={"chart": "all", "year": "1999"})  # an unknown year: the default one
    assert everything.status_code == 200 and 'id="whatif-chart"' in everything.text
    _sign_in(client, "viewer")
    assert client.get(page_url).status_code == 200
    workbook = client.get(page_url + "/whatif.xlsx")
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"
    assert client.get(page_url + "/programs.csv").text.startswith("program_id,")
