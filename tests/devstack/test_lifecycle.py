"""Processes die with their parent and stop within 10 s of SIGTERM, broker or not (issue 15, item 5).

Before ``services.platform.lifecycle``: after the supervisor was SIGKILLed, eligibility,
calculation and budget kept running (28 minutes in the issue's run), and with the broker gone
they ignored SIGTERM for more than 25 s (measured 2026-11-29)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from services.platform.topology import SERVICES

HARNESS = Path(__file__).with_name("lifecycle_stack.py")
ROOT = Path(__file__).resolve().parents[2]


def running(pid: int) -> bool:
    """Alive and not a zombie (an exited child nobody has reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _started(var: Path) -> bool:
    """Every stream service logged ``starting`` and the treasury follows (Tansu 0.6.0 lists no groups)."""
    def logged(name: str, event: str) -> bool:
        path = var / f"{name}.log"
        return path.exists() and f'"event": "{event}"' in path.read_text(errors="replace")

    return all(logged(s.name, "starting") for s in SERVICES if s.pipeline) and logged("treasury", "treasury_following")


def _gateway_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def stack(tmp_path):
    """The harness (a supervisor with the broker and every service), once every consumer joined its group."""
    pidfile = tmp_path / "pids.json"
    harness = subprocess.Popen([sys.executable, str(HARNESS), str(pidfile), str(tmp_path)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=open(tmp_path / "harness.log", "wb"))
    pids: dict = {}
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert harness.poll() is None, (tmp_path / "harness.log").read_text()[-2000:]
            if pidfile.exists() and not pids:
                pids = json.loads(pidfile.read_text())
            if pids and _started(tmp_path) and _gateway_up(pids["gateway_port"]):
                time.sleep(10)  # the Faust consumers join their groups (about 3-5 s on Tansu)
                break
            time.sleep(1)
        else:
            pytest.fail(f"the stack did not come up in 180 s: {pids}")
        yield harness, pids
    finally:
        harness.kill()
        harness.wait()
        for key, pid in pids.items():
            if key not in ("bootstrap", "gateway_port") and running(pid):
                os.kill(pid, signal.SIGKILL)


def _services(pids: dict) -> dict[str, int]:
    return {name: pids[name] for name in (s.name for s in SERVICES)}


def test_no_service_survives_a_sigkilled_supervisor(stack):
    harness, pids = stack
    children = {**_services(pids), "broker": pids["broker"]}
    assert all(running(pid) for pid in children.values())
    harness.send_signal(signal.SIGKILL)
    harness.wait()
    killed = time.monotonic()
    deadline = killed + 15  # SIGTERM from the kernel at once, then at most STOP_GRACE_S (8 s)
    while time.monotonic() < deadline and any(running(pid) for pid in children.values()):
        time.sleep(0.2)
    survivors = {name: pid for name, pid in children.items() if running(pid)}
    assert not survivors, f"still running {time.monotonic() - killed:.0f} s after the supervisor's SIGKILL: {survivors}"


def test_every_service_stops_within_10_s_of_sigterm_with_the_broker_gone(stack):
    harness, pids = stack
    harness.send_signal(signal.SIGSTOP)  # the supervisor must not restart what we stop
    try:
        os.kill(pids["broker"], signal.SIGKILL)
        time.sleep(3)  # the clients notice and start retrying
        services = _services(pids)
        sent = time.monotonic()
        for pid in services.values():
            os.kill(pid, signal.SIGTERM)
        stopped: dict[str, float] = {}
        while time.monotonic() < sent + 15 and len(stopped) < len(services):
            for name, pid in services.items():
                if name not in stopped and not running(pid):
                    stopped[name] = time.monotonic() - sent
            time.sleep(0.1)
        slow = {name: round(stopped.get(name, 99.0), 1) for name in services if stopped.get(name, 99.0) > 10}
        assert not slow, f"seconds from SIGTERM to exit (99 = still running after 15 s): {slow}"
    finally:
        harness.send_signal(signal.SIGCONT)
