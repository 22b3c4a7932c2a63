"""Supervised service subprocesses: started with the right environment, restarted on crash,
stopped cleanly (SIGTERM, then SIGKILL) - used by `dopomoga up`, the streaming tests and the bench.
What runs and how comes from ``services.platform.topology.SERVICES``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from services.platform.config import metrics_port_variable
from services.platform.lifecycle import die_with_parent
from services.platform.topology import SERVICE_BY_NAME, SERVICES

log = structlog.get_logger("dopomoga.supervisor")


def terminate(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Ask a child process to stop (SIGTERM); kill it if it has not stopped within ``timeout``."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


@dataclass
class ServiceProcess:
    name: str
    module: str
    env: dict[str, str]
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    argv: list[str] | None = None  # default: python -m <module>
    base_env: dict[str, str] | None = None  # default: this process's environment

    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else None
        try:
            self.process = subprocess.Popen(
                self.argv or [sys.executable, "-m", self.module],
                env={**(os.environ if self.base_env is None else self.base_env), **self.env},
                stdout=out or subprocess.DEVNULL,
                stderr=subprocess.STDOUT if out else None,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the children
                preexec_fn=die_with_parent(),  # SIGTERM when the supervisor dies, even by SIGKILL
            )
        finally:
            if out:
                out.close()
        self.started_at = time.monotonic()
        log.info("service_started", service=self.name, pid=self.process.pid)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL (crash tests)."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.process is not None
        terminate(self.process, timeout)
        log.info("service_stopped", service=self.name)


@dataclass
class Supervisor:
    """Keeps its services running: a service that exits is restarted (with a short backoff)."""

    services: list[ServiceProcess] = field(default_factory=list)
    backoff_s: float = 1.0
    #: called (service, returncode) when a service exited and is being restarted: `dopomoga up` prints it
    on_exit: Callable[[ServiceProcess, int | None], None] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, service: ServiceProcess) -> ServiceProcess:
        self.services.append(service)
        return service

    def start(self) -> None:
        for service in self.services:
            if not service.alive():  # a service started beforehand (the broker) is only watched
                service.start()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            with self._lock:
                for service in self.services:
                    if service.process is not None and service.process.poll() is not None:
                        code = service.process.returncode
                        if self._stop.is_set():
                            return
                        if time.monotonic() - service.started_at < self.backoff_s:
                            continue
                        log.warning("service_exited", service=service.name, returncode=code)
                        if self.on_exit is not None:
                            try:
                                self.on_exit(service, code)
                            except Exception:  # a reporting failure never stops the supervision
                                pass
                        service.restarts += 1
                        service.start()

    def paused(self):
        """Hold the watcher (so a test can kill and restart a service itself)."""
        return self._lock

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        with self._lock:
            for service in self.services:
                if service.alive():
                    assert service.process is not None
                    service.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for service in self.services:
                if service.process is None:
                    continue
                try:
                    service.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    service.process.kill()
                    service.process.wait(5)

    def __enter__(self) -> Supervisor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def service_env(broker_url: str, var_dir: Path, prefix: str = "", metrics: dict[str, int] | None = None,
                extra: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Environment for each service of ``SERVICES`` (metrics ports: 0 = off)."""
    envs = {}
    for name in SERVICE_BY_NAME:
        env = {
            "DOPOMOGA_BROKER": broker_url,
            "DOPOMOGA_VAR": str(var_dir),
            "DOPOMOGA_APP_PREFIX": prefix,
            "PYTHONUNBUFFERED": "1",
        }
        if metrics is not None:
            env[metrics_port_variable(name)] = str(metrics.get(name, 0))
        env.update(extra or {})
        envs[name] = env
    return envs


def default_metrics_ports() -> dict[str, int]:
    """Each service's declared metrics port (``SERVICES``)."""
    return {spec.name: spec.metrics_port for spec in SERVICES}


def add_services(supervisor: Supervisor, names: Iterable[str], envs: dict[str, dict[str, str]],
                 logs: Path | None) -> Supervisor:
    """Add the named services of ``SERVICES`` (``python -m <module>`` each, logs in ``logs/<name>.log``)."""
    for name in names:
        spec = SERVICE_BY_NAME[name]
        supervisor.add(ServiceProcess(name, spec.module, envs[name], logs / f"{name}.log" if logs else None))
    return supervisor
