"""``python tests/devstack/lifecycle_stack.py PIDFILE VAR``: an embedded broker and every service
of ``SERVICES`` under a ``Supervisor``, as ``dopomoga up --no-demo`` starts them; writes the
children's pids to PIDFILE and waits to be killed (tests/devstack/test_lifecycle.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from services.devstack.broker import free_port, start_broker
from services.devstack.supervisor import Supervisor, add_services, service_env
from services.platform.topology import SERVICES, create_topics


def main(pidfile: Path, var: Path) -> None:
    broker = start_broker(log_path=var / "broker.log")
    create_topics(broker.bootstrap)
    extra = {"DOPOMOGA_GATEWAY_PORT": str(free_port()), "DOPOMOGA_REGISTERS": str(var / "registers")}
    envs = service_env(broker.url, var, prefix=f"life{int(time.time())}-", metrics={}, extra=extra)
    supervisor = add_services(Supervisor(backoff_s=0.5), [s.name for s in SERVICES], envs, var)
    supervisor.start()
    pids = {"broker": broker.process.pid, "bootstrap": broker.bootstrap, "gateway_port": int(extra["DOPOMOGA_GATEWAY_PORT"]),
            **{s.name: s.pid for s in supervisor.services}}
    pidfile.write_text(json.dumps(pids))
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
