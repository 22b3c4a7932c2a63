"""Service settings, from the environment (so `dopomoga up`, tests and `faust -A` agree)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.platform.topology import SERVICE_BY_NAME, bootstrap_of


@dataclass(frozen=True)
class ServiceSettings:
    service: str
    broker_url: str
    app_id: str
    var_dir: Path
    metrics_port: int | None
    batch_size: int
    batch_within_s: float

    @property
    def bootstrap(self) -> str:
        return bootstrap_of(self.broker_url)


def settings(service: str) -> ServiceSettings:
    """DOPOMOGA_BROKER (kafka://host:port), DOPOMOGA_APP_PREFIX (unique ids per test run),
    DOPOMOGA_VAR (state directory), DOPOMOGA_METRICS_PORT_<SERVICE> (0 = off),
    DOPOMOGA_BATCH / DOPOMOGA_BATCH_WITHIN (batch size and window), each also per service
    (DOPOMOGA_BATCH_WITHIN_BUDGET, ...), which wins."""
    spec = SERVICE_BY_NAME[service]
    prefix = os.environ.get("DOPOMOGA_APP_PREFIX", "")
    port_env = os.environ.get(metrics_port_variable(service))
    port = int(port_env) if port_env is not None else spec.metrics_port
    var_dir = Path(os.environ.get("DOPOMOGA_VAR", "var"))
    return ServiceSettings(
        service=service,
        broker_url=os.environ.get("DOPOMOGA_BROKER", "kafka://127.0.0.1:9092"),
        app_id=prefix + spec.group,
        var_dir=var_dir,
        metrics_port=port or None,
        batch_size=int(_per_service("DOPOMOGA_BATCH", service, _BATCH_DEFAULT.get(service, "500"))),
        batch_within_s=float(_per_service("DOPOMOGA_BATCH_WITHIN", service, "0.02")),
    )


#: The budget's batches may be larger: its per-batch cost (the ledger transaction: locks, loads, COPY,
#: commit; ~10 ms) is paid by the one partition of a hot budget key, the pipeline's serial stage.
#: At saturation 2 000 a batch cost 0.30 ms of CPU per claim against 0.40 with 500 (median of three
#: pairs, bench/budget_stage.py, 2026-11-30); a batch is still taken after the window when fewer wait.
_BATCH_DEFAULT = {"budget": "2000"}


def _per_service(variable: str, service: str, default: str) -> str:
    """``<variable>_<SERVICE>`` (one service's own), else ``<variable>``, else ``default``."""
    return os.environ.get(f"{variable}_{service.upper()}") or os.environ.get(variable) or default


def metrics_port_variable(service: str) -> str:
    return f"DOPOMOGA_METRICS_PORT_{service.upper()}"


def ledger_app_id() -> str | None:
    """The budget service's app id when this process belongs to a prefixed run (``dopomoga up``, tests),
    so the gateway and the treasury open the ledger that run's budget service writes; else ``None``
    (``dopomoga.budget.location.ledger_url`` then finds the newest one)."""
    return settings("budget").app_id if os.environ.get("DOPOMOGA_APP_PREFIX") else None
