"""Browser tests: a real stack (embedded broker, the five services, the gateway on a free port with
DOPOMOGA_DEV=1) and Debian's Chromium driven by Selenium through chromedriver.

Chromium runs headless with every host but 127.0.0.1 unresolvable (``--host-resolver-rules``), so
each page - the console, ``/docs``, ``/redoc`` - is shown to work with the network cut.
Screenshots go to ``var/screenshots/``. Without chromium/chromedriver the suite skips, except
under ``CI=true`` where it fails (``make test`` installs them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from schemas.events import AllocationSet, MonthlyPlan
from tests.factories import application

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "var" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CENT = "zhytomyr.centenarians"
PASSWORD = "dopomoga"
#: Three April 2023 claims of 10 000 UAH against 5 000 UAH a month (year to date: 20 000 UAH):
#: two paid, one deferred - the month's coefficient is 66,67 % until it is closed.
APPS = [application(CENT, {"resident_of_community": True}, birth_date="1921-02-03", person=9100 + n,
                    application_id=f"e2e-cent-{n}", submitted_on="2023-04-03") for n in range(3)]
ALLOCATION = AllocationSet(event_id="e2e-alloc-2023", occurred_at=dt.datetime(2023, 1, 2, tzinfo=dt.UTC),
                           program_id=CENT, year=2023, annual_kop=6_000_000, plan=MonthlyPlan(kind="even"),
                           amendment_id="e2e-initial", legal_reference="тестовий обсяг")


def _browser_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (httpx.HTTPError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {getattr(predicate, '__name__', 'a condition')}")


def invalid_application() -> bytes:
    """A claim the eligibility service dead-letters (a required fact is missing); a registry corrects it."""
    body = json.loads(application(CENT, {"resident_of_community": True}, birth_date="1922-05-06", person=9200,
                                  application_id="e2e-missing-fact", submitted_on="2023-04-04").model_dump_json())
    body["facts"] = {}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not _browser_available():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromedriver are required (make test installs them)")
        pytest.skip("chromium/chromedriver not installed (apt-get install chromium chromium-driver)")
    from services.devstack.broker import start_broker
    from services.devstack.registry import Registry
    from services.devstack.supervisor import Supervisor, add_services, service_env
    from services.platform.topology import SERVICES, create_topics

    var = tmp_path_factory.mktemp("e2e-var")
    broker = start_broker(log_path=var / "broker.log")
    create_topics(broker.bootstrap)
    port = _free_port()
    extra = {"DOPOMOGA_DEV": "1", "DOPOMOGA_GATEWAY_PORT": str(port), "DOPOMOGA_REGISTERS": str(var / "registers")}
    envs = service_env(broker.url, var, prefix=f"e2e{os.getpid()}-{uuid.uuid4().hex[:4]}-", metrics={}, extra=extra)
    supervisor = Supervisor(backoff_s=0.5)
    add_services(supervisor, [s.name for s in SERVICES], envs, var)
    supervisor.start()
    base = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=base, headers={"X-API-Key": "dev-viewer"}, timeout=10)
    try:
        wait_for(lambda: api.get("/healthz").json()["development_keys"], 60)
        with Registry(broker.bootstrap) as registry:
            registry.command(ALLOCATION)
            wait_for(lambda: api.get(f"/budget/{CENT}/2023-04").json()["allocation_kop"] > 0, 60)
            registry.publish(APPS)
            registry.publish_raw([invalid_application()])
        wait_for(lambda: all(api.get(f"/applications/{a.application_id}").json()["status"] == "decided"
                             for a in APPS), 90)
        wait_for(lambda: api.get("/applications/e2e-missing-fact").json()["status"] == "dead_lettered", 60)
        yield {"base": base, "api": api, "var": var, "bootstrap": broker.bootstrap}
    finally:
        api.close()
        supervisor.stop()
        broker.stop()


@pytest.fixture(scope="session")
def browser(stack):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = Path(tempfile.mkdtemp(prefix="e2e-downloads-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000", "--lang=uk",
                f"--user-data-dir={tempfile.mkdtemp(prefix='e2e-chromium-')}",
                # the network is cut: only the gateway on 127.0.0.1 resolves
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(3)  # a find waits briefly for an element a page is still rendering
    driver.downloads = downloads  # type: ignore[attr-defined]
    yield driver
    driver.quit()
    shutil.rmtree(downloads, ignore_errors=True)


@pytest.fixture
def shot(browser, request):
    """Call ``shot()`` to save the current page as ``var/screenshots/<test name>.png``; saved at teardown too."""
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(suffix: str = "") -> Path:
        path = SHOTS / re.sub(r"[^\w.-]+", "_", f"{request.node.name}{suffix}.png")
        browser.save_screenshot(str(path))
        return path

    yield take
    take("-end")
