"""The console's «Що якби» page in a real headless Chromium against a running stack (tests/e2e/conftest.py).

A budget admin opens the page from the navigation, picks the shipped ПМ +10 % scenario, uploads the
demo applications and allocations (examples/), runs it, watches the page reload itself while the
job runs, and sees the programs table (the total row's change is positive), the months and the
per-person tables, and the chart of paid by month baseline vs scenario, drawn with no script and no
other host. The screenshot is the one in docs/img/console-whatif.png.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.test_console_browser import element, follow, sign_in

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


def test_a_budget_admin_runs_the_pm_plus_10_scenario_on_the_demo_data_and_sees_the_table_and_chart(
        stack, browser, shot):
    sign_in(browser, stack["base"], "admin")
    follow(browser, browser.find_element(By.ID, "nav-whatif"))
    Select(element(browser, "whatif-example")).select_by_value("pm-plus-10")
    browser.find_element(By.ID, "source-upload").click()
    browser.find_element(By.ID, "whatif-applications").send_keys(str(ROOT / "examples" / "applications.jsonl"))
    browser.find_element(By.ID, "whatif-allocations").send_keys(str(ROOT / "examples" / "allocations.json"))
    follow(browser, browser.find_element(By.ID, "whatif-run"))
    assert "/console/whatif/" in browser.current_url
    WebDriverWait(browser, 240, poll_frequency=1).until(
        lambda b: b.find_elements(By.ID, "whatif-programs") or b.find_elements(By.ID, "whatif-error"))
    assert not browser.find_elements(By.ID, "whatif-error")
    total = element(browser, "whatif-total")
    change = total.find_element(By.CSS_SELECTOR, "td.change").text
    assert re.fullmatch(r"\+[\d\s\u00a0\u202f]+,\d\d грн", change), change
    rows = browser.find_elements(By.CSS_SELECTOR, "#whatif-programs tbody tr")
    assert len(rows) >= 2 and any("zhytomyr." in r.text or "kamianske." in r.text for r in rows)
    chart = browser.find_element(By.ID, "whatif-chart")
    assert chart.tag_name == "svg" and chart.is_displayed()
    assert len(chart.find_elements(By.TAG_NAME, "rect")) >= 2
    assert browser.find_elements(By.ID, "whatif-people") and browser.find_elements(By.ID, "whatif-months")
    assert browser.execute_script("return document.scripts.length") == 0  # no JS library, no CDN
    shot()


def finished_whatif(base: str, example: str = "no-change", year: int = 2023, timeout: float = 240) -> dict:
    """Run a shipped scenario on a ledger year through the API as a budget admin; the finished job."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, headers={"X-API-Key": "dev-budget-admin"}, timeout=30) as api:
        while (started := api.post("/whatif", json={"example": example, "source": {"from_ledger": year}})
               ).status_code == 409:  # another test's run is still going: one at a time
            assert time.monotonic() < deadline, started.text
            time.sleep(1)
        assert started.status_code == 202, started.text
        while (job := api.get(f"/whatif/{started.json()['job']}").json())["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.5)
    return job


def test_the_running_gateway_replays_a_ledger_year_with_no_changes_to_the_same_kopiyky(stack):
    """Through the API of the real gateway process: its own ledger (the budget service's file), read
    by the job's process on a read-only connection."""
    job = finished_whatif(stack["base"])
    assert job["state"] == "done", job.get("error")
    assert job["source"]["applications"] >= 3 and job["source"]["allocations"] >= 1
    totals = job["result"]["totals"]
    assert totals["payable_baseline_kop"] == totals["payable_scenario_kop"] > 0
    assert totals["gained"] == totals["lost"] == totals["coefficient_changes"] == 0
