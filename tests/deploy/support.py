"""Shared pieces of the deployment tests: the compose file, the tools (promtool, docker compose).

The tools are real programs, never stand-ins. Without them a test is skipped on a developer's
machine and fails under CI (``CI=true``), where ``.ci/run`` installs them first
(``deploy/install-tools.sh``).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DOPOMOGA_IMAGE = "dopomoga:latest"


def load_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def dopomoga_services(compose: dict) -> dict[str, dict]:
    """The services built from this repository's image (the one-shot jobs included)."""
    return {name: s for name, s in compose["services"].items() if s.get("image") == DOPOMOGA_IMAGE}


def long_running(compose: dict) -> dict[str, dict]:
    """Every service that is meant to stay up (not the one-shot ``restart: "no"`` jobs)."""
    return {name: s for name, s in compose["services"].items() if str(s.get("restart", "no")) != "no"}


def require_tool(name: str, what: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed ({what}); run `make deploy-tools` (deploy/install-tools.sh) as root"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")


def compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) when it works, else ``docker-compose`` (v1), else None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _import_first(*names: str):
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise ModuleNotFoundError(f"none of {names}")


def defined_metric_samples() -> set[str]:
    """Every sample name the services define (their observability module and the gateway's own)."""
    import prometheus_client

    observability = _import_first("services.platform.observability", "services.observability")
    gateway = _import_first("services.gateway.app")

    names: set[str] = set()
    for module in (observability, gateway):
        for value in vars(module).values():
            if isinstance(value, prometheus_client.metrics.MetricWrapperBase):
                base = value._name
                kind = value._type
                if kind == "counter":
                    names |= {base + "_total", base + "_created"}
                elif kind == "histogram":
                    names |= {base + "_bucket", base + "_sum", base + "_count", base + "_created"}
                else:
                    names.add(base)
    return names
