"""Service settings, from the environment (so `dopomoga up`, tests and `faust -A` agree)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_METRICS_PORTS = {"eligibility": 9101, "calculation": 9102, "budget": 9103, "gateway": 9104, "treasury": 9105}


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
        from services.topology import bootstrap_of

        return bootstrap_of(self.broker_url)


def settings(service: str) -> ServiceSettings:
    """DOPOMOGA_BROKER (kafka://host:port), DOPOMOGA_APP_PREFIX (unique ids per test run),
    DOPOMOGA_VAR (state directory), DOPOMOGA_METRICS_PORT_<SERVICE> (0 = off),
    DOPOMOGA_BATCH / DOPOMOGA_BATCH_WITHIN (stream.take batching)."""
    prefix = os.environ.get("DOPOMOGA_APP_PREFIX", "")
    port_env = os.environ.get(f"DOPOMOGA_METRICS_PORT_{service.upper()}")
    port = int(port_env) if port_env is not None else DEFAULT_METRICS_PORTS.get(service)
    var_dir = Path(os.environ.get("DOPOMOGA_VAR", "var"))
    return ServiceSettings(
        service=service,
        broker_url=os.environ.get("DOPOMOGA_BROKER", "kafka://127.0.0.1:9092"),
        app_id=f"{prefix}dopomoga-{service}",
        var_dir=var_dir,
        metrics_port=port or None,
        batch_size=int(os.environ.get("DOPOMOGA_BATCH", "500")),
        batch_within_s=float(os.environ.get("DOPOMOGA_BATCH_WITHIN", "0.02")),
    )
